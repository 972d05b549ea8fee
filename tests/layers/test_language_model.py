"""`rnnapps.language_model.WordLanguageModel` on every backend (ids in, logits out)."""

import numpy as np
import pytest

import keras

from rnnapps.language_model import EmbeddingDropout
from rnnapps.language_model import WordLanguageModel

VOCABULARY = ["<s>", "</s>", "a", "cup", "of", "tea", "the", "door"]  # ids 2-9


def tiny(cell="lstm", layers=2, **kwargs):
    keras.utils.set_random_seed(0)
    model = WordLanguageModel(VOCABULARY, cell=cell, layers=layers, embedding_dim=6, units=8,
                              **kwargs)
    model.build((None, None))
    return model


@pytest.mark.parametrize("cell", ["lstm", "gru", "irnn"])
def test_stepping_matches_the_whole_sequence(cell):
    """`next_word` after a padded prefix, then `step` word by word, give the
    same logits as one call over the whole sentence."""
    model = tiny(cell)
    ids = np.array([[2, 4, 5, 6, 7], [2, 8, 9, 0, 0]], "int32")
    full = keras.ops.convert_to_numpy(model(ids))
    logits, states = model.next_word(ids[:, :2])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits), full[:, 1], atol=1e-5)
    for t in (2, 3):
        logits, states = model.step(ids[:, t], states)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(logits)[0], full[0, t], atol=1e-5)
    # A padded row: the logits after its last word, not after the padding.
    logits, _ = model.next_word(ids)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits)[1], full[1, 2], atol=1e-5)


def test_greedy_continuation_never_chooses_unknown_or_start_and_stops_at_the_end():
    model = tiny(layers=1)
    # Make [UNK] (1) and <s> (2) by far the most likely, then </s> (3).
    bias = np.zeros(10, "float32")
    logits = keras.ops.convert_to_tensor(np.tile([0, 50, 40, 30, 0, 0, 0, 0, 0, 0], (2, 1)) + bias)
    _, states = model.next_word(np.array([[2, 4], [2, 5]], "int32"))
    words = keras.ops.convert_to_numpy(model.greedy_continuation(logits, states, 4))
    assert words.shape == (2, 4)
    assert (words[:, 0] == 0).all()  # </s> first: nothing follows
    assert (words == 0).all()


def test_tied_weights_and_serialization(tmp_path):
    model = tiny()
    assert model.projection is not None  # units 8 != embedding_dim 6
    weights = {w.path for w in model.weights}
    assert not any("reverse" in path for path in weights)  # one matrix, used twice
    untied = tiny(tie_embeddings=False)
    assert len(untied.weights) == len(model.weights) + 1
    path = tmp_path / "lm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    ids = np.array([[2, 4, 5]], "int32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(ids)),
                               keras.ops.convert_to_numpy(model(ids)), atol=1e-6)
    assert loaded.vocabulary == VOCABULARY and loaded.get_config()["layers"] == 2


def test_embedding_dropout_drops_whole_words():
    layer = EmbeddingDropout(vocabulary_size=50, rate=0.5, seed=3)
    ids = np.tile(np.arange(50), (4, 1))
    out = keras.ops.convert_to_numpy(layer(np.ones((4, 50, 3), "float32"), ids, training=True))
    dropped = out[..., 0] == 0
    assert (dropped == dropped[0]).all()  # the same words in every row
    assert 10 < dropped[0].sum() < 40
    np.testing.assert_allclose(out[~dropped], 2.0)  # kept words scaled by 1 / (1 - rate)
    same = keras.ops.convert_to_numpy(layer(np.ones((4, 50, 3), "float32"), ids))
    np.testing.assert_array_equal(same, 1.0)  # not training: unchanged
    with pytest.raises(ValueError, match="rate must be in"):
        EmbeddingDropout(10, rate=1.0)


def test_bad_settings():
    with pytest.raises(ValueError, match="cell must be one of"):
        WordLanguageModel(VOCABULARY, cell="rnn")
    with pytest.raises(ValueError, match="must start with"):
        WordLanguageModel(["a", "b"])


def test_with_words_extends_the_vocabulary_and_keeps_the_rest():
    model = tiny()
    bigger = model.with_words(["tea", "yummy", "pricey", "yummy"])
    assert bigger.vocabulary == VOCABULARY + ["yummy", "pricey"]
    assert bigger.vocabulary_size == model.vocabulary_size + 2
    ids = np.array([[2, 4, 5, 6]], "int32")
    old = keras.ops.convert_to_numpy(model(ids))
    new = keras.ops.convert_to_numpy(bigger(ids))
    np.testing.assert_allclose(new[..., : old.shape[-1]], old, atol=1e-6)  # old words unchanged
    embeddings = keras.ops.convert_to_numpy(bigger.embedding.embeddings)
    np.testing.assert_allclose(embeddings[-1], embeddings[4:-2].mean(0), atol=1e-6)
    untied = tiny(tie_embeddings=False).with_words(["yummy"])
    assert keras.ops.convert_to_numpy(untied.embedding.reverse_embeddings).shape == (6, 11)


def test_log_probabilities_and_perplexity_on_ids():
    from rnnapps.language_model import log_probabilities_of, perplexity

    model = tiny(layers=1)
    inputs = np.array([[2, 4, 5, 0], [2, 6, 0, 0]], "int32")
    targets = np.array([[4, 5, 3, 0], [6, 3, 0, 0]], "int32")
    log_probabilities = log_probabilities_of(model, inputs)
    assert log_probabilities.shape == (2, 4, 10)
    np.testing.assert_allclose(np.exp(log_probabilities).sum(-1), 1.0, atol=1e-6)
    picked = [log_probabilities[0, 0, 4], log_probabilities[0, 1, 5], log_probabilities[0, 2, 3],
              log_probabilities[1, 0, 6], log_probabilities[1, 1, 3]]
    expected = np.exp(-np.mean(picked))  # padding left out
    assert perplexity(model, [(inputs, targets)]) == pytest.approx(expected, rel=1e-6)
    assert 1 < expected < 20  # an untrained model: about uniform over 10 ids


# --- Training softmaxes: full, sampled, adaptive --------------------------------------

BIG_VOCABULARY = ["<s>", "</s>"] + [f"w{i}" for i in range(60)]  # ids 2-63


def _corpus(rows=64, length=10, seed=0):
    """Ids whose next word follows from the current one (w_i -> w_(i+1)),
    Zipf-like in frequency, as `sentence_batches` pairs them."""
    rng = np.random.default_rng(seed)
    starts = np.minimum(rng.zipf(1.5, size=rows) + 3, 50)
    inputs = np.stack([np.concatenate([[2], s + np.arange(length - 1)]) for s in starts])
    targets = np.concatenate([inputs[:, 1:], np.full((rows, 1), 3)], 1)
    targets[:8, -3:] = 0  # padded targets are left out
    return inputs.astype("int32"), targets.astype("int32")


def _full_loss(model, inputs, targets):
    """The mean full-softmax cross-entropy over every target but padding (NumPy)."""
    logits = np.asarray(keras.ops.convert_to_numpy(model(inputs)), np.float64)
    logits -= logits.max(-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
    return float(-picked[targets != 0].mean())


def lm(softmax, **kwargs):
    keras.utils.set_random_seed(0)
    model = WordLanguageModel(BIG_VOCABULARY, embedding_dim=16, units=16, softmax=softmax,
                              **kwargs)
    model.build((None, None))
    return model


def test_adaptive_softmax_is_a_distribution_and_trains_on_its_exact_likelihood():
    model = lm("adaptive", cutoffs=(20, 40))
    inputs, targets = _corpus()
    log_p = keras.ops.convert_to_numpy(model(inputs)).astype(np.float64)
    np.testing.assert_allclose(np.exp(log_p).sum(-1), 1.0, atol=1e-5)
    # The training loss (clusters scored apart) is the likelihood `call` gives.
    model.compile(optimizer="adam")
    y_pred = model(inputs, training=True)
    assert isinstance(y_pred, dict)  # hidden states: the loss computes the rest
    loss = float(keras.ops.convert_to_numpy(model.compute_loss(y=targets, y_pred=y_pred)))
    assert loss == pytest.approx(_full_loss(model, inputs, targets), rel=1e-4)
    assert model.get_config()["softmax"] == "adaptive"
    assert WordLanguageModel.from_config(model.get_config()).cutoffs == (20, 40)


@pytest.mark.parametrize("softmax", ["sampled", "adaptive", "full"])
def test_every_softmax_learns_and_predicts_with_the_full_distribution(softmax):
    """Training with each softmax lowers the exact (full-softmax) loss on the
    data far below the untrained model's, and `perplexity` is reported."""
    model = lm(softmax, samples=32, cutoffs=(20, 40))
    inputs, targets = _corpus()
    before = _full_loss(model, inputs, targets)
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    history = model.fit(inputs, targets, batch_size=16, epochs=15, verbose=0)
    after = _full_loss(model, inputs, targets)
    assert after < 0.75 * before, (before, after)
    assert {"loss", "perplexity"} <= set(history.history)
    # Inference gives the whole vocabulary's logits, whatever trained them.
    assert tuple(model(inputs[:2]).shape) == (2, 10, len(BIG_VOCABULARY) + 2)
    evaluated = model.evaluate(inputs, targets, batch_size=64, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(after, rel=1e-4)
    # Over batches, perplexity weighs each batch by its words (Keras's loss, by its rows).
    evaluated = model.evaluate(inputs, targets, batch_size=5, verbose=0, return_dict=True)
    assert evaluated["perplexity"] == pytest.approx(np.exp(after), rel=1e-4)


@pytest.mark.parametrize("softmax", ["sampled", "adaptive"])
def test_a_compiled_keras_loss_scores_the_whole_distribution(softmax):
    """Compiled with a Keras loss (as the sentiment task fine-tunes it), the
    model trains on that loss over its whole distribution."""
    model = lm(softmax, cutoffs=(20, 40))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0))
    inputs, targets = _corpus(rows=16)
    y_pred = model(inputs, training=True)
    assert not isinstance(y_pred, dict)
    loss = float(keras.ops.convert_to_numpy(model.compute_loss(y=targets, y_pred=y_pred)))
    assert loss == pytest.approx(_full_loss(model, inputs, targets), rel=1e-4)


def test_bad_softmax_settings():
    with pytest.raises(ValueError, match="softmax must be one of"):
        WordLanguageModel(BIG_VOCABULARY, softmax="hierarchical")
    with pytest.raises(ValueError, match="cutoffs must increase"):
        WordLanguageModel(BIG_VOCABULARY, softmax="adaptive", cutoffs=(40, 20))
