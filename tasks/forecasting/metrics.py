"""The forecasting field's metrics and the two baselines every forecast must beat.

All functions take numpy arrays in the series' own units; `actual` and
`forecast` are `[windows, horizon]`.

Example:

>>> import numpy as np
>>> history = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
>>> seasonal_naive(history, horizon=3, season=2).tolist()
[5.0, 6.0, 5.0]
>>> naive(history, horizon=2).tolist()
[6.0, 6.0]
>>> m = forecast_metrics(np.array([[7.0, 8.0]]), np.array([[6.0, 6.0]]), mase_scale=1.0)
>>> m["mae"], m["mase"]
(1.5, 1.5)
"""

import numpy as np

__all__ = ["naive", "seasonal_naive", "forecast_metrics", "baseline_forecasts"]


def naive(history, horizon):
    """The last value, repeated: the random-walk forecast."""
    return np.repeat(np.asarray(history, np.float64)[-1], horizon)


def seasonal_naive(history, horizon, season):
    """The last full season, repeated: `ŷ[t+h] = y[t+h-S·ceil(h/S)]`."""
    history = np.asarray(history, np.float64)
    if season <= 1 or len(history) < season:
        return naive(history, horizon)
    last_season = history[-season:]
    return np.resize(last_season, horizon)


def baseline_forecasts(target, origins, horizon, season):
    """Naive and seasonal-naive forecasts `[windows, horizon]` at each origin."""
    return {
        "naive": np.stack([naive(target[:o], horizon) for o in origins]),
        "seasonal_naive": np.stack([seasonal_naive(target[:o], horizon, season) for o in origins]),
    }


def forecast_metrics(actual, forecast, mase_scale, lower=None, upper=None):
    """MAE, RMSE, MASE, sMAPE (and interval coverage and width).

    Args:
        actual, forecast: `[windows, horizon]`.
        mase_scale: the in-sample seasonal-naive MAE of the training part
            (Hyndman & Koehler 2006); MASE < 1 beats that naive method
            in-sample, and comparing with the seasonal-naive forecast's own
            MASE on the same windows says whether a model beats it here.
        lower, upper: optional interval bounds, same shape.

    Returns:
        A dict of floats. sMAPE is in percent (0-200, the M4 definition).
    """
    actual = np.asarray(actual, np.float64)
    forecast = np.asarray(forecast, np.float64)
    error = actual - forecast
    mae = float(np.mean(np.abs(error)))
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(2 * np.abs(error), denominator, out=np.zeros_like(error), where=denominator > 0)
    metrics = {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mase": mae / mase_scale if mase_scale and mase_scale > 0 else float("nan"),
        "smape": float(100 * np.mean(ratio)),
    }
    if lower is not None and upper is not None:
        inside = (actual >= np.asarray(lower)) & (actual <= np.asarray(upper))
        metrics["coverage"] = float(np.mean(inside))
        metrics["interval_width"] = float(np.mean(np.asarray(upper) - np.asarray(lower)))
    return {k: round(v, 5) for k, v in metrics.items()}
