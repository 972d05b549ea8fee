"""Gradient through time: how much of the loss's signal reaches each step.

The gradient of the loss with respect to the hidden state at step t,
`dL/dh_t`, is a product of one Jacobian per step between t and the steps the
loss reads. Its norm against t shows the problem this package exists for: a
curve falling towards zero going back in time is a vanishing gradient (the
first steps get no learning signal), a curve rising going back is an
exploding one. `hidden_state_gradients` measures that curve for a recurrent
layer of any Keras model on one batch; `GradientThroughTime` records it while
`fit` runs (a plain array and, if asked, TensorBoard); `plot_gradient_norms`
draws curves on a log scale. `rnnapps diagnose TASK` does all three for a
task's model.

How it is measured: while measuring, the layer runs Keras's generic
(unrolled) loop and adds a zero tensor `d_t` to the hidden state the cell
returns at every step, before the next step reads it and the rest of the
model sees it. `dL/dd_t` is then exactly the total derivative `dL/dh_t`,
through every later step as well as through the step's own output. Works on
the TensorFlow and JAX backends (both tested; the PyTorch branch uses
`torch.autograd.grad` and is not tested here), for `keras.layers.RNN` and its
subclasses (`SimpleRNN`, `LSTM` (its `h`), `GRU`, `rnnapps.layers.IRNN`), also
inside `Bidirectional` (name the direction) and nested models.
"""

import math

import numpy as np

import keras

__all__ = [
    "GradientThroughTime",
    "first_over_last",
    "hidden_state_gradients",
    "plot_gradient_norms",
    "recurrent_layers",
]


def recurrent_layers(model):
    """The recurrent layers of a model, by path name.

    Walks the model's layers (nested models and `Bidirectional` wrappers
    included) and returns the `keras.layers.RNN` instances: a
    `Bidirectional` layer named `"bi"` contributes `"bi/forward"` and
    `"bi/backward"`; a layer inside a nested model `"encoder"` is named
    `"encoder/lstm"`. A layer's own name works too where it is unique.

    Example:

    >>> import keras
    >>> model = keras.Sequential([
    ...     keras.Input((5, 2)),
    ...     keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), name="bi"),
    ...     keras.layers.GRU(3, name="gru"),
    ... ])
    >>> list(recurrent_layers(model))
    ['bi/forward', 'bi/backward', 'gru']
    """
    found = {}

    def visit(layer, prefix):
        if isinstance(layer, keras.layers.Bidirectional):
            found[f"{prefix}{layer.name}/forward"] = layer.forward_layer
            found[f"{prefix}{layer.name}/backward"] = layer.backward_layer
        elif isinstance(layer, keras.layers.RNN):
            found[f"{prefix}{layer.name}"] = layer
        for child in getattr(layer, "layers", None) or ():
            if child is not layer:
                visit(child, f"{prefix}{layer.name}/" if layer is not model else "")

    visit(model, "")
    return found


def _find_layer(model, layer):
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no recurrent layer (keras.layers.RNN, LSTM, GRU, "
            "SimpleRNN, IRNN, or one inside Bidirectional)."
        )
    if layer is None:
        return next(iter(layers.values()))
    if isinstance(layer, keras.layers.Layer):
        if isinstance(layer, keras.layers.RNN):
            return layer
        raise ValueError(
            f"layer must be a recurrent layer (keras.layers.RNN). Received: layer={layer.name!r} "
            f"({type(layer).__name__})"
        )
    if layer in layers:
        return layers[layer]
    by_name = [found for found in layers.values() if found.name == layer]
    if len(by_name) == 1:
        return by_name[0]
    raise ValueError(
        f"Model {model.name!r} has no recurrent layer named {layer!r}. Its recurrent layers: "
        f"{', '.join(layers)}."
    )


def _loss_function(model, loss):
    if loss is None:
        loss = getattr(model, "loss", None)
        if loss is None:
            raise ValueError(
                f"Model {model.name!r} is not compiled with a loss: pass loss= "
                "(e.g. loss='mse')."
            )
    if isinstance(loss, (dict, list, tuple)):
        raise ValueError(
            "The model has one loss per output; pass loss= a single callable "
            "(y_true, y_pred) -> loss for the outputs the measurement should use."
        )
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if not callable(loss):
        raise ValueError(f"loss must be a Keras loss or a callable. Received: loss={loss!r}")
    return loss


class _Perturbed:
    """Runs `layer` through Keras's unrolled generic loop, adding `delta[t]` to h_t."""

    def __init__(self, layer):
        self.layer = layer
        self.delta = None  # (steps, batch, units), or None to record shapes only
        self.shapes = []
        self.unlinked = False  # a step's output was not one of its states

    def __enter__(self):
        layer, cell = self.layer, self.layer.cell
        self.saved_unroll = layer.unroll
        original_call = cell.call

        def call(inputs, states, **kwargs):
            output, new_states = original_call(inputs, states, **kwargs)
            step = len(self.shapes)
            self.shapes.append((tuple(output.shape), output.dtype))
            if self.delta is None:
                return output, new_states
            perturbed = output + self.delta[step]
            nested = isinstance(new_states, (list, tuple))
            states_list = list(new_states) if nested else [new_states]
            # The state the next step reads is the same tensor as the output
            # (h of SimpleRNN, GRU, IRNN, LSTM); perturb it there too.
            if not any(s is output for s in states_list):
                self.unlinked = True
            states_list = [perturbed if s is output else s for s in states_list]
            return perturbed, (states_list if nested else states_list[0])

        def inner_loop(sequences, initial_state, mask, training=False):
            # Keras's generic loop, never a fused (cuDNN) or hoisted one,
            # unrolled so each step calls the cell once, in order.
            return keras.layers.RNN.inner_loop(layer, sequences, initial_state, mask, training)

        # object.__setattr__: plain instance attributes, not tracked by Keras.
        object.__setattr__(cell, "call", call)
        object.__setattr__(layer, "inner_loop", inner_loop)
        layer.unroll = True
        return self

    def __exit__(self, *exc):
        object.__delattr__(self.layer.cell, "call")
        object.__delattr__(self.layer, "inner_loop")
        self.layer.unroll = self.saved_unroll
        return False


def _value_and_grad(function, delta):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        delta = tf.convert_to_tensor(delta)
        with tf.GradientTape() as tape:
            tape.watch(delta)
            value = function(delta)
        return value, tape.gradient(value, delta)
    if backend == "jax":
        import jax

        return jax.value_and_grad(function)(delta)
    if backend == "torch":
        import torch

        delta = keras.ops.convert_to_tensor(delta).detach().requires_grad_(True)
        value = function(delta)
        (grad,) = torch.autograd.grad(value, delta, allow_unused=True)
        return value, grad
    raise ValueError(f"hidden_state_gradients does not support the {backend!r} backend")


def hidden_state_gradients(model, x, y, layer=None, loss=None):
    """The norm of dL/dh_t for every step t of a recurrent layer, on one batch.

    `L` is the model's loss on the batch (the compiled one unless `loss` is
    given) times the batch size, so that for a mean-reduced loss each
    example's gradient is that of its own loss; the result at step t is the
    L2 norm over the layer's units of `dL/dh_t`, averaged over the examples.
    Steps count in the order the layer computes them (for
    `go_backwards=True` the first step reads the last input); the last step
    is next to a loss read at the end. Measured in inference mode (no
    dropout); masked (padded) steps, which carry the state unchanged, get 0.

    Args:
        model: A Keras model (TensorFlow or JAX backend) containing the layer.
        x, y: One batch of inputs and targets, as `model(x)` and the loss take them.
        layer: The recurrent layer: an instance, its name, or a path from
            `recurrent_layers(model)`. Defaults to the first recurrent layer.
        loss: A Keras loss (name or object) or a callable
            `(y_true, y_pred) -> loss`. Defaults to the compiled loss.

    Returns:
        A float64 NumPy array of shape `(steps,)`.

    Example:

    >>> import keras, numpy as np
    >>> from rnnapps.layers import IRNN
    >>> model = keras.Sequential([keras.Input((20, 1)), IRNN(8), keras.layers.Dense(1)])
    >>> model.compile(loss="mse")
    >>> x, y = np.ones((4, 20, 1), "float32"), np.zeros((4, 1), "float32")
    >>> norms = hidden_state_gradients(model, x, y)
    >>> norms.shape
    (20,)
    >>> bool((norms > 0).all())
    True
    """
    rnn = _find_layer(model, layer)
    if rnn.stateful:
        raise ValueError(
            f"Layer {rnn.name!r} is stateful: measuring would run it on the batch and change "
            "its carried state. Measure a stateless copy (stateful=False, same weights)."
        )
    loss_fn = _loss_function(model, loss)
    with _Perturbed(rnn) as perturbed:
        model(x, training=False)  # builds the model; records the steps' shapes
        if not perturbed.shapes:
            raise ValueError(f"The model's output does not run layer {rnn.name!r}.")
        steps = len(perturbed.shapes)
        shape, dtype = perturbed.shapes[0]
        if any(s != shape for s, _ in perturbed.shapes):
            raise ValueError(f"Layer {rnn.name!r} returned states of changing shape.")
        batch = shape[0]

        def total_loss(delta):
            perturbed.shapes = []
            perturbed.delta = delta
            try:
                value = loss_fn(y, model(x, training=False))
            finally:
                perturbed.delta = None
            return keras.ops.mean(value) * batch

        delta = np.zeros((steps, *shape), dtype=keras.backend.standardize_dtype(dtype))
        value, grad = _value_and_grad(total_loss, delta)
    if perturbed.unlinked:
        raise ValueError(
            f"The cell of layer {rnn.name!r} returns an output that is not its state (e.g. a "
            "projection of it), so the state's gradient cannot be measured at the output. "
            "Measure a layer whose cell returns its hidden state (SimpleRNN, GRU, LSTM, IRNN)."
        )
    if grad is None:
        raise ValueError(f"The loss does not depend on layer {rnn.name!r}.")
    grad = keras.ops.convert_to_numpy(grad).astype("float64")
    if not np.isfinite(keras.ops.convert_to_numpy(value)):
        raise ValueError("The loss on this batch is not finite (NaN or inf).")
    grad = grad.reshape(steps, batch, -1)
    return np.sqrt((grad**2).sum(axis=-1)).mean(axis=1)


def first_over_last(norms):
    """‖dL/dh_1‖ / ‖dL/dh_T‖, with T the last step that gets any gradient.

    Under 1 the gradient shrinks going back in time (vanishing), above 1 it
    grows (exploding). Steps at the end with no gradient at all (padding
    every example of the batch has) are not the "last step".

    >>> first_over_last([0.01, 0.1, 1.0, 0.0])
    0.01
    """
    norms = np.asarray(norms, dtype="float64")
    positive = np.flatnonzero(norms > 0)
    if not len(positive):
        return math.nan
    return float(norms[0] / norms[positive[-1]])


class GradientThroughTime(keras.callbacks.Callback):
    """Records ‖dL/dh_t‖ per step of a recurrent layer, before training and each epoch.

    At the start of training and at the end of every `every`-th epoch it runs
    `hidden_state_gradients(model, x, y, layer, loss)` on the given batch and
    appends the curve to `norms` (one row per measurement; `epochs` holds
    the epoch of each row, 0 = before training). It also adds
    `grad_first_step` (the norm at the first step) and `grad_ratio`
    (first step / last step: under 1 the gradient shrinks going back in
    time, above 1 it grows) to the epoch logs, so `History` and the progress
    bar show them. With `log_dir`, it writes those two as TensorBoard scalars
    and the curves as an image (`gradient_through_time`), TensorFlow needed.

    Args:
        x, y: One batch (the same one every time, so curves compare).
        layer: The recurrent layer (instance, name or path); defaults to the
            first recurrent layer.
        loss: Defaults to the compiled loss.
        every: Integer >= 1: measure every `every` epochs. Defaults to 1.
        log_dir: Optional TensorBoard folder (e.g. the one given to
            `keras.callbacks.TensorBoard`; the callback writes under
            `log_dir/gradients`).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((12, 1)), keras.layers.SimpleRNN(4),
    ...                           keras.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.ones((8, 12, 1), "float32"), np.ones((8, 1), "float32")
    >>> monitor = GradientThroughTime(x, y)
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
    >>> monitor.norms.shape, monitor.epochs
    ((3, 12), [0, 1, 2])
    >>> "grad_ratio" in history.history
    True
    """

    def __init__(self, x, y, layer=None, loss=None, every=1, log_dir=None):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1. Received: every={every!r}")
        self.x, self.y = x, y
        self.layer, self.loss = layer, loss
        self.every = every
        self.log_dir = log_dir
        self.epochs = []
        self._rows = []
        self._writer = None

    @property
    def norms(self):
        """`(measurements, steps)` float64 array; row i was taken at `epochs[i]`."""
        if not self._rows:
            return np.zeros((0, 0))
        return np.stack(self._rows)

    def _measure(self, epoch):
        norms = hidden_state_gradients(self.model, self.x, self.y, self.layer, self.loss)
        self._rows.append(norms)
        self.epochs.append(epoch)
        if self.log_dir is not None:
            self._write_tensorboard(epoch, norms)
        return norms

    def _write_tensorboard(self, epoch, norms):
        try:
            import tensorflow as tf
        except ImportError as error:  # pragma: no cover - TensorFlow is a dependency
            raise ValueError("log_dir needs TensorFlow (tf.summary)") from error
        import io
        import os

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "gradients"))
        figure = plot_gradient_norms(
            {f"epoch {e}": row for e, row in zip(self.epochs, self._rows)},
            title=f"‖dL/dh_t‖ of {_find_layer(self.model, self.layer).name}",
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        _close(figure)
        image = tf.image.decode_png(buffer.getvalue(), channels=4)[None]
        with self._writer.as_default(step=epoch):
            tf.summary.scalar("gradient_through_time/first_step", float(norms[0]))
            tf.summary.scalar("gradient_through_time/first_over_last", first_over_last(norms))
            tf.summary.image("gradient_through_time", image)
        self._writer.flush()

    def on_train_begin(self, logs=None):
        if not self.epochs:
            self._measure(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        norms = self._measure(epoch + 1)
        if logs is not None:
            logs["grad_first_step"] = float(norms[0])
            logs["grad_ratio"] = first_over_last(norms)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _close(figure):
    import matplotlib.pyplot as plt

    plt.close(figure)


def plot_gradient_norms(curves, path=None, title=None):
    """Plots ‖dL/dh_t‖ against t on a log scale, one line per curve.

    Args:
        curves: A dict `label -> 1-D array` (e.g. one per epoch or per
            model), or a 2-D array (one row per line, labelled by index).
        path: Optional file to write (PNG, or any format matplotlib knows
            from the extension); written whole or not at all.
        title: Optional title.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> import numpy as np
    >>> figure = plot_gradient_norms({"vanishing": 0.9 ** np.arange(30)[::-1],
    ...                               "exploding": 1.1 ** np.arange(30)[::-1]})
    >>> [line.get_label() for line in figure.axes[0].get_lines()]
    ['vanishing', 'exploding']
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(curves, dict):
        array = np.asarray(curves, dtype="float64")
        if array.ndim == 1:
            array = array[None]
        curves = {str(i): row for i, row in enumerate(array)}
    if not curves:
        raise ValueError("curves is empty: nothing to plot")
    figure, ax = plt.subplots(figsize=(6.4, 4.0))
    # Many lines (epochs) in a sequential colour map; a few (models) in distinct colours.
    if len(curves) > 6:
        colors = list(plt.cm.viridis(np.linspace(0, 0.9, len(curves))))
    else:
        colors = [f"C{i}" for i in range(len(curves))]
    for color, (label, norms) in zip(colors, curves.items()):
        norms = np.asarray(norms, dtype="float64")
        if norms.ndim != 1:
            raise ValueError(f"curve {label!r} must be 1-D; got shape {norms.shape}")
        steps = np.arange(1, len(norms) + 1)
        shown = np.where(norms > 0, norms, np.nan)  # log scale: zeros are not drawn
        ax.plot(steps, shown, label=str(label), color=color)
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss reads the last steps)")
    ax.set_ylabel("‖∂L/∂h_t‖")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    if path is not None:
        from rnnapps.figures import save_figure

        try:
            save_figure(figure, path, dpi=110)
        except BaseException:
            _close(figure)
            raise
    return figure
