"""The forecasting model: a window of raw values in, forecasts in the same units out.

    window [B, L, F] -> WindowScaling (minus the window's recent level, the
        mean of its last season by default, divided by the training part's
        standard deviation) -> LSTM | GRU | IRNN
        -> direct head: Dense(H x Q)
           autoregressive decoder: the recurrent cell run H more steps, each
           fed its own previous forecast
        -> InverseScaling (times the scale, plus the target's reference level)
        -> forecast [B, H] (or quantiles [B, H, Q])

For a series with several seasons (half-hourly demand: a day of 48 steps
and a week of 336), or one season holding two horizons or more, the default
is the seasonal-lag model instead:

    window [B, L, F] -> WindowScaling (the last value as reference)
        -> SeasonalLags: for every forecast step, the value one and two
           periods back of each season, plain and anchored on the level
           change since (seasonal-naive candidates)
           SeasonalSmoothing: multi-seasonal exponential smoothing (Taylor
           2003) over the window, its weights fit on the training part
           MSTLForecast: MSTL (STL per season, then exponential smoothing)
           as one fixed matrix, and the mean of the two
           SimilarDay (with known-future covariates, `future` [B, H, K]):
           the most recent past day whose covariates match the horizon's
           (a holiday looks like the last Sunday), and the best other
           candidate kept where the day a week back matches as well
        -> LagMix: their weighted sum, per step, started from the candidate
           that is best on the validation windows
        + a correction: an LSTM over the latest day (and the future
          covariates) -> Dense(H x Q), from 0
        -> InverseScaling -> forecast [B, H] (or [B, H, Q])

It is Smyl's (2020) residual structure: the network corrects a seasonal
baseline (exponential smoothing, in ES-RNN) instead of learning the seasons
from hundreds of raw steps.

Column 0 of the window is the target; the other columns are covariates seen
in the past, and those named in `future_columns` (known in advance: a
workday flag) also over the horizon, as the second input `future`. Scaling
is part of the model, so the export takes and returns the series' own units.

Why each window is taken relative to its own recent level: a network fed
globally standardized levels cannot extrapolate a trend beyond the levels it
saw in training (on the Mauna Loa CO2 series it loses even to seasonal naive),
while the same network fed differences from the window's level only has to
learn the shape of the next season. The scale is learnt on the training part
only.
"""

import keras
import numpy as np
from keras import ops

from rnnapps.layers import IRNN
from rnnapps.optimizers import ClippedOptimizer
from rnnapps.tasks.forecasting.config import median_index

__all__ = [
    "WindowScaling",
    "InverseScaling",
    "FeedbackCell",
    "SeasonalLags",
    "SeasonalSmoothing",
    "MSTLForecast",
    "SimilarDay",
    "FutureScaling",
    "LagMix",
    "PinballLoss",
    "seasonal_lags",
    "seasonal_bases",
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


def seasonal_lags(seasons, horizon, lookback):
    """The lags the seasonal structure reads: one and two periods of each
    season, those at least `horizon` (so every forecast step has its value
    one period back in the window) and less than `lookback` (so the step
    before it is in the window too)."""
    lags = {k * s for s in seasons for k in (1, 2)}
    return sorted(lag for lag in lags if horizon <= lag < lookback)


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class SeasonalLags(keras.layers.Layer):
    """Seasonal-naive candidates for every forecast step, from a scaled window.

    For each lag `s` (a multiple of a season) and forecast step `h`, two
    features of the target column (column 0), in the window's scaled units
    (`WindowScaling` with the last value as reference, so `x[t-1] = 0`):

    - plain: `x[t+h-s]`, the value one period back (seasonal naive);
    - anchored: `x[t+h-s] - x[t-1-s]`, the same value moved by the change of
      level since then (seasonal naive started from the last value).

    Args:
        lags: the lags, each at least the horizon and less than the window.
        horizon: forecast steps.

    Call arguments:
        inputs: the scaled window `[batch, lookback, features]`.

    Output shape:
        `[batch, horizon, 2 * len(lags)]`: the plain features, then the
        anchored ones, in the order of `lags`.

    Example:

    >>> import numpy as np
    >>> window = np.arange(6.0)[None, :, None] - 5.0   # scaled: last value 0
    >>> features = SeasonalLags(lags=[2, 4], horizon=2)(window)
    >>> np.asarray(features)[0].tolist()   # [plain s=2, plain s=4, anchored s=2, anchored s=4]
    [[-1.0, -3.0, 1.0, 1.0], [0.0, -2.0, 2.0, 2.0]]
    """

    def __init__(self, lags, horizon, **kwargs):
        super().__init__(**kwargs)
        self.lags = [int(lag) for lag in lags]
        self.horizon = int(horizon)
        if not self.lags or min(self.lags) < self.horizon:
            raise ValueError(
                f"every lag must be at least the horizon ({self.horizon}). Received: lags={self.lags}"
            )

    def call(self, inputs):
        target = inputs[:, :, 0]
        lookback = inputs.shape[1]
        plain = [[lookback + h - lag for lag in self.lags] for h in range(self.horizon)]
        anchor = [[lookback - 1 - lag for lag in self.lags] for _ in range(self.horizon)]
        shape = (-1, self.horizon, len(self.lags))
        plain = ops.reshape(ops.take(target, sum(plain, []), axis=1), shape)
        anchor = ops.reshape(ops.take(target, sum(anchor, []), axis=1), shape)
        return ops.concatenate([plain, plain - anchor], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, 2 * len(self.lags))

    def get_config(self):
        return {**super().get_config(), "lags": self.lags, "horizon": self.horizon}


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class LagMix(keras.layers.Layer):
    """A weighted sum of candidate features, with its own weights per forecast step.

    `outputs[b, h] = sum_j kernel[h, j] * inputs[b, h, j]`. The kernel starts
    at `initial` for every step (e.g. one seasonal-naive candidate with
    weight 1), so training starts from that forecast and moves only where
    the training windows say so.

    Args:
        initial: `{feature index: weight}` the kernel starts from (the same
            for every step); the other weights start at 0.

    Call arguments:
        inputs: `[batch, horizon, features]`.

    Output shape:
        `[batch, horizon]`.

    Example:

    >>> import numpy as np
    >>> mix = LagMix(initial={1: 0.5, 2: 0.5})
    >>> np.asarray(mix(np.array([[[1.0, 2.0, 4.0]]]))).tolist()
    [[3.0]]
    """

    def __init__(self, initial=None, **kwargs):
        super().__init__(**kwargs)
        self.initial = {int(k): float(v) for k, v in (initial or {}).items()}

    def build(self, input_shape):
        steps, features = input_shape[1], input_shape[2]
        start = [[self.initial.get(j, 0.0) for j in range(features)]] * steps
        self.kernel = self.add_weight(
            (steps, features), initializer=keras.initializers.Constant(start), name="kernel"
        )

    def call(self, inputs):
        return ops.sum(inputs * ops.cast(self.kernel, inputs.dtype), axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[:2]

    def get_config(self):
        # JSON keys are strings; __init__ turns them back into ints.
        return {**super().get_config(), "initial": {str(k): v for k, v in self.initial.items()}}


def seasonal_bases(lags, seasons, smoothing=False, mstl=False, fallback=None):
    """The candidate starting points of `LagMix`: `{name: {feature: weight}}`.

    For each lag, the plain seasonal naive (`naive_<lag>`) and the anchored
    one (`anchored_<lag>`); for each season with two lags in the window,
    the mean of its anchored candidates (`anchored_mean_<season>`: a steadier
    seasonal profile); with `smoothing`, the `SeasonalSmoothing` forecast
    (the feature after the lags'); with `mstl`, the `MSTLForecast` (the
    next feature) and, with both, their mean (`smoothing_mstl_mean`: a
    forecast combination); with `fallback` (known-future covariates: the
    name of the base `SimilarDay` falls back on, or True for the default,
    `default_fallback`), `SimilarDay`'s two features after those:
    `similar_day` and `<fallback>_or_similar_day`.
    """
    count = len(lags)
    bases = {}
    for j, lag in enumerate(lags):
        bases[f"naive_{lag}"] = {j: 1.0}
        bases[f"anchored_{lag}"] = {count + j: 1.0}
    for season in seasons:
        own = [j for j, lag in enumerate(lags) if lag % season == 0 and lag // season in (1, 2)]
        if len(own) == 2:
            bases[f"anchored_mean_{season}"] = {count + j: 0.5 for j in own}
    after = 2 * count
    if smoothing:
        bases["smoothing"] = {after: 1.0}
        after += 1
    if mstl:
        bases["mstl"] = {after: 1.0}
        if smoothing:
            bases["smoothing_mstl_mean"] = {after - 1: 0.5, after: 0.5}
        after += 1
    if fallback:
        if fallback is True:
            fallback = default_fallback(lags, seasons, smoothing)
        bases["similar_day"] = {after: 1.0}
        bases[f"{fallback}_or_similar_day"] = {after + 1: 1.0}
    return bases


def default_fallback(lags, seasons, smoothing=False):
    """The base `SimilarDay` falls back on unless `info["fallback"]` names
    one (`load_data` picks the best on validation): the smoothing, or the
    anchored longest season."""
    return "smoothing" if smoothing else f"anchored_{_fallback_lag(seasons, lags)}"


def seasonal_smoothing(windows, seasons, horizon, alpha, gammas, phi):
    """Additive multi-seasonal exponential smoothing (Taylor 2003's double
    seasonal Holt-Winters, one seasonal index per season), run over each
    window; the forecasts of the `horizon` steps after it.

    The level and the seasonal indices start from the window's first two
    longest seasons (their mean, then each season's mean profile of what
    the shorter ones leave); every later step corrects them by its one-step
    error `e`: `level += alpha * e`, the index of season `s` `+= gammas[i] * e`.
    The forecast of step `h` is the level plus the indices, plus
    `phi ** h * e` (the last error, decaying: Taylor's AR(1) adjustment).

    The forecast is linear in the window (`SeasonalSmoothing` applies it as
    one matrix).

    Args:
        windows: `[batch, lookback]`, lookback at least two longest seasons.
        seasons: the periods, sorted.
        horizon: forecast steps.
        alpha, gammas, phi: the smoothing weights of the level, of each
            season's index, and the decay of the last error (numbers, or
            arrays that broadcast against `[batch]`, e.g. `[settings, 1]`:
            the result is then `[settings, batch, horizon]`).

    Returns:
        `[batch, horizon]` float64.

    Example:

    >>> import numpy as np
    >>> t = np.arange(40.0)
    >>> window = 10 + np.sin(2 * np.pi * t / 4)[None]   # period 4
    >>> forecast = seasonal_smoothing(window, [4], 4, 0.1, [0.2], 0.5)
    >>> np.round(forecast, 3).tolist()
    [[10.0, 11.0, 10.0, 9.0]]
    """
    windows = np.asarray(windows, np.float64)
    batch, lookback = windows.shape
    longest = seasons[-1]
    start = 2 * longest
    if lookback < start:
        raise ValueError(f"the window ({lookback} steps) must hold two of the longest season ({longest})")
    alpha, phi = np.asarray(alpha, np.float64), np.asarray(phi, np.float64)
    gammas = [np.asarray(g, np.float64) for g in gammas]
    # The states broadcast the weights' shape against the windows'.
    shape = np.broadcast_shapes(alpha.shape, phi.shape, *(g.shape for g in gammas), (batch,))
    first = windows[:, :start]
    level = np.broadcast_to(first.mean(axis=1), shape).copy()
    rest = first - first.mean(axis=1, keepdims=True)
    indices = []
    for season in seasons:
        profile = np.stack([rest[:, p::season].mean(axis=1) for p in range(season)], axis=1)
        indices.append(np.broadcast_to(profile, (*shape, season)).copy())
        rest = rest - profile[:, np.arange(start) % season]
    error = np.zeros(shape)
    for t in range(start, lookback):
        positions = [t % season for season in seasons]
        fitted = level + sum(index[..., p] for index, p in zip(indices, positions))
        error = windows[:, t] - fitted
        level += alpha * error
        for index, p, gamma in zip(indices, positions, gammas):
            index[..., p] += gamma * error
    steps = np.arange(lookback, lookback + horizon)
    forecast = level[..., None] + sum(index[..., steps % season] for index, season in zip(indices, seasons))
    return forecast + phi[..., None] ** np.arange(1, horizon + 1) * error[..., None]


class _FixedLinearForecast(keras.layers.Layer):
    """A forecast linear in the window's target, `target[-steps:] @ M`,
    with `M` `[steps, horizon]` from `forecast_matrix` (fixed, not
    trained): the base of `SeasonalSmoothing` and `MSTLForecast`."""

    def forecast_matrix(self, lookback):
        """`(steps, M)` for a window of `lookback` steps."""
        raise NotImplementedError

    def build(self, input_shape):
        self.steps, matrix = self.forecast_matrix(int(input_shape[1]))
        self.matrix = self.add_weight(
            (self.steps, self.horizon),
            initializer=keras.initializers.Constant(matrix.astype(np.float32)),
            trainable=False,
            name="matrix",
        )

    def call(self, inputs):
        target = inputs[:, -self.steps :, 0]
        return ops.expand_dims(ops.matmul(target, ops.cast(self.matrix, target.dtype)), -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, 1)


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class SeasonalSmoothing(_FixedLinearForecast):
    """`seasonal_smoothing`'s forecast of a window's target, as one matrix.

    The smoothing is linear in the window, so its forecast is `window @ M`
    with `M` `[lookback, horizon]`, worked out once when the layer is built
    (fixed, not trained). It is a forecast candidate for `LagMix`, next to
    the seasonal lags.

    Args:
        seasons: the periods, sorted; the window holds at least two of the
            longest.
        horizon: forecast steps.
        alpha, gammas, phi: as in `seasonal_smoothing`.

    Call arguments:
        inputs: `[batch, lookback, features]`; column 0 is smoothed.

    Output shape:
        `[batch, horizon, 1]`.

    Example:

    >>> import numpy as np
    >>> t = np.arange(40.0)
    >>> window = (10 + np.sin(2 * np.pi * t / 4))[None, :, None]
    >>> layer = SeasonalSmoothing([4], horizon=4, alpha=0.1, gammas=[0.2], phi=0.5)
    >>> np.round(np.asarray(layer(window))[0, :, 0], 3).tolist()
    [10.0, 11.0, 10.0, 9.0]
    """

    def __init__(self, seasons, horizon, alpha, gammas, phi, **kwargs):
        super().__init__(**kwargs)
        self.seasons = [int(s) for s in seasons]
        self.horizon = int(horizon)
        self.alpha = float(alpha)
        self.gammas = [float(g) for g in gammas]
        self.phi = float(phi)
        if len(self.gammas) != len(self.seasons):
            raise ValueError(
                f"gammas needs one weight per season ({len(self.seasons)}). Received: gammas={gammas}"
            )

    def forecast_matrix(self, lookback):
        # Each window position's effect on the forecast: the smoothing run
        # on the unit windows.
        return lookback, seasonal_smoothing(
            np.eye(lookback), self.seasons, self.horizon, self.alpha, self.gammas, self.phi
        )

    def get_config(self):
        return {
            **super().get_config(),
            "seasons": self.seasons,
            "horizon": self.horizon,
            "alpha": self.alpha,
            "gammas": self.gammas,
            "phi": self.phi,
        }


def similar_day_lags(seasons, horizon, lookback, fallback_lag):
    """The lags `SimilarDay` compares: the multiples of the shortest season
    that are at least `horizon` and less than `lookback`, and
    `fallback_lag`."""
    step = min(seasons)
    lags = {k * step for k in range(1, lookback // step + 1)}
    return sorted({lag for lag in lags if horizon <= lag < lookback} | {int(fallback_lag)})


def _fallback_lag(seasons, lags):
    """The lag `SimilarDay` falls back on: the longest season among the
    seasonal lags (a week for half-hourly data), else the shortest lag."""
    own = [lag for lag in lags if lag in seasons]
    return max(own) if own else min(lags)


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class SimilarDay(keras.layers.Layer):
    """The "similar day" forecast: the most recent past stretch whose known-future
    covariates match the horizon's, anchored on the last value.

    Load forecasters treat holidays this way: a holiday looks like the last
    Sunday, not like the same weekday a week ago. For each lag `s` the
    mismatch is the mean absolute difference between the covariates of the
    `horizon` steps from `t - s` and the covariates given for the horizon;
    the lag with the least mismatch wins (the most recent among equals), and
    its target values, moved by the change of level since (`x[t+h-s] -
    x[t-1-s]`, as the anchored `SeasonalLags`), are the first output.

    The second output keeps a `fallback` forecast (the model's best
    candidate without the covariates) where the stretch one `fallback_lag`
    back matches as well as any, and takes the similar day where it does
    not: an ordinary week is left to the fallback, a holiday (or the day a
    week after one) gets the similar day.

    Args:
        lags: the lags to compare, sorted, each at least the horizon and
            less than the window; `fallback_lag` is one of them.
        horizon: forecast steps.
        columns: the window's columns that hold the covariates, in the
            order of `future`'s last axis.
        fallback_lag: the lag whose match keeps the fallback.

    Call arguments:
        inputs: a tuple `(window, future, fallback)`: the scaled window
            `[batch, lookback, features]` (target in column 0), the
            covariates over the horizon `[batch, horizon, len(columns)]`,
            scaled like the window's, and the fallback `[batch, horizon]`.

    Output shape:
        `[batch, horizon, 2]`: the similar day, then the fallback or the
        similar day.

    Example:

    >>> import numpy as np
    >>> # Two columns over 3 "days" of 2 steps: target, and a day-type flag.
    >>> window = np.array([[[1, 1], [2, 1], [5, 0], [6, 0], [3, 1], [4, 1]]], "float32")
    >>> window[..., 0] -= 4.0  # scaled: the last value is 0
    >>> future = np.zeros((1, 2, 1), "float32")  # the next day is of type 0
    >>> fallback = np.full((1, 2), 9.0, "float32")
    >>> out = SimilarDay([2, 4], horizon=2, columns=[1], fallback_lag=2)((window, future, fallback))
    >>> # The day 4 back (5, 6) rose 3 and 4 from the step before it (2):
    >>> np.asarray(out)[0].tolist()  # 3 and 4 above the last value
    [[3.0, 3.0], [4.0, 4.0]]
    """

    def __init__(self, lags, horizon, columns, fallback_lag, **kwargs):
        super().__init__(**kwargs)
        self.lags = sorted(int(lag) for lag in lags)
        self.horizon = int(horizon)
        self.columns = [int(c) for c in columns]
        self.fallback_lag = int(fallback_lag)
        if not self.lags or self.lags[0] < self.horizon:
            raise ValueError(f"every lag must be at least the horizon ({self.horizon}). Received: lags={self.lags}")
        if self.fallback_lag not in self.lags:
            raise ValueError(f"fallback_lag must be one of the lags {self.lags}. Received: {self.fallback_lag}")
        if not self.columns:
            raise ValueError("columns must name at least one covariate column")

    def call(self, inputs):
        window, future, fallback = inputs
        lookback, horizon, count = window.shape[1], self.horizon, len(self.lags)
        steps = [lookback - lag + h for lag in self.lags for h in range(horizon)]
        covariates = ops.take(window, self.columns, axis=2)  # [B, L, K]
        past = ops.reshape(ops.take(covariates, steps, axis=1), (-1, count, horizon, len(self.columns)))
        mismatch = ops.mean(ops.abs(past - ops.expand_dims(future, 1)), axis=(2, 3))  # [B, lags]
        target = window[:, :, 0]
        values = ops.reshape(ops.take(target, steps, axis=1), (-1, count, horizon))
        anchors = ops.take(target, [lookback - 1 - lag for lag in self.lags], axis=1)
        candidates = values - ops.expand_dims(anchors, -1)  # [B, lags, H]
        # argmin returns the first of equal minima: the most recent lag.
        best = ops.one_hot(ops.argmin(mismatch, axis=1), count, dtype=candidates.dtype)
        similar = ops.sum(candidates * ops.expand_dims(best, -1), axis=1)
        least = ops.min(mismatch, axis=1)
        own = mismatch[:, self.lags.index(self.fallback_lag)]
        keep = ops.expand_dims(own <= least + 1e-6, -1)
        switched = ops.where(keep, ops.cast(fallback, similar.dtype), similar)
        return ops.stack([similar, switched], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.horizon, 2)

    def get_config(self):
        return {
            **super().get_config(),
            "lags": self.lags,
            "horizon": self.horizon,
            "columns": self.columns,
            "fallback_lag": self.fallback_lag,
        }


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class FutureScaling(keras.layers.Layer):
    """Known-future covariates in the window's scaled units.

    `(future - reference[:, columns]) / scale[columns]`, with the reference
    and scale of `WindowScaling`, so that a covariate value over the horizon
    equals its scaled value in the window.

    Args:
        scale: one float per window feature (`WindowScaling`'s).
        columns: the window columns that `future`'s last axis holds.
        log: take the logarithm first (as `WindowScaling(log=True)`).

    Call arguments:
        inputs: a tuple `(future, reference)`: `[batch, horizon,
            len(columns)]` and `WindowScaling`'s `[batch, features]`.

    Example:

    >>> import numpy as np
    >>> layer = FutureScaling(scale=[1.0, 2.0], columns=[1])
    >>> np.asarray(layer((np.array([[[5.0]]]), np.array([[0.0, 1.0]])))).tolist()
    [[[2.0]]]
    """

    def __init__(self, scale, columns, log=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(s) for s in scale]
        self.columns = [int(c) for c in columns]
        self.log = bool(log)

    def call(self, inputs):
        future, reference = inputs
        future = ops.convert_to_tensor(future, dtype=self.compute_dtype)
        if self.log:
            future = ops.log(future)
        reference = ops.take(reference, self.columns, axis=1)
        scale = ops.convert_to_tensor([self.scale[c] for c in self.columns], self.compute_dtype)
        return (future - ops.expand_dims(reference, 1)) / scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "columns": self.columns, "log": self.log}


@keras.saving.register_keras_serializable(package="rnnapps.forecasting")
class MSTLForecast(_FixedLinearForecast):
    """MSTL's forecast of a window's target, as one fixed matrix.

    STL without robustness iterations is linear in the series, and so is
    MSTL's forecast with simple exponential smoothing of the deseasonalized
    series (weight `alpha`) in place of its AutoETS: `mstl_matrix` builds
    it, `window[-steps:] @ M`, when the layer is built (not trained). It is
    a `LagMix` candidate next to `SeasonalSmoothing`.

    Args:
        seasons: the periods, sorted.
        horizon: forecast steps.
        alpha: the smoothing weight of the deseasonalized series.
        steps: the latest steps of the window it decomposes (whole longest
            seasons: 8 weeks of half-hours are 2,688).

    Call arguments:
        inputs: `[batch, lookback, features]`; column 0 is decomposed.

    Output shape:
        `[batch, horizon, 1]`.

    Example:

    >>> import numpy as np
    >>> t = np.arange(48.0)
    >>> window = (10 + np.sin(2 * np.pi * t / 4) + 0.5 * (t % 12 == 0))[None, :, None]
    >>> layer = MSTLForecast([4, 12], horizon=4, alpha=0.5, steps=48)
    >>> np.round(np.asarray(layer(window))[0, :, 0], 2).tolist()
    [10.5, 11.0, 10.0, 9.0]
    """

    def __init__(self, seasons, horizon, alpha, steps, **kwargs):
        super().__init__(**kwargs)
        self.seasons = sorted(int(s) for s in seasons)
        self.horizon = int(horizon)
        self.alpha = float(alpha)
        self.steps = int(steps)

    def forecast_matrix(self, lookback):
        if self.steps > lookback:
            raise ValueError(f"steps ({self.steps}) must not exceed the window ({lookback})")
        from rnnapps.tasks.forecasting.mstl_matrix import mstl_forecast_matrix

        return self.steps, mstl_forecast_matrix(self.steps, self.seasons, self.horizon, self.alpha)

    def get_config(self):
        return {
            **super().get_config(),
            "seasons": self.seasons,
            "horizon": self.horizon,
            "alpha": self.alpha,
            "steps": self.steps,
        }


def choose_mstl(windows, seasons, alphas=(0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99)):
    """The `MSTLForecast` settings for windows like `windows` (`load_data`
    passes those it fits the smoothing on): `steps`, the window's latest
    whole longest seasons, up to 8, and `alpha`, chosen as MSTL's ETS
    chooses it, by the squared one-step errors of simple exponential
    smoothing on the deseasonalized windows.

    Returns:
        `{"alpha", "steps"}`.
    """
    from rnnapps.tasks.forecasting.mstl_matrix import mstl_matrices

    steps = min(windows.shape[1] // max(seasons), 8) * max(seasons)
    _, deseasonalize = mstl_matrices(int(steps), tuple(int(s) for s in sorted(seasons)))
    rest = np.asarray(windows, np.float64)[:, -steps:] @ deseasonalize.T.astype(np.float64)  # [batch, steps]
    alphas = np.asarray(alphas, np.float64)[:, None]
    level = np.repeat(rest[None, :, 0], len(alphas), axis=0)  # [alphas, batch]
    squared = np.zeros(len(alphas))
    for t in range(1, steps):
        error = rest[None, :, t] - level
        squared += np.mean(error**2, axis=1)
        level = level + alphas * error
    return {"alpha": float(alphas[int(np.argmin(squared)), 0]), "steps": int(steps)}


def choose_smoothing(windows, targets, seasons, horizon, grid=None):
    """The `seasonal_smoothing` weights with the lowest MAE on `(windows,
    targets)` (`load_data` passes up to 256 windows of the training part),
    from a grid: by default alpha 0.001-0.1, each gamma 0.05-0.95, phi 0.9
    or 0.99 (200 settings for two seasons).

    Args:
        windows: `[batch, lookback]`; targets: `[batch, horizon]`.
        seasons, horizon: as in `seasonal_smoothing`.
        grid: `{"alpha": ..., "gamma": ..., "phi": ...}` values to try.

    Returns:
        `({"alpha", "gammas", "phi"}, mae)`.
    """
    import itertools

    grid = grid or {
        "alpha": (0.001, 0.005, 0.02, 0.1), "gamma": (0.05, 0.2, 0.4, 0.7, 0.95), "phi": (0.9, 0.99)
    }
    settings = np.array(list(itertools.product(grid["alpha"], grid["phi"], *[grid["gamma"]] * len(seasons))))
    # Every setting runs on every window at once: states [settings, windows].
    column = settings[:, :, None]
    forecast = seasonal_smoothing(
        windows, seasons, horizon, column[:, 0], [column[:, 2 + i] for i in range(len(seasons))], column[:, 1]
    )
    errors = np.abs(forecast - np.asarray(targets, np.float64)).mean(axis=(1, 2))
    alpha, phi, *gammas = (float(v) for v in settings[int(np.argmin(errors))])
    return {"alpha": alpha, "gammas": gammas, "phi": phi}, float(errors.min())


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
        A `keras.Model` from `[batch, lookback, features]` (with
        `info["future_columns"]`: `{"window": that, "future": [batch,
        horizon, len(future_columns)]}`) to `[batch, horizon]`, or
        `[batch, horizon, quantiles]` when `info["quantiles"]` is not empty.
    """
    if uses_seasonal_lags(config, info):
        return _build_seasonal(config, info)
    if future_indices(info) and config.decoder != "direct":
        raise ValueError("known-future covariates (future_columns) need the direct decoder")
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
    inputs = window = keras.Input((lookback, num_features), name="window")
    scaled, reference = scaling(window)
    if config.decoder == "direct":
        summary = encoder(scaled)
        if future_indices(info):
            inputs, _, summary = _with_future(config, info, window, reference, summary)
        summary = dropout(summary)
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
    model = keras.Model(inputs, forecast, name=f"forecaster_{config.cell}_{config.decoder}")

    # === Training setup ===
    return _compile(model, config, quantiles)


def _with_future(config, info, window, reference, summary):
    """The known-future covariates' input `future` `[batch, horizon,
    len(future_columns)]`: `(inputs {"window", "future"}, future scaled as
    the window, summary with the scaled future appended)`, so the head
    sees the covariates of every forecast step."""
    columns = future_indices(info)
    future = keras.Input((info["horizon"], len(columns)), name="future")
    scaled = FutureScaling(info["scale"], columns, log=config.transform == "log", name="future_scaling")(
        (future, reference)
    )
    flat = keras.layers.Flatten(name="future_steps")(scaled)
    summary = keras.layers.Concatenate(name="summary_and_future")([summary, flat])
    return {"window": window, "future": future}, scaled, summary


def _compile(model, config, quantiles):
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


def uses_seasonal_lags(config, info):
    """Whether `build_model` makes the seasonal-lag model: `config.structure`
    says so, or it is "auto", the decoder is the direct one and the series
    has several seasons, or one that holds at least two horizons (a
    day-ahead forecast of a weekly cycle)."""
    if config.structure == "auto":
        seasons = info.get("seasons") or []
        sub_seasonal = len(seasons) == 1 and seasons[0] >= 2 * info["horizon"]
        return config.decoder == "direct" and (len(seasons) > 1 or sub_seasonal)
    return config.structure == "seasonal"


def future_indices(info):
    """The window columns of `info["future_columns"]` (known-future covariates)."""
    return [info["columns"].index(name) for name in info.get("future_columns") or []]


def _bases(info, lags):
    """`seasonal_bases` for the candidates `info` says the model has."""
    seasons = info.get("seasons") or [info["season"]]
    fallback = (info.get("fallback") or True) if future_indices(info) else None
    return seasonal_bases(lags, seasons, bool(info.get("smoothing")), bool(info.get("mstl")), fallback)


def choose_base(config, info, windows, targets, future=None):
    """The `seasonal_bases` candidate with the lowest MAE on `(windows,
    targets)` (the validation windows): where `LagMix` starts. (With
    known-future covariates, `load_data` first picks the best candidate
    without them, `info["fallback"]`, for `SimilarDay` to fall back on.)

    Args:
        future: the known-future covariates of the windows' horizons
            `[batch, horizon, len(info["future_columns"])]`, when the
            series has some.

    Returns:
        `(name, {name: mae})`.
    """
    seasons = info.get("seasons") or [info["season"]]
    lags = seasonal_lags(seasons, info["horizon"], info["lookback"])
    log = config.transform == "log"
    scaled, reference = WindowScaling(info["scale"], reference_steps=1, log=log)(windows)
    future_scaled = None
    if future_indices(info):
        future_scaled = FutureScaling(info["scale"], future_indices(info), log=log)((future, reference))
    features = keras.ops.convert_to_numpy(_candidates(info, lags)(scaled, future_scaled))
    last = keras.ops.convert_to_numpy(reference)[:, :1]
    errors = {}
    for name, weights in _bases(info, lags).items():
        mixed = sum(w * features[:, :, j] for j, w in weights.items())
        forecast = mixed * info["scale"][0] + last
        if log:
            forecast = np.exp(forecast)
        errors[name] = float(np.mean(np.abs(forecast - targets)))
    best = min(errors, key=errors.get)
    # Validation windows without a holiday cannot tell the fallback from
    # the fallback-or-similar-day (they are equal there): the covariates
    # the user gave decide.
    switch = [name for name in errors if name.endswith("_or_similar_day")]
    if switch and errors[switch[0]] <= errors[best] * (1 + 1e-9):
        best = switch[0]
    return best, errors


def _candidates(info, lags):
    """`LagMix`'s candidates, as a function of the scaled window (and the
    scaled known-future covariates): `SeasonalLags`; after them the
    `SeasonalSmoothing` forecast when `info["smoothing"]` has its weights;
    after those `SimilarDay`'s two when `info["future_columns"]` names
    covariates (`seasonal_bases` gives their order)."""
    horizon, lookback = info["horizon"], info["lookback"]
    seasons = info.get("seasons") or [info["season"]]
    lag_features = SeasonalLags(lags, horizon, name="seasonal_lags")
    smoothing = mstl = None
    if info.get("smoothing"):
        smoothing = SeasonalSmoothing(seasons, horizon, **info["smoothing"], name="smoothing")
    if info.get("mstl"):
        mstl = MSTLForecast(seasons, horizon, **info["mstl"], name="mstl")
    similar = None
    fallback_lag = _fallback_lag(seasons, lags)
    if future_indices(info):
        similar = SimilarDay(
            similar_day_lags(seasons, horizon, lookback, fallback_lag), horizon, future_indices(info),
            fallback_lag=fallback_lag, name="similar_day",
        )
        plain = seasonal_bases(lags, seasons, smoothing is not None, mstl is not None)
        fallback = plain[info.get("fallback") or default_fallback(lags, seasons, smoothing is not None)]

    def candidates(scaled, future=None):
        features = [lag_features(scaled)]
        features += [layer(scaled) for layer in (smoothing, mstl) if layer is not None]
        if similar is not None:
            before = ops.concatenate(features, axis=-1) if len(features) > 1 else features[0]
            fallen = sum(weight * before[..., j] for j, weight in fallback.items())
            features.append(similar((scaled, future, fallen)))
        return features[0] if len(features) == 1 else ops.concatenate(features, axis=-1)

    return candidates


def _build_seasonal(config, info):
    """The seasonal-lag model (Smyl 2020's residual idea, with lags as in
    DeepAR): a per-step mix of seasonal-naive candidates, started from
    `info["base"]` (the candidate best on validation), plus a correction
    the recurrent network reads off the recent steps.

        window [B, L, F] -> WindowScaling (last value as reference)
          -> SeasonalLags (, SeasonalSmoothing, MSTLForecast, SimilarDay) -> LagMix -> base [B, H]
          -> last `recent` steps -> LSTM (, future) -> Dense(H x Q)  -> correction
        base + correction -> InverseScaling -> forecast [B, H] (or [B, H, Q])
    """
    quantiles = list(info["quantiles"])
    outputs_per_step = len(quantiles) or 1
    horizon, lookback = info["horizon"], info["lookback"]
    seasons = info.get("seasons") or [info["season"]]
    lags = seasonal_lags(seasons, horizon, lookback)
    if not lags:
        raise ValueError(
            f"the seasonal structure needs a lag of one season that is at least the horizon "
            f"({horizon}) and shorter than the lookback ({lookback}); seasons: {seasons}"
        )
    future_columns = future_indices(info)
    bases = _bases(info, lags)
    base = info.get("base") or f"naive_{max(lags)}"
    if base not in bases:
        raise ValueError(f"base must be one of {', '.join(bases)}. Received: base={base!r}")
    # The recurrent network reads the latest shortest season, not the
    # whole window (two weeks of half-hours are 672 steps).
    recent = min(min(seasons), 2 * horizon, lookback)
    log = config.transform == "log"

    # === Layers ===
    scaling = WindowScaling(info["scale"], info["center"], reference_steps=1, log=log, name="scaling")
    candidates = _candidates(info, lags)
    mix = LagMix(bases[base], name="lag_mix")
    encoder = _CELLS[config.cell](config.units, name="encoder")
    dropout = keras.layers.Dropout(config.dropout, name="dropout")
    # Zeros: training starts from the chosen seasonal-naive forecast.
    head = keras.layers.Dense(horizon * outputs_per_step, kernel_initializer="zeros", name="head")
    unscale = InverseScaling(info["scale"][0], log=log, name="unscale")

    # === Functional Model ===
    inputs = window = keras.Input((lookback, len(info["columns"])), name="window")
    scaled, reference = scaling(window)
    summary = encoder(scaled[:, -recent:, :])
    future_scaled = None
    if future_columns:
        inputs, future_scaled, summary = _with_future(config, info, window, reference, summary)
    base_forecast = mix(candidates(scaled, future_scaled))
    correction = head(dropout(summary))
    if quantiles:
        correction = keras.layers.Reshape((horizon, outputs_per_step), name="steps")(correction)
        forecast = keras.ops.expand_dims(base_forecast, -1) + correction
    else:
        forecast = base_forecast + correction
    forecast = unscale((forecast, reference))
    if len(quantiles) > 1:
        forecast = keras.ops.sort(forecast, axis=-1)
    model = keras.Model(inputs, forecast, name=f"forecaster_{config.cell}_seasonal")

    # === Training setup ===
    return _compile(model, config, quantiles)
