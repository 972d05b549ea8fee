"""Each task's training step on every installed Keras backend, side by side.

For each task, the default config's data and model (`rnnapps train TASK`
without flags) are built once per backend, each backend in its own Python
process (the backend is fixed when Keras is imported), one process after
the other so that they do not share the cores. Each process fits the model on
the first `--steps` training batches (the same batches on every backend: the
task's seeded pipeline) and times every step to the end of its loss (a
callback turns the loss into a Python float, which waits for the step to
finish on both backends), then prints one JSON line.

Per task it prints the median ms per step on each backend, the seconds the
first `--warmup` steps took (tracing and compiling: JAX compiles once per
input shape, so bucketed batches compile once per bucket), the steady
seconds of the remaining steps, an estimate of the default run's fitting
time (first steps + steps per epoch x epochs x median; validation and
decoding excluded) and the ratio JAX / TensorFlow; then the `FASTEST` table
`rnnapps/backends.py` should hold: the backend with the lower estimated
fitting time of the default run. `rnnapps train TASK --backend auto` takes it.

`--whole-run N` also times the whole default command, `rnnapps train TASK
--backend B` (data, fitting with its validation, test metrics, export: on
JAX that includes rebuilding the SavedModel on TensorFlow in a second
process), N times per backend, alternating the backends; the median decides
the pick where it was measured. Only for the tasks whose default run takes
minutes (sentiment, forecasting).

Usage:

    python benchmarks/backend_speed.py                       # all five tasks
    python benchmarks/backend_speed.py --tasks sentiment,forecasting --steps 60
    python benchmarks/backend_speed.py --tasks sentiment,forecasting --whole-run 3
    python benchmarks/backend_speed.py --tasks forecasting --steps 8 --warmup 2   # smoke test

Run it with the cores to itself: other work on the machine shows up as noise
in both backends, but not always alike.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

TASKS = ("sentiment", "forecasting", "translation", "captioning", "next_word")


def measure(task_name, steps, warmup):
    """In this process (Keras on `KERAS_BACKEND`): times `steps` training
    steps of `task_name`'s default model; returns a JSON-able dict."""
    import keras

    from rnnapps.tasks import get_task

    task = get_task(task_name)
    config = next(iter(task.presets.values())) if task.presets else task.config_class()
    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()
    data = task.load_data(config)
    model = task.build_model(config, data)
    setup_seconds = time.perf_counter() - started
    times = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for the step on every backend
            times.append(time.perf_counter() - self.start)

    model.fit(data.train.take(steps), epochs=1, verbose=0, callbacks=[StepTimer()])
    cardinality = int(data.train.cardinality())
    steps_per_epoch = cardinality if cardinality > 0 else None
    first, rest = times[:warmup], times[warmup:]
    median = statistics.median(rest) if rest else float("nan")
    estimate = (sum(first) + (steps_per_epoch * config.epochs - warmup) * median
                if steps_per_epoch else None)
    return {
        "task": task_name, "backend": keras.backend.backend(), "steps": len(times),
        "median_step_ms": round(1000 * median, 2),
        "first_steps_seconds": round(sum(first), 2),
        "steady_seconds": round(sum(rest), 2),
        "steps_per_epoch": steps_per_epoch, "epochs": config.epochs,
        "estimated_fit_seconds": round(estimate, 1) if estimate else None,
        "setup_seconds": round(setup_seconds, 1),
    }


def installed_backends():
    return [b for b in ("tensorflow", "jax") if importlib.util.find_spec(b) is not None]


def run_in_fresh_process(task_name, backend, steps, warmup):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, __file__, "--measure", task_name, "--steps", str(steps),
         "--warmup", str(warmup)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"task": task_name, "backend": backend, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def whole_run_seconds(task_name, backend):
    """Wall seconds of `rnnapps train TASK --backend BACKEND` in a fresh
    process (exporting into a scratch folder); `None` if it failed."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "rnnapps.cli", "train", task_name, "--backend", backend,
             "--export-dir", scratch], capture_output=True, text=True, cwd=scratch,
            env={**env, "CI": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(f"{task_name} on {backend} failed: {done.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
        return None
    return round(seconds, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help="comma-separated tasks (default: all five)")
    parser.add_argument("--steps", type=int, default=60, help="training steps timed per backend")
    parser.add_argument("--warmup", type=int, default=10,
                        help="first steps counted as compilation, not in the median")
    parser.add_argument("--whole-run", type=int, default=0, metavar="N",
                        help="also time the whole default `rnnapps train TASK` N times per "
                        "backend (default: 0, not)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the per-backend process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.steps, args.warmup)), flush=True)
        return 0
    backends = installed_backends()
    fastest, rows = {}, []
    for task_name in args.tasks.split(","):
        results = {}
        for backend in backends:
            result = run_in_fresh_process(task_name, backend, args.steps, args.warmup)
            print(json.dumps(result), flush=True)
            results[backend] = result
        ok = {b: r for b, r in results.items() if "error" not in r}
        if not ok:
            continue

        def cost(r):
            return r["estimated_fit_seconds"] or r["median_step_ms"]

        fastest[task_name] = min(ok, key=lambda b: cost(ok[b]))
        if args.whole_run:
            runs = {b: [] for b in ok}
            for _ in range(args.whole_run):
                for backend in ok:  # alternating, so that noise hits both alike
                    runs[backend].append(whole_run_seconds(task_name, backend))
            medians = {b: statistics.median(t) for b, t in runs.items() if None not in t}
            print(json.dumps({"task": task_name, "whole_run_seconds": runs,
                              "median": medians}), flush=True)
            if medians:
                fastest[task_name] = min(medians, key=medians.get)
        if {"jax", "tensorflow"} <= set(ok):
            jax, tf = ok["jax"], ok["tensorflow"]
            rows.append((task_name, tf["median_step_ms"], jax["median_step_ms"],
                         jax["median_step_ms"] / tf["median_step_ms"],
                         tf["estimated_fit_seconds"], jax["estimated_fit_seconds"]))
    if rows:
        print(f"\n{'task':<12} {'TF ms/step':>10} {'JAX ms/step':>11} {'JAX/TF':>7} "
              f"{'TF fit s':>9} {'JAX fit s':>9}")
        for task_name, tf_ms, jax_ms, ratio, tf_s, jax_s in rows:
            print(f"{task_name:<12} {tf_ms:>10.1f} {jax_ms:>11.1f} {ratio:>7.2f} "
                  f"{tf_s if tf_s is not None else float('nan'):>9.1f} "
                  f"{jax_s if jax_s is not None else float('nan'):>9.1f}")
    print(json.dumps({"fastest": fastest}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
