"""The next-word task on JAX and on TensorFlow: quality and training time.

Two measurements, each backend in its own process (`KERAS_BACKEND`):

- `quality`: the CI quality test's reduced setting (WordNet, 20,000
  training sentences, a 2,000-word vocabulary, embedding 32, LSTM 64,
  2 epochs, batch 128, learning rate 5e-3), trained with `model.fit` as in
  `tests/tasks/test_next_word.py`, scored on the whole test split: the
  test perplexity and top-1/top-5 accuracy per seed, and the seconds of
  each epoch (compilation included in the first).
- `epoch`: the default setting (16,000 words, embedding 128, LSTM 256,
  batch 64) trained for `--steps` steps of its real training batches; the
  seconds of the first `--steps` steps and the median of the steps after
  the compilations, and from them the seconds of one whole epoch
  (`steps_per_epoch` steps at the median, plus what compiling cost).

    python benchmarks/next_word_backends.py quality --seeds 0,1,2
    python benchmarks/next_word_backends.py epoch --steps 300
"""

import argparse
import json
import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax")
QUALITY = dict(max_sentences=20_000, vocabulary_size=2_000, embedding_dim=32, units=64, epochs=2,
               batch_size=128, learning_rate=5e-3)


def quality(seed):
    import keras

    from rnnapps.tasks import next_word

    config = next_word.NextWordConfig(seed=seed, **QUALITY)
    keras.utils.set_random_seed(config.seed)
    data = next_word.load_data(config)
    model = next_word.build_model(config, data.raw["vocabulary"])
    epochs = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append(round(time.perf_counter() - self.start, 1))

    model.fit(data.train, epochs=config.epochs, verbose=0, callbacks=[Timer()])
    metrics = next_word.language_model_metrics(model, data.test)
    return {"seed": seed, **metrics, "epoch_seconds": epochs}


def epoch(steps):
    import numpy as np
    import keras

    from rnnapps.tasks import next_word

    config = next_word.NextWordConfig()
    keras.utils.set_random_seed(config.seed)
    data = next_word.load_data(config)
    model = next_word.build_model(config, data.raw["vocabulary"])
    seconds, shapes = [], []
    for x, y in data.train.take(steps):
        x, y = x.numpy(), y.numpy()
        start = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - start)
        shapes.append(x.shape)
    seconds = np.array(seconds)
    # A step whose shape was seen before ran compiled; the first of each shape compiled.
    first = np.array([shapes.index(s) == i for i, s in enumerate(shapes)])
    median = float(np.median(seconds[~first]))
    compiling = float(seconds[first].sum() - median * first.sum())
    steps_per_epoch = int(data.train.cardinality())
    return {
        "steps_timed": steps, "distinct_shapes": int(first.sum()),
        "first_steps_seconds": round(float(seconds.sum()), 1),
        "compiled_step_median_ms": round(1000 * median, 1),
        "compiling_seconds": round(compiling, 1),
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds_estimate": round(median * steps_per_epoch + compiling, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measure", choices=("quality", "epoch"))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.here:
        import keras

        if args.measure == "quality":
            for seed in args.seeds.split(","):
                print(json.dumps({"backend": keras.backend.backend(), **quality(int(seed))}),
                      flush=True)
        else:
            print(json.dumps({"backend": keras.backend.backend(), **epoch(args.steps)}),
                  flush=True)
        return
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--here", *sys.argv[1:]]
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
            for line in process.stdout:
                if line.startswith("{"):
                    print(line.strip(), flush=True)
        if process.returncode:
            raise SystemExit(f"{backend} failed")


if __name__ == "__main__":
    main()
