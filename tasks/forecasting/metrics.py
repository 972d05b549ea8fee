"""The forecasting field's metrics and the baselines every forecast must beat.

All functions take numpy arrays in the series' own units; `actual` and
`forecast` are `[windows, horizon]`. Every series gets naive and seasonal
naive; a series with several seasons (sub-daily data: daily and weekly) also
gets seasonal naive for each shorter season and MSTL (statsforecast), a
strong simple peer on such data.

Example:

>>> import numpy as np
>>> history = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
>>> seasonal_naive(history, horizon=3, season=2).tolist()
[5.0, 6.0, 5.0]
>>> naive(history, horizon=2).tolist()
[6.0, 6.0]
>>> sorted(baseline_forecasts(history, origins=[4], horizon=2, seasons=2))
['naive', 'seasonal_naive']
>>> m = forecast_metrics(np.array([[7.0, 8.0]]), np.array([[6.0, 6.0]]), mase_scale=1.0)
>>> m["mae"], m["mase"]
(1.5, 1.5)
"""

import numpy as np

__all__ = ["naive", "seasonal_naive", "mstl", "forecast_metrics", "baseline_forecasts"]

# MSTL is refit at each origin on at most this many of the longest seasons,
# for speed: on 2 CPU cores eight weeks of half-hourly data (2,688 steps) take
# about a second per origin, a whole year (17,520 steps) about nine.
MSTL_SEASONS_OF_HISTORY = 8


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


def mstl(history, horizon, seasons, seasons_of_history=MSTL_SEASONS_OF_HISTORY):
    """MSTL's forecast: a seasonal component per season, AutoETS on the rest.

    Multiple STL (Bandara, Hyndman & Bergmeir 2021; statsforecast's `MSTL`)
    peels off one seasonal component per period, then extrapolates the
    deseasonalized series with a non-seasonal ETS model
    (`AutoETS(model="ZZN")`), fit on the last `seasons_of_history` longest
    seasons of `history` (None: all of it).
    """
    from statsforecast.models import MSTL
    from statsforecast.models import AutoETS

    seasons = sorted(seasons)
    history = np.asarray(history, np.float64)
    if seasons_of_history is not None:
        history = history[-seasons_of_history * seasons[-1]:]
    model = MSTL(season_length=seasons, trend_forecaster=AutoETS(model="ZZN"))
    return np.asarray(model.forecast(y=history, h=horizon)["mean"], np.float64)


def baseline_forecasts(target, origins, horizon, seasons):
    """Baseline forecasts `[windows, horizon]` at each origin, by name.

    `naive`, and `seasonal_naive` with the longest of `seasons` (an int or a
    list); with several seasons, also `seasonal_naive_<S>` for each shorter
    season S and `mstl`.
    """
    seasons = sorted(seasons) if isinstance(seasons, (list, tuple)) else [seasons]
    forecasts = {
        "naive": np.stack([naive(target[:o], horizon) for o in origins]),
        "seasonal_naive": np.stack([seasonal_naive(target[:o], horizon, seasons[-1]) for o in origins]),
    }
    for season in seasons[:-1]:
        forecasts[f"seasonal_naive_{season}"] = np.stack(
            [seasonal_naive(target[:o], horizon, season) for o in origins]
        )
    if len(seasons) > 1:
        forecasts["mstl"] = np.stack([mstl(target[:o], horizon, seasons) for o in origins])
    return forecasts


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
