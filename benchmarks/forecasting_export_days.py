"""A user's day-ahead check of the forecasting export, through the command line.

For each series: the last `--days` horizons are cut off, the rest is written
as a user's CSV (with its time column, or, with `--no-times`, the values
alone), `rnnapps train forecasting --data FILE` trains and exports on it
(with the flags given after `--`, e.g. `--horizon 48 --season 336`), and
the exported SavedModel, loaded with TensorFlow alone, is asked for each
cut-off horizon from the raw window before it (the window length is read
from the signature). Its MASE per day is printed next to seasonal naive
(the longest season) and MSTL (statsforecast, refit at each origin on the
last 8 longest seasons), all scaled by the in-sample seasonal-naive MAE of
the training file.

This is how a user (or a serving client) meets the model: the CLI's
defaults and the export's raw windows, not the task's Python API.

    python benchmarks/forecasting_export_days.py                         # taylor, 7 days
    python benchmarks/forecasting_export_days.py --no-times              # the same without timestamps
    python benchmarks/forecasting_export_days.py --series sf_temps -- --horizon 24 --season 168
    python benchmarks/forecasting_export_days.py --series elecdemand -- --horizon 48 --season 336 --future-columns workday

With `--future-columns C` among the flags, the CSV also holds the columns C
and the export is given their values over each day (known in advance: a
workday flag), as a client would.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def run(name, days, flags, times):
    import pandas as pd
    import tensorflow as tf

    from rnnapps.tasks import forecasting
    from rnnapps.tasks.forecasting.metrics import mstl

    future = flags[flags.index("--future-columns") + 1].split(",") if "--future-columns" in flags else []
    series = forecasting.load_series(forecasting.ForecastingConfig(data=name))
    if future:
        series = forecasting.load_series(forecasting.ForecastingConfig(
            data=name, value_column=[series.columns[0], *future]))
    target = series.values[:, 0].astype(np.float64)
    horizon = int(flags[flags.index("--horizon") + 1]) if "--horizon" in flags else series.horizon
    seasons = series.seasons
    season = seasons[-1]
    cut = len(target) - days * horizon
    with tempfile.TemporaryDirectory() as folder:
        frame = pd.DataFrame({column: series.values[:cut, j] for j, column in enumerate(series.columns)})
        if times:
            frame.insert(0, "time", [str(t)[:19] for t in series.times[:cut]])
        frame.to_csv(f"{folder}/train.csv", index=False)
        command = [sys.executable, "-m", "rnnapps.cli", "train", "forecasting", "--data", f"{folder}/train.csv",
                   "--export-dir", f"{folder}/exports", "--checkpoint-dir", f"{folder}/checkpoints", *flags]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{name}: rnnapps train failed:\n{done.stderr[-2000:]}")
        serve = tf.saved_model.load(sorted(glob.glob(f"{folder}/exports/forecasting/*"))[-1])
        serve = serve.signatures["serving_default"]
        lookback = serve.structured_input_signature[1]["window"].shape[1]
        scale = np.mean(np.abs(target[season:cut] - target[: cut - season]))
        rows = []
        for day in range(days):
            origin = cut + day * horizon
            actual = target[origin : origin + horizon]
            window = series.values[origin - lookback : origin][None].astype(np.float32)
            inputs = {"window": tf.constant(window)}
            if future:
                inputs["future"] = tf.constant(series.values[origin : origin + horizon, 1:][None].astype(np.float32))
            forecast = serve(**inputs)["forecast"].numpy()[0]
            naive = target[origin - season : origin - season + horizon]
            peer = mstl(target[:origin], horizon, seasons) if len(seasons) > 1 else None
            rows.append({
                "origin": str(series.times[origin])[:10] if series.times is not None else origin,
                "export": np.mean(np.abs(forecast - actual)) / scale,
                "seasonal_naive": np.mean(np.abs(naive - actual)) / scale,
                "mstl": np.nan if peer is None else np.mean(np.abs(peer - actual)) / scale,
            })
    return lookback, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="taylor", help="named series, separated by commas")
    parser.add_argument("--days", type=int, default=7, help="horizons cut off and forecast")
    parser.add_argument("--no-times", action="store_true", help="write the CSV without its time column")
    parser.add_argument("flags", nargs="*", help="after --: flags for rnnapps train (default: --horizon 48 --season 336)")
    args = parser.parse_args()
    flags = args.flags or ["--horizon", "48", "--season", "336"]
    print(f"rnnapps train forecasting {' '.join(flags)}; CSV {'without' if args.no_times else 'with'} times\n")
    print("| series | lookback | day | export | seasonal naive | MSTL |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.series.split(","):
        lookback, rows = run(name, args.days, flags, not args.no_times)
        for row in rows:
            print(f"| {name} | {lookback} | {row['origin']} | {row['export']:.3f} | "
                  f"{row['seasonal_naive']:.3f} | {row['mstl']:.3f} |")
        means = {key: np.mean([row[key] for row in rows]) for key in ("export", "seasonal_naive", "mstl")}
        print(f"| {name} | {lookback} | **mean** | **{means['export']:.3f}** | {means['seasonal_naive']:.3f} | "
              f"{means['mstl']:.3f} |")
    print("\nMASE (lower is better), scaled by the training file's in-sample seasonal-naive MAE "
          "(longest season).")


if __name__ == "__main__":
    main()
