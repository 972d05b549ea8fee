"""The translation model, on every backend."""

import numpy as np
import pytest

import keras
from keras import ops

from rnnapps.tasks.translation.model import Seq2Seq
from rnnapps.tasks.translation.model import SmoothedCrossentropy


SOURCE = np.array([[5, 6, 7, 3, 0, 0], [8, 3, 0, 0, 0, 0]], "int32")
TARGET_IN = np.array([[2, 9, 10, 11], [2, 12, 0, 0]], "int32")


@pytest.mark.parametrize("cell", ["lstm", "gru", "irnn"])
@pytest.mark.parametrize("attention", [None, "luong", "bahdanau"])
def test_shapes_and_translate(cell, attention):
    # Stacked layers with the LSTM; one layer keeps the other cases quick.
    layers = 2 if cell == "lstm" else 1
    model = Seq2Seq(20, 30, embedding_dim=8, units=12, layers=layers, cell=cell, attention=attention)
    logits = model({"source": SOURCE, "target_in": TARGET_IN})
    assert tuple(logits.shape) == (2, 4, 30)
    tokens, scores = model.translate(SOURCE, beam_size=3, max_length=5)
    assert tuple(tokens.shape) == (2, 5) and tuple(scores.shape) == (2,)
    assert np.all(ops.convert_to_numpy(scores) <= 0)


def test_padding_does_not_change_the_translation():
    model = Seq2Seq(20, 30, embedding_dim=8, units=12, attention="luong", reverse=True)
    short = model.translate(SOURCE[:, :4], beam_size=2, max_length=6)
    padded = model.translate(np.pad(SOURCE, [[0, 0], [0, 5]]), beam_size=2, max_length=6)
    np.testing.assert_array_equal(ops.convert_to_numpy(short[0]), ops.convert_to_numpy(padded[0]))
    np.testing.assert_allclose(ops.convert_to_numpy(short[1]), ops.convert_to_numpy(padded[1]), rtol=1e-5)


def test_reverse_feeds_the_valid_tokens_backwards():
    forward = Seq2Seq(20, 30, embedding_dim=8, units=12, reverse=False)
    forward({"source": SOURCE, "target_in": TARGET_IN})
    backward = Seq2Seq(20, 30, embedding_dim=8, units=12, reverse=True)
    backward({"source": SOURCE, "target_in": TARGET_IN})
    backward.set_weights(forward.get_weights())
    # Reversing the valid tokens by hand (padding stays at the end) and
    # encoding forwards gives what the reversing model computes.
    by_hand = np.array([[3, 7, 6, 5, 0, 0], [3, 8, 0, 0, 0, 0]], "int32")
    expected = forward({"source": by_hand, "target_in": TARGET_IN})
    actual = backward({"source": SOURCE, "target_in": TARGET_IN})
    np.testing.assert_allclose(ops.convert_to_numpy(actual), ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-6)
    assert not np.allclose(
        ops.convert_to_numpy(actual),
        ops.convert_to_numpy(forward({"source": SOURCE, "target_in": TARGET_IN})),
    )


def test_fit_lowers_the_loss_and_config_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = Seq2Seq(20, 30, embedding_dim=8, units=16, attention="bahdanau")
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    x = {"source": np.tile(SOURCE, (8, 1)), "target_in": np.tile(TARGET_IN, (8, 1))}
    y = np.tile(np.array([[9, 10, 11, 3], [12, 3, 0, 0]], "int32"), (8, 1))
    history = model.fit(x, y, epochs=40, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    # It learnt the two sentences: greedy decoding gives them back.
    tokens, _ = model.translate(SOURCE, beam_size=1, max_length=5)
    assert ops.convert_to_numpy(tokens).tolist() == [[9, 10, 11, 3, 0], [12, 3, 0, 0, 0]]

    clone = Seq2Seq.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    path = tmp_path / "seq2seq.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded(x)), ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_copy_mixes_in_the_attention_over_the_source_tokens(reverse):
    model = Seq2Seq(20, 20, embedding_dim=8, units=12, attention="luong", copy=True, reverse=reverse)
    x = {"source": SOURCE, "target_in": TARGET_IN}
    probabilities = np.exp(ops.convert_to_numpy(model(x)))  # log-probabilities
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    # With the gate shut (p_gen = 0), all the mass is on the source's own
    # tokens, whichever order the encoder read them in.
    kernel, bias = model.copy_gate.get_weights()
    model.copy_gate.set_weights([np.zeros_like(kernel), np.full_like(bias, -50.0)])
    copied = np.exp(ops.convert_to_numpy(model(x)))
    for row, source in zip(copied, SOURCE):
        on_source = row[:, sorted(set(source) - {0})].sum(-1)
        np.testing.assert_allclose(on_source, 1.0, rtol=1e-5)
    # Greedy decoding can then only write source tokens.
    tokens, scores = model.translate(SOURCE, beam_size=2, max_length=4)
    for row, source in zip(ops.convert_to_numpy(tokens), SOURCE):
        assert set(row) - {0} <= set(source)


def test_copy_model_learns_to_echo_the_source_and_round_trips(tmp_path):
    # The targets are the source's tokens: the task copying makes easy.
    keras.utils.set_random_seed(0)
    model = Seq2Seq(40, 40, embedding_dim=8, units=16, attention="luong", copy=True)
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    rng = np.random.default_rng(0)
    words = rng.integers(4, 40, size=(256, 3)).astype("int32")
    source = np.concatenate([words, np.full((256, 1), 3, "int32")], axis=1)
    target_in = np.concatenate([np.full((256, 1), 2, "int32"), words], axis=1)
    model.fit({"source": source, "target_in": target_in}, source, epochs=15, batch_size=32, verbose=0)
    test = np.array([[7, 31, 12, 3], [25, 25, 9, 3]], "int32")
    tokens, _ = model.translate(test, beam_size=2, max_length=5)
    assert ops.convert_to_numpy(tokens)[:, :4].tolist() == test.tolist()

    path = tmp_path / "copy.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.copy
    x = {"source": test, "target_in": np.array([[2, 7, 31, 12]] * 2, "int32")}
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded(x)), ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("units", [8, 12])  # equal to embedding_dim, and projected down
def test_tied_embeddings_share_one_matrix_and_round_trip(tmp_path, units):
    model = Seq2Seq(20, 20, embedding_dim=8, units=units, attention="luong", copy=True,
                    tie_embeddings=True)
    x = {"source": SOURCE, "target_in": TARGET_IN}
    logits = model(x)
    assert tuple(logits.shape) == (2, 4, 20)
    untied = Seq2Seq(20, 20, embedding_dim=8, units=units, attention="luong", copy=True)
    untied.build()
    # One 20 x 8 matrix instead of two, and a bias instead of a Dense(20).
    saved = untied.count_params() - model.count_params()
    assert saved == 20 * 8 + units * 20 - (units * 8 if units != 8 else 0)
    embeddings = model.source_embedding.embeddings
    before = ops.convert_to_numpy(model(x))
    embeddings.assign(embeddings * 2.0)  # the output moves with the input embedding
    assert not np.allclose(ops.convert_to_numpy(model(x)), before)
    path = tmp_path / "tied.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.tie_embeddings
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded(x)), ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5
    )


def test_smoothed_crossentropy_is_keras_crossentropy_without_smoothing():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 11)).astype("float32")
    labels = rng.integers(1, 11, size=(3, 5))
    labels[:, 3:] = 0  # padding
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    np.testing.assert_allclose(
        float(SmoothedCrossentropy(0.0)(labels, logits)), float(plain(labels, logits)), rtol=1e-5
    )
    # Smoothing: (1 - e) NLL + e mean(-log p) over the 9 real tokens.
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    expected = (0.9 * nll + 0.1 * -log_probs.mean(-1))[labels != 0].mean()
    np.testing.assert_allclose(float(SmoothedCrossentropy(0.1)(labels, logits)), expected, rtol=1e-5)
    restored = SmoothedCrossentropy.from_config(SmoothedCrossentropy(0.2).get_config())
    assert restored.label_smoothing == 0.2 and restored.ignore_class == 0
    with pytest.raises(ValueError, match="label_smoothing=1.0"):
        SmoothedCrossentropy(1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "rnn"}, "cell='rnn'"),
        ({"attention": "dot"}, "attention='dot'"),
        ({"units": 0}, "units=0"),
        ({"layers": 0}, "layers=0"),
        ({"copy": True}, "copy needs attention"),
        ({"copy": True, "attention": "luong"}, "target_vocabulary_size=30"),
        ({"tie_embeddings": True}, "tie_embeddings needs one vocabulary"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Seq2Seq(20, 30, **kwargs)
