"""A picture of a forecast: history, forecast, interval and actuals."""

import pathlib

import numpy as np

from rnnapps.figures import save_figure
from rnnapps.task import TaskError

__all__ = ["plot_forecast"]


def plot_forecast(path, data, outputs, seasons=3):
    """Draws the test windows of `data` with the model's `outputs` to a PNG.

    With one test window: its forecast after `seasons` seasons of history.
    With several (`--backtest K`): every window's forecast in turn (e.g. a
    week of next-day forecasts), after as much history.

    Args:
        path: the image to write (written whole or not at all).
        data: the task's `TaskData` (its `raw["series"]`, `raw["origins"]`).
        outputs: the model's outputs on the test windows, `[windows, horizon]`
            or `[windows, horizon, quantiles]`.
        seasons: how many seasons of history to show before a single forecast.
    """
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise TaskError(f"cannot write the plot {path}: no folder {path.parent}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnapps.tasks.forecasting.config import median_index
    from rnnapps.tasks.forecasting.metrics import seasonal_naive

    info = data.info
    series = data.raw["series"]
    origins = data.raw["origins"]
    horizon, season = info["horizon"], info["season"]
    if len(origins) > 1:
        shown = len(origins) * horizon
    else:
        shown = max(seasons * season, 2 * horizon, info["lookback"])
    start = max(0, origins[0] - shown)
    axis = np.arange(len(series.values)) if series.times is None else series.times
    target = series.values[:, 0]
    quantiles = info["quantiles"]
    point = outputs[..., median_index(quantiles)] if quantiles else outputs
    end = origins[-1] + horizon

    figure, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    ax.plot(axis[start:origins[0]], target[start:origins[0]], color="0.3", lw=1.2, label="history")
    ax.plot(axis[origins[0]:end], target[origins[0]:end], color="black", lw=1.2, ls="--",
            label="actual")
    for k, origin in enumerate(origins):
        future = slice(origin, origin + horizon)
        first = k == 0  # one legend entry per kind
        ax.plot(axis[future], seasonal_naive(target[:origin], horizon, season), color="tab:orange",
                lw=1, label=f"seasonal naive (season {season})" if first else None)
        if quantiles:
            ax.fill_between(axis[future], outputs[k, :, 0], outputs[k, :, -1], color="tab:blue",
                            alpha=0.2, label=f"interval {quantiles[0]:g}-{quantiles[-1]:g}" if first else None)
        ax.plot(axis[future], point[k], color="tab:blue", lw=1.6, label="rnnapps forecast" if first else None)
        ax.axvline(axis[origin - 1], color="0.6", lw=0.8)
    column = info["columns"][0]
    title = info["name"] if column == info["name"] else f"{info['name']}: {column}"
    if len(origins) > 1:
        ax.set_title(f"{title}: {len(origins)} forecasts of {horizon} steps, each from the data before it")
    else:
        ax.set_title(f"{title}, last {horizon} steps held out")
    ax.legend(loc="best", fontsize=8)
    figure.tight_layout()
    try:
        save_figure(figure, path, format="png")
    finally:
        plt.close(figure)
    return path
