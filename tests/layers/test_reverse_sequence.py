import numpy as np
import pytest
import tensorflow as tf

import keras
from keras import ops

from rnnapps.layers import ReverseSequence


def numpy_reverse_valid(x, valid):
    """Reference: reverse the valid steps of each row, padding stays put."""
    out = np.array(x, copy=True)
    for row in range(x.shape[0]):
        positions = np.flatnonzero(valid[row])
        out[row, positions] = x[row, positions[::-1]]
    return out


def as_numpy(x):
    return ops.convert_to_numpy(x)


def test_reverses_words_not_padding():
    ids = np.array([[5, 6, 7, 0, 0], [1, 2, 3, 4, 0], [9, 8, 7, 6, 5]])
    expected = [[7, 6, 5, 0, 0], [4, 3, 2, 1, 0], [5, 6, 7, 8, 9]]
    assert as_numpy(ReverseSequence(mask_value=0)(ids)).tolist() == expected
    lengths = np.array([3, 4, 5])
    assert as_numpy(ReverseSequence()(ids, lengths=lengths)).tolist() == expected
    mask = ids != 0
    assert as_numpy(ReverseSequence()(ids, mask=mask)).tolist() == expected


def test_without_mask_reverses_the_whole_axis():
    ids = np.array([[5, 6, 7, 0, 0]])
    assert as_numpy(ReverseSequence()(ids)).tolist() == [[0, 0, 7, 6, 5]]


def test_left_padding_and_holes_stay_in_place():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 100, size=(6, 9))
    valid = rng.random((6, 9)) < 0.6
    valid[0] = [False, False, False, True, True, True, True, True, True]  # left pad
    valid[1] = False  # all padding
    got = as_numpy(ReverseSequence()(x, mask=valid))
    np.testing.assert_array_equal(got, numpy_reverse_valid(x, valid))


def test_feature_sequences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 2)).astype("float32")
    x[0, 3:] = 0.0
    x[2, 1:] = 0.0
    valid = np.any(x != 0.0, axis=-1)
    expected = numpy_reverse_valid(x, valid)
    np.testing.assert_array_equal(as_numpy(ReverseSequence(mask_value=0.0)(x)), expected)
    np.testing.assert_array_equal(
        as_numpy(ReverseSequence()(x, lengths=np.array([3, 5, 1]))), expected
    )


def test_in_model_with_embedding_mask_reaches_the_lstm():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(20, 4, mask_zero=True)(inputs)
    reversed_ = ReverseSequence()(embedded)
    outputs = keras.layers.LSTM(3)(reversed_)
    model = keras.Model(inputs, outputs)
    padded = as_numpy(model(np.array([[5, 6, 7, 0, 0]])))
    # Same as feeding the reversed words without padding: the padding stayed
    # at the end and the LSTM received the mask and skipped it.
    plain = keras.Model(inputs, keras.layers.LSTM(3)(embedded))
    plain.layers[-1].set_weights(model.layers[-1].get_weights())
    by_hand = as_numpy(plain(np.array([[7, 6, 5]])))
    np.testing.assert_allclose(padded, by_hand, rtol=1e-5, atol=1e-6)


def test_compute_mask_passes_the_mask_on():
    mask = np.array([[True, True, False]])
    out_mask = ReverseSequence().compute_mask(np.zeros((1, 3)), mask)
    np.testing.assert_array_equal(as_numpy(out_mask), mask)


def test_tf_data_padded_and_ragged():
    # Works in a tf.data pipeline on any Keras backend.
    sentences = [[5, 6, 7], [1, 2, 3, 4], [9]]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(sentences), output_signature=tf.TensorSpec([None], tf.int64)
    )
    layer = ReverseSequence(mask_value=0)
    padded = dataset.padded_batch(3).map(layer)
    np.testing.assert_array_equal(
        next(iter(padded)).numpy(), [[7, 6, 5, 0], [4, 3, 2, 1], [9, 0, 0, 0]]
    )
    ragged = dataset.ragged_batch(3).map(layer)
    assert next(iter(ragged)).to_list() == [[7, 6, 5], [4, 3, 2, 1], [9]]
    with_lengths = dataset.padded_batch(3).map(
        lambda ids: layer(ids, lengths=tf.constant([3, 4, 1]))
    )
    np.testing.assert_array_equal(
        next(iter(with_lengths)).numpy(), [[7, 6, 5, 0], [4, 3, 2, 1], [9, 0, 0, 0]]
    )


def test_ragged_tensor_directly():
    rt = tf.ragged.constant([[[1.0], [2.0]], [[3.0], [4.0], [5.0]]], ragged_rank=1)
    out = ReverseSequence()(rt)
    assert out.to_list() == [[[2.0], [1.0]], [[5.0], [4.0], [3.0]]]


def test_get_config_round_trip_and_keras_save(tmp_path):
    layer = ReverseSequence(mask_value=0, name="reverse")
    clone = ReverseSequence.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input((5,), dtype="int32")
    hidden = ReverseSequence(mask_value=0)(inputs)
    hidden = keras.layers.Embedding(10, 3)(hidden)
    model = keras.Model(inputs, keras.layers.GRU(2)(hidden))
    path = tmp_path / "reverse.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.layers[1].mask_value == 0
    ids = np.array([[5, 6, 7, 0, 0], [1, 2, 3, 4, 0]])
    np.testing.assert_allclose(as_numpy(reloaded(ids)), as_numpy(model(ids)), rtol=1e-6)


def test_fit_one_step_through_the_layer():
    inputs = keras.Input((4, 2))
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(ReverseSequence()(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    history = model.fit(np.ones((4, 4, 2)), np.zeros((4, 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_bad_input_rank_and_lengths_raise_value_error():
    with pytest.raises(ValueError, match=r"inputs.shape=\(2,\)"):
        ReverseSequence()(np.array([1, 2]))
    with pytest.raises(ValueError, match="lengths.shape"):
        ReverseSequence()(np.ones((2, 3)), lengths=np.ones((2, 1), "int32"))
