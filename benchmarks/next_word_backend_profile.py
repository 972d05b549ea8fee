"""Why the next-word model's training step is slower on JAX than on TensorFlow.

Times `train_on_batch` of the default `WordLanguageModel` (16,000 words,
embedding 128, LSTM 256, batch 64; the task's optimizer and loss) on
batches of real WordNet sentence lengths (random word ids: the vocabulary
size, not the words, sets the cost), each backend in its own process:

- `variable`: batches padded to their longest sentence, as the task made
  them before: every new batch length is a new input shape, and JAX's `jit`
  compiles the training step again for each one (TensorFlow's
  `tf.function` traces with a `None` length and reuses the graph);
- `fixed`: batches padded to their length bucket's end and to 64 rows
  (`rnnapps.language_model.bucket_batches`, what the task does now): one
  shape, one compilation, per bucket.

For each it prints the mean time of the first `--steps` steps (compilations
included: what a short benchmark sees), the distinct shapes among them, and
the median time of a step whose shape was already compiled (what the rest
of an epoch costs). `--parts` also times, on JAX and TensorFlow alike, a
compiled forward and backward pass of the two halves of the model at one
shape: the output layer (projection, 16,000-way tied softmax, loss) and the
LSTM.

    python benchmarks/next_word_backend_profile.py                 # both backends, both batchings
    python benchmarks/next_word_backend_profile.py --steps 24 --parts
"""

import argparse
import json
import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax")


def lengths_of_wordnet(count, seed):
    """Word counts (at most 40) of `count` WordNet sentences drawn at random."""
    import numpy as np

    from rnnapps.datasets import english
    from rnnapps.text import standardize

    sentences = english.wordnet_sentences()
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(sentences), size=count, replace=False)
    lengths = np.array([min(len(standardize(sentences[i])), 40) for i in picked])
    return lengths[lengths > 0]


def batches(lengths, batching, batch_size, vocabulary_size, seed):
    """NumPy `(inputs, targets)` batches of random ids with these lengths."""
    import numpy as np
    import tensorflow as tf

    from rnnapps import language_model

    rng = np.random.default_rng(seed)
    ids = [rng.integers(4, vocabulary_size, size=n).astype(np.int32) for n in lengths]
    if batching == "fixed":
        dataset = language_model.sentence_batches(ids, batch_size, shuffle_seed=seed,
                                                  fixed_shapes=True)
    else:  # the task's batching before: each batch padded to its longest sentence
        ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(ids), lengths)
        dataset = tf.data.Dataset.from_tensor_slices(ragged).shuffle(len(ids), seed=seed)
        dataset = dataset.map(language_model._pair).bucket_by_sequence_length(
            lambda x, y: tf.shape(x)[0], language_model._BOUNDARIES,
            [batch_size] * (len(language_model._BOUNDARIES) + 1))
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def build(vocabulary_size):
    from rnnapps.tasks.next_word import NextWordConfig
    from rnnapps.tasks.next_word import build_model

    vocabulary = ["<s>", "</s>", *(f"w{i}" for i in range(vocabulary_size - 4))]
    return build_model(NextWordConfig(vocabulary_size=vocabulary_size), vocabulary)


def time_steps(model, data, steps):
    """Seconds of each of the first `steps` training steps, and their shapes."""
    seconds, shapes = [], []
    for x, y in data[:steps]:
        start = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - start)
        shapes.append(x.shape)
    return seconds, shapes


def time_parts(batch_size, steps, vocabulary_size, repeats=10):
    """Median ms of a compiled forward + backward pass of the output layer
    (Dense 256->128, tied 16,000-way logits, masked cross-entropy) and of
    the LSTM (128 -> 256 over `steps` steps), at one shape."""
    import numpy as np
    import keras
    from keras import ops

    rng = np.random.default_rng(0)
    h = rng.normal(size=(batch_size, steps, 256)).astype("float32")
    e = rng.normal(size=(batch_size, steps, 128)).astype("float32")
    y = rng.integers(4, vocabulary_size, size=(batch_size, steps)).astype("int32")
    projection = keras.layers.Dense(128)
    projection.build((None, None, 256))
    table = keras.Variable(rng.normal(size=(vocabulary_size, 128)).astype("float32") * 0.05)
    lstm = keras.layers.LSTM(256, return_sequences=True)
    lstm.build((None, None, 128))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def output_loss(kernel, bias, table, h, y):
        logits = ops.matmul(ops.matmul(h, kernel) + bias, ops.transpose(table))
        return loss_fn(y, logits)

    def lstm_loss(weights, non_trainable, e):
        out, _ = lstm.stateless_call(weights, non_trainable, e)
        return ops.mean(out)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        output_step = jax.jit(jax.grad(output_loss, argnums=(0, 1, 2)))
        lstm_step = jax.jit(jax.grad(lstm_loss))
        output_args = ([v.value for v in (projection.kernel, projection.bias, table)], h, y)
        lstm_args = ([v.value for v in lstm.trainable_variables],
                     [v.value for v in lstm.non_trainable_variables], e)

        def run_output():
            jax.block_until_ready(output_step(*output_args[0], *output_args[1:]))

        def run_lstm():
            jax.block_until_ready(lstm_step(*lstm_args))
    else:
        import tensorflow as tf

        @tf.function(jit_compile=False)
        def output_step(h, y):
            with tf.GradientTape() as tape:
                loss = output_loss(projection.kernel, projection.bias, table, h, y)
            return tape.gradient(loss, [projection.kernel, projection.bias, table])

        @tf.function(jit_compile=False)
        def lstm_step(e):
            with tf.GradientTape() as tape:
                loss = ops.mean(lstm(e))
            return tape.gradient(loss, lstm.trainable_variables)

        def run_output():
            [t.numpy() for t in output_step(h, y)]

        def run_lstm():
            [t.numpy() for t in lstm_step(e)]

    result = {}
    for name, run in (("output_layer", run_output), ("lstm", run_lstm)):
        run()  # compile
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        result[name] = round(1000 * float(np.median(times)), 1)
    return result


def measure(args):
    """One backend (this process's): prints one JSON line."""
    import numpy as np
    import keras

    keras.utils.set_random_seed(0)
    lengths = lengths_of_wordnet(args.batch_size * (args.steps + args.steady) * 2, seed=0)
    out = {"backend": keras.backend.backend()}
    for batching in args.batchings.split(","):
        data = batches(lengths, batching, args.batch_size, args.vocabulary_size, seed=0)
        model = build(args.vocabulary_size)
        seconds, shapes = time_steps(model, data, args.steps)
        # Then steps whose shape was already compiled (warm).
        seen = set(shapes)
        warm = [b for b in data[args.steps:] if b[0].shape in seen][: args.steady]
        warm_seconds, _ = time_steps(model, warm, len(warm))
        out[batching] = {
            "first_steps_mean_ms": round(1000 * float(np.mean(seconds)), 1),
            "first_steps": len(seconds),
            "distinct_shapes": len(seen),
            "compiled_step_median_ms": round(1000 * float(np.median(warm_seconds)), 1),
            "compiled_steps": len(warm_seconds),
        }
    if args.parts:
        out["parts_ms"] = time_parts(args.batch_size, 24, args.vocabulary_size)
    print(json.dumps(out), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--batchings", default="variable,fixed")
    parser.add_argument("--steps", type=int, default=24, help="first steps timed")
    parser.add_argument("--steady", type=int, default=24, help="compiled steps timed after")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--vocabulary-size", type=int, default=16_000)
    parser.add_argument("--parts", action="store_true", help="time the output layer and LSTM")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.here:
        return measure(args)
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--here", *sys.argv[1:]]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{backend} failed")
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
