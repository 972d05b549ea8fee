"""Next-word quality: the recurrent language model vs the Kneser-Ney n-gram, over seeds.

Trains the `next_word` task as `rnnapps train next_word` does
(`rnnapps.task.train`: early stopping on the validation loss, the best
weights restored, test report, export) once per seed, and prints for each
run the task's test report side by side with its n-gram baseline (an
interpolated Kneser-Ney model of the same training sentences,
`rnnapps.tasks.next_word.ngram`):

- `ppl`: perplexity of the test sentences, every next token (`</s>` and
  `[UNK]` included);
- `top1`, `top5`: how often the next word, where it is a vocabulary word, is
  the most likely word or among the 5 most likely;
- the same three for the n-gram model, and `ratio`, model / n-gram
  perplexity (below 1: the recurrent model is better);
- `epochs` run and the seconds spent fitting (building the model included;
  not the data loading, test report or export, which `total s` adds).

Then the median and range (lowest-highest) over the seeds. Each run is also
printed as a JSON line as soon as it ends, so that seeds run as separate
processes (in parallel, or one killed half-way) are summarized together with
`--rows-from LOG ...`; the last line is the summary as JSON.

    python benchmarks/next_word_quality.py                      # 3 seeds, the task's defaults
    python benchmarks/next_word_quality.py --seeds 0 --config '{"cell": "gru", "epochs": 2}'
    python benchmarks/next_word_quality.py --seeds 0 --config \\
        '{"max_sentences": 2000, "vocabulary_size": 800, "embedding_dim": 16, "units": 16, "epochs": 1}'
    python benchmarks/next_word_quality.py --seeds 1 > seed1.log &   # then:
    python benchmarks/next_word_quality.py --rows-from seed0.log seed1.log

A full run of the default settings takes about 35 minutes a seed on 2 CPU cores.
"""

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time

# What each run reports, from the task's `test_metrics`, and how it is shown.
METRICS = (
    ("perplexity", "ppl", "{:.1f}"),
    ("top1_accuracy", "top1", "{:.3f}"),
    ("top5_accuracy", "top5", "{:.3f}"),
    ("ngram_perplexity", "n-gram ppl", "{:.1f}"),
    ("ngram_top1_accuracy", "n-gram top1", "{:.3f}"),
    ("ngram_top5_accuracy", "n-gram top5", "{:.3f}"),
    ("perplexity_ratio", "ratio", "{:.3f}"),
    ("epochs_run", "epochs", "{:.0f}"),
    ("fit_seconds", "fit s", "{:.0f}"),
    ("seconds", "total s", "{:.0f}"),
)


def timed_task():
    """The `next_word` task, noting when its data is loaded and when fitting
    ends (`rnnapps.task.train` calls `test_metrics` right after `model.fit`)."""
    from rnnapps.tasks import next_word

    class TimedNextWordTask(type(next_word.task)):
        def __init__(self):
            self.times = {}

        def load_data(self, config):
            data = super().load_data(config)
            self.times["data_loaded"] = time.perf_counter()
            return data

        def test_metrics(self, model, data):
            self.times["fitted"] = time.perf_counter()
            return super().test_metrics(model, data)

    return TimedNextWordTask()


def run(seed, overrides, export_dir):
    """One training run: the row of its results."""
    from rnnapps import task as task_module
    from rnnapps.tasks.next_word import NextWordConfig

    task = timed_task()
    config = dataclasses.replace(
        NextWordConfig(**overrides), seed=seed, export_dir=export_dir
    )
    start = time.perf_counter()
    result = task_module.train(task, config, verbose=2)
    seconds = time.perf_counter() - start
    metrics = result["metrics"]
    row = {"kind": "run", "seed": seed, "config": overrides, "data": result["data"]}
    for key, _, _ in METRICS[:6]:
        row[key] = metrics.get(key)
    if row["ngram_perplexity"]:
        row["perplexity_ratio"] = round(row["perplexity"] / row["ngram_perplexity"], 4)
    else:
        row["perplexity_ratio"] = None  # ngram_order 0: no baseline
    row.update(
        epochs_run=result["epochs_run"],
        fit_seconds=round(task.times["fitted"] - task.times["data_loaded"], 1),
        seconds=round(seconds, 1),
        test_unknown_rate=metrics.get("test_unknown_rate"),
        vocabulary_size=metrics.get("vocabulary_size"),
        tokens=metrics.get("tokens"),
    )
    return row


def spread(values, form):
    """`median (lowest-highest)` of the values that are not None."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    text = form.format(statistics.median(values))
    if len(values) > 1:
        text += f" ({form.format(min(values))}-{form.format(max(values))})"
    return text


def summarize(rows):
    """Prints a table per config (a row per seed, then the median and range)
    and returns the summaries."""
    groups = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        groups.setdefault(json.dumps(row["config"], sort_keys=True), []).append(row)
    summaries = []
    for config, runs in groups.items():
        first = runs[0]
        print(f"\nconfig {config}: data {first['data']['name']} {first['data']['sizes']}, "
              f"vocabulary {first.get('vocabulary_size')}, test [UNK] rate "
              f"{first.get('test_unknown_rate')}")
        print(f"{'seed':<6}" + "".join(f"{label:>13}" for _, label, _ in METRICS))
        for row in runs:
            print(f"{row['seed']:<6}" + "".join(
                f"{'-' if row.get(key) is None else form.format(row[key]):>13}"
                for key, _, form in METRICS))
        summary = {"config": json.loads(config), "seeds": [r["seed"] for r in runs]}
        print(f"median (range) over {len(runs)} seed{'s' if len(runs) > 1 else ''}:")
        for key, label, form in METRICS:
            values = [r.get(key) for r in runs if r.get(key) is not None]
            print(f"  {label:<12} {spread(values, form)}")
            if values:
                summary[key] = statistics.median(values)
                summary[key + "_range"] = [min(values), max(values)]
        summaries.append(summary)
    return summaries


def rows_from(paths):
    """The run rows printed by earlier runs: their JSON run lines, or the runs
    of their summary line where a log has no run lines."""
    rows = []
    for path in paths:
        runs, summarized = [], []
        with open(path, encoding="utf-8") as file:
            for line in file:
                if not line.startswith("{"):
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("kind") == "run":
                    runs.append(record)
                elif record.get("kind") == "summary":
                    summarized += record["runs"]
        rows += runs or summarized
    # A log given twice, or a run line copied into another log, counts once.
    unique = {json.dumps(row, sort_keys=True): row for row in rows}
    return list(unique.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--config", default="{}", help="NextWordConfig overrides, as JSON")
    parser.add_argument("--export-dir", default=None,
                        help="exports and checkpoints go here (default: a temporary folder, "
                             "deleted at the end)")
    parser.add_argument("--rows-from", nargs="+", metavar="LOG",
                        help="summarize the run lines printed by earlier runs and stop")
    args = parser.parse_args(argv)

    if args.rows_from:
        rows = rows_from(args.rows_from)
        if not rows:
            parser.error(f"no run lines in {', '.join(args.rows_from)}")
    else:
        from rnnapps.tasks.next_word import NextWordConfig

        overrides = json.loads(args.config)
        fields = {f.name for f in dataclasses.fields(NextWordConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            parser.error(f"--config: NextWordConfig has no field {', '.join(unknown)}")
        if {"seed", "export_dir"} & set(overrides):
            parser.error("--config: give seeds with --seeds and the folder with --export-dir")
        seeds = [int(s) for s in args.seeds.split(",")]
        rows = []
        with tempfile.TemporaryDirectory(prefix="next_word_quality-") as temporary:
            for seed in seeds:
                row = run(seed, overrides, args.export_dir or temporary)
                print(json.dumps(row), flush=True)
                rows.append(row)
    summaries = summarize(rows)
    print(json.dumps({"kind": "summary", "summary": summaries, "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
