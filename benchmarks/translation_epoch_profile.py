"""Where a translation epoch's time goes: the training steps, the input
pipeline, validation and the end-of-epoch callbacks, in seconds.

Runs `rnnapps train translation` in this process (the same flags; add
`--epochs 2` for a quick look) with a timing callback added to `model.fit`
and every other callback's epoch-end work timed, then prints, per epoch:

- `epoch`: wall time of the epoch, validation and callbacks included;
- `train_batches`: time inside the training batches (the `tf.data` element
  the step waits for, and the step);
- `between_batches`: the rest of the training loop (progress bar, logs,
  the start of the epoch's data iterator), and its largest gap;
- `validation`: `fit`'s evaluation of the validation split;
- one column per callback: its `on_epoch_end` (checkpoint, backup,
  early stopping);

and the whole command's phases (data loading, the starting validation of
early stopping, fit, test scores, export). After the run it times, on the
same data, the training input pipeline alone (one epoch of batches, no
model) and `train_on_batch` on batches held in memory (the step alone).

With `--compare`, instead: the previous training pipeline (batches sorted
by characters in windows of 20 batches) against today's (`data.make_dataset`:
sorted by tokens) in one process, on one model, epochs alternating (so a
change in the machine's load hits both), and the padding each leaves; with
`--compare-precision`, float32 against `mixed_bfloat16`: two models from the
same initial weights on the same batches, their step times and losses.

Usage:

    python benchmarks/translation_epoch_profile.py --epochs 2
    python benchmarks/translation_epoch_profile.py --epochs 2 --mixed-precision mixed_bfloat16
    python benchmarks/translation_epoch_profile.py --compare --rounds 2
    python benchmarks/translation_epoch_profile.py --compare-precision --steps 60
"""

import json
import sys
import time


class _Timer:
    def __init__(self):
        self.totals = {}

    def add(self, name, seconds):
        self.totals[name] = self.totals.get(name, 0.0) + seconds


def main(argv=None):
    import keras

    from rnnapps import cli
    from rnnapps import export as export_module

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--compare", "--compare-precision"):
        return compare(argv)
    phases = _Timer()
    epochs = []
    captured = {}

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.row = {"train_batches": 0.0, "between_batches": 0.0, "validation": 0.0,
                        "batches": 0, "largest_gap": 0.0, "largest_gap_before_batch": 0}
            self.start = self.last = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            now = time.perf_counter()
            self.row["between_batches"] += now - self.last
            if now - self.last > self.row["largest_gap"]:
                self.row["largest_gap"], self.row["largest_gap_before_batch"] = now - self.last, batch
            self.batch_start = now

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()
            self.row["train_batches"] += self.last - self.batch_start
            self.row["batches"] += 1

        def on_test_begin(self, logs=None):
            self.test_start = time.perf_counter()

        def on_test_end(self, logs=None):
            if hasattr(self, "row"):
                self.row["validation"] += time.perf_counter() - self.test_start

        def on_epoch_end(self, epoch, logs=None):
            self.row["epoch"] = time.perf_counter() - self.start
            self.row["loss"] = round(float(logs["loss"]), 4)
            self.row["val_loss"] = round(float(logs["val_loss"]), 4)
            epochs.append(self.row)

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phases.add(name, time.perf_counter() - start)
        return wrapper

    fit = keras.Model.fit

    def fit_with_timer(model, *args, callbacks=None, **kwargs):
        timer = EpochTimer()
        callbacks = list(callbacks or [])
        for callback in callbacks:
            name = type(callback).__name__
            callback.on_epoch_end = _timed_epoch_end(callback.on_epoch_end, name)
            callback.on_train_begin = timed(f"{name}.on_train_begin", callback.on_train_begin)
        captured["model"], captured["train"] = model, args[0] if args else kwargs.get("x")
        return timed("fit", fit)(model, *args, callbacks=[timer, *callbacks], **kwargs)

    def _timed_epoch_end(method, name):
        def wrapper(epoch, logs=None):
            start = time.perf_counter()
            method(epoch, logs)
            if epochs:
                epochs[-1][name] = epochs[-1].get(name, 0.0) + time.perf_counter() - start
        return wrapper

    keras.Model.fit = fit_with_timer
    import importlib

    cls = importlib.import_module("rnnapps.tasks.translation.task").TranslationTask
    cls.load_data = timed("load_data", cls.load_data)
    cls.test_metrics = timed("test_metrics", cls.test_metrics)
    export_module.export_serving_model = timed("export", export_module.export_serving_model)
    start = time.perf_counter()
    status = cli.main(["train", "translation", *argv])
    phases.add("command", time.perf_counter() - start)
    keras.Model.fit = fit

    print("\nper epoch (seconds):")
    for index, row in enumerate(epochs):
        print(json.dumps({"epoch_index": index, **{k: round(v, 2) if isinstance(v, float) else v
                                                  for k, v in row.items()}}))
    print("phases (seconds):", json.dumps({k: round(v, 1) for k, v in phases.totals.items()}))
    _pipeline_and_step(captured)
    return status


def _pipeline_and_step(captured, steps=40):
    """The input pipeline alone and the training step alone, on the run's data."""
    model, train = captured.get("model"), captured.get("train")
    if model is None:
        return
    start = time.perf_counter()
    batches = 0
    for _ in train:
        batches += 1
    pipeline = time.perf_counter() - start
    held = [batch for batch, _ in zip(train, range(steps + 5))]
    for x, y in held[:5]:  # warm up (tracing)
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for x, y in held[5:]:
        model.train_on_batch(x, y)
    step = (time.perf_counter() - start) / steps
    print("pipeline alone: %.1f s for %d batches (%.1f ms a batch); train_on_batch on held "
          "batches: %.1f ms a step (x %d batches = %.1f s)" % (
              pipeline, batches, 1000 * pipeline / batches, 1000 * step, batches, step * batches))


def _characters_pipeline(preprocessor, sources, targets, batch_size, shuffle_seed):
    """The training pipeline before token bucketing: windows of 20 batches
    sorted by characters (source + target), batches shuffled."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(sources, tf.string), tf.constant(targets, tf.string))
    ).shuffle(len(sources), seed=shuffle_seed, reshuffle_each_iteration=True)

    def by_length(source, target):
        keys = tf.strings.length(source, "UTF8_CHAR") + tf.strings.length(target, "UTF8_CHAR")
        order = tf.argsort(keys)
        return tf.gather(source, order), tf.gather(target, order)

    dataset = (
        dataset.batch(batch_size * 20).map(by_length).unbatch()
        .batch(batch_size).shuffle(20, seed=shuffle_seed, reshuffle_each_iteration=True)
    )
    return dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _padding(dataset):
    """Mean padded and real lengths of source and target over one epoch."""
    import numpy as np

    rows = {"source": [0, 0], "target": [0, 0]}
    for x, y in dataset:
        for name, ids in (("source", x["source"].numpy()), ("target", y.numpy())):
            rows[name][0] += ids.size
            rows[name][1] += int((ids != 0).sum())
    count = sum(int(y.shape[0]) for _, y in dataset)
    return {f"{name}_{kind}": round(value / count, 1) for name, (padded, real) in rows.items()
            for kind, value in (("padded", padded), ("real", real))}


def compare(argv):
    import argparse
    import importlib
    import os

    import keras
    import numpy as np

    parser = argparse.ArgumentParser()
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--compare-precision", action="store_true")
    parser.add_argument("--rounds", type=int, default=2, help="epochs of each pipeline")
    parser.add_argument("--steps", type=int, default=60, help="steps of each precision")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--units", type=int, default=None)
    args = parser.parse_args(argv)
    translation = importlib.import_module("rnnapps.tasks.translation.task")
    from rnnapps.tasks.translation.config import TranslationConfig

    config = TranslationConfig(seed=args.seed, **({"units": args.units} if args.units else {}))
    keras.utils.set_random_seed(config.seed)
    data = translation.load_data(config)
    print("load average:", os.getloadavg())
    if args.compare:
        preprocessor = data.raw["preprocessor"]
        keep = preprocessor.token_lengths([r[0] for _, r in data.raw["train"]]) <= (
            config.max_length - 1)
        pairs = [p for p, k in zip(data.raw["train"], keep) if k]
        old = _characters_pipeline(preprocessor, [s for s, _ in pairs], [r[0] for _, r in pairs],
                                   config.batch_size, config.seed)
        pipelines = {"characters (before)": old, "tokens (now)": data.train}
        for name, dataset in pipelines.items():
            print(name, json.dumps(_padding(dataset)))
        model = translation.build_model(config, data)
        times = {name: [] for name in pipelines}
        for _ in range(args.rounds):
            for name, dataset in pipelines.items():
                start = time.perf_counter()
                model.fit(dataset, epochs=1, verbose=0)
                times[name].append(round(time.perf_counter() - start, 1))
                print(name, "epoch seconds", times[name][-1], "load average",
                      os.getloadavg()[0], flush=True)
        print("epoch seconds (fit, no validation):", json.dumps(times))
    if args.compare_precision:
        held = [batch for batch, _ in zip(data.train, range(args.steps + 3))]
        weights, results = None, {}
        policy = keras.config.dtype_policy()
        for name in ("float32", "mixed_bfloat16", "float32 again"):
            keras.config.set_dtype_policy(name.split()[0])
            keras.utils.set_random_seed(config.seed)
            model = translation.build_model(config, data)
            keras.config.set_dtype_policy(policy)
            if weights is None:
                weights = model.get_weights()
            model.set_weights(weights)
            losses, seconds = [], []
            for x, y in held:
                start = time.perf_counter()
                losses.append(float(model.train_on_batch(x, y)))
                seconds.append(time.perf_counter() - start)
            # The first batch of each shape traces: the median step is the step.
            results[name] = {
                "median_step_ms": round(1000 * float(np.median(seconds[3:])), 1),
                "loss_first": round(losses[0], 4), "loss_last_10": round(float(np.mean(losses[-10:])), 4),
                "load_average": os.getloadavg()[0],
            }
            print(name, json.dumps(results[name]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
