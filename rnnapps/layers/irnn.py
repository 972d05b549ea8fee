"""IRNN: a ReLU recurrent network whose recurrent matrix starts as the identity."""

import functools

import keras
from keras import initializers
from keras import ops

__all__ = ["IRNNCell", "IRNN"]

# Le, Jaitly & Hinton (2015), section 3: input-to-hidden weights from N(0, 0.001).
_PAPER_INPUT_STDDEV = 0.001


@functools.lru_cache(maxsize=None)
def _on_accelerator():
    """Whether the current Keras backend computes on a GPU/TPU by default."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{name} must be a positive integer. Received: {name}={value!r}"
        )


def _check_rate(name, value):
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{name} must be in [0, 1]. Received: {name}={value!r}"
        )


@keras.saving.register_keras_serializable(package="rnnapps")
class IRNNCell(keras.layers.SimpleRNNCell):
    """Cell for the IRNN: `h_t = relu(x_t W + h_{t-1} U + b)`, `U` = gain * I.

    Plain recurrent networks are hard to train because the gradient that
    reaches step `t` is a product of one Jacobian per later step: it vanishes
    or explodes exponentially in the distance. Le, Jaitly & Hinton (2015)
    showed that a ReLU RNN whose recurrent matrix starts as the identity (and
    whose biases start at zero) begins training as an integrator that copies
    its state forward, so gradients flow back unchanged, and it learns long
    dependencies (the adding problem, pixel-by-pixel MNIST) on par with an
    LSTM.

    This cell processes one step. Use `rnnapps.layers.IRNN` for whole
    sequences (it is faster: it computes the input projection for all steps
    at once), or put the cell in `keras.layers.RNN`, `Bidirectional` or a
    stack of cells.

    Args:
        units: Positive integer, dimensionality of the state and output.
        recurrent_gain: Positive float, the recurrent kernel starts as
            `recurrent_gain * identity`. Le et al. use 1.0 (an exact
            integrator); a gain a little below 1 makes the start slightly
            forgetful, which can help on short-range tasks. Ignored when
            `recurrent_initializer` is given.
        activation: Activation function. Default: `"relu"`.
        use_bias: Boolean, whether the cell has a bias vector. Default: `True`.
        kernel_initializer: Initializer for the input kernel `W`. Default:
            `RandomNormal(stddev=0.001)`, the paper's setting.
        recurrent_initializer: Initializer for the recurrent kernel `U`.
            Default: `None`, meaning `Identity(gain=recurrent_gain)`.
        bias_initializer: Initializer for the bias. Default: `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Optional regularizers, as in `keras.layers.SimpleRNNCell`.
        kernel_constraint, recurrent_constraint, bias_constraint: Optional
            constraints, as in `keras.layers.SimpleRNNCell`.
        dropout: Float in [0, 1], fraction of the inputs to drop (one mask
            per sequence, shared by all steps).
        recurrent_dropout: Float in [0, 1], fraction of the recurrent state to
            drop (one mask per sequence).
        seed: Random seed for dropout.

    Call arguments:
        sequence: A 2D tensor `(batch, features)`, one step of input.
        states: The previous state, `[(batch, units)]`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> import numpy as np, keras
    >>> from rnnapps.layers import IRNNCell
    >>> x = np.random.rand(2, 5, 3).astype("float32")  # (batch, time, features)
    >>> rnn = keras.layers.RNN(IRNNCell(4), return_sequences=True)
    >>> tuple(rnn(x).shape)
    (2, 5, 4)
    >>> cell = IRNNCell(4, recurrent_gain=0.5)
    >>> cell.build((None, 3))
    >>> float(keras.ops.convert_to_numpy(cell.recurrent_kernel)[0, 0])
    0.5
    """

    def __init__(
        self,
        units,
        recurrent_gain=1.0,
        activation="relu",
        use_bias=True,
        kernel_initializer=None,
        recurrent_initializer=None,
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        _check_positive_int("units", units)
        if not isinstance(recurrent_gain, (int, float)) or recurrent_gain <= 0:
            raise ValueError(
                "recurrent_gain must be a positive number. "
                f"Received: recurrent_gain={recurrent_gain!r}"
            )
        _check_rate("dropout", dropout)
        _check_rate("recurrent_dropout", recurrent_dropout)
        self.recurrent_gain = float(recurrent_gain)
        # Remember whether the user chose the recurrent initializer, so that
        # `get_config` round-trips `recurrent_gain` without a conflict.
        self._default_recurrent_initializer = recurrent_initializer is None
        if recurrent_initializer is None:
            recurrent_initializer = initializers.Identity(gain=self.recurrent_gain)
        if kernel_initializer is None:
            kernel_initializer = initializers.RandomNormal(
                stddev=_PAPER_INPUT_STDDEV, seed=seed
            )
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )

    # Set by `IRNN.inner_loop` while it runs the loop over inputs that it has
    # already multiplied by `kernel` (and added `bias` to).
    _inputs_projected = False

    def call(self, sequence, states, training=False):
        if not self._inputs_projected:
            return super().call(sequence, states, training=training)
        prev_output = states[0] if isinstance(states, (list, tuple)) else states
        recurrent_mask = self.get_recurrent_dropout_mask(prev_output)
        if training and recurrent_mask is not None:
            prev_output = prev_output * recurrent_mask
        output = sequence + ops.matmul(prev_output, self.recurrent_kernel)
        if self.activation is not None:
            output = self.activation(output)
        new_state = [output] if isinstance(states, (list, tuple)) else output
        return output, new_state

    def get_config(self):
        config = super().get_config()
        config["recurrent_gain"] = self.recurrent_gain
        if self._default_recurrent_initializer:
            config["recurrent_initializer"] = None
        return config


def _relu_scan(projected, recurrent_kernel, state, unroll):
    """`h_t = relu(projected_t + h_{t-1} U)` for all t, with a hand-written gradient.

    Differentiating a scan the generic way accumulates `dU += h_{t-1}^T dpre_t`
    inside the reverse loop, one extra matmul per step. Here the reverse scan
    only carries `dh` back through time (one matmul per step) and `dU` is a
    single `(units, time * batch) x (time * batch, units)` matmul afterwards.

    Args:
        projected: `(time, batch, units)`, the input projection plus bias.
        recurrent_kernel: `(units, units)`.
        state: `(batch, units)`, the initial state.
        unroll: steps per loop iteration of both scans.

    Returns:
        All states, `(time, batch, units)`.
    """

    @ops.custom_gradient
    def run(projected, recurrent_kernel, state):
        def step(previous, projected_t):
            output = ops.relu(projected_t + ops.matmul(previous, recurrent_kernel))
            return output, output

        _, outputs = ops.scan(step, state, projected, unroll=unroll)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            transposed = ops.transpose(recurrent_kernel)

            def back(d_state, inputs):
                d_output, output = inputs
                d_pre = (d_state + d_output) * ops.cast(output > 0, output.dtype)
                return ops.matmul(d_pre, transposed), d_pre

            d_state, d_pre = ops.scan(
                back,
                ops.zeros_like(state),
                (upstream, outputs),
                reverse=True,
                unroll=unroll,
            )
            previous = ops.concatenate(
                [ops.expand_dims(state, 0), outputs[:-1]], axis=0
            )
            d_kernel = ops.tensordot(previous, d_pre, axes=[[0, 1], [0, 1]])
            return d_pre, d_kernel, d_state

        return outputs, grad

    # A plain tensor, not a variable: TensorFlow's custom gradient would
    # otherwise want the variable's gradient from `grad` separately.
    return run(projected, ops.copy(recurrent_kernel), state)


@keras.saving.register_keras_serializable(package="rnnapps")
class IRNN(keras.layers.RNN):
    """IRNN layer: a ReLU RNN with identity-initialised recurrence (Le et al. 2015).

    A drop-in replacement for
    `keras.layers.SimpleRNN(units, activation="relu", recurrent_initializer="identity")`
    with the paper's initialisation (input kernel from `N(0, 0.001)`, zero
    bias) and, on a GPU, a faster loop (0.42x SimpleRNN's training step on
    an H100 with JAX, `benchmarks/irnn_speed.py`): the input projection
    `x_t W + b` is computed for all time steps in one matrix product before
    the recurrence, so each step launches a single `(batch, units) x (units,
    units)` product; without a mask the loop is one `keras.ops.scan` running
    several steps per iteration, and with ReLU its gradient is written out
    so the recurrent kernel's gradient is one matrix product after the loop.
    On CPUs that hoisting measured slower (the backward pass of the loop
    then stacks a per-step gradient), so there the layer keeps the projection
    inside the step. Masking, `go_backwards`, `unroll` and `stateful` are
    Keras's own `RNN` machinery, so they behave exactly as in `SimpleRNN`,
    on the TensorFlow, JAX and PyTorch backends.

    See `IRNNCell` for why the identity initialisation helps gradients flow
    through time.

    Args:
        units: Positive integer, dimensionality of the output space.
        recurrent_gain: Float, the recurrent kernel starts as
            `recurrent_gain * identity`. Default: 1.0 (the paper).
        activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, kernel_constraint, recurrent_constraint,
        bias_constraint, dropout, recurrent_dropout, seed: As in `IRNNCell`.
        activity_regularizer: Regularizer applied to the layer's output.
        return_sequences: Boolean, return the whole output sequence
            `(batch, time, units)` instead of the last output.
        return_state: Boolean, also return the last state.
        go_backwards: Boolean, process the sequence backwards and return the
            reversed sequence (as Keras's RNN layers do).
        stateful: Boolean, the last state of sample `i` in a batch is the
            initial state of sample `i` in the next batch.
        unroll: Boolean, unroll the loop (faster for short sequences, more
            memory).
        zero_output_for_mask: Boolean, output zeros (instead of the previous
            output) at masked steps when `return_sequences=True`.
        hoist_input_projection: `None` (default: on when the backend computes
            on a GPU or TPU), `True` or `False`: compute the input projection
            for all steps before the loop.

    Call arguments:
        sequences: A 3D tensor `(batch, time, features)`.
        initial_state: Optional initial state `(batch, units)` (or a list of
            one such tensor).
        mask: Optional boolean tensor `(batch, time)`; masked steps keep the
            previous state.
        training: Python boolean, whether dropout is applied.

    Output shape:
        `(batch, units)`, or `(batch, time, units)` with
        `return_sequences=True`; with `return_state=True`, a list
        `[output, state]`.

    Masking:
        Supports Keras masks (e.g. from `Embedding(mask_zero=True)`): a masked
        step leaves the state unchanged and repeats the previous output.

    Example:

    >>> import numpy as np, keras
    >>> from rnnapps.layers import IRNN
    >>> x = np.random.rand(8, 20, 2).astype("float32")  # (batch, time, features)
    >>> model = keras.Sequential([keras.Input((20, 2)), IRNN(16), keras.layers.Dense(1)])
    >>> tuple(model(x).shape)
    (8, 1)
    >>> tuple(IRNN(16, return_sequences=True)(x).shape)
    (8, 20, 16)
    """

    def __init__(
        self,
        units,
        recurrent_gain=1.0,
        activation="relu",
        use_bias=True,
        kernel_initializer=None,
        recurrent_initializer=None,
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        hoist_input_projection=None,
        seed=None,
        **kwargs,
    ):
        if hoist_input_projection not in (None, True, False):
            raise ValueError(
                "hoist_input_projection must be None, True or False. "
                f"Received: hoist_input_projection={hoist_input_projection!r}"
            )
        self.hoist_input_projection = hoist_input_projection
        cell = IRNNCell(
            units,
            recurrent_gain=recurrent_gain,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="irnn_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.input_spec = keras.InputSpec(ndim=3)

    # Steps per iteration of the scan that runs the hoisted loop (see
    # `_scan_loop`); `None` runs Keras's own `backend.rnn` loop instead.
    # Measured on an H100 with `benchmarks/irnn_speed.py --scan-unroll`.
    _scan_unroll = 8
    # How the scan is differentiated: "autodiff" (the backend's own gradient
    # of the scan) or "custom" (`_relu_scan`: a reverse scan that leaves the
    # recurrent kernel's gradient to one matmul after the loop; ReLU without
    # recurrent dropout only).
    _scan_gradient = "custom"

    def inner_loop(self, sequences, initial_state, mask, training=False):
        hoist = self.hoist_input_projection
        if hoist is None:
            hoist = _on_accelerator()
        if not hoist:
            return super().inner_loop(sequences, initial_state, mask, training)
        cell = self.cell
        # `RNN.call` has drawn this batch's input dropout mask already
        # (outside the loop, which keeps the loop stateless on JAX).
        input_mask = cell.get_dropout_mask(sequences[:, 0, :])
        if training and input_mask is not None:
            sequences = sequences * ops.expand_dims(input_mask, 1)
        if mask is None and not self.unroll and self._scan_unroll:
            return self._scan_loop(sequences, initial_state, training)
        # The input projection for every step in one large matmul, instead of
        # one small matmul (and a bias add) inside each step of the loop.
        projected = ops.matmul(sequences, cell.kernel)
        if cell.bias is not None:
            projected = projected + cell.bias
        cell._inputs_projected = True
        try:
            return super().inner_loop(projected, initial_state, mask, training)
        finally:
            cell._inputs_projected = False

    def _scan_loop(self, sequences, initial_state, training):
        """The unmasked loop as one `ops.scan` over time-major projections.

        Same arithmetic as `IRNNCell.call`, without Keras's generic RNN
        machinery: the input projection is computed time-major in one matmul
        (so no large transpose), each scan step is one `(batch, units) x
        (units, units)` matmul and the activation, and the scan runs
        `_scan_unroll` steps per loop iteration, which on a GPU saves the
        per-iteration overhead of the device loop.
        """
        cell = self.cell
        time_major = ops.transpose(sequences, (1, 0, 2))
        if self.go_backwards:
            time_major = ops.flip(time_major, axis=0)
        projected = ops.matmul(time_major, cell.kernel)
        if cell.bias is not None:
            projected = projected + cell.bias
        recurrent_kernel = ops.convert_to_tensor(cell.recurrent_kernel)
        state = initial_state[0]
        recurrent_mask = cell.get_recurrent_dropout_mask(state)
        if not training:
            recurrent_mask = None
        activation = cell.activation

        def step(previous, projected_t):
            if recurrent_mask is not None:
                previous = previous * recurrent_mask
            output = projected_t + ops.matmul(previous, recurrent_kernel)
            if activation is not None:
                output = activation(output)
            return output, output

        steps = projected.shape[0]
        unroll = self._scan_unroll
        if steps is not None:
            unroll = max(1, min(unroll, steps))
        if (
            self._scan_gradient == "custom"
            and recurrent_mask is None
            and activation is keras.activations.relu
        ):
            outputs = _relu_scan(projected, recurrent_kernel, state, unroll)
            last = outputs[-1]
        else:
            last, outputs = ops.scan(step, state, projected, unroll=unroll)
        if self.return_sequences:
            outputs = ops.transpose(outputs, (1, 0, 2))
        else:
            # `RNN.call` reads `outputs` only with `return_sequences=True`.
            outputs = ops.expand_dims(last, 1)
        return last, outputs, [last]

    @property
    def units(self):
        return self.cell.units

    @property
    def recurrent_gain(self):
        return self.cell.recurrent_gain

    @property
    def activation(self):
        return self.cell.activation

    @property
    def dropout(self):
        return self.cell.dropout

    @property
    def recurrent_dropout(self):
        return self.cell.recurrent_dropout

    def get_config(self):
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config = super().get_config()
        del config["cell"]
        config["activity_regularizer"] = keras.regularizers.serialize(
            self.activity_regularizer
        )
        config["hoist_input_projection"] = self.hoist_input_projection
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
