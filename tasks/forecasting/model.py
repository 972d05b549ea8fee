"""The forecasting model: a window of raw values in, forecasts in the same units out.

    window [B, L, F] -> WindowScaling (minus the window's recent level, the
        mean of its last season by default, divided by the training part's
        standard deviation) -> LSTM | GRU | IRNN
        -> direct head: Dense(H x Q)
           autoregressive decoder: the recurrent cell run H more steps, each
           fed its own previous forecast
        -> InverseScaling (times the scale, plus the target's reference level)
        -> forecast [B, H] (or quantiles [B, H, Q])

Column 0 of the window is the target; the other columns are covariates seen
in the past only. Scaling is part of the model, so the export takes and
returns the series' own units.

Why each window is taken relative to its own recent level: a network fed
globally standardized levels cannot extrapolate a trend beyond the levels it
saw in training (on the Mauna Loa CO2 series it loses even to seasonal naive),
while the same network fed differences from the window's level only has to
learn the shape of the next season. The scale is learnt on the training part
only.
"""

import keras
from keras import ops

from rnnapps.layers import IRNN
from rnnapps.optimizers import ClippedOptimizer
from rnnapps.tasks.forecasting.config import median_index

__all__ = [
    "WindowScaling",
    "InverseScaling",
    "FeedbackCell",
    "PinballLoss",
    "build_model",
    "median_index",
]

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "irnn": IRNN}
_CELL_CELLS = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class WindowScaling(keras.layers.Layer):
    """Centres each window on a reference level and divides by a fixed scale.

    Args:
        scale: one positive float per feature (learnt on the training data).
        center: per-feature floats, the reference when `reference_steps`
            is None (global standardization).
        reference_steps: the reference of each window is the mean of its
            last `reference_steps` steps (1, the default: its last value);
            None: the fixed `center`.
        log: take the logarithm of the inputs first (`scale` and `center`
            are then those of the log values).

    Call arguments:
        inputs: `[batch, steps, features]`.

    Returns:
        A tuple `(scaled, reference)`: `scaled` has the shape of `inputs`,
        `reference` is `[batch, features]` (in log units when `log`).

    Example:

    >>> import numpy as np
    >>> scaled, ref = WindowScaling(scale=[2.0])(np.array([[[1.0], [3.0]]]))
    >>> np.asarray(scaled)[0, :, 0].tolist(), np.asarray(ref).tolist()
    ([-1.0, 0.0], [[3.0]])
    """

    def __init__(self, scale, center=None, reference_steps=1, log=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(s) for s in scale]
        self.center = [0.0] * len(self.scale) if center is None else [float(c) for c in center]
        self.reference_steps = None if reference_steps is None else int(reference_steps)
        self.log = bool(log)

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if self.log:
            inputs = ops.log(inputs)
        if self.reference_steps is None:
            reference = ops.zeros_like(inputs[:, -1, :]) + ops.convert_to_tensor(
                self.center, self.compute_dtype
            )
        else:
            reference = ops.mean(inputs[:, -self.reference_steps :, :], axis=1)
        scale = ops.convert_to_tensor(self.scale, self.compute_dtype)
        return (inputs - ops.expand_dims(reference, 1)) / scale, reference

    def compute_output_shape(self, input_shape):
        return input_shape, (input_shape[0], input_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "center": self.center,
            "reference_steps": self.reference_steps,
            "log": self.log,
        }


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class InverseScaling(keras.layers.Layer):
    """`outputs * scale + reference[:, 0]`: scaled forecasts back to units.

    Args:
        scale: the target's scale (a float).
        log: exponentiate at the end (undoes `WindowScaling(log=True)`;
            quantiles stay quantiles, the map being increasing).

    Call arguments:
        inputs: a tuple `(forecast, reference)`: `forecast` is `[batch,
            horizon]` or `[batch, horizon, quantiles]`, `reference` is
            `[batch, features]` (column 0 is the target).

    Example:

    >>> import numpy as np
    >>> y = InverseScaling(scale=2.0)((np.array([[0.5, 1.0]]), np.array([[10.0, 7.0]])))
    >>> np.asarray(y).tolist()
    [[11.0, 12.0]]
    """

    def __init__(self, scale, log=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.log = bool(log)

    def call(self, inputs):
        forecast, reference = inputs
        target = reference[:, 0]
        for _ in range(len(forecast.shape) - 1):
            target = ops.expand_dims(target, -1)
        outputs = forecast * self.scale + target
        return ops.exp(outputs) if self.log else outputs

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "log": self.log}


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class FeedbackCell(keras.layers.Layer):
    """A recurrent cell fed its own previous output: an autoregressive decoder.

    Wraps a Keras cell and a `Dense` projection. At each step the cell reads
    the previous step's forecast (the median quantile when there are
    several), updates its state and emits the next forecast. Run it with
    `keras.layers.RNN` over `horizon` dummy steps, starting from the
    encoder's state plus the last observed (scaled) target value.

    Args:
        cell: a Keras RNN cell (e.g. `keras.layers.LSTMCell(64)`).
        outputs: values emitted per step (number of quantiles, or 1).
        feedback_index: which of them is fed back.

    Call arguments:
        inputs: ignored (`[batch, 1]` zeros from the dummy sequence).
        states: the wrapped cell's states followed by the previous output
            `[batch, 1]`.
    """

    def __init__(self, cell, outputs=1, feedback_index=0, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.outputs = outputs
        self.feedback_index = feedback_index
        self.projection = keras.layers.Dense(outputs, name="projection")
        cell_sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        self.state_size = [*cell_sizes, 1]
        self.output_size = outputs

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build((input_shape[0], 1))
        if not self.projection.built:
            self.projection.build((input_shape[0], self.cell.output_size))

    def call(self, inputs, states, training=False):
        *cell_states, previous = states
        if len(cell_states) == 1 and not isinstance(self.cell.state_size, (list, tuple)):
            cell_states = cell_states[0]
        output, new_states = self.cell(previous, cell_states, training=training)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        forecast = self.projection(output)
        fed_back = forecast[:, self.feedback_index : self.feedback_index + 1]
        return forecast, [*new_states, fed_back]

    def get_config(self):
        return {
            **super().get_config(),
            "cell": keras.saving.serialize_keras_object(self.cell),
            "outputs": self.outputs,
            "feedback_index": self.feedback_index,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class PinballLoss(keras.losses.Loss):
    """The quantile (pinball) loss, averaged over quantiles and steps.

    For quantile q and error e = y - ŷ_q: `max(q * e, (q - 1) * e)`. Its
    minimiser is the q-quantile of y, so a model trained with it outputs
    prediction intervals.

    Args:
        quantiles: the quantile levels in (0, 1), one per output channel.

    Example:

    >>> import numpy as np
    >>> loss = PinballLoss([0.1, 0.9])
    >>> round(float(loss(np.array([[1.0]]), np.array([[[0.0, 0.0]]]))), 3)
    0.5
    """

    def __init__(self, quantiles, name="pinball", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        y_true = ops.expand_dims(ops.convert_to_tensor(y_true, y_pred.dtype), -1)
        q = ops.convert_to_tensor(self.quantiles, y_pred.dtype)
        error = y_true - y_pred
        return ops.mean(ops.maximum(q * error, (q - 1.0) * error), axis=(-2, -1))

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class QuantileMAE(keras.metrics.MeanMetricWrapper):
    """Mean absolute error of the median channel of a quantile forecast."""

    def __init__(self, index=0, name="mae", dtype=None):
        def point_error(y_true, y_pred):
            point = y_pred[..., index]
            return ops.mean(ops.abs(ops.convert_to_tensor(y_true, point.dtype) - point), axis=-1)

        super().__init__(fn=point_error, name=name, dtype=dtype)
        self.index = index

    def get_config(self):
        return {"index": self.index, "name": self.name, "dtype": self.dtype}


def build_model(config, info):
    """A compiled forecaster for `config` (a `ForecastingConfig`).

    Args:
        config: the settings (`cell`, `decoder`, `units`, ...).
        info: what the data says (`TaskData.info`): `lookback`, `horizon`,
            `quantiles`, `columns` (target first), and `scale` and `center`
            (per-feature standard deviation and mean of the training part,
            in the series' units).

    Returns:
        A `keras.Model` from `[batch, lookback, features]` to
        `[batch, horizon]`, or `[batch, horizon, quantiles]` when
        `info["quantiles"]` is not empty.
    """
    quantiles = list(info["quantiles"])
    outputs_per_step = len(quantiles) or 1
    horizon, lookback = info["horizon"], info["lookback"]
    scale, center = info["scale"], info["center"]
    num_features = len(info["columns"])

    # === Layers ===
    reference_steps = {"last": 1, "season": info["season"], "standard": None}[config.normalization]
    log = config.transform == "log"
    scaling = WindowScaling(scale, center, reference_steps, log=log, name="scaling")
    if config.decoder == "direct":
        encoder = _CELLS[config.cell](config.units, name="encoder")
        head = keras.layers.Dense(horizon * outputs_per_step, name="head")
    else:
        if config.cell == "irnn":
            from rnnapps.layers import IRNNCell

            cell = IRNNCell(config.units, name="decoder_cell")
        else:
            cell = _CELL_CELLS[config.cell](config.units, name="decoder_cell")
        encoder = _CELLS[config.cell](config.units, return_state=True, name="encoder")
        feedback = FeedbackCell(
            cell, outputs_per_step, median_index(quantiles) if quantiles else 0, name="feedback"
        )
        decoder = keras.layers.RNN(feedback, return_sequences=True, name="decoder")
    dropout = keras.layers.Dropout(config.dropout, name="dropout")
    unscale = InverseScaling(scale[0], log=log, name="unscale")

    # === Functional Model ===
    window = keras.Input((lookback, num_features), name="window")
    scaled, reference = scaling(window)
    if config.decoder == "direct":
        summary = dropout(encoder(scaled))
        forecast = head(summary)
        shape = (horizon, outputs_per_step) if quantiles else (horizon,)
        forecast = keras.layers.Reshape(shape, name="steps")(forecast)
    else:
        _, *states = encoder(scaled)
        # The decoder starts from the last observed (scaled) target and runs
        # `horizon` steps fed back by itself.
        steps = keras.layers.RepeatVector(horizon, name="steps")(reference[:, :1] * 0.0)
        last = scaled[:, -1, :1]
        forecast = decoder(steps, initial_state=[*states, last])
        if not quantiles:
            forecast = keras.layers.Reshape((horizon,), name="point")(forecast)
    forecast = unscale((forecast, reference))
    if len(quantiles) > 1:
        # Quantile outputs trained separately can cross; sorting them keeps
        # every interval well formed (and lowers the pinball loss).
        forecast = keras.ops.sort(forecast, axis=-1)
    model = keras.Model(window, forecast, name=f"forecaster_{config.cell}_{config.decoder}")

    # === Training setup ===
    if quantiles:
        loss = PinballLoss(quantiles)
        metrics = [QuantileMAE(median_index(quantiles))]
    else:
        loss = config.loss
        metrics = ["mae"] if config.loss != "mae" else []
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(config.learning_rate), clipnorm=config.clipnorm
        ),
        loss=loss,
        metrics=metrics,
    )
    return model
