"""The forecasting task's glue: `ForecastingTask` for the command line, and
`Forecaster`, the Python API on your own series.

Both build on the same pieces: the `ForecastingPreprocessor` fit on the
series (`preprocessor.py`: the windows, the scaling and seasonal choices
fitted on the training part) and the model built from what it fitted
(`model.py`, `keras.ops` and Keras layers only, so it trains on JAX or
TensorFlow). The export, built on TensorFlow, takes raw windows and
returns forecasts (and quantiles) in the series' units.
"""

import dataclasses
import json
import pathlib
import tempfile

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.task import TaskError
from rnnapps.tasks.forecasting import metrics as forecast_metrics_module
from rnnapps.tasks.forecasting.config import PRESETS
from rnnapps.tasks.forecasting.config import ForecastingConfig
from rnnapps.tasks.forecasting.config import median_index
from rnnapps.tasks.forecasting.data import load_data

__all__ = ["ForecastingTask", "Forecaster", "build_model"]


def _future_times(last_time, step, horizon):
    """Timestamps of the `horizon` steps after `last_time` (None if unknown)."""
    import pandas as pd

    if last_time is None or step is None:
        return [None] * horizon
    last = pd.Timestamp(last_time)
    count, _, unit = step.rpartition(" x ")
    count = int(count) if count else 1
    offsets = {
        "10 minutes": pd.Timedelta(minutes=10), "30 minutes": pd.Timedelta(minutes=30),
        "hour": pd.Timedelta(hours=1),
        "day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1),
        "month": pd.DateOffset(months=1), "quarter": pd.DateOffset(months=3),
        "year": pd.DateOffset(years=1),
    }
    if unit not in offsets:
        return [None] * horizon
    times = [last + offsets[unit] * (count * h) for h in range(1, horizon + 1)]
    # Dates alone when every time is a midnight (daily and longer steps).
    if all(t == t.normalize() for t in [last, *times]):
        return [str(t.date()) for t in times]
    return [str(t)[:19] for t in times]


class ForecastingTask(Task):
    name = "forecasting"
    config_class = ForecastingConfig
    presets = PRESETS
    data_fields = (
        "data", "value_column", "future_columns", "time_column", "fill", "every", "season", "mase_season",
        "backtest", "batch_size", "seed",
    )
    predict_reads_whole_file = True  # `predict --input FILE`: the history
    predict_help = (
        "the history to forecast from: a CSV/TSV file with the model's value columns "
        "(its last LOOKBACK rows are used; '-' reads the CSV from stdin), or, for a "
        "single-column model, the last LOOKBACK values as numbers; a model with "
        "--future-columns reads their values over the horizon from the file's last "
        "HORIZON rows, whose target is left empty"
    )

    def load_data(self, config):
        return load_data(config)

    def build_model(self, config, data, log=print):
        info = data.info
        if info.get("smoothing"):
            weights = info["smoothing"]
            log(f"Seasonal smoothing over the {info['lookback']}-step window, fit on the training "
                f"part: alpha {weights['alpha']:g}, gammas {', '.join(f'{g:g}' for g in weights['gammas'])} "
                f"(seasons {', '.join(map(str, info['seasons']))}), phi {weights['phi']:g}")
        if info.get("mstl"):
            log(f"MSTL over the last {info['mstl']['steps']} steps as a linear forecast, the deseasonalized "
                f"series smoothed with alpha {info['mstl']['alpha']:g} (fit on the training part)")
        if info.get("fallback"):
            log(f"Known-future covariates ({', '.join(info['future_columns'])}): the similar day "
                f"replaces {info['fallback']} where the day a week back differs from the forecast day")
        if info.get("base"):
            log(f"Seasonal structure: the mix of candidates starts from {info['base']}, "
                f"the best on the validation windows (MAE {info['base_mae'][info['base']]:.4g})")
        return build_model(config, data.info)

    def load_checkpoint(self, path):
        from rnnapps.tasks.forecasting import model  # noqa: F401  (registers its layers)

        return super().load_checkpoint(path)

    def serving_signature(self, model, info):
        import tensorflow as tf

        quantiles = info["quantiles"]
        future_columns = info.get("future_columns") or []

        def outputs(inputs):
            out = model(inputs, training=False)
            if quantiles:
                return {"forecast": out[..., median_index(quantiles)], "quantiles": out}
            return {"forecast": out}

        def serve(window):
            # A NaN would silently poison every forecast: refuse it (TF
            # Serving answers 400 with this message).
            tf.debugging.assert_all_finite(window, "the window holds NaN or infinite values")
            return outputs(window)

        def serve_with_future(window, future):
            tf.debugging.assert_all_finite(window, "the window holds NaN or infinite values")
            tf.debugging.assert_all_finite(future, "the future covariates hold NaN or infinite values")
            return outputs({"window": window, "future": future})

        spec = tf.TensorSpec([None, info["lookback"], len(info["columns"])], tf.float32, name="window")
        if not future_columns:
            return serve, [spec]
        # Known-future covariates (`future_columns`), over the horizon.
        future = tf.TensorSpec([None, info["horizon"], len(future_columns)], tf.float32, name="future")
        return serve_with_future, [spec, future]

    # --- Evaluation -----------------------------------------------------

    def _baselines(self, data):
        """The baselines' forecasts of the test windows, computed once per `data`.

        (MSTL is refit at every origin; `train` scores twice.)
        """
        if "baselines" not in data.raw:
            data.raw["baselines"] = forecast_metrics_module.baseline_forecasts(
                data.raw["series"].values[:, 0], data.raw["origins"], data.info["horizon"],
                data.info["seasons"],
            )
        return data.raw["baselines"]

    def _score(self, outputs, data):
        """Metrics of the model's outputs on the test windows, with baselines."""
        info = data.info
        _, actual = data.raw["test"]
        quantiles = info["quantiles"]
        if quantiles:
            point = outputs[..., median_index(quantiles)]
            lower, upper = outputs[..., 0], outputs[..., -1]
        else:
            point, lower, upper = outputs, None, None
        baselines = self._baselines(data)
        scale = info["mase_scale"]

        def table(rows):
            window = slice(rows, None)
            result = {
                "model": forecast_metrics_module.forecast_metrics(
                    actual[window], point[window], scale,
                    None if lower is None else lower[window], None if upper is None else upper[window],
                )
            }
            for name, forecast in baselines.items():
                result[name] = forecast_metrics_module.forecast_metrics(actual[window], forecast[window], scale)
            return result

        def mase(forecast, row):
            return forecast_metrics_module.forecast_metrics(actual[row:row + 1], forecast[row:row + 1], scale)["mase"]

        metrics = table(-1)  # the held-out last horizon
        if quantiles:
            metrics["interval"] = [quantiles[0], quantiles[-1]]
        if len(actual) > 1:
            origins = _origin_labels(data)
            per_origin = [
                {"origin": origin, "model": mase(point, row),
                 **{name: mase(forecast, row) for name, forecast in baselines.items()}}
                for row, origin in enumerate(origins)
            ]
            metrics["backtest"] = {"windows": len(actual), **table(0), "per_origin": per_origin}
        return metrics

    def test_metrics(self, model, data):
        """Scores of the model and the baselines on the test windows.

        Returns:
            `{"model": {...}, "naive": {...}, "seasonal_naive": {...}}`, each
            with `mae`, `rmse`, `mase`, `smape` (and `coverage`,
            `interval_width` for a quantile model, whose outer quantiles are
            in `"interval"`) on the **held-out last horizon**. A series with
            several seasons adds `"seasonal_naive_<S>"` for each shorter
            season S (`"seasonal_naive"` repeats the longest) and `"mstl"`.
            With `backtest` > 1, `"backtest"` holds the same table averaged
            over all test windows, `"windows"`, and `"per_origin"`: one row
            per test window in time order, `{"origin": first forecast time
            (or row number), "model": MASE, <baseline>: MASE, ...}`.
        """
        outputs = model.predict(data.raw["test"][0], verbose=0)
        return self._score(np.asarray(outputs, np.float64), data)

    def example_predictions(self, model, data, count=None):
        info = data.info
        x, actual = data.raw["test"]
        all_outputs = np.asarray(model.predict(x, verbose=0), np.float64)
        outputs = all_outputs[-1]
        quantiles = info["quantiles"]
        point = outputs[:, median_index(quantiles)] if quantiles else outputs
        series = data.raw["series"]
        last_time = None if series.times is None else series.times[data.raw["origins"][-1] - 1]
        times = _future_times(last_time, series.step, info["horizon"])
        scores = self._score(all_outputs, data)
        # With several test windows, the verdict is on all of them.
        summary = scores.get("backtest", scores)
        ours = summary["model"]["mase"]
        baselines = {name: summary[name]["mase"] for name in self._baselines(data)}
        best = min(baselines, key=baselines.get)
        labels = {name: _baseline_label(name, info["seasons"]) for name in baselines}

        def verdict(name):
            return f"{'beats' if ours < baselines[name] else 'does not beat'} {labels[name]}"

        compared = ", ".join(f"{labels[name]} {mase:.3f}" for name, mase in baselines.items())
        best_too = "" if best == "seasonal_naive" else f" and {verdict(best)}"
        which = f"Backtest MASE ({summary['windows']} test windows)" if "backtest" in scores else "Test MASE"
        lines = [
            f"{which} {ours:.3f} vs {compared}: the model {verdict('seasonal_naive')}{best_too}, "
            "the best baseline."
        ]
        if "backtest" in scores:
            lines += _per_origin_table(scores["backtest"]["per_origin"])
        lines.append(f"Forecast of {info['columns'][0]!r} for the last {info['horizon']} steps (held out):")
        shown = range(info["horizon"]) if info["horizon"] <= 8 else [*range(4), *range(info["horizon"] - 2, info["horizon"])]
        for h in shown:
            interval = f"  [{outputs[h, 0]:.4g}, {outputs[h, -1]:.4g}]" if quantiles else ""
            when = times[h] or f"t+{h + 1}"
            lines.append(f"  {when:>19}  forecast {point[h]:10.4g}{interval}  actual {actual[-1, h]:10.4g}")
            if h == 3 and info["horizon"] > 8:
                lines.append(f"  {'...':>19}")
        return lines

    def evaluate_export(self, loaded, data, options=None):
        import tensorflow as tf

        x, _ = data.raw["test"]
        inputs = x if isinstance(x, dict) else {"window": x}
        out = loaded.signatures["serving_default"](**{k: tf.constant(v, tf.float32) for k, v in inputs.items()})
        outputs = out["quantiles"] if data.info["quantiles"] else out["forecast"]
        metrics = self._score(np.asarray(outputs, np.float64), data)
        plot = (options or {}).get("plot")
        if plot:
            from rnnapps.tasks.forecasting.plot import plot_forecast

            plot_forecast(plot, data, np.asarray(outputs, np.float64))
            metrics["plot"] = str(plot)
        return metrics

    def evaluation_lines(self, metrics):
        """With several test windows: the MASE of each, per method."""
        if "backtest" not in metrics:
            return []
        return _per_origin_table(metrics["backtest"]["per_origin"])

    def add_arguments(self, command, parser):
        if command == "evaluate":
            parser.add_argument(
                "--plot", metavar="PNG",
                help="draw history, forecast, interval and actuals of the last test window",
            )

    # --- Prediction -----------------------------------------------------

    def predict_export(self, loaded, inputs, metadata, options=None):
        import tensorflow as tf

        info = metadata.get("data")
        if not info:
            raise TaskError("the export has no assets.extra/rnnapps.json; re-export it with this rnnapps")
        window, future, last_time = _read_history(inputs, info, metadata.get("config", {}))
        arrays = {"window": window} if future is None else {"window": window, "future": future}
        out = loaded.signatures["serving_default"](**{k: tf.constant(v[None], tf.float32) for k, v in arrays.items()})
        forecast = out["forecast"].numpy()[0]
        quantiles = info["quantiles"]
        bounds = out["quantiles"].numpy()[0] if quantiles else None
        times = _future_times(last_time, info["step"], len(forecast))
        predictions = []
        for h, value in enumerate(forecast):
            prediction = {"step": h + 1, "time": times[h], "forecast": round(float(value), 6)}
            if quantiles:
                prediction["quantiles"] = {str(q): round(float(v), 6) for q, v in zip(quantiles, bounds[h])}
            predictions.append(prediction)
        return predictions

    def format_prediction(self, p):
        interval = ""
        if "quantiles" in p:
            values = list(p["quantiles"].values())
            interval = f"\t[{values[0]:.6g}, {values[-1]:.6g}]"
        return f"{p['time'] or 't+' + str(p['step'])}\t{p['forecast']:.6g}{interval}"


def _baseline_label(name, seasons):
    """`seasonal_naive_48` -> "seasonal naive (48)", `mstl` -> "MSTL"."""
    if name == "mstl":
        return "MSTL"
    if name == "seasonal_naive" and len(seasons) > 1:
        return f"seasonal naive ({seasons[-1]})"
    if name.startswith("seasonal_naive_"):
        return f"seasonal naive ({name.rpartition('_')[2]})"
    return name.replace("_", " ")


def _origin_labels(data):
    """Each test window's first forecast time (the date alone at midnights), or its row number."""
    import pandas as pd

    times, origins = data.raw["series"].times, data.raw["origins"]
    if times is None:
        return list(origins)
    labels = [str(pd.Timestamp(times[o])) for o in origins]
    if all(label.endswith(" 00:00:00") for label in labels):
        return [label[:10] for label in labels]
    return labels


def _per_origin_table(rows):
    """`backtest.per_origin` as lines of a table: a test window a line, MASE per method."""
    names = [name for name in rows[0] if name != "origin"]
    width = max(len("origin"), *(len(str(row["origin"])) for row in rows))
    lines = ["MASE per test window:", f"  {'origin':<{width}}" + "".join(f"  {name:>6}" for name in names)]
    for row in rows:
        cells = "".join(f"  {row[name]:>{max(len(name), 6)}.3f}" for name in names)
        lines.append(f"  {str(row['origin']):<{width}}{cells}")
    return lines


def _read_history(inputs, info, config):
    """(window [lookback, features], future [horizon, K] or None, last time
    or None) from `predict`'s inputs.

    Inputs are numbers (a single-column model), one CSV/TSV path, or the
    lines of a CSV (what the CLI reads from stdin for '-'). A model with
    known-future covariates (`future_columns`) reads them from the file's
    last `horizon` rows, whose target is left empty.
    """
    from rnnapps.tasks.forecasting.data import read_table

    columns = info["columns"]
    future_columns = info.get("future_columns") or []
    try:
        numbers = [float(text) for text in inputs]
    except ValueError:
        numbers = None
    if numbers is not None:
        if len(columns) != 1:
            raise TaskError(f"this model reads {len(columns)} columns ({', '.join(columns)}); give a CSV file")
        values, times = np.asarray(numbers, np.float64)[:, None], None
    else:
        if len(inputs) == 1:
            source, name = inputs[0], inputs[0]
        else:
            import io

            source, name = io.StringIO("\n".join(inputs)), "the CSV from stdin"
        values, _, times = read_table(source, columns, config.get("time_column"), name=name)
    future = None
    if future_columns:
        # (A model with covariates has several columns: `values` came from a file.)
        values, future, times = _split_future(values, times, info, name)
    lookback = info["lookback"]
    if len(values) < lookback:
        raise TaskError(f"the model reads the last {lookback} steps; the history has {len(values)}")
    window = values[-lookback:]
    if not np.isfinite(window).all():
        raise TaskError("the last window of the history holds missing or infinite values")
    return window.astype(np.float32), future, None if times is None else times[-1]


def _split_future(values, times, info, name):
    """(history, future [horizon, K], history's times) of a file whose last
    `horizon` rows give the known-future covariates, target left empty."""
    columns, future_columns, horizon = info["columns"], info["future_columns"], info["horizon"]
    given = np.flatnonzero(~np.isnan(values[:, 0]))
    trailing = len(values) - (given[-1] + 1 if len(given) else 0)
    if trailing != horizon:
        raise TaskError(
            f"{name}: this model forecasts {horizon} steps from the future values of "
            f"{', '.join(future_columns)}; the file must end with {horizon} rows that give them, with "
            f"{columns[0]!r} left empty (it ends with {trailing})"
        )
    index = [columns.index(c) for c in future_columns]
    future = values[-horizon:][:, index]
    if not np.isfinite(future).all():
        raise TaskError(f"{name}: the last {horizon} rows must give every value of {', '.join(future_columns)}")
    return values[:-horizon], future.astype(np.float32), None if times is None else times[:-horizon]



def build_model(config, info):
    """A compiled forecaster; see `rnnapps.tasks.forecasting.model`."""
    from rnnapps.tasks.forecasting import model

    return model.build_model(config, info)


class Forecaster:
    """A recurrent forecaster fit on your own series, on any Keras backend.

    `from_data` fits a `ForecastingPreprocessor` on a series (the windows'
    lookback and horizon, its seasons, the scale; for the seasonal
    structure its smoothing weights) and builds the compiled model from
    it; `fit` trains on the series' windows (cut in `tf.data`, also on
    JAX), `predict` forecasts the next `horizon` steps after a history,
    `evaluate` scores the series' last horizon against naive and seasonal
    naive, and `export` writes a TensorFlow SavedModel that takes raw
    windows and returns forecasts in the series' units, as
    `rnnapps train forecasting` does.

    A series is a NumPy array (`[steps]`, or `[steps, columns]`: the
    target first, the other columns covariates), a list of numbers, a
    pandas Series or DataFrame (a `DatetimeIndex`, or a time column, gives
    the time step and from it the seasons, as for the command line's CSV
    files: weekly data has a season of 52), or the name of a named series
    or the path of a CSV file. Missing values are an error unless
    `fill="interpolate"` or `"ffill"` is asked for.

    Args (of `from_data`):
        series: the series the preprocessor is fit on.
        config: a `ForecastingConfig` (default: its defaults); its `data`
            becomes the series' name when `series` names one (or a file),
            else `"(in memory)"`.
        **overrides: any of its fields, e.g. `horizon=12, season=12,
            quantiles="0.1,0.5,0.9"`.

    Attributes:
        model: the compiled `keras.Model`, `[batch, lookback, columns]` raw
            windows in, `[batch, horizon]` (or `[batch, horizon,
            quantiles]`) forecasts out.
        preprocessor: the `ForecastingPreprocessor`.
        config: the `ForecastingConfig`.

    Example:

    >>> import numpy as np
    >>> from rnnapps.tasks.forecasting import Forecaster
    >>> steps = np.arange(120)
    >>> series = 10 + np.sin(2 * np.pi * steps / 12) + 0.05 * steps  # a season of 12 on a trend
    >>> forecaster = Forecaster.from_data(series, season=12, horizon=6, units=4)
    >>> history = forecaster.fit(series, epochs=2, verbose=0)
    >>> forecaster.predict(series)["forecast"].shape                  # the next 6 steps
    (6,)
    >>> scores = forecaster.evaluate(series)   # the last 6 steps, forecast from those before
    >>> sorted(scores)
    ['model', 'naive', 'seasonal_naive']
    >>> sorted(scores["model"])
    ['mae', 'mase', 'rmse', 'smape']
    """

    def __init__(self, model, preprocessor, config, info=None):
        self.model = model
        self.preprocessor = preprocessor
        self.config = config
        self._info = dict(info or {})

    @classmethod
    def from_data(cls, series, config=None, **overrides):
        """A `Forecaster` whose preprocessor is fit on `series` and whose
        model is built (untrained) from it; see the class docstring."""
        import keras

        from rnnapps.tasks.forecasting.preprocessor import ForecastingPreprocessor
        from rnnapps.tasks.forecasting.preprocessor import check_config

        config = _config(config, overrides)
        check_config(config)
        # What the export records as the run's data (`rnnapps evaluate`
        # reads it again): the named series or file, else none it can load.
        source = str(series) if isinstance(series, (str, pathlib.Path)) else "(in memory)"
        config = dataclasses.replace(config, data=source)
        series = as_series(series, config)
        preprocessor = ForecastingPreprocessor.fit(series, config)
        keras.utils.set_random_seed(config.seed)
        model = build_model(config, preprocessor.info)
        forecaster = cls(model, preprocessor, config)
        forecaster._remember(series)
        return forecaster

    @property
    def info(self):
        """What an export records about the data (`assets.extra/rnnapps.json`)."""
        return {**self._info, **self.preprocessor.info}

    def _remember(self, series):
        from rnnapps.tasks.forecasting.data import recent_windows

        windows = len(series.values) - self.preprocessor.lookback - self.preprocessor.horizon + 1
        self._info.update({
            "name": series.name, "sizes": {"train": windows, "validation": 0, "test": 0},
            "steps": len(series.values), "filled": series.filled,
            **recent_windows(series, self.preprocessor.lookback),
        })
        if self.preprocessor.future_columns:
            # An example for clients: the last window and the horizon's
            # covariates that followed it.
            x, _ = self.preprocessor.windows(series.values, [len(series.values) - self.preprocessor.horizon])
            self._info.update(recent_windows(series, self.preprocessor.lookback, x))

    def _series(self, x, name):
        return as_series(x, self.config, name, columns=self.preprocessor.columns)

    def fit(self, series, validation_data=None, epochs=None, batch_size=None, callbacks=None,
            verbose="auto"):
        """Trains on every `(window, next horizon)` of `series`; the Keras `History`.

        Args:
            series: the training series (the columns `from_data` saw).
            validation_data: another series (e.g. the latest part of yours,
                held out): its windows are scored after every epoch, and
                training stops after `config.patience` epochs without
                improvement, keeping the best weights (those before
                training among them), as `rnnapps train` does.
            epochs: default `config.epochs`.
            batch_size: windows per step (default `config.batch_size`).
            callbacks, verbose: as for `keras.Model.fit`.
        """
        from rnnapps.callbacks import EarlyStoppingFromStart

        batch_size = batch_size or self.config.batch_size
        series = self._series(series, "series")
        train = self.preprocessor.dataset(series.values, batch_size, shuffle=True, seed=self.config.seed)
        callbacks = list(callbacks or [])
        validation = None
        if validation_data is not None:
            values = self._series(validation_data, "validation_data").values
            validation = self.preprocessor.dataset(values, batch_size)
            callbacks.append(EarlyStoppingFromStart(
                validation, monitor="val_loss", patience=self.config.patience, restore_best_weights=True,
            ))
        history = self.model.fit(
            train, validation_data=validation, epochs=epochs or self.config.epochs, callbacks=callbacks,
            verbose=verbose, shuffle=False,  # the windows reshuffle every epoch
        )
        self._remember(series)
        return history

    def predict(self, history, future=None):
        """The forecast of the `horizon` steps after `history`.

        Args:
            history: a series of at least `lookback` steps (its last
                `lookback` are read), or a NumPy batch of windows `[batch,
                lookback, columns]`.
            future: with known-future covariates (`future_columns`), their
                values over the horizon, `[horizon, K]` (`[batch, horizon,
                K]` for a batch).

        Returns:
            `{"forecast": [horizon]}` in the series' units, with
            `"quantiles": [horizon, len(quantiles)]` for a quantile model
            (a leading batch axis for a batch of windows).
        """
        lookback = self.preprocessor.lookback
        batched = isinstance(history, np.ndarray) and history.ndim == 3
        if batched:
            window = self.preprocessor.check(history.reshape(-1, history.shape[-1]), "history")
            window = window.reshape(history.shape)
            if history.shape[1] != lookback:
                raise TaskError(f"history windows must hold {lookback} steps (the lookback); got "
                                f"shape {history.shape}")
        else:
            values = self.preprocessor.check(self._series(history, "history").values, "history")
            if len(values) < lookback:
                raise TaskError(f"the forecaster reads the last {lookback} steps; history has {len(values)}")
            window = values[None, -lookback:]
        inputs = window
        if self.preprocessor.future_columns:
            if future is None:
                raise TaskError(f"this forecaster needs future: the values of "
                                f"{', '.join(self.preprocessor.future_columns)} over the horizon")
            future = np.asarray(future, np.float32)
            future = future if batched else future[None]
            shape = (len(window), self.preprocessor.horizon, len(self.preprocessor.future_columns))
            if future.shape != shape or not np.isfinite(future).all():
                raise TaskError(f"future must be finite numbers of shape {shape[1:] if not batched else shape}; "
                                f"got {future.shape[1:] if not batched else future.shape}")
            inputs = {"window": window, "future": future}
        outputs = np.asarray(self.model.predict(inputs, verbose=0))
        if not batched:
            outputs = outputs[0]
        if self.preprocessor.quantiles:
            return {"forecast": outputs[..., median_index(self.preprocessor.quantiles)], "quantiles": outputs}
        return {"forecast": outputs}

    def evaluate(self, series):
        """Scores of the model and the baselines on the last horizon of
        `series` (the last `config.backtest` horizons), forecast from the
        steps before it, MASE scaled by the seasonal-naive error of those
        steps: `{"model": {"mae", "rmse", "mase", "smape"}, "naive": ...,
        "seasonal_naive": ...}` (as `rnnapps train` reports its test
        split; with quantiles, `coverage` and `interval_width` too)."""
        from rnnapps.tasks.forecasting.data import seasonal_mae

        series = self._series(series, "series")
        values = self.preprocessor.check(series.values)
        p = self.preprocessor
        first_origin = len(values) - self.config.backtest * p.horizon
        if first_origin < p.lookback or first_origin <= p.mase_season:
            raise TaskError(
                f"the series has {len(values)} steps; evaluating the last {self.config.backtest} "
                f"horizon(s) of {p.horizon} needs more than {max(p.lookback, p.mase_season)} steps before them"
            )
        origins = [first_origin + k * p.horizon for k in range(self.config.backtest)]
        x, y = p.windows(values, origins)
        info = {**p.info, "mase_scale": seasonal_mae(values[:first_origin, 0], p.mase_season)}
        data = TaskData(None, None, None, info, {"series": series, "origins": origins, "test": (x, y)})
        outputs = np.asarray(self.model.predict(x, verbose=0), np.float64)
        return ForecastingTask()._score(outputs, data)

    def export(self, export_dir=None):
        """Writes the model as a SavedModel (TensorFlow Serving's layout,
        `export_dir/forecasting/<version>/`, default `config.export_dir`),
        built on TensorFlow whatever backend trained it; returns the
        version folder. It takes `window` `[batch, lookback, columns]` in
        the series' units and returns `forecast` (and `quantiles`)."""
        from rnnapps.task import export_checkpoint
        from rnnapps.task import export_metadata

        with tempfile.TemporaryDirectory(prefix="rnnapps-forecaster-") as folder:
            folder = pathlib.Path(folder)
            self.model.save(str(folder / "model.keras"))
            metadata = export_metadata(ForecastingTask(), self.config, self.info)
            (folder / "task.json").write_text(json.dumps(metadata, indent=2, default=str))
            return pathlib.Path(export_checkpoint(
                ForecastingTask.name, folder, export_dir or self.config.export_dir))


def _config(config, overrides):
    """`config` (default `ForecastingConfig()`) with `overrides` applied."""
    if config is None:
        config = ForecastingConfig()
    if not isinstance(config, ForecastingConfig):
        raise ValueError(f"config must be a ForecastingConfig. Received: config={config!r}")
    fields = {field.name for field in dataclasses.fields(ForecastingConfig)}
    unknown = [name for name in overrides if name not in fields]
    if unknown:
        raise ValueError(f"{unknown[0]} is not a ForecastingConfig field (see its fields: "
                         f"{', '.join(sorted(fields))}). Received: {unknown[0]}={overrides[unknown[0]]!r}")
    return dataclasses.replace(config, **overrides)


_FILL_HINT = ("fill them first (e.g. pandas' interpolate()), or pass fill='interpolate' or "
              "fill='ffill'")


def as_series(x, config, name="series", columns=None):
    """The `data.Series` of the Python API's input `x`: a NumPy array
    (`[steps]` or `[steps, columns]`), a list, a pandas Series or DataFrame
    (its `DatetimeIndex` or time column gives the time step and seasons),
    or a named series or a CSV path (`rnnapps train --data`'s).

    `columns`: the columns a DataFrame must give (the forecaster's); by
    default `config.value_column` or its numeric columns.
    """
    from rnnapps.tasks.forecasting.data import load_series
    from rnnapps.tasks.forecasting.data import regular_series

    if isinstance(x, (str, pathlib.Path)):
        series = load_series(dataclasses.replace(config, data=str(x)))
        if columns is not None and series.columns != list(columns):
            raise TaskError(f"{x} has columns {series.columns}; the forecaster reads {list(columns)}")
        return series
    times = None
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):  # pandas DataFrame
        values, names, times = _frame_values(x, config, name, columns)
    elif hasattr(x, "to_numpy") and hasattr(x, "index"):  # pandas Series
        values = _numbers(x.to_numpy(), name)
        names = list(columns) if columns is not None else [str(x.name) if x.name is not None else "value"]
        times = _index_times(x)
    else:
        if hasattr(x, "as_numpy_iterator"):  # tf.data.Dataset of steps
            x = list(x.as_numpy_iterator())
        values = _numbers(x, name)
        names = list(columns) if columns is not None else (
            ["value"] + [f"column_{i}" for i in range(1, values.shape[1])])
    if len(values) == 0:
        raise TaskError(f"{name} is empty")
    if values.shape[1] != len(names):
        raise TaskError(f"{name} has {values.shape[1]} column(s); the forecaster reads {len(names)} "
                        f"({', '.join(names)})")
    return regular_series(name, values, names, times, config, fill_hint=_FILL_HINT)


def _numbers(x, name):
    """`x` as float64 `[steps, columns]`."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TaskError(f"{name} must be numbers (an array, a list, a pandas Series or DataFrame), "
                        f"or a named series or CSV path. Received: {x!r:.60}")
    try:
        values = np.asarray(x, np.float64)
    except (TypeError, ValueError):
        raise TaskError(f"{name} must be numbers: an array [steps] or [steps, columns], a pandas Series "
                        f"or DataFrame. Received: {type(x).__name__}")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise TaskError(f"{name} must be [steps] or [steps, columns]; got shape {values.shape}")
    return values


def _index_times(x):
    """The timestamps of a pandas object's `DatetimeIndex` (or None)."""
    import pandas as pd

    if isinstance(x.index, pd.DatetimeIndex):
        return x.index.tz_localize(None).to_numpy() if x.index.tz is not None else x.index.to_numpy()
    return None


def _frame_values(frame, config, name, columns):
    """(values, columns, times) of a DataFrame, as `data.read_table` reads a file's."""
    import pandas as pd

    from rnnapps.tasks.forecasting.data import _TIME_NAMES
    from rnnapps.tasks.forecasting.data import _parse_times
    from rnnapps.tasks.forecasting.data import _with_future_columns
    from rnnapps.tasks.forecasting.data import split_columns

    time_column = config.time_column
    if time_column is None:
        time_column = next((c for c in frame.columns if str(c).strip().lower() in _TIME_NAMES), None)
    elif time_column not in frame.columns:
        raise TaskError(f"{name} has no column {time_column!r} (time_column); it has: "
                        f"{', '.join(map(str, frame.columns))}")
    times = _parse_times(frame[time_column], name) if time_column is not None else _index_times(frame)
    if columns is None:
        chosen = split_columns(config.value_column)
        columns = _with_future_columns(chosen, config) if chosen else [
            c for c in frame.columns if c != time_column and pd.api.types.is_numeric_dtype(frame[c])]
        if not columns:
            raise TaskError(f"{name} has no numeric column to forecast")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TaskError(f"{name} has no column {missing[0]!r}; it has: {', '.join(map(str, frame.columns))}")
    try:
        values = frame[list(columns)].to_numpy(np.float64)
    except (TypeError, ValueError):
        raise TaskError(f"{name}: the columns {', '.join(map(str, columns))} must be numeric")
    return values, [str(c) for c in columns], times
