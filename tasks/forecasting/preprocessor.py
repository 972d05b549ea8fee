"""ForecastingPreprocessor: what is fitted on a series, and the windows cut from it."""

import numpy as np

from rnnapps.task import TaskError
from rnnapps.tasks.forecasting.config import parse_quantiles

__all__ = ["ForecastingPreprocessor", "check_config", "validation_windows"]

# What `ForecastingPreprocessor.info` holds besides the windows' settings:
# the seasonal structure's choices (`choose_seasonal_base`).
_SEASONAL_KEYS = ("smoothing", "mstl", "fallback", "base", "base_mae")


def check_config(config):
    """Raises `TaskError` for settings no series can have: quantiles
    outside (0, 1), `backtest` below 1, a `validation_fraction` outside
    (0, 1), a negative `mase_season`."""
    _quantiles(config)
    if config.backtest < 1:
        raise TaskError(f"--backtest must be at least 1, got {config.backtest}")
    if not 0 < config.validation_fraction < 1:
        raise TaskError(f"--validation-fraction must lie between 0 and 1, got {config.validation_fraction}")
    if config.mase_season < 0:
        raise TaskError(f"--mase-season must be 0 (the longest season) or positive, got {config.mase_season}")


def validation_windows(config, windows, seasons, horizon):
    """How many of `windows` (the latest) are held out for early stopping
    and for choosing the seasonal structure's starting candidate:
    `config.validation_fraction` of them, at least one, and with the
    seasonal structure at least a whole longest season of origins when
    there are two."""
    from rnnapps.tasks.forecasting import model

    count = max(1, int(round(windows * config.validation_fraction)))
    if model.uses_seasonal_lags(config, {"seasons": seasons, "horizon": horizon}) and windows >= 2 * seasons[-1]:
        # Early stopping and the starting candidate judged on a whole
        # longest season of origins (a week), not on 2 days of taylor's:
        # there 10% let the correction fit Mondays and lose the week
        # (MASE 0.605 against 0.548 over 14 days).
        count = max(count, seasons[-1])
    return count


class ForecastingPreprocessor:
    """Cuts a series into the forecaster's windows; holds what was fitted on it.

    keras-hub's preprocessor for a forecaster. `fit` chooses the windows
    (lookback, horizon, seasons) for a series and learns, on its training
    part only, the per-column scale and mean, the MASE scale and, for the
    seasonal structure, the smoothing weights and the starting candidate
    (`info`). `build_model` turns the scale into the model's own
    `WindowScaling` and `InverseScaling` layers, so the model (and its
    SavedModel) takes raw windows and returns forecasts in the series'
    units; what is left to the preprocessor is cutting `(window, target)`
    pairs out of a series, in `tf.data` for training and in NumPy for
    prediction. It is not a Keras layer: it holds no weights and nothing
    of it runs when the model serves.

    Everything it holds is JSON (`get_config`, and `info`, which a run
    saves in its `task.json`), so a TensorFlow process can rebuild it for
    the export of a model trained on another backend.

    Args:
        columns: the column names, target first (the other columns are
            covariates; those in `future_columns` are also known over the
            horizon).
        lookback: steps of history each window holds.
        horizon: steps each target holds (column 0 only).
        seasons: the season lengths, sorted.
        scale: per column, the standard deviation of the training part
            (of its logarithm with `transform="log"`).
        center: per column, the mean of the same.
        quantiles: the quantile levels the model forecasts (sorted; empty
            for a point forecast).
        future_columns: the known-future covariates: a window is then
            `{"window": [lookback, features], "future": [horizon, K]}`.
        mase_season: the season of the seasonal-naive error that scales
            MASE; `mase_scale` that error on the training part.
        step: the time step in words ("week"), or None.
        seasonal: the seasonal structure's choices fit on the training
            part (`smoothing`, `mstl`, `fallback`, `base`, `base_mae`).

    Example:

    >>> import numpy as np
    >>> p = ForecastingPreprocessor(["y"], lookback=3, horizon=2, seasons=[1], scale=[1.0],
    ...                             center=[0.0])
    >>> x, y = p.windows(np.arange(8.0)[:, None], origins=[6])
    >>> x[0, :, 0].tolist(), y.tolist()
    ([3.0, 4.0, 5.0], [[6.0, 7.0]])
    """

    def __init__(self, columns, lookback, horizon, seasons, scale, center, quantiles=(),
                 future_columns=(), mase_season=None, mase_scale=None, step=None, seasonal=None):
        self.columns = [str(c) for c in columns]
        self.lookback = int(lookback)
        self.horizon = int(horizon)
        self.seasons = sorted(int(s) for s in seasons)
        self.scale = [float(s) for s in scale]
        self.center = [float(c) for c in center]
        self.quantiles = sorted(float(q) for q in quantiles)
        self.future_columns = [str(c) for c in future_columns or ()]
        self.mase_season = int(mase_season or self.seasons[-1])
        self.mase_scale = None if mase_scale is None else float(mase_scale)
        self.step = step
        self.seasonal = dict(seasonal or {})
        if self.lookback < 1 or self.horizon < 1:
            raise ValueError(f"lookback and horizon must be positive. Received: lookback={lookback}, "
                             f"horizon={horizon}")
        if len(self.scale) != len(self.columns) or len(self.center) != len(self.columns):
            raise ValueError(f"scale and center need one value per column ({len(self.columns)}). "
                             f"Received: scale={scale}, center={center}")
        missing = [c for c in self.future_columns if c not in self.columns]
        if missing:
            raise ValueError(f"future_columns must be among the columns {self.columns}. "
                             f"Received: future_columns={self.future_columns}")

    @classmethod
    def fit(cls, series, config, end=None):
        """The preprocessor of `config` fitted on `series` (a `data.Series`).

        Args:
            series: the whole series.
            config: a `ForecastingConfig` (`horizon`, `lookback`, `season`,
                `quantiles`, `transform`, `structure`, ...).
            end: the rows before `end` are the training part, which the
                scale, the MASE scale and the seasonal choices are fit on
                (the latest `validation_windows` of its windows choose the
                seasonal structure's starting candidate); default: all.

        Raises:
            TaskError: for settings that do not fit the series.
        """
        from rnnapps.tasks.forecasting.data import resolve_windows
        from rnnapps.tasks.forecasting.data import seasonal_mae

        quantiles = _quantiles(config)
        future_columns = _future_columns(config, series)
        lookback, horizon, seasons = resolve_windows(config, series)
        end = len(series.values) if end is None else end
        windows = end - lookback - horizon + 1
        if windows < 2:
            raise TaskError(
                f"{series.name}: {end} steps is too short for lookback {lookback} + horizon "
                f"{horizon}; it needs at least {lookback + horizon + 1} (lower lookback or horizon)"
            )
        train_part = series.values[:end]
        if config.transform == "log":
            if (series.values <= 0).any():
                column = series.columns[int(np.argwhere(series.values <= 0)[0][1])]
                raise TaskError(f"{series.name}: --transform log needs positive values; column {column!r} "
                                f"has {float(series.values.min()):g}")
            train_part = np.log(train_part)
        scale = train_part.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        center = train_part.mean(axis=0)
        mase_season = config.mase_season or seasons[-1]
        preprocessor = cls(
            series.columns, lookback, horizon, seasons, scale, center, quantiles, future_columns,
            mase_season, seasonal_mae(series.values[:end, 0], mase_season), series.step,
        )
        held_out = validation_windows(config, windows, seasons, horizon)
        info = preprocessor.info
        choose_seasonal_base(config, info, series.values[windows - held_out : end], series.values[:end])
        preprocessor.seasonal = {key: info[key] for key in _SEASONAL_KEYS if key in info}
        return preprocessor

    @property
    def info(self):
        """What the model is built from (`build_model(config, info)`) and
        the export serves by, as `TaskData.info` names it."""
        return {
            "columns": list(self.columns),
            "future_columns": list(self.future_columns),
            "step": self.step,
            "lookback": self.lookback,
            "horizon": self.horizon,
            "season": self.seasons[-1],
            "seasons": list(self.seasons),
            "quantiles": list(self.quantiles),
            "scale": list(self.scale),
            "center": list(self.center),
            "mase_season": self.mase_season,
            "mase_scale": self.mase_scale,
            **{key: value for key, value in self.seasonal.items()},
        }

    @classmethod
    def from_info(cls, info):
        """The preprocessor whose `info` a run saved (`task.json`'s `data`)."""
        return cls(
            info["columns"], info["lookback"], info["horizon"], info["seasons"], info["scale"],
            info["center"], info.get("quantiles", ()), info.get("future_columns", ()),
            info.get("mase_season"), info.get("mase_scale"), info.get("step"),
            {key: info[key] for key in _SEASONAL_KEYS if key in info},
        )

    def get_config(self):
        return {
            "columns": self.columns, "lookback": self.lookback, "horizon": self.horizon,
            "seasons": self.seasons, "scale": self.scale, "center": self.center,
            "quantiles": self.quantiles, "future_columns": self.future_columns,
            "mase_season": self.mase_season, "mase_scale": self.mase_scale, "step": self.step,
            "seasonal": self.seasonal,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # --- Windows ---------------------------------------------------------

    def _future_index(self):
        return [self.columns.index(c) for c in self.future_columns]

    def split(self, spans):
        """`spans` `[batch, lookback + horizon, features]` (TensorFlow) ->
        `(window, target [batch, horizon])`, the window with the
        known-future covariates as `{"window", "future"}` when there are
        some. Static shapes, as the model's layers that pick steps by
        position need them."""
        import tensorflow as tf

        lookback, horizon, features = self.lookback, self.horizon, len(self.columns)
        window = tf.ensure_shape(spans[:, :lookback, :], [None, lookback, features])
        target = tf.ensure_shape(spans[:, lookback:, 0], [None, horizon])
        index = self._future_index()
        if index:
            future = tf.gather(spans[:, lookback:, :], index, axis=2)
            future = tf.ensure_shape(future, [None, horizon, len(index)])
            return {"window": window, "future": future}, target
        return window, target

    def dataset(self, values, batch_size=32, shuffle=False, seed=None):
        """A batched `tf.data.Dataset` of every `(window, target)` in
        `values` `[steps, features]` (`steps - lookback - horizon + 1` of
        them), reshuffled every epoch when `shuffle`."""
        import keras
        import tensorflow as tf

        values = self.check(values)
        if len(values) < self.lookback + self.horizon:
            raise TaskError(f"the series has {len(values)} steps; a window and its target need "
                            f"{self.lookback + self.horizon} (lookback {self.lookback} + horizon "
                            f"{self.horizon})")
        dataset = keras.utils.timeseries_dataset_from_array(
            values, None, sequence_length=self.lookback + self.horizon, batch_size=batch_size,
            shuffle=shuffle, seed=seed,
        )
        return dataset.map(self.split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def windows(self, values, origins):
        """NumPy `(window [n, lookback, features] (or {"window", "future"}),
        target [n, horizon])` of the forecasts made at `origins` (the index
        of each first forecast step)."""
        values = np.asarray(values)
        x = np.stack([values[o - self.lookback : o] for o in origins])
        y = np.stack([values[o : o + self.horizon, 0] for o in origins])
        index = self._future_index()
        if index:
            future = np.stack([values[o : o + self.horizon][:, index] for o in origins])
            x = {"window": x, "future": future}
        return x, y

    def check(self, values, name="the series"):
        """`values` as float32 `[steps, len(columns)]`, all finite.

        Raises:
            TaskError: for another number of columns, or a NaN or infinity.
        """
        values = np.asarray(values, np.float32)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[1] != len(self.columns):
            raise TaskError(f"{name} must have the {len(self.columns)} column(s) the forecaster "
                            f"was fit on ({', '.join(self.columns)}); got shape {values.shape}")
        if not np.isfinite(values).all():
            row, column = np.argwhere(~np.isfinite(values))[0]
            raise TaskError(f"{name} holds {int((~np.isfinite(values)).sum())} missing or infinite "
                            f"value(s), the first in column {self.columns[column]!r}, row {row + 1}")
        return values


def _quantiles(config):
    try:
        quantiles = parse_quantiles(config.quantiles)
    except ValueError:
        raise TaskError(f"--quantiles must be numbers separated by commas, got {config.quantiles!r}")
    if any(not 0 < q < 1 for q in quantiles):
        raise TaskError(f"--quantiles must lie strictly between 0 and 1, got {config.quantiles!r}")
    return quantiles


def _future_columns(config, series):
    """The known-future covariates `config.future_columns` names, checked
    against `series` (a `data.Series`)."""
    from rnnapps.tasks.forecasting.data import split_columns

    columns = series.columns
    future_columns = split_columns(config.future_columns)
    for column in future_columns:
        if column not in columns:
            raise TaskError(f"{series.name} has no column {column!r} (--future-columns); it has: "
                            f"{', '.join(columns)}")
        if column == columns[0]:
            raise TaskError(f"--future-columns: {column!r} is the target; its future is what is forecast")
    if future_columns and config.decoder != "direct":
        raise TaskError("--future-columns needs --decoder direct")
    return future_columns


def choose_seasonal_base(config, info, rows, history):
    """For the seasonal structure (`model.uses_seasonal_lags`):
    `info["smoothing"]` and `info["mstl"]`, the `SeasonalSmoothing` and
    `MSTLForecast` settings that fit the windows of `history` (the training
    part) best, when the lookback holds three long seasons; with known-future
    covariates `info["fallback"]`, the best candidate without them;
    `info["base"]`, the candidate with the lowest MAE on the validation
    windows (held in `rows`), where the model starts; `info["base_mae"]`,
    every candidate's MAE."""
    from rnnapps.tasks.forecasting import model

    if not model.uses_seasonal_lags(config, info):
        return
    lookback, horizon, seasons = info["lookback"], info["horizon"], info["seasons"]
    if not model.seasonal_lags(seasons, horizon, lookback):
        raise TaskError(
            f"the seasonal structure needs a season of at least the horizon ({horizon}) and "
            f"shorter than the lookback ({lookback}); seasons: {', '.join(map(str, seasons))} "
            "(raise --lookback, lower --horizon, or pass --structure network)"
        )

    def spans_of(values):
        spans = np.lib.stride_tricks.sliding_window_view(values, lookback + horizon, axis=0)
        return np.moveaxis(spans, -1, 1)  # [windows, lookback + horizon, features]

    spans = spans_of(rows)
    if lookback >= 3 * seasons[-1]:
        # Smoothing needs the window's first two long seasons to start from
        # and at least one more to learn from. Like ETS, its few weights are
        # fit on the history: (at most 256 of) all the windows before the
        # test, training and validation.
        every = spans_of(history[:, :1])
        target = every[np.linspace(0, len(every) - 1, min(256, len(every))).round().astype(int), :, 0]
        target = target.astype(np.float64)
        if config.transform == "log":
            target = np.log(target)
        info["smoothing"], _ = model.choose_smoothing(
            target[:, :lookback], target[:, lookback:], seasons, horizon
        )
        # MSTL as a linear forecast (model.MSTLForecast), its smoothing
        # weight fit on the same windows as MSTL's ETS would fit it.
        info["mstl"] = model.choose_mstl(target[:, :lookback], seasons)
    windows, targets = spans[:, :lookback], spans[:, lookback:, 0]
    future = None
    if info.get("future_columns"):
        # The similar day falls back on the best candidate without it.
        info["fallback"], _ = model.choose_base(config, {**info, "future_columns": []}, windows, targets)
        future = spans[:, lookback:][:, :, model.future_indices(info)]
    info["base"], errors = model.choose_base(config, info, windows, targets, future)
    info["base_mae"] = {name: round(error, 5) for name, error in errors.items()}
