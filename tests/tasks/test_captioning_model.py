"""The captioning model (Show and Tell), on every backend."""

import numpy as np
import pytest

import keras
from keras import ops

from rnnapps.tasks.captioning.model import CaptionEnsemble
from rnnapps.tasks.captioning.model import ShowAndTell
from rnnapps.tasks.captioning.model import ShowAttendAndTell
from rnnapps.text import END_ID
from rnnapps.text import START_ID
from rnnapps.text import UNK_ID

SMALL = dict(image_size=16, filters=(8, 16), units=16, embedding_dim=8)


def images(count, seed=0, size=16):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


@pytest.mark.parametrize("cell", ["lstm", "gru", "irnn"])
def test_shapes_and_generate(cell):
    model = ShowAndTell(12, cell=cell, **SMALL)
    logits = model({"image": images(2), "caption_in": np.array([[2, 5, 6], [2, 7, 0]])})
    assert tuple(logits.shape) == (2, 3, 12)
    tokens, scores = model.generate(images(2), beam_size=3, max_length=6)
    tokens = ops.convert_to_numpy(tokens)
    assert tokens.shape == (2, 6) and tokens.dtype == np.int32
    assert np.all(ops.convert_to_numpy(scores) <= 0)
    assert len(model.state_projections) == (2 if cell == "lstm" else 1)


def test_the_image_sets_the_initial_state():
    # Two different images give the decoder different first-step outputs;
    # the same image twice gives the same.
    model = ShowAndTell(12, **SMALL)
    x = images(2)
    x = np.concatenate([x, x[:1]])
    logits = ops.convert_to_numpy(model({"image": x, "caption_in": np.full((3, 1), START_ID)}))
    assert not np.allclose(logits[0], logits[1])
    np.testing.assert_allclose(logits[0], logits[2], rtol=1e-5, atol=1e-6)


def test_fit_learns_two_captions_and_round_trips(tmp_path):
    # Image 0 (dark) -> "5 6", image 1 (bright) -> "7 8 9".
    x = np.stack([np.full((16, 16, 3), 20.0), np.full((16, 16, 3), 230.0)]).astype("float32")
    x = np.repeat(x, 16, axis=0)
    caption_in = np.repeat(np.array([[START_ID, 5, 6, 0], [START_ID, 7, 8, 9]]), 16, axis=0)
    caption_out = np.repeat(np.array([[5, 6, END_ID, 0], [7, 8, 9, END_ID]]), 16, axis=0)
    keras.utils.set_random_seed(0)
    model = ShowAndTell(12, **SMALL)
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    history = model.fit({"image": x, "caption_in": caption_in}, caption_out, epochs=40,
                        batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    tokens, _ = model.generate(x[[0, 16]], beam_size=1, max_length=5)
    assert ops.convert_to_numpy(tokens).tolist() == [[5, 6, END_ID, 0, 0], [7, 8, 9, END_ID, 0]]

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["filters"] == [8, 16] and loaded.cell == "lstm"
    again, _ = loaded.generate(x[[0, 16]], beam_size=2, max_length=5)
    assert ops.convert_to_numpy(again).tolist() == ops.convert_to_numpy(tokens).tolist()


@pytest.mark.tensorflow_only(reason=(
    "time budget: keras.applications and weight files behave the same on every "
    "backend; the MobileNetV2 forward pass alone costs half a minute of JAX "
    "compilation in CI"
))
def test_backbone_weights_come_from_the_file_and_stay_frozen(tmp_path):
    reference = keras.applications.MobileNetV2(
        include_top=False, weights=None, pooling="avg", input_shape=(32, 32, 3), alpha=1.0,
    )
    file = tmp_path / "backbone.weights.h5"
    reference.save_weights(file)
    model = ShowAndTell(12, image_size=32, backbone="mobilenet_v2", backbone_weights=str(file),
                        units=8, embedding_dim=4)
    model.build()
    for mine, theirs in zip(model.encoder.weights, reference.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(mine), ops.convert_to_numpy(theirs))
    encoder_ids = {id(w) for w in model.encoder.weights}
    assert not any(id(w) in encoder_ids for w in model.trainable_weights)
    assert model.feature_dim == 1280

    tuned = ShowAndTell(12, image_size=32, backbone="mobilenet_v2", fine_tune=True,
                        units=8, embedding_dim=4)
    tuned.build()
    assert len(tuned.trainable_weights) > len(model.trainable_weights) + 100
    logits = tuned({"image": images(1, size=32), "caption_in": np.array([[START_ID]])})
    assert tuple(logits.shape) == (1, 1, 12)


def test_augmentation_only_while_training_and_never_the_unknown_token():
    model = ShowAndTell(12, augment=0.3, dropout=0.0, **SMALL)
    x = images(4, seed=1)
    inference = [ops.convert_to_numpy(model.encode(x)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    training = ops.convert_to_numpy(model.encode(x, training=True))
    assert not np.allclose(training, inference[0])
    assert ShowAndTell.from_config(model.get_config()).augment == 0.3

    # Make the unknown token by far the likeliest: it is still never written.
    model.build()
    bias = np.zeros(12, "float32")
    bias[UNK_ID] = 50.0
    model.output_projection.bias.assign(bias)
    tokens, _ = model.generate(x, beam_size=2, max_length=6)
    assert UNK_ID not in ops.convert_to_numpy(tokens)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "tanh"}, "cell must be one of"),
        ({"backbone": "vgg99"}, "backbone must be None or one of"),
        ({"units": 0}, "units must be a positive integer"),
        ({"backbone": "mobilenet_v2", "image_size": 16}, "at least 32x32"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShowAndTell(12, **{**SMALL, **kwargs})


# === The attention decoder (Show, Attend and Tell) ===

ATTEND = dict(SMALL, feature_map=4)


@pytest.mark.parametrize("cell", ["lstm", "gru", "irnn"])
def test_attention_shapes_generate_and_maps(cell):
    model = ShowAttendAndTell(12, cell=cell, **ATTEND)
    caption_in = np.array([[START_ID, 5, 6], [START_ID, 7, 0]])
    logits = model({"image": images(2), "caption_in": caption_in})
    assert tuple(logits.shape) == (2, 3, 12)
    # The 16x16 images pool twice to a 4x4 grid of 16-channel regions.
    assert tuple(model.encode_regions(images(2)).shape) == (2, 16, 16)
    assert tuple(model.encode(images(2)).shape) == (2, 16)
    tokens, scores = model.generate(images(2), beam_size=3, max_length=6)
    assert ops.convert_to_numpy(tokens).shape == (2, 6)
    assert np.all(ops.convert_to_numpy(scores) <= 0)
    maps = ops.convert_to_numpy(model.attention_maps(images(2), tokens))
    assert maps.shape == (2, 6, 4, 4) and np.all(maps >= 0)
    np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, rtol=1e-5)


def test_attention_beam_search_scores_what_teacher_forcing_scores():
    # Greedy decoding writes each step's arg-max: fed back by teacher
    # forcing, the same tokens are the arg-max of the same logits (the
    # regions travel with the beams exactly as the training path sees them).
    keras.utils.set_random_seed(1)
    model = ShowAttendAndTell(12, **ATTEND)
    x = images(3, seed=2)
    tokens, _ = model.generate(x, beam_size=1, max_length=5)
    tokens = ops.convert_to_numpy(tokens)
    caption_in = np.concatenate([np.full((3, 1), START_ID), tokens[:, :-1]], axis=1)
    logits = ops.convert_to_numpy(model({"image": x, "caption_in": caption_in}))
    logits[..., UNK_ID] = -1e9
    first = logits.argmax(-1)[:, 0]
    np.testing.assert_array_equal(first, tokens[:, 0])
    for row in range(3):  # up to and including the end token
        length = list(tokens[row]).index(END_ID) + 1 if END_ID in tokens[row] else 5
        np.testing.assert_array_equal(logits[row].argmax(-1)[:length], tokens[row, :length])


def test_doubly_stochastic_penalty_only_while_training():
    model = ShowAttendAndTell(12, attention_penalty=2.0, **ATTEND)
    x = {"image": images(2), "caption_in": np.array([[START_ID, 5, 6], [START_ID, 7, 0]])}
    model(x, training=True)
    assert len(model.losses) == 1
    penalty = float(ops.convert_to_numpy(model.losses[0]))
    # Three and two real steps over 16 regions: sum_t alpha_ti is about 3/16
    # or 2/16 for near-uniform weights, so the mean of (1 - it)^2 is near 0.7.
    assert 2.0 * 0.5 < penalty < 2.0 * 1.0
    model(x, training=False)
    assert not model.losses
    off = ShowAttendAndTell(12, attention_penalty=0.0, **ATTEND)
    off(x, training=True)
    assert not off.losses


def red_and_green_squares():
    """16 red squares on grey captioned "5 6", then 16 green ones "7 8 9":
    images, teacher-forced inputs and targets."""
    x = np.full((2, 16, 16, 3), 128.0, "float32")
    x[0, 4:12, 4:12] = (230.0, 20.0, 20.0)
    x[1, 4:12, 4:12] = (20.0, 230.0, 20.0)
    x = np.repeat(x, 16, axis=0)
    caption_in = np.repeat(np.array([[START_ID, 5, 6, 0], [START_ID, 7, 8, 9]]), 16, axis=0)
    caption_out = np.repeat(np.array([[5, 6, END_ID, 0], [7, 8, 9, END_ID]]), 16, axis=0)
    return x, caption_in, caption_out


def test_attention_fit_learns_two_captions_and_round_trips(tmp_path):
    # A red or a green square on grey: what the regions hold, not where
    # (soft attention sums the regions, and sees no position as such).
    x, caption_in, caption_out = red_and_green_squares()
    keras.utils.set_random_seed(0)
    model = ShowAttendAndTell(12, **ATTEND)
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    history = model.fit({"image": x, "caption_in": caption_in}, caption_out, epochs=40,
                        batch_size=32, verbose=0)
    # The training loss holds the attention penalty (about 0.6 here: three
    # steps cannot cover 16 regions once each); evaluation is the captions'.
    loss = model.evaluate({"image": x, "caption_in": caption_in}, caption_out, verbose=0)
    assert loss < 0.05 * history.history["loss"][0]
    tokens, _ = model.generate(x[[0, 16]], beam_size=2, max_length=5)
    assert ops.convert_to_numpy(tokens).tolist() == [[5, 6, END_ID, 0, 0], [7, 8, 9, END_ID, 0]]

    path = tmp_path / "attention.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ShowAttendAndTell)
    assert loaded.get_config()["feature_map"] == 4 and loaded.attention_penalty == 1.0
    again, _ = loaded.generate(x[[0, 16]], beam_size=2, max_length=5)
    assert ops.convert_to_numpy(again).tolist() == ops.convert_to_numpy(tokens).tolist()
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded.attention_maps(x[[0, 16]], tokens)),
        ops.convert_to_numpy(model.attention_maps(x[[0, 16]], tokens)), rtol=1e-4, atol=1e-6,
    )


def two_squares():
    """A red square left of a green one, captioned "5 6", and the two
    swapped, "6 5", on mid grey: far enough apart, and from the borders, that
    each square's regions in one image are its regions in the other moved by
    three cells of the 8x8 grid. Only where a region is tells them apart."""
    x = np.full((2, 32, 32, 3), 127.5, "float32")
    red, green = (230.0, 20.0, 20.0), (20.0, 230.0, 20.0)
    x[0, 12:16, 8:12], x[0, 12:16, 20:24] = red, green
    x[1, 12:16, 8:12], x[1, 12:16, 20:24] = green, red
    caption_in = np.array([[START_ID, 5, 6], [START_ID, 6, 5]])
    caption_out = np.array([[5, 6, END_ID], [6, 5, END_ID]])
    return x, caption_in, caption_out


def test_positions_tell_the_decoder_where_a_region_is():
    x, caption_in, caption_out = two_squares()
    inputs = {"image": x, "caption_in": caption_in[[0, 0]]}
    settings = dict(image_size=32, filters=(8, 16), feature_map=8, units=16, embedding_dim=8,
                    attention_penalty=0.0)
    # Without positions the decoder sees the same regions in both images,
    # so it scores any caption the same for both: it cannot tell them apart.
    keras.utils.set_random_seed(0)
    plain = ShowAttendAndTell(12, **settings)
    logits = ops.convert_to_numpy(plain(inputs))
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-5)

    keras.utils.set_random_seed(0)
    model = ShowAttendAndTell(12, positions=True, **settings)
    # They start at zero: the same model as without them.
    np.testing.assert_allclose(ops.convert_to_numpy(model(inputs)), logits, atol=1e-6)
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    x16, caption_in16, caption_out16 = (np.repeat(a, 16, axis=0)
                                        for a in (x, caption_in, caption_out))
    model.fit({"image": x16, "caption_in": caption_in16}, caption_out16,
              epochs=60, batch_size=32, verbose=0)
    tokens, _ = model.generate(x, beam_size=2, max_length=4)
    assert ops.convert_to_numpy(tokens).tolist() == [[5, 6, END_ID, 0], [6, 5, END_ID, 0]]
    # The image embedding (the memory's, the initial state's) is the plain mean region.
    np.testing.assert_allclose(ops.convert_to_numpy(model.encode(x)),
                               ops.convert_to_numpy(model.encode_regions(x)).mean(axis=1),
                               rtol=1e-5, atol=1e-6)
    assert np.abs(ops.convert_to_numpy(model.region_positions)).max() > 0.01

    config = model.get_config()
    assert config["positions"] is True
    loaded = ShowAttendAndTell.from_config(config)
    loaded.build()
    loaded.set_weights(model.get_weights())
    again, _ = loaded.generate(x, beam_size=2, max_length=4)
    assert ops.convert_to_numpy(again).tolist() == ops.convert_to_numpy(tokens).tolist()


@pytest.mark.parametrize("feature_map", [3, 16, 1])
def test_attention_grid_must_be_a_pooling_of_the_image(feature_map):
    # 16x16 images through two blocks: a 16 (no pooling), 8 or 4 grid; 3 is
    # no power-of-two pooling, and 1 would need four poolings.
    if feature_map == 16:
        assert ShowAttendAndTell(12, **{**ATTEND, "feature_map": 16}).feature_map == 16
        return
    with pytest.raises(ValueError, match="feature_map must be image_size divided by"):
        ShowAttendAndTell(12, **{**ATTEND, "feature_map": feature_map})


# === Consensus reranking over remembered training captions ===


def _clipped_ngram_f1(a, b, n):
    import collections

    grams_a = collections.Counter(tuple(a[i:i + n]) for i in range(len(a) - n + 1))
    grams_b = collections.Counter(tuple(b[i:i + n]) for i in range(len(b) - n + 1))
    if not grams_a or not grams_b:
        return 0.0
    matches = sum((grams_a & grams_b).values())
    return 2 * matches / (sum(grams_a.values()) + sum(grams_b.values()))


def test_consensus_scores_are_the_weighted_mean_clipped_ngram_f1():
    from rnnapps.tasks.captioning.model import consensus_scores

    rng = np.random.default_rng(0)
    batch, count, steps = 5, 6, 10
    candidates = np.zeros((batch, count, steps), "int32")
    captions = []
    for b in range(batch):
        row = []
        for c in range(count):  # few distinct ids: repeated words and bigrams
            words = list(rng.integers(4, 8, rng.integers(0, 9)))
            candidates[b, c, :len(words)] = words
            candidates[b, c, len(words)] = END_ID
            row.append(words)
        captions.append(row)
    weights = rng.uniform(0, 1, (batch, count)).astype("float32")
    weights[:, 0] = 0.0  # votes for no one, still scored
    expected = np.zeros((batch, count))
    for b in range(batch):
        for c in range(count):
            others = [d for d in range(count) if d != c]
            agreement = [(_clipped_ngram_f1(captions[b][c], captions[b][d], 1)
                          + _clipped_ngram_f1(captions[b][c], captions[b][d], 2)) / 2
                         for d in others]
            expected[b, c] = np.dot(agreement, weights[b, others]) / weights[b, others].sum()
    got = ops.convert_to_numpy(consensus_scores(candidates, weights))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _remembering(memory_tokens, seed=0, attention=True):
    keras.utils.set_random_seed(seed)
    model = (ShowAttendAndTell(12, memory_size=len(memory_tokens), memory_length=6, **ATTEND)
             if attention else ShowAndTell(12, memory_size=len(memory_tokens), memory_length=6,
                                           **SMALL))
    x = images(len(memory_tokens), seed=3)
    model.set_memory(model.encode(x), np.array(memory_tokens))
    return model, x


def _teacher_forced_score(model, x, tokens, length_penalty=0.6):
    tokens = np.asarray(tokens)
    caption_in = np.concatenate([np.full((len(tokens), 1), START_ID), tokens[:, :-1]], axis=1)
    logits = ops.convert_to_numpy(model({"image": x, "caption_in": caption_in})).astype("float64")
    logits[..., UNK_ID] = -1e9  # never written, as in beam search
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, tokens[..., None], -1)[..., 0] * (tokens != 0)
    lengths = (tokens != 0).sum(1)
    return picked.sum(1) / ((5.0 + lengths) / 6.0) ** length_penalty


def test_rerank_writes_the_remembered_caption_the_neighbours_agree_on():
    # Three of four remembered captions share "5 6": with a large consensus
    # weight the one agreeing most with the others wins over the beam's
    # caption (an untrained decoder's), whatever the likelihoods.
    memory = [[5, 6, 7, END_ID, 0, 0], [5, 6, 7, END_ID, 0, 0], [5, 6, 8, END_ID, 0, 0],
              [9, 10, END_ID, 0, 0, 0]]
    model, x = _remembering(memory)
    tokens, scores = model.generate(x, beam_size=2, max_length=6, rerank=4, consensus=1e3)
    assert ops.convert_to_numpy(tokens).tolist() == [memory[0]] * 4
    # The score is the written caption's length-normalised log-probability.
    np.testing.assert_allclose(ops.convert_to_numpy(scores),
                               _teacher_forced_score(model, x, [memory[0]] * 4),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "show_and_tell"])
def test_rerank_without_consensus_keeps_the_most_likely_candidate(attention):
    memory = [[5, 6, 7, END_ID, 0, 0], [9, 10, END_ID, 0, 0, 0], [4, END_ID, 0, 0, 0, 0]]
    model, x = _remembering(memory, seed=4, attention=attention)
    beam, beam_scores = model.generate(x, beam_size=2, max_length=6)
    tokens, scores = model.generate(x, beam_size=2, max_length=6, rerank=2, consensus=0.0)
    tokens, scores = ops.convert_to_numpy(tokens), ops.convert_to_numpy(scores)
    # The beam's caption is a candidate, scored as beam search scores it:
    # the pick scores at least as well.
    assert np.all(scores >= ops.convert_to_numpy(beam_scores) - 1e-4)
    for row, written in enumerate(tokens.tolist()):
        assert written in (ops.convert_to_numpy(beam)[row].tolist(), *memory)
    np.testing.assert_allclose(scores, _teacher_forced_score(model, x, tokens), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "show_and_tell"])
def test_rerank_beams_lets_every_caption_of_the_beam_compete(attention):
    from rnnapps.decoding import beam_search

    memory = [[5, 6, 7, END_ID, 0, 0], [9, 10, END_ID, 0, 0, 0], [4, END_ID, 0, 0, 0, 0]]
    model, x = _remembering(memory, seed=4, attention=attention)
    best, best_scores = model.generate(x, beam_size=3, max_length=6, rerank=2, consensus=0.0)
    tokens, scores = model.generate(x, beam_size=3, max_length=6, rerank=2, consensus=0.0,
                                    rerank_beams=True)
    tokens, scores = ops.convert_to_numpy(tokens), ops.convert_to_numpy(scores)
    # Without consensus the likeliest candidate wins; the beam's best is one
    # of them, so nothing gets less likely.
    assert np.all(scores >= ops.convert_to_numpy(best_scores) - 1e-4)
    np.testing.assert_allclose(scores, _teacher_forced_score(model, x, tokens), rtol=1e-4,
                               atol=1e-4)
    # With both terms, the pick is the best of all beams and the retrieved
    # captions by likelihood + consensus x agreement, computed here apart.
    from rnnapps.tasks.captioning.model import consensus_scores

    states, embedding = model._decoding_start_and_embedding(x)
    count = len(states)

    def step(ids, carried):
        logits, new = model._decoding_step(ids, carried[:count])
        return model._never_unknown(logits), new

    beams, beam_scores = beam_search(step, states, len(x), beam_size=3, max_length=6,
                                     start_id=START_ID, end_id=END_ID, return_all=True)
    beams, beam_scores = ops.convert_to_numpy(beams), ops.convert_to_numpy(beam_scores)
    embedding = ops.convert_to_numpy(embedding)
    keys = ops.convert_to_numpy(model.memory_keys)
    similarity = (embedding / np.linalg.norm(embedding, axis=1, keepdims=True)) @ keys.T
    nearest = np.argsort(-similarity, axis=1)[:, :2]
    picked, _ = model.generate(x, beam_size=3, max_length=6, rerank=2, consensus=1.0,
                               rerank_beams=True)
    picked = ops.convert_to_numpy(picked).tolist()
    for row in range(len(x)):
        retrieved = np.array([memory[i] for i in nearest[row]])
        candidates = np.concatenate([beams[row], retrieved])[None]
        votes = np.array([[0, 0, 0, 1, 1]], "float32")
        agreement = ops.convert_to_numpy(consensus_scores(candidates, votes))[0]
        likelihood = _teacher_forced_score(model, x[[row] * 5], candidates[0])
        likelihood[:3] = np.where(beam_scores[row] <= -1e8, -np.inf, likelihood[:3])
        total = likelihood + similarity[row, nearest[row, 0]] * agreement
        assert picked[row] == candidates[0, int(np.argmax(total))].tolist()
    # A later caption of the beam wins where the retrieved captions agree
    # with it, unless the beam cut it off (dropped).
    beam = np.array([[[9, 10, 11, END_ID, 0, 0], [5, 6, 7, END_ID, 0, 0]]] * len(x), "int32")
    retrieved = (np.ones((len(x), 1), "float32"),
                 np.array([[[5, 6, 8, END_ID, 0, 0], [5, 6, 7, 8, END_ID, 0]]] * len(x), "int32"))
    for dropped, expected in ((np.zeros((len(x), 2), bool), [5, 6, 7, END_ID, 0, 0]),
                              (np.array([[False, True]] * len(x)), None)):
        chosen, _ = model._rerank(ops.convert_to_tensor(beam), states, retrieved, 6, 0.6, 1e3,
                                  ops.convert_to_tensor(dropped))
        chosen = ops.convert_to_numpy(chosen).tolist()
        if expected is not None:
            assert chosen == [expected] * len(x)
        else:  # then one of the retrieved captions, which agree with each other
            assert all(c in retrieved[1][0].tolist() for c in chosen)


def test_retrieved_continuations_vote_for_what_follows_the_last_two_ids():
    from rnnapps.tasks.captioning.model import retrieved_contexts
    from rnnapps.tasks.captioning.model import retrieved_continuations

    captions = np.array([[[5, 6, 7, END_ID, 0], [4, 6, 8, END_ID, 0], [6, 9, 6, 7, END_ID]]])
    contexts = retrieved_contexts(np.repeat(captions, 4, axis=0))
    last = np.array([6, 6, 11, START_ID])
    before_last = np.array([5, 10, 12, -1])
    votes = ops.convert_to_numpy(retrieved_continuations(last, before_last, contexts, 12))
    expected = np.zeros((4, 12))
    # "5 6" goes on with 7 in the first caption only (the bigram matches).
    expected[0, 7] = 1.0
    # "10 6" is nowhere: every 6 votes, 7, 8, 9 and 7 again (back-off).
    expected[1, [7, 8, 9]] = [0.5, 0.25, 0.25]
    # 11 is nowhere: no votes.
    # At the start every caption votes for its first id.
    expected[3, [5, 4, 6]] = 1 / 3
    np.testing.assert_allclose(votes, expected, atol=1e-6)


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "show_and_tell"])
def test_retrieval_writes_what_the_retrieved_captions_continue(attention, monkeypatch):
    # The images are the remembered ones (similarity 1, the fade fully
    # open): with the retrieved captions' votes alone, beam search can only
    # write what they continue, a caption an untrained decoder does not.
    memory = [[9, 10, 11, 5, END_ID, 0]] * 3
    model, x = _remembering(memory, seed=2, attention=attention)
    beam, _ = model.generate(x, beam_size=2, max_length=6)
    assert ops.convert_to_numpy(beam).tolist() != memory
    # Beam search's own caption, before reranking (which could pick a
    # remembered caption by itself).
    monkeypatch.setattr(model, "_rerank", lambda tokens, *args: (tokens[:, 0], None))
    off, _ = model.generate(x, beam_size=2, max_length=6, rerank=2, retrieval=0.0)
    assert ops.convert_to_numpy(off).tolist() == ops.convert_to_numpy(beam).tolist()
    for confidence in (0.0, 0.95):
        tokens, _ = model.generate(x, beam_size=2, max_length=6, rerank=2,
                                   confidence=confidence, retrieval=1.0)
        assert ops.convert_to_numpy(tokens).tolist() == memory
    with pytest.raises(ValueError, match="retrieval must be in"):
        model.generate(x, rerank=2, retrieval=1.5)


def test_an_unfilled_memory_leaves_the_beam_caption_and_round_trips(tmp_path):
    keras.utils.set_random_seed(5)
    model = ShowAttendAndTell(12, memory_size=3, memory_length=6, **ATTEND)
    x = images(2, seed=6)
    beam, _ = model.generate(x, beam_size=2, max_length=6)
    reranked, _ = model.generate(x, beam_size=2, max_length=6, rerank=3)
    assert ops.convert_to_numpy(reranked).tolist() == ops.convert_to_numpy(beam).tolist()

    memory = np.array([[5, 6, END_ID], [5, 6, END_ID], [7, END_ID, 0]])  # padded to 6
    model.set_memory(model.encode(images(3, seed=7)), memory)
    written, _ = model.generate(x, beam_size=2, max_length=6, rerank=3, consensus=1e3)
    path = tmp_path / "remembering.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["memory_size"] == 3
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded.memory_tokens)[:, :3], memory)
    again, _ = loaded.generate(x, beam_size=2, max_length=6, rerank=3, consensus=1e3)
    assert ops.convert_to_numpy(again).tolist() == ops.convert_to_numpy(written).tolist()
    assert ops.convert_to_numpy(written).tolist()[0] == [5, 6, END_ID, 0, 0, 0]


def test_set_memory_needs_the_memory_size_it_was_built_with():
    model = ShowAttendAndTell(12, memory_size=3, **ATTEND)
    with pytest.raises(ValueError, match="set_memory needs 3 embeddings of size 16"):
        model.set_memory(np.zeros((2, 16)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="memory_size"):
        ShowAndTell(12, **SMALL).set_memory(np.zeros((2, 16)), np.zeros((2, 4)))


def test_the_consensus_fades_out_for_images_unlike_the_remembered_ones():
    memory = [[5, 6, 7, END_ID, 0, 0], [5, 6, 7, END_ID, 0, 0], [5, 6, 8, END_ID, 0, 0],
              [9, 10, END_ID, 0, 0, 0]]
    model, x = _remembering(memory)
    likeliest, _ = model.generate(x, beam_size=2, max_length=6, rerank=4, consensus=0.0)
    # The remembered images themselves have similarity 1: full weight.
    tokens, _ = model.generate(x, beam_size=2, max_length=6, rerank=4, consensus=1e3,
                               confidence=0.999)
    assert ops.convert_to_numpy(tokens).tolist() == [memory[0]] * 4
    # Other images are less similar than that: the likeliest candidate stays.
    other = images(4, seed=11)
    faded, _ = model.generate(other, beam_size=2, max_length=6, rerank=4, consensus=1e3,
                              confidence=0.999999)
    plain, _ = model.generate(other, beam_size=2, max_length=6, rerank=4, consensus=0.0)
    assert ops.convert_to_numpy(faded).tolist() == ops.convert_to_numpy(plain).tolist()
    unfaded, _ = model.generate(other, beam_size=2, max_length=6, rerank=4, consensus=1e3)
    assert ops.convert_to_numpy(unfaded).tolist() == [memory[0]] * 4
    assert ops.convert_to_numpy(plain).tolist() != [memory[0]] * 4
    with pytest.raises(ValueError, match="confidence must be in"):
        model.generate(x, rerank=2, confidence=1.0)


# === CaptionEnsemble ===


def _ensemble(count=2, seed=3, attention=True, **kwargs):
    keras.utils.set_random_seed(seed)
    kind, settings = (ShowAttendAndTell, ATTEND) if attention else (ShowAndTell, SMALL)
    return CaptionEnsemble([kind(12, **settings) for _ in range(count)], **kwargs)


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "show_and_tell"])
def test_the_ensemble_decodes_the_mean_of_its_members_probabilities(attention):
    ensemble = _ensemble(attention=attention)
    x = images(3, seed=4)
    caption_in = np.array([[START_ID, 5, 6], [START_ID, 7, 0], [START_ID, 8, 9]])
    inputs = {"image": x, "caption_in": caption_in}
    mixture = ops.convert_to_numpy(ensemble(inputs))
    probs = []
    for member in ensemble.members:
        logits = ops.convert_to_numpy(member(inputs)).astype("float64")
        e = np.exp(logits - logits.max(-1, keepdims=True))
        probs.append(e / e.sum(-1, keepdims=True))
    np.testing.assert_allclose(np.exp(mixture), np.mean(probs, axis=0), rtol=1e-4, atol=1e-6)
    # The members differ (their own initial weights), so the mixture is neither.
    assert not np.allclose(probs[0], probs[1], atol=1e-3)
    # Evaluation scores every token: a caption with an unknown piece (a
    # character the vocabulary lacks) has a finite loss, the mixture's.
    targets = np.array([[5, UNK_ID, END_ID], [7, END_ID, 0], [UNK_ID, 9, END_ID]])
    loss = float(ops.convert_to_numpy(ensemble.compute_loss(
        y=targets, y_pred=ensemble(inputs), training=False)))
    mixture_probs = np.mean(probs, axis=0)
    real = targets != 0
    expected = -np.log(np.take_along_axis(mixture_probs, targets[..., None], -1)[..., 0])[real]
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-4)
    # Greedy decoding writes the arg-max of the mixture of the members'
    # distributions without the unknown token (never written) at every step.
    tokens, scores = ensemble.generate(x, beam_size=1, max_length=5)
    tokens = ops.convert_to_numpy(tokens)
    fed = np.concatenate([np.full((3, 1), START_ID), tokens[:, :-1]], axis=1)
    again = []
    for member in ensemble.members:
        logits = ops.convert_to_numpy(member({"image": x, "caption_in": fed})).astype("float64")
        logits[..., UNK_ID] = -np.inf
        e = np.exp(logits - logits.max(-1, keepdims=True))
        again.append(e / e.sum(-1, keepdims=True))
    again = np.mean(again, axis=0)  # the unknown token's probability is 0
    again = np.log(np.where(again > 0, again, 1e-300))
    for row in range(3):
        length = list(tokens[row]).index(END_ID) + 1 if END_ID in tokens[row] else 5
        np.testing.assert_array_equal(again[row].argmax(-1)[:length], tokens[row, :length])
        picked = again[row, np.arange(length), tokens[row, :length]].sum()
        expected = picked / ((5 + length) / 6) ** 0.6  # GNMT length normalisation
        np.testing.assert_allclose(float(ops.convert_to_numpy(scores)[row]), expected,
                                   rtol=1e-4)


def test_the_ensemble_trains_each_member_on_its_own_loss_and_round_trips(tmp_path):
    # The two-captions task of the single models: every member learns it.
    x, caption_in, caption_out = red_and_green_squares()
    ensemble = _ensemble(seed=0, memory_size=2, memory_length=6)
    ensemble.compile(optimizer=keras.optimizers.Adam(0.02))
    inputs = {"image": x, "caption_in": caption_in}
    before = ensemble.evaluate(inputs, caption_out, verbose=0)
    history = ensemble.fit(inputs, caption_out, epochs=40, batch_size=32, verbose=0)
    # Training's loss holds the members' mean attention penalty (about 0.6, as
    # a single model's); evaluation is the mixture's cross-entropy.
    assert ensemble.evaluate(inputs, caption_out, verbose=0) < 0.05 * min(
        before, history.history["loss"][0])
    for member in ensemble.members:  # each member alone writes both captions
        tokens, _ = member.generate(x[[0, 16]], beam_size=1, max_length=5)
        assert ops.convert_to_numpy(tokens).tolist() == [[5, 6, END_ID, 0, 0],
                                                         [7, 8, 9, END_ID, 0]]
    # The joint embedding: unit length, its cosine the mean of the members'.
    a, b = ops.convert_to_numpy(ensemble.encode(x[[0, 16]]))
    np.testing.assert_allclose([np.linalg.norm(a), np.linalg.norm(b)], 1.0, rtol=1e-5)
    cosines = []
    for member in ensemble.members:
        p, q = ops.convert_to_numpy(member.encode(x[[0, 16]]))
        cosines.append(p @ q / np.linalg.norm(p) / np.linalg.norm(q))
    np.testing.assert_allclose(a @ b, np.mean(cosines), rtol=1e-4)

    ensemble.set_memory(ensemble.encode(x[[0, 16]]), caption_out[[0, 16]])
    tokens, _ = ensemble.generate(x[[0, 16]], beam_size=2, max_length=5, rerank=2)
    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, CaptionEnsemble) and len(loaded.members) == 2
    assert all(isinstance(m, ShowAttendAndTell) for m in loaded.members)
    again, _ = loaded.generate(x[[0, 16]], beam_size=2, max_length=5, rerank=2)
    assert ops.convert_to_numpy(again).tolist() == ops.convert_to_numpy(tokens).tolist() == [
        [5, 6, END_ID, 0, 0], [7, 8, 9, END_ID, 0]]


@pytest.mark.parametrize("members, message", [
    ([], "at least one member"),
    (lambda: [ShowAndTell(12, **SMALL), ShowAndTell(13, **SMALL)], "one vocabulary size"),
    (lambda: [ShowAndTell(12, memory_size=2, **SMALL)], "without a memory"),
])
def test_bad_ensembles_name_the_problem(members, message):
    with pytest.raises(ValueError, match=message):
        CaptionEnsemble(members() if callable(members) else members)


def test_batch_normalization_trains_as_keras_does_and_reads_its_weights(tmp_path):
    from rnnapps.tasks.captioning.model import BatchNormalization
    from rnnapps.tasks.captioning.model import small_cnn

    x = np.random.default_rng(0).normal(2.0, 3.0, (6, 5, 5, 4)).astype("float32")
    ours = BatchNormalization(momentum=0.5)
    theirs = keras.layers.BatchNormalization(momentum=0.5)
    weights = [np.linspace(0.5, 2.0, 4), np.linspace(-1.0, 1.0, 4), np.full(4, 0.3),
               np.full(4, 2.0)]
    for layer in (ours, theirs):
        layer.build(x.shape)
        layer.set_weights([w.astype("float32") for w in weights])
    for training in (True, True, False):  # two updates of the moving statistics, then them
        np.testing.assert_allclose(ops.convert_to_numpy(ours(x, training=training)),
                                   ops.convert_to_numpy(theirs(x, training=training)),
                                   atol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    assert not np.allclose(ours.get_weights()[3], weights[3])  # the variance moved
    if keras.backend.backend() == "tensorflow":  # the fused kernel's gradients
        import tensorflow as tf

        inputs = tf.constant(x)
        grads = []
        for layer in (ours, theirs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(tf.sin(layer(inputs, training=True)))
            grads.append(tape.gradient(loss, [inputs, *layer.trainable_variables]))
        for a, b in zip(*grads):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    # Weights an encoder saved with Keras's own layer load into the small CNN.
    old = keras.Sequential([
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv_0"),
        keras.layers.BatchNormalization(name="norm_0"), keras.layers.ReLU(name="relu_0"),
        keras.layers.MaxPooling2D(2, name="pool_0"),
        keras.layers.GlobalAveragePooling2D(name="pool")])
    old(images(2, size=8))
    old.layers[1].set_weights([w.astype("float32") for w in weights])
    old.save_weights(tmp_path / "old.weights.h5")
    new = small_cnn((4,))
    new(images(2, size=8))
    new.load_weights(tmp_path / "old.weights.h5")
    assert isinstance(new.layers[1], BatchNormalization)
    np.testing.assert_allclose(ops.convert_to_numpy(new(images(3, size=8))),
                               ops.convert_to_numpy(old(images(3, size=8))), atol=1e-5)
