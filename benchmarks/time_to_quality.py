"""Time to quality: each task's default run against the previous default,
side by side, wall time and score; and each training step's GFLOP/s.

`runs` (the default mode) times the whole command a user runs, `rnnapps
train TASK` (loading the data, fitting with its validation, the test report
with its baselines, the export), for the previous default (`PREVIOUS`: the
flags that give back the settings the task had before issue 37) and for
today's (no flags), alternating the two seed by seed so that both meet the
same machine; each run in its own process, one after the other. It prints
each run's wall time, CPU time (user + system, all threads) and scores and
the load average around it, then per task the medians over the seeds and the
ratio of the wall times (today / previous).

`steps` measures what a training step achieves: the step's floating-point
operations as XLA counts them (`jax.jit(...).lower(...).compile()
.cost_analysis()` of the model's compiled loss and gradient on one real
batch) over its median time on the task's default backend, against the
machine's matmul peak (a 2048 x 2048 float32 matmul, and bfloat16 where a
variant computes in it), measured in the same process.

    python benchmarks/time_to_quality.py --tasks next_word --seeds 0,1,2
    python benchmarks/time_to_quality.py steps --tasks next_word
    python benchmarks/time_to_quality.py --tasks next_word --seeds 0 --quick   # smoke test

`curve` asks when a run reaches a score: time to quality, as MLPerf's
training benchmarks count it (the clock runs until the model first reaches a
target quality). It runs today's `rnnapps train TASK` as a user would, saving
the weights at the end of every epoch and noting the time (the saving itself
off the clock); then, in another process, scores the saved epochs on the test
split with the task's own test report (`test_metrics`, on the run's own data
and tokenizer), each epoch's weights averaged with those of the epochs before
it as the run's early stopping averages its best epoch's (captioning's
`--average-epochs`). A run stopped after epoch k would have taken the time to the
end of epoch k plus the run's test report and export, so that is the time to
quality of the first epoch whose scores reach every target. The targets are
the scores of the task's default when issue 37 was filed (`FILED`), and the
ratio is against that command's wall time then.

    python benchmarks/time_to_quality.py curve --tasks translation --seeds 0 --first 8
    python benchmarks/time_to_quality.py curve --tasks captioning --seeds 0,1,2

Run it with the cores to itself: the wall times are the point.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# The flags that give back each task's settings before issue 37 (today's
# defaults are the command without flags).
PREVIOUS = {
    "next_word": ["--softmax", "full", "--mixed-precision", "float32", "--no-interpolate"],
    # (Its batches were then sorted by characters, not tokens: no flag gives that back.)
    "translation": ["--epochs", "22", "--learning-rate", "1e-3", "--lr-schedule", "constant",
                    "--dropout", "0.2", "--length-penalty", "1.0"],
    # (Its input pipelines then waited on tf.data's autotuning thread: no flag gives that back.)
    "captioning": ["--retrieval", "0", "--patience", "5", "--average-epochs", "1"],
}
# The scores each task's report is judged on (metrics of `rnnapps train`'s
# result), and its baseline's, printed beside them.
SCORES = {
    "next_word": ["perplexity", "top1_accuracy", "top5_accuracy", "ngram_perplexity",
                  "ngram_top1_accuracy", "ngram_top5_accuracy"],
    "translation": ["bleu", "chrf", "dictionary_lookup_bleu", "dictionary_lookup_chrf"],
    "captioning": ["bleu1", "bleu4", "nearest_neighbour_bleu1", "nearest_neighbour_bleu4"],
}
# A small run of each task, for `--quick` (checks the script, not the task).
QUICK = {
    "next_word": ["--max-sentences", "2000", "--vocabulary-size", "2000", "--embedding-dim",
                  "32", "--units", "64", "--epochs", "1", "--ngram-order", "2"],
    "captioning": ["--train-size", "300", "--image-size", "16", "--filters", "8,16",
                   "--units", "16", "--embedding-dim", "8", "--epochs", "1"],
    "translation": ["--train-size", "300", "--vocabulary-size", "300", "--units", "16",
                    "--embedding-dim", "16", "--epochs", "1", "--beam-size", "2"],
}


# The test scores of each task's default when issue 37 was filed, the targets
# of `curve` (by seed where they were measured seed by seed), and the wall time
# of `rnnapps train TASK --seed 0` then, on 2 cores (docs/translation.md,
# docs/captioning.md).
FILED = {
    # Medians of seeds 0-2 (beam 4, length penalty 1.0), for every seed.
    "translation": {"wall_s": 27 * 60 + 17, "targets": {None: {"bleu": 6.85, "chrf": 28.43}}},
    # Seed by seed (`--retrieval 0`: the default then; the median for other seeds).
    "captioning": {"wall_s": 466, "targets": {
        0: {"bleu1": 46.16, "bleu4": 19.31}, 1: {"bleu1": 47.60, "bleu4": 26.72},
        2: {"bleu1": 49.74, "bleu4": 32.92}, None: {"bleu1": 47.60, "bleu4": 26.72}}},
}


def flatten(metrics, prefix=""):
    """`{"a": {"b": 1}}` -> `{"a_b": 1}`: the numbers of a nested report."""
    out = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}_"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def run_once(task, flags, seed, quick):
    """Wall seconds and the flattened test metrics of one `rnnapps train`."""
    with tempfile.TemporaryDirectory(prefix="ttq-") as export_dir:
        command = [sys.executable, "-m", "rnnapps.cli", "train", task, *flags,
                   *(QUICK.get(task, []) if quick else []), "--seed", str(seed),
                   "--export-dir", export_dir]
        started, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, cpu, flatten(result["metrics"])


def _children_cpu():
    """CPU seconds (user + system) of this process's finished children."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def runs(args):
    rows = []
    for task in args.tasks:
        for seed in args.seeds:
            for variant, flags in (("previous", PREVIOUS.get(task)), ("today", [])):
                if flags is None or variant not in args.variants:
                    continue
                load = os.getloadavg()[0]
                seconds, cpu, metrics = run_once(task, flags, seed, args.quick)
                row = {"task": task, "variant": variant, "seed": seed,
                       "wall_s": round(seconds, 1), "cpu_s": round(cpu, 1),
                       "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                       **{k: metrics[k] for k in SCORES.get(task, []) if k in metrics}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| task | variant | seeds | wall (min), median | " +
          " | ".join(["scores, median (range)"]) + " |")
    print("| --- | --- | --- | --- | --- |")
    for task in args.tasks:
        medians = {}
        for variant in ("previous", "today"):
            picked = [r for r in rows if r["task"] == task and r["variant"] == variant]
            if not picked:
                continue
            wall = statistics.median(r["wall_s"] for r in picked)
            medians[variant] = wall
            scores = []
            for key in SCORES.get(task, []):
                values = [r[key] for r in picked if key in r]
                if values:
                    scores.append(f"{key} {statistics.median(values):.4g} "
                                  f"({min(values):.4g}-{max(values):.4g})")
            print(f"| {task} | {variant} | {len(picked)} | {wall / 60:.1f} | "
                  f"{'; '.join(scores)} |")
        if len(medians) == 2:
            print(f"| {task} | today / previous wall time | | "
                  f"{medians['today'] / medians['previous']:.2f} | |")


# === steps: achieved GFLOP/s ===


def matmul_peak(dtype, size=2048, repeats=20):
    """GFLOP/s of a `size` x `size` matmul in `dtype` (TensorFlow, median)."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype="float32")
    a = tf.cast(a, dtype)
    f = tf.function(lambda x: tf.matmul(x, x))
    f(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def median_batch(dataset, count=64):
    """`(x, y)` NumPy: of the first `count` training batches, the one of
    median length (the second axis of its inputs), a typical step."""
    import tensorflow as tf

    def length(batch):  # of the ids (captioning's inputs are a dict: the caption's)
        x = batch[0]["caption_in"] if isinstance(batch[0], dict) else batch[0]
        return x.shape[1] if x.ndim > 1 else 0

    batches = [tf.nest.map_structure(lambda t: t.numpy(), tuple(batch[:2]))
               for batch in dataset.take(count)]
    batches.sort(key=length)
    return batches[len(batches) // 2]


def _python(code, backend):
    """Runs `code` in a new Python on `backend`, this file importable as
    `benchmarks_time_to_quality`; returns its last line of output, parsed."""
    import shutil

    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(__file__, os.path.join(folder, "benchmarks_time_to_quality.py"))
        env = {**os.environ, "KERAS_BACKEND": backend,
               "PYTHONPATH": os.pathsep.join([folder, os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def step_flops(task_name, flags):
    """XLA's count of the floating-point operations of one training step
    (loss, gradients) of the task's model on its first training batch,
    in a JAX process."""
    code = f"""
import json, keras, jax
from benchmarks_time_to_quality import median_batch
from rnnapps import cli
args = cli.parse_args(["train", {task_name!r}, *{flags!r}])
task = args.task_object
config = cli._config(task, args, args.preset)
keras.utils.set_random_seed(config.seed)
data = task.load_data(config)
model = task.build_model(config, data)
x, y = median_batch(data.train)
def loss(trainable, non_trainable):
    value, _ = model.compute_loss_and_updates(
        trainable, non_trainable, [v.value for v in model.metrics_variables], x, y, None,
        training=True, optimizer_variables=[v.value for v in model.optimizer.variables])
    return value
trainable = [v.value for v in model.trainable_variables]
non_trainable = [v.value for v in model.non_trainable_variables]
compiled = jax.jit(jax.grad(loss)).lower(trainable, non_trainable).compile()
cost = compiled.cost_analysis()
cost = cost[0] if isinstance(cost, (list, tuple)) else cost
ids = x["caption_in"] if isinstance(x, dict) else x
print(json.dumps({{"flops": float(cost["flops"]), "shape": list(ids.shape)}}))
"""
    return _python(code, "jax")


def step_time(task_name, flags, steps):
    """Median seconds of a training step (the task's default backend, in a
    process of its own) on the task's first training batch, repeated."""
    code = f"""
import json, statistics, time, keras
from benchmarks_time_to_quality import median_batch
from rnnapps import cli
from rnnapps.backends import choose_precision
args = cli.parse_args(["train", {task_name!r}, *{flags!r}])
task = args.task_object
config = cli._config(task, args, args.preset)
policy = choose_precision(task.name, args.mixed_precision, keras.backend.backend())
if policy:
    keras.config.set_dtype_policy(policy)
keras.utils.set_random_seed(config.seed)
data = task.load_data(config)
model = task.build_model(config, data)
x, y = median_batch(data.train)
times = []
for i in range({steps} + 3):
    start = time.perf_counter()
    model.train_on_batch(x, y)  # returns NumPy values: the step has finished
    times.append(time.perf_counter() - start)
print(json.dumps({{"seconds": statistics.median(times[3:]), "policy": policy,
                  "backend": keras.backend.backend()}}))
"""
    from rnnapps.backends import FASTEST

    return _python(code, FASTEST.get(task_name, "tensorflow"))


def steps(args):
    peaks = {"float32": matmul_peak("float32"), "bfloat16": matmul_peak("bfloat16")}
    print(json.dumps({"matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()}}))
    print("\n| task | variant | backend, policy | batch | GFLOP a step | ms a step | GFLOP/s | "
          "of the matmul peak |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for task in args.tasks:
        for variant, flags in (("previous", PREVIOUS.get(task)), ("today", [])):
            if flags is None:
                continue
            flags = flags + (QUICK.get(task, []) if args.quick else [])
            flops = step_flops(task, flags)
            timed = step_time(task, flags, args.steps)
            rate = flops["flops"] / timed["seconds"] / 1e9
            policy = timed["policy"] or "float32"
            peak = peaks["bfloat16" if "bfloat16" in policy else "float32"]
            print(f"| {task} | {variant} | {timed['backend']}, {policy} | "
                  f"{'x'.join(map(str, flops['shape']))} | {flops['flops'] / 1e9:.2f} | "
                  f"{1000 * timed['seconds']:.0f} | {rate:.0f} | {rate / peak:.0%} |",
                  flush=True)


# === curve: when a run first reaches a score ===

# In the run's process: `rnnapps train` with the weights saved at every
# epoch's end, the saving off the clock.
_CURVE_TRAIN = r"""
import json, sys, time
start = time.perf_counter()
from rnnapps import cli
folder, argv = sys.argv[1], sys.argv[2:]
cli._choose_backend(cli.parse_args(argv))  # before Keras is imported
import keras
epochs, off_clock, fit_end = [], [0.0], [None]

class Snapshots(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        at = time.perf_counter()
        self.model.save_weights(f"{folder}/epoch{epoch + 1:03d}.weights.h5")
        epochs.append({"epoch": epoch + 1, "at_s": at - start - off_clock[0],
                       "val_loss": float((logs or {}).get("val_loss", float("nan")))})
        off_clock[0] += time.perf_counter() - at

fit = keras.Model.fit

def fit_with_snapshots(self, *args, callbacks=None, **kwargs):
    try:
        return fit(self, *args, callbacks=[*(callbacks or []), Snapshots()], **kwargs)
    finally:
        fit_end[0] = time.perf_counter() - start - off_clock[0]

keras.Model.fit = fit_with_snapshots
code = cli.main(argv)
print(json.dumps({"epochs": epochs, "fit_end_s": fit_end[0], "code": code,
                  "total_s": time.perf_counter() - start - off_clock[0]}))
"""

# In a new process: each saved epoch's test scores, one JSON line each.
_CURVE_SCORE = r"""
import glob, json, os, sys
from benchmarks_time_to_quality import flatten
from rnnapps import cli
from rnnapps.callbacks.early_stopping_from_start import average_weights
from rnnapps.task import config_from_dict
folder, export_dir, task_name, wanted = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
args = cli.parse_args(["train", task_name])
cli._choose_backend(args)
import keras
task = args.task_object
[meta] = glob.glob(os.path.join(export_dir, ".checkpoints", task_name, "*", "task.json"))
config = config_from_dict(task.config_class, json.load(open(meta))["config"])
keras.utils.set_random_seed(config.seed)  # before the data, as `train` does
data = task.load_data(config)
model = task.build_model(config, data)
if not model.built:
    model(next(iter(data.train))[0])
# A run that ended at epoch k with k its best restores the average of the
# weights of k and the epochs before it (`average_epochs`, where the task has it).
average = getattr(config, "average_epochs", 1)
for epoch in wanted:
    arrays = []
    for e in range(max(1, epoch - average + 1), epoch + 1):
        model.load_weights(os.path.join(folder, f"epoch{e:03d}.weights.h5"))
        arrays.append(model.get_weights())
    model.set_weights(average_weights(arrays))  # as the run's early stopping
    task.after_fit(model, data)
    print(json.dumps({"epoch": epoch, **flatten(task.test_metrics(model, data))}), flush=True)
"""


def _json_lines(text):
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return [row for row in rows if isinstance(row, dict)]


def curve_once(task, seed, args):
    """One run's epochs (time, validation loss, test scores of the scored
    ones), its own result and its time to quality."""
    import shutil

    targets = FILED.get(task, {}).get("targets", {})
    targets = dict(targets.get(seed, targets.get(None, {})))
    targets.update(args.target)
    with tempfile.TemporaryDirectory(prefix="ttq-curve-") as folder:
        shutil.copy(__file__, os.path.join(folder, "benchmarks_time_to_quality.py"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [folder, os.environ.get("PYTHONPATH", "")])}
        export_dir = os.path.join(folder, "export")
        command = [sys.executable, "-c", _CURVE_TRAIN, folder, "train", task,
                   *(QUICK.get(task, []) if args.quick else []), "--seed", str(seed),
                   "--export-dir", export_dir,
                   *(["--epochs", str(args.epochs)] if args.epochs else [])]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
        lines = _json_lines(done.stdout)
        if done.returncode != 0 or not lines or lines[-1].get("code") != 0:
            raise SystemExit(f"{task} seed {seed} failed:\n{done.stderr[-3000:]}")
        timing, result = lines[-1], next(r for r in lines if "metrics" in r)
        # The process's start-up before its clock started (interpreter).
        lag = wall - timing["total_s"]
        report_s = timing["total_s"] - timing["fit_end_s"]
        epochs = timing["epochs"]
        wanted = [e["epoch"] for e in epochs
                  if e["epoch"] >= args.first and (e["epoch"] - args.first) % args.every == 0]
        scored = subprocess.run(
            [sys.executable, "-c", _CURVE_SCORE, folder, export_dir, task, json.dumps(wanted)],
            capture_output=True, text=True, env=env)
        if scored.returncode != 0:
            raise SystemExit(f"scoring {task} seed {seed} failed:\n{scored.stderr[-3000:]}")
        scores = {row["epoch"]: row for row in _json_lines(scored.stdout) if "epoch" in row}
        if args.keep:  # the epochs' weights and the run's checkpoint, for other analyses
            kept = os.path.join(args.keep, f"{task}-{seed}")
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(folder, kept, ignore=shutil.ignore_patterns("*.py"))
    rows, reached = [], None
    for e in epochs:
        row = {"task": task, "seed": seed, "epoch": e["epoch"],
               "at_s": round(e["at_s"] + lag, 1),
               "if_stopped_s": round(e["at_s"] + lag + report_s, 1),
               "val_loss": round(e["val_loss"], 4)}
        if e["epoch"] in scores:
            row.update({k: scores[e["epoch"]][k] for k in SCORES.get(task, [])
                        if k in scores[e["epoch"]]})
            met = bool(targets) and all(row.get(k, float("-inf")) >= v
                                        for k, v in targets.items())
            row["meets_targets"] = met
            if met and reached is None:
                reached = row
        rows.append(row)
        print(json.dumps(row), flush=True)
    filed = FILED.get(task, {}).get("wall_s")
    summary = {
        "task": task, "seed": seed, "targets": targets, "wall_s": round(wall, 1),
        "report_s": round(report_s, 1), "epochs_run": len(epochs),
        "result": {k: v for k, v in flatten(result["metrics"]).items()
                   if k in SCORES.get(task, [])},
        "reached_at_epoch": reached and reached["epoch"],
        "time_to_quality_s": reached and reached["if_stopped_s"],
        "filed_wall_s": filed,
        "ratio_to_filed": reached and filed and round(reached["if_stopped_s"] / filed, 3),
        "whole_run_ratio_to_filed": filed and round(wall / filed, 3),
    }
    print(json.dumps(summary), flush=True)
    return summary


def curve(args):
    summaries = [curve_once(task, seed, args) for task in args.tasks for seed in args.seeds]
    print("\n| task | seed | targets (test) | reached at epoch | time to quality | "
          "of the filed run | whole run | of the filed run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in summaries:
        targets = ", ".join(f"{k} {v}" for k, v in s["targets"].items())
        reached = s["reached_at_epoch"]
        seconds = f"{s['time_to_quality_s']:.0f} s" if reached else "-"
        print(f"| {s['task']} | {s['seed']} | {targets} | "
              f"{reached if reached else 'not reached'} of {s['epochs_run']} | {seconds} | "
              f"{s['ratio_to_filed'] if reached else '-'} | {s['wall_s']:.0f} s | "
              f"{s['whole_run_ratio_to_filed']} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=("runs", "steps", "curve"), default="runs")
    parser.add_argument("--tasks", default="next_word", type=lambda s: s.split(","))
    parser.add_argument("--seeds", default="0", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--variants", default="previous,today", type=lambda s: s.split(","),
                        help="previous (the settings before issue 37), today (the defaults)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (`steps` mode)")
    parser.add_argument("--quick", action="store_true",
                        help="small runs (checks the script, not the task)")
    parser.add_argument("--first", type=int, default=1,
                        help="first epoch `curve` scores on the test split")
    parser.add_argument("--every", type=int, default=1,
                        help="`curve` scores every N-th epoch from --first")
    parser.add_argument("--epochs", type=int, default=0,
                        help="`curve`: train this many epochs at most (0: the default's)")
    parser.add_argument("--keep", default="",
                        help="`curve`: copy each run's epoch weights and checkpoint to "
                             "KEEP/TASK-SEED")
    parser.add_argument("--target", action="append", default=[],
                        type=lambda s: (s.split("=")[0], float(s.split("=")[1])),
                        help="`curve`: SCORE=VALUE, a target besides (or instead of) FILED's")
    args = parser.parse_args(argv)
    args.target = dict(args.target)
    {"runs": runs, "steps": steps, "curve": curve}[args.mode](args)


if __name__ == "__main__":
    main()
