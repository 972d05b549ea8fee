"""Time-series forecasting: a window of history in, the next `horizon` values out.

Use it from the command line (`rnnapps train forecasting`) or from Python:

    from rnnapps.tasks import forecasting

    config = forecasting.ForecastingConfig(data="air_passengers", quantiles="0.1,0.5,0.9")
    data = forecasting.load_data(config)      # tf.data: (window, next values)
    model = forecasting.build_model(config, data.info)
    model.fit(data.train, validation_data=data.validation, epochs=config.epochs)
    print(forecasting.task.test_metrics(model, data))   # model vs naive, seasonal naive (, MSTL)

The model, the baselines and the metrics (MAE, RMSE, MASE, sMAPE, interval
coverage) are in `model.py`, `metrics.py`; the series and the splits in
`data.py`.
"""

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskError
from rnnapps.tasks.forecasting import metrics as forecast_metrics_module
from rnnapps.tasks.forecasting.config import PRESETS
from rnnapps.tasks.forecasting.config import ForecastingConfig
from rnnapps.tasks.forecasting.config import median_index
from rnnapps.tasks.forecasting.data import NAMED_SERIES
from rnnapps.tasks.forecasting.data import load_data
from rnnapps.tasks.forecasting.data import load_series

__all__ = [
    "ForecastingConfig", "PRESETS", "NAMED_SERIES", "ForecastingTask", "load_data",
    "load_series", "build_model", "task",
]


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


task = ForecastingTask()


def build_model(config, info):
    """A compiled forecaster; see `rnnapps.tasks.forecasting.model`."""
    from rnnapps.tasks.forecasting import model

    return model.build_model(config, info)
