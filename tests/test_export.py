"""rnnapps.export: the guard that answers an empty batch without running the network."""

import numpy as np
import pytest
import tensorflow as tf

from rnnapps.export import serve_empty_batches


def refuses_empty_batches(x, k):
    """A serving function whose network would fail on a zero-size batch."""
    check = tf.debugging.assert_positive(tf.shape(x)[0], message="the network ran on 0 examples")
    with tf.control_dependencies([check]):
        scores = tf.linalg.matmul(x, tf.ones([3, 2])) * tf.cast(k, tf.float32)
    return {
        "scores": scores,
        "labels": tf.strings.as_string(tf.argmax(scores, axis=-1)),
        "ranked": tf.argsort(scores, axis=-1)[:, None, :],
    }


SIGNATURE = [tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([], tf.int32)]


def test_an_empty_batch_gets_empty_outputs_without_running_the_function():
    guarded = tf.function(serve_empty_batches(refuses_empty_batches, SIGNATURE),
                          input_signature=SIGNATURE)
    with pytest.raises(tf.errors.InvalidArgumentError, match="ran on 0 examples"):
        tf.function(refuses_empty_batches, input_signature=SIGNATURE)(tf.zeros([0, 3]), 2)
    # The scalar `k` is not the batch: the first input with a leading None is.
    empty = guarded(tf.zeros([0, 3]), 2)
    assert {k: (v.shape.as_list(), v.dtype) for k, v in empty.items()} == {
        "scores": ([0, 2], tf.float32), "labels": ([0], tf.string), "ranked": ([0, 1, 2], tf.int32),
    }
    full = guarded(tf.ones([4, 3]), 2)
    np.testing.assert_array_equal(full["scores"].numpy(), np.full([4, 2], 6.0))
    assert full["labels"].shape == [4]
    # The signature's outputs keep the shapes the function declares.
    outputs = guarded.get_concrete_function().structured_outputs
    assert outputs["scores"].shape.as_list() == [None, 2]


def test_an_output_without_a_batch_dimension_is_a_clear_error():
    def total(x):
        return {"total": tf.reduce_sum(x)}

    with pytest.raises(ValueError, match="leading batch dimension. Received: output 'total'"):
        serve_empty_batches(total, [tf.TensorSpec([None, 3], tf.float32)])


def test_a_signature_without_a_batch_is_served_as_is():
    def square(x):
        return {"y": x * x}

    assert serve_empty_batches(square, [tf.TensorSpec([3], tf.float32)]) is square
