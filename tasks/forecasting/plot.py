"""A picture of a forecast: history, forecast, interval and actuals."""

import pathlib

import numpy as np

from rnnapps.figures import save_figure
from rnnapps.task import TaskError

__all__ = ["plot_forecast"]


def plot_forecast(path, data, outputs, seasons=3):
    """Draws the last test window of `data` with the model's `outputs` to a PNG.

    Args:
        path: the image to write (written whole or not at all).
        data: the task's `TaskData` (its `raw["series"]`, `raw["origins"]`).
        outputs: the model's outputs on the test windows, `[windows, horizon]`
            or `[windows, horizon, quantiles]`.
        seasons: how many seasons of history to show before the forecast.
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
    origin = data.raw["origins"][-1]
    horizon, season = info["horizon"], info["season"]
    start = max(0, origin - max(seasons * season, 2 * horizon, info["lookback"]))
    axis = np.arange(len(series.values)) if series.times is None else series.times
    target = series.values[:, 0]
    future = slice(origin, origin + horizon)
    quantiles = info["quantiles"]
    if quantiles:
        point = outputs[-1, :, median_index(quantiles)]
    else:
        point = outputs[-1]

    figure, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    ax.plot(axis[start:origin], target[start:origin], color="0.3", lw=1.2, label="history")
    ax.plot(axis[future], target[future], color="black", lw=1.2, ls="--", label="actual")
    ax.plot(axis[future], seasonal_naive(target[:origin], horizon, season), color="tab:orange",
            lw=1, label=f"seasonal naive (season {season})")
    if quantiles:
        ax.fill_between(axis[future], outputs[-1, :, 0], outputs[-1, :, -1], color="tab:blue",
                        alpha=0.2, label=f"interval {quantiles[0]:g}-{quantiles[-1]:g}")
    ax.plot(axis[future], point, color="tab:blue", lw=1.6, label="rnnapps forecast")
    ax.axvline(axis[origin - 1], color="0.6", lw=0.8)
    column = info["columns"][0]
    title = info["name"] if column == info["name"] else f"{info['name']}: {column}"
    ax.set_title(f"{title}, last {horizon} steps held out")
    ax.legend(loc="best", fontsize=8)
    figure.tight_layout()
    try:
        save_figure(figure, path, format="png")
    finally:
        plt.close(figure)
    return path
