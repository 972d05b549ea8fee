"""Forecasting MASE: rnnapps vs naive, seasonal naive, AutoETS and MSTL, same windows.

For each named series, `forecasting.load_data` makes the splits: the last
`--backtest` horizons are the test windows (their first steps are the
forecast origins), everything before the first origin is training data.
Every method forecasts the same test windows and is scored by the task's own
`metrics.forecast_metrics`, so the MASE scale (in-sample seasonal-naive MAE
of the training part) is the same for all of them.

- naive, seasonal naive: the task's baselines (`metrics.baseline_forecasts`);
  a series with several seasons (taylor, elecdemand: 48 and 336 half-hours;
  seattle_temps, sf_temps: 24 and 168 hours) gets seasonal naive for each.
- AutoETS: statsforecast's `AutoETS(season_length=S)` on the target history
  (S the shortest season), refit at each test origin.
- MSTL: statsforecast's `MSTL(season_length=S, trend_forecaster=AutoETS(model="ZZN"))`,
  refit at each origin (`metrics.mstl`): with several seasons, the task's own
  baseline (all seasons, the last 8 longest seasons of history: what `train`
  prints); with one, on the whole history (skipped when the season is shorter
  than 2).
- rnnapps: the `rnnapps train forecasting` model (default settings, or
  `--epochs`, `--cell`, `--decoder`, `--normalization`, `--transform`,
  `--structure`, `--future-columns`), trained once per seed on the windows before the first
  origin with early stopping on the validation windows, exactly as
  `rnnapps.task.train` fits it (without checkpoints; the weights before
  training count as a candidate, `EarlyStoppingFromStart`).

The table reports MASE on the held-out last horizon and, with `--backtest K`
(K > 1), over all K test windows; for rnnapps, the median over seeds with
the min-max range.

    python benchmarks/forecasting_quality.py                        # 9 series, 3 seeds
    python benchmarks/forecasting_quality.py --series co2,air_passengers,sunspots,a10,nottem
    python benchmarks/forecasting_quality.py --backtest 4 --seeds 0
    python benchmarks/forecasting_quality.py --series co2 --decoder autoregressive
    python benchmarks/forecasting_quality.py --series elecdemand --backtest 7 --future-columns workday
"""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One fresh model per seed: Keras's "triggered tf.function retracing" warnings are expected.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

import argparse
import statistics
import sys
import time

import keras
import numpy as np
from statsforecast.models import AutoETS

from rnnapps.callbacks import EarlyStoppingFromStart
from rnnapps.task import TaskError
from rnnapps.tasks import forecasting
from rnnapps.tasks.forecasting import metrics as M

"""
## The statistical peers, refit at each forecast origin
"""


def statsforecast_forecasts(make_model, data):
    """`[windows, horizon]` forecasts of a statsforecast model, refit per origin."""
    target = data.raw["series"].values[:, 0].astype(np.float64)
    horizon = data.info["horizon"]
    return np.stack([
        make_model().forecast(y=target[:origin], h=horizon)["mean"]
        for origin in data.raw["origins"]
    ])


def auto_ets(season):
    return lambda: AutoETS(season_length=max(season, 1))


def baselines_and_mstl(data):
    """The task's baselines at each origin, with MSTL wherever the season allows.

    Several seasons: `metrics.baseline_forecasts` (its `mstl` is the one
    `train` prints). One season: MSTL on the whole history, as before the
    task had MSTL of its own.
    """
    target = data.raw["series"].values[:, 0].astype(np.float64)
    origins, horizon, seasons = data.raw["origins"], data.info["horizon"], data.info["seasons"]
    forecasts = M.baseline_forecasts(target, origins, horizon, seasons)
    if "mstl" not in forecasts and seasons[-1] >= 2:
        forecasts["mstl"] = np.stack([
            M.mstl(target[:origin], horizon, seasons, seasons_of_history=None) for origin in origins
        ])
    return forecasts


def mase(data, forecast, windows):
    """MASE of `forecast` on the last window ("last") or on all of them ("all")."""
    _, actual = data.raw["test"]
    rows = slice(-1, None) if windows == "last" else slice(None)
    return M.forecast_metrics(actual[rows], forecast[rows], data.info["mase_scale"])["mase"]


"""
## rnnapps, trained once before the first origin
"""


def rnnapps_scores(config):
    """`test_metrics` of the task's model trained with `config`, and epochs run."""
    data = forecasting.load_data(config)
    keras.utils.set_random_seed(config.seed)
    model = forecasting.build_model(config, data.info)
    history = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=config.epochs,
        callbacks=[EarlyStoppingFromStart(
            data.validation, patience=config.patience, restore_best_weights=True)],
        shuffle=False,  # the training dataset reshuffles itself every epoch
        verbose=0,
    )
    return forecasting.task.test_metrics(model, data), len(history.history["loss"])


"""
## One series: every method on the same windows
"""


def evaluate_series(name, seeds, backtest, overrides):
    """Rows of the table for one series (the last horizon, then the backtest)."""
    data = forecasting.load_data(forecasting.ForecastingConfig(data=name, backtest=backtest))
    seasons = data.info["seasons"]
    seconds = {}

    start = time.perf_counter()
    peers = {"AutoETS": statsforecast_forecasts(auto_ets(seasons[0]), data)}
    seconds["AutoETS"] = time.perf_counter() - start
    start = time.perf_counter()
    baselines = baselines_and_mstl(data)
    seconds["baselines and MSTL"] = time.perf_counter() - start

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        config = forecasting.ForecastingConfig(data=name, seed=seed, backtest=backtest, **overrides)
        scores, epochs = rnnapps_scores(config)
        runs.append(scores)
        print(f"{name}, seed {seed}: rnnapps MASE {scores['model']['mase']:.3f} "
              f"({epochs} epochs)", flush=True)
    seconds["rnnapps"] = time.perf_counter() - start

    windows = ["last"] + (["all"] if backtest > 1 else [])
    rows = []
    for window in windows:
        # test_metrics puts the last horizon at the top level, all windows under "backtest".
        tables = [run if window == "last" else run["backtest"] for run in runs]
        scores = {method: mase(data, forecast, window) for method, forecast in baselines.items()}
        rows.append({
            "series": name,
            "horizon": data.info["horizon"],
            "seasons": seasons,
            "windows": "last" if window == "last" else f"all {backtest}",
            "naive": scores["naive"],
            # Season -> MASE, the longest last.
            "seasonal naive": {
                **{season: scores[f"seasonal_naive_{season}"] for season in seasons[:-1]},
                seasons[-1]: scores["seasonal_naive"],
            },
            **{peer: mase(data, forecast, window) for peer, forecast in peers.items()},
            **({"MSTL": scores["mstl"]} if "mstl" in scores else {}),
            "rnnapps": [table["model"]["mase"] for table in tables],
        })
    return rows, seconds


"""
## The table
"""


def format_row(row):
    ours = row["rnnapps"]
    median = statistics.median(ours)
    spread = f" ({min(ours):.3f}-{max(ours):.3f})" if len(ours) > 1 else ""
    seasonal = row["seasonal naive"]
    best_seasonal = min(seasonal.values())
    wins = sum(m < best_seasonal for m in ours)
    verdict = "yes" if median < best_seasonal else "no"
    if len(seasonal) > 1:
        seasonal_cell = ", ".join(f"{mase:.3f} ({season})" for season, mase in seasonal.items())
    else:
        seasonal_cell = f"{best_seasonal:.3f}"
    mstl_mase = f"{row['MSTL']:.3f}" if "MSTL" in row else "skipped"
    cells = [
        row["series"], row["horizon"], ", ".join(map(str, row["seasons"])), row["windows"],
        f"{row['naive']:.3f}", seasonal_cell, f"{row['AutoETS']:.3f}",
        mstl_mase, f"{median:.3f}{spread}", f"{verdict} ({wins}/{len(ours)} seeds)",
        f"{median / row['AutoETS']:.2f}",
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def print_table(rows):
    header = [
        "series", "horizon", "seasons", "test windows", "naive", "seasonal naive (season)",
        "AutoETS", "MSTL", "rnnapps (median, min-max)", "rnnapps beats seasonal naive?",
        "rnnapps / AutoETS",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print(format_row(row))


def print_notes(rows, seeds, backtest):
    print()
    print(f"MASE (lower is better; scale: in-sample seasonal-naive MAE of the training part). "
          f"rnnapps: {len(seeds)} seed(s), trained once on the data before the first test origin; "
          f"AutoETS and MSTL are refit on the whole history before each test origin ({backtest} here); "
          f"MSTL with several seasons on the last {M.MSTL_SEASONS_OF_HISTORY} longest seasons, as `train` does.")
    print("'rnnapps / AutoETS': median rnnapps MASE over AutoETS MASE (below 1: rnnapps is better).")
    print("With several seasons, MASE is scaled by the longest and 'rnnapps beats seasonal naive?' "
          "compares with the best seasonal naive.")
    long_seasons = sorted({row["series"] for row in rows if row["seasons"][0] > 24})
    if long_seasons:
        print(f"statsforecast's AutoETS (like R's ets) fits no seasonal component when the season "
              f"is longer than 24 steps: non-seasonal on {', '.join(long_seasons)}.")
    skipped = sorted({row["series"] for row in rows if "MSTL" not in row})
    if skipped:
        print(f"MSTL skipped on {', '.join(skipped)}: season shorter than 2.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--series", default="co2,air_passengers,sunspots,a10,nottem,taylor,elecdemand,seattle_temps,sf_temps",
        help="named series, separated by commas",
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--backtest", type=int, default=1, help="test windows (rolling origins)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("--cell", choices=("lstm", "gru", "irnn"), default=None)
    parser.add_argument("--decoder", choices=("direct", "autoregressive"), default=None)
    parser.add_argument("--normalization", choices=("last", "season", "standard"), default=None)
    parser.add_argument("--transform", choices=("none", "log"), default=None)
    parser.add_argument("--structure", choices=("auto", "seasonal", "network"), default=None)
    parser.add_argument(
        "--future-columns", default=None,
        help="known-future covariates for rnnapps, e.g. workday with --series elecdemand "
             "(the baselines use the target alone)",
    )
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = {
        key: value for key, value in
        {"epochs": args.epochs, "cell": args.cell, "decoder": args.decoder,
         "normalization": args.normalization, "transform": args.transform,
         "structure": args.structure, "future_columns": args.future_columns}.items()
        if value is not None
    }
    rows, timings, skipped = [], {}, []
    for name in args.series.split(","):
        start = time.perf_counter()
        try:
            series_rows, seconds = evaluate_series(name, seeds, args.backtest, overrides)
        except TaskError as error:  # e.g. too short for K test windows
            skipped.append(f"Skipped {error}")
            continue
        rows += series_rows
        timings[name] = (time.perf_counter() - start, seconds)

    print()
    print_table(rows)
    print_notes(rows, seeds, args.backtest)
    for line in skipped:
        print(line)
    print()
    print("Seconds per series:")
    for name, (total, seconds) in timings.items():
        parts = ", ".join(f"{method} {s:.1f}" for method, s in seconds.items())
        print(f"  {name}: {total:.0f} ({parts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
