"""Settings of the forecasting task: a dataclass, presets, CLI flags override."""

import dataclasses

from rnnapps.task import TaskError
from rnnapps.task import config_field as _field


@dataclasses.dataclass
class ForecastingConfig:
    # === Data ===
    data: str = _field(
        "co2",
        "a series name (co2, air_passengers, sunspots, nottem, a10, macrodata, taylor, "
        "elecdemand, seattle_temps, sf_temps) or the path of a CSV/TSV file",
    )
    value_column: str = _field(
        None,
        "column(s) to model, target first, the rest covariates (repeat the flag or separate "
        "with commas; default: every numeric column of a file)",
        multiple=True,
    )
    # Known-future covariates (DeepAR's): values known in advance for the
    # forecast steps too, e.g. a workday/holiday flag (elecdemand's
    # `workday`): the model takes them over the horizon as a second input.
    future_columns: str = _field(
        None,
        "covariate column(s) whose values are known for the forecast steps too (a workday or "
        "holiday flag, a calendar column): the model takes them over the horizon as a second "
        "input, 'future', and forecasts a day unlike the same day a week before from the most "
        "recent similar day (added to the value columns if missing)",
        multiple=True,
    )
    time_column: str = _field(
        None, "column of timestamps (default: a column named date/time/timestamp/ds/Date Time)"
    )
    # Missing values: never filled silently, except in the named series that
    # are known to have gaps (co2: 59 missing weeks, linearly interpolated).
    fill: str = _field(
        "auto",
        "what to do with missing values and missing timestamps: 'none' rejects them, "
        "'interpolate' (linear in time), 'ffill' (last value); 'auto' interpolates the "
        "named series known to have gaps and rejects them in files",
        choices=("auto", "none", "interpolate", "ffill"),
    )
    every: int = _field(
        1, "keep every N-th row (e.g. 6 turns Jena's 10-minute data into hourly data)"
    )
    # === Windows (0: the series' own default) ===
    horizon: int = _field(0, "steps to forecast (0: the series' default, e.g. 52 weeks for co2)")
    # Two seasons of history let the network see the seasonal shape twice;
    # the seasonal structure's smoothing learns from up to 8.
    lookback: int = _field(
        0, "steps of history the model reads (0: two of the longest season, at least 2x horizon; "
        "for the seasonal structure up to 8 of the longest season, as many as leave 3 for "
        "training windows, plus one step)",
    )
    # Sub-daily data has a daily and a weekly season (48 and 336 half-hours).
    season: int | str = _field(
        0,
        "season length(s) for the baselines, MASE and the seasonal structure, several separated "
        "by commas, e.g. 48,336 (0: from the time step; daily and weekly for sub-daily data); "
        "the time step's shorter seasons that divide the longest given one are added (without "
        "timestamps, the seventh of a multiple of 7 of 28 or more: 336 -> 48,336)",
    )
    # The longest season by default, the season of the `seasonal_naive`
    # baseline: its in-sample MASE is then 1.
    mase_season: int = _field(
        0, "season of the seasonal-naive MAE that scales MASE (0: the longest season)"
    )
    # === Model ===
    # With several seasons the network corrects a seasonal baseline rather
    # than learning 336-step seasons from raw steps (model.py; on taylor,
    # MASE 1.01 -> about 0.48 over a week of days).
    structure: str = _field(
        "auto",
        "'seasonal': a per-step mix of seasonal-naive candidates (one and two periods of each "
        "season back) and multi-seasonal exponential smoothing, that the recurrent network "
        "corrects; 'network': the recurrent network alone; 'auto': seasonal with the direct "
        "decoder for series with several seasons, or one holding two horizons or more",
        choices=("auto", "seasonal", "network"),
    )
    cell: str = _field("lstm", "recurrent cell", choices=("lstm", "gru", "irnn"))
    decoder: str = _field(
        "direct",
        "'direct': one Dense layer emits the whole horizon; 'autoregressive': the "
        "recurrent cell runs on, fed its own forecasts",
        choices=("direct", "autoregressive"),
    )
    # Each window is taken relative to its own recent level, not one global
    # mean: a network fed global levels cannot extrapolate a trend (see
    # model.py). The mean of the last season is a steadier level than the
    # last value alone (see docs/forecasting.md for the comparison).
    normalization: str = _field(
        "season",
        "reference level each window is taken relative to: the mean of its last 'season', "
        "its 'last' value, or 'standard' (one global mean: the keras-io recipe)",
        choices=("season", "last", "standard"),
    )
    transform: str = _field(
        "none",
        "'log' models the logarithm of every column (positive series whose seasonal swings "
        "grow with their level)",
        choices=("none", "log"),
    )
    quantiles: str = _field(
        None, "train quantile outputs with the pinball loss, e.g. 0.1,0.5,0.9 (intervals)"
    )
    units: int = _field(64, "recurrent units")
    dropout: float = _field(0.0, "dropout on the encoder output (direct decoder)")
    # MASE and MAE are absolute-error metrics: train on the error they score.
    loss: str = _field("mae", "point-forecast loss (without --quantiles)", choices=("mae", "mse"))
    # === Training ===
    epochs: int = _field(50, "most epochs; early stopping may end sooner")
    batch_size: int = _field(32, "windows per training step")
    learning_rate: float = _field(1e-3, "Adam learning rate")
    clipnorm: float = _field(1.0, "ClippedOptimizer threshold on the global gradient norm")
    patience: int = _field(5, "epochs without validation improvement before stopping")
    validation_fraction: float = _field(
        0.1, "the latest part of the training windows held out for early stopping (the seasonal "
        "structure holds out at least one longest season of windows when there are two)"
    )
    backtest: int = _field(
        1,
        "test on the last K horizons (rolling origin); the model is trained on what "
        "precedes the first of them",
    )
    seed: int = _field(0, "random seed (weights, shuffling)")
    # === Outputs ===
    export_dir: str = _field("saved_models", "exports go to EXPORT_DIR/forecasting/<version>/")
    checkpoint_dir: str = _field(
        None, "checkpoints (default: EXPORT_DIR/.checkpoints/forecasting/<run id>)"
    )
    tensorboard_dir: str = _field(None, "write TensorBoard logs here")


def parse_quantiles(text):
    """`"0.1,0.5,0.9"` -> `[0.1, 0.5, 0.9]`; `""` or None -> `[]`."""
    if not text:
        return []
    if isinstance(text, (list, tuple)):
        values = [float(q) for q in text]
    else:
        values = [float(q) for q in str(text).split(",") if q.strip()]
    return sorted(values)


def parse_seasons(value):
    """`"336,48"` -> `[48, 336]` (sorted); `24` -> `[24]`; `0`, `""` or None -> `[]`.

    Raises:
        TaskError: for a part that is not a positive whole number.
    """
    if value is None or str(value).strip() in ("", "0"):
        return []
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        seasons = [int(str(part).strip()) for part in parts]
    except ValueError:
        seasons = []
    if not seasons or any(s < 1 for s in seasons):
        raise TaskError(
            "--season must be a positive whole number, or several separated by commas "
            f"(e.g. 48,336), got {value!r}"
        )
    seasons = sorted(set(seasons))
    # A season of 1 step is no season: next to real ones it adds nothing.
    return [s for s in seasons if s > 1] if len(seasons) > 1 else seasons


def median_index(quantiles):
    """Index of the quantile used as the point forecast (the one nearest 0.5)."""
    return min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))


PRESETS = {
    "co2": ForecastingConfig(),
    "air_passengers": ForecastingConfig(data="air_passengers"),
    "sunspots": ForecastingConfig(data="sunspots"),
}
