"""Sentiment: training throughput and serving latency of the export, on CPU.

Trains the default `rnnapps train sentiment` model for two epochs and reports
the training throughput of the second (examples/s, compilation excluded);
exports it; then, on the same 256 test reviews, times

- the exported SavedModel's `serving_default` (loaded with
  `tf.saved_model.load`, as a server would): p50/p99 latency of one-review
  requests, and examples/s at batch 256;
- `model.predict` on the Keras model in the training process, the same way.

    python benchmarks/sentiment_serving.py [--requests 300]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time

import numpy as np


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="single-review requests timed")
    parser.add_argument("--repeats", type=int, default=5, help="batch-256 timings")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from rnnapps.export import export_serving_model
    from rnnapps.tasks import sentiment

    config = sentiment.SentimentConfig(epochs=2)
    data = sentiment.task.load_data(config)  # token ids; data.preprocessor makes them
    keras.utils.set_random_seed(0)
    model = sentiment.task.build_model(config, data)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    timer = EpochTimer()
    model.fit(data.train, epochs=2, callbacks=[timer], shuffle=False, verbose=0)  # data shuffles itself
    train_rate = data.info["sizes"]["train"] / timer.seconds

    texts = list(data.raw["test"][0][:256])
    with tempfile.TemporaryDirectory() as export_dir:
        serve_fn, signature = sentiment.task.serving_signature(model, data.info)
        path = export_serving_model(model, serve_fn, signature, export_dir, "sentiment")
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]

        def time_calls(call, batches):
            call(batches[0])  # warm up (tracing)
            seconds = []
            for batch in batches:
                start = time.perf_counter()
                call(batch)
                seconds.append(time.perf_counter() - start)
            return seconds

        singles = [texts[i % len(texts):i % len(texts) + 1] for i in range(args.requests)]
        full = [texts] * args.repeats
        as_tensor = lambda batch: tf.constant(batch)  # noqa: E731
        results = {
            "savedmodel": {
                "single": time_calls(lambda b: serve(text=as_tensor(b)), singles),
                "batch256": time_calls(lambda b: serve(text=as_tensor(b)), full),
            },
            "model.predict": {
                "single": time_calls(
                    lambda b: model.predict(data.preprocessor(b), verbose=0), singles),
                "batch256": time_calls(
                    lambda b: model.predict(data.preprocessor(b), batch_size=256, verbose=0), full
                ),
            },
        }
    print(f"training: {train_rate:.0f} examples/s (epoch 2, batch {config.batch_size}, "
          f"{data.info['sizes']['train']} reviews)")
    summary = {"train_examples_per_s": round(train_rate, 1)}
    for name, timing in results.items():
        p50, p99 = percentile(timing["single"], 50), percentile(timing["single"], 99)
        rate = 256 / statistics.median(timing["batch256"])
        print(f"{name:>14}: one review p50 {p50:.2f} ms, p99 {p99:.2f} ms; batch 256: {rate:.0f} examples/s")
        summary[name] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "batch256_examples_per_s": round(rate, 1)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
