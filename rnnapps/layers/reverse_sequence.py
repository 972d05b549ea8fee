"""Reversed-input preprocessing (Sutskever, Vinyals & Le 2014)."""

import sys

import keras
from keras import ops

__all__ = ["ReverseSequence"]


def _positions(like, xp):
    """0, 1, 2, ... along axis 1, shaped like the 2D tensor `like`.

    A cumulative sum rather than `arange`, so that it also works on a
    symbolic time length inside tf.data.
    """
    return xp.cumsum(xp.ones_like(like, dtype="int32"), axis=1) - 1


def _reverse_valid_steps(x, valid, xp, shape):
    """Reverses, in each row of `x`, the steps where `valid` is True.

    Steps where `valid` is False (padding) stay where they are. Works with any
    pattern of valid steps: with right padding `[a, b, c, pad, pad]` becomes
    `[c, b, a, pad, pad]`; with left padding `[pad, a, b]` becomes
    `[pad, b, a]`.

    `xp` is a NumPy-like namespace (`keras.ops`, or
    `tf.experimental.numpy` inside a tf.data pipeline) and `shape` its
    shape function; the algorithm is written once for both.
    """
    position = _positions(valid, xp)
    steps = xp.sum(xp.ones_like(valid, dtype="int32"), axis=1, keepdims=True)
    # Valid steps first, in their original order; padding after them.
    order = xp.argsort(xp.where(valid, position, position + steps), axis=1)
    ones = xp.where(valid, 1, 0)
    rank = xp.cumsum(ones, axis=1) - 1  # the k-th valid step has rank k
    count = xp.sum(ones, axis=1, keepdims=True)
    # The k-th valid step takes the value of the (count - 1 - k)-th one.
    source_rank = xp.where(valid, count - 1 - rank, 0)
    source = xp.take_along_axis(order, source_rank, axis=1)
    index = xp.where(valid, source, position)
    if len(x.shape) == 3:
        index = xp.broadcast_to(xp.expand_dims(index, -1), shape(x))
    return xp.take_along_axis(x, index, axis=1)


@keras.saving.register_keras_serializable(package="rnnapps")
class ReverseSequence(keras.layers.Layer):
    """Reverses the time axis of each sequence, leaving padding in place.

    Sutskever, Vinyals & Le (2014) found that feeding the source sentence to
    an LSTM encoder backwards made sequence-to-sequence learning much easier
    (WMT'14 English-French BLEU 25.9 -> 30.6): the first source words end up
    next to the first target words, so the first gradient signals have only
    a few steps to travel through time.

    This layer reverses only the valid steps of each sequence. Given a Keras
    mask (e.g. from `Embedding(mask_zero=True)`), explicit `lengths`, or a
    `mask_value` that marks padding, `[5, 6, 7, 0, 0]` becomes
    `[7, 6, 5, 0, 0]`, not `[0, 0, 7, 6, 5]`: the padding stays at the end,
    where Keras's cuDNN LSTM path requires it, and the words are reversed,
    not the padding. The input mask is passed on unchanged. Without any of
    the three, the whole time axis is reversed.

    The layer also works on `tf.RaggedTensor`s and inside a `tf.data`
    pipeline (`dataset.map(ReverseSequence(mask_value=0))`), on any Keras
    backend.

    Args:
        mask_value: Optional value that marks padding when no mask or lengths
            are given: a step is padding if it equals `mask_value` (for
            token ids of shape `(batch, time)`) or if all its features equal
            it (for `(batch, time, features)`, as `keras.layers.Masking`).
            Default: `None`.

    Call arguments:
        inputs: A tensor `(batch, time)` of token ids or
            `(batch, time, features)`, or a ragged tensor with ragged time.
        mask: Optional boolean tensor `(batch, time)`, True at valid steps.
        lengths: Optional integer tensor `(batch,)`, the number of valid
            (leading) steps of each sequence.

    Output shape:
        Same as the input.

    Masking:
        The input mask is used to find the valid steps and is returned
        unchanged, since padding does not move.

    Example:

    >>> import numpy as np
    >>> from rnnapps.layers import ReverseSequence
    >>> ids = np.array([[5, 6, 7, 0, 0], [1, 2, 3, 4, 0]])
    >>> np.asarray(ReverseSequence(mask_value=0)(ids)).tolist()
    [[7, 6, 5, 0, 0], [4, 3, 2, 1, 0]]
    >>> np.asarray(ReverseSequence()(ids, lengths=np.array([2, 4]))).tolist()
    [[6, 5, 7, 0, 0], [4, 3, 2, 1, 0]]
    """

    def __init__(self, mask_value=None, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True

    def __call__(self, inputs, *args, **kwargs):
        # Inside tf.data (or on ragged tensors) the inputs are TensorFlow
        # tensors whatever the Keras backend is: use TensorFlow's NumPy API
        # instead of keras.ops. Checked via sys.modules so that importing
        # rnnapps never imports TensorFlow.
        tf = sys.modules.get("tensorflow")
        if tf is not None and (
            isinstance(inputs, tf.RaggedTensor)
            or (
                keras.backend.backend() != "tensorflow"
                and tf.is_tensor(inputs)
            )
        ):
            return self._call_tf(tf, inputs, *args, **kwargs)
        return super().__call__(inputs, *args, **kwargs)

    def _valid_steps(self, inputs, mask, lengths, xp):
        rank = len(inputs.shape)
        if rank not in (2, 3):
            raise ValueError(
                "ReverseSequence expects inputs of rank 2 (batch, time) or 3 "
                f"(batch, time, features). Received: inputs.shape={tuple(inputs.shape)}"
            )
        if lengths is not None:
            if len(lengths.shape) != 1:
                raise ValueError(
                    "lengths must have shape (batch,). "
                    f"Received: lengths.shape={tuple(lengths.shape)}"
                )
            steps = inputs if rank == 2 else inputs[..., 0]
            return xp.less(_positions(steps, xp), xp.expand_dims(lengths, 1))
        if mask is not None:
            return mask if rank == 2 or len(mask.shape) == 2 else mask[..., 0]
        if self.mask_value is not None:
            valid = xp.not_equal(inputs, self.mask_value)
            return valid if rank == 2 else xp.any(valid, axis=-1)
        return None

    def call(self, inputs, mask=None, lengths=None):
        if lengths is not None:
            lengths = ops.convert_to_tensor(lengths)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        valid = self._valid_steps(inputs, mask, lengths, ops)
        if valid is None:
            return ops.flip(inputs, axis=1)
        return _reverse_valid_steps(inputs, valid, ops, ops.shape)

    def _call_tf(self, tf, inputs, mask=None, lengths=None):
        tnp = tf.experimental.numpy
        if isinstance(inputs, tf.RaggedTensor):
            if inputs.ragged_rank != 1:
                raise ValueError(
                    "ReverseSequence supports ragged tensors with one ragged "
                    "(time) dimension. Received: ragged_rank="
                    f"{inputs.ragged_rank}"
                )
            row_lengths = inputs.row_lengths()
            padded = self._call_tf(tf, inputs.to_tensor(), lengths=row_lengths)
            return tf.RaggedTensor.from_tensor(padded, lengths=row_lengths)
        if lengths is not None:
            lengths = tf.convert_to_tensor(lengths)
        if mask is not None:
            mask = tf.cast(mask, tf.bool)
        valid = self._valid_steps(inputs, mask, lengths, tnp)
        if valid is None:
            return tf.reverse(inputs, axis=[1])
        return _reverse_valid_steps(inputs, valid, tnp, tf.shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mask_value": self.mask_value})
        return config
