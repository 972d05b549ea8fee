"""IRNN vs the Keras built-in it replaces, one training step, side by side.

The built-in is `keras.layers.SimpleRNN(units, activation="relu",
recurrent_initializer="identity")`. Both models are one recurrent layer +
Dense(1), Adam(1e-3, global_clipnorm=1.0), MSE, the same shapes and data, as
in ../shared/GPU.md's reference script. Timings alternate between the two
models (ABAB...) so that machine noise hits both alike; the script prints the
median ms per step of each and the ratio ours / built-in.

Usage (the backend is chosen by KERAS_BACKEND):

    KERAS_BACKEND=jax python benchmarks/irnn_speed.py            # GPU shapes
    KERAS_BACKEND=tensorflow python benchmarks/irnn_speed.py --cpu
    python benchmarks/irnn_speed.py --small                      # smoke test

Shapes: default B=128, T=256, F=64, H=512 (the issue's GPU setting);
`--cpu` B=32, T=128, F=32, H=128 (a size 2 CPU cores finish in minutes);
`--small` B=8, T=16, F=4, H=16. Prints one JSON line per model and a
summary line.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

SHAPES = {
    "gpu": (128, 256, 64, 512),
    "cpu": (32, 128, 32, 128),
    "small": (8, 16, 4, 16),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--cpu", action="store_const", dest="size", const="cpu")
    size.add_argument("--small", action="store_const", dest="size", const="small")
    parser.add_argument("--steps", type=int, default=20, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per model")
    args = parser.parse_args(argv)
    batch, steps_t, features, units = SHAPES[args.size or "gpu"]

    import keras

    from rnnapps.layers import IRNN

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * args.steps, steps_t, features)).astype("float32")
    y = rng.standard_normal((batch * args.steps, 1)).astype("float32")

    def make(layer):
        model = keras.Sequential(
            [keras.Input((steps_t, features)), layer, keras.layers.Dense(1)]
        )
        model.compile(keras.optimizers.Adam(1e-3, global_clipnorm=1.0), "mse")
        model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, verbose=0)
        return model

    models = {
        "keras.SimpleRNN(relu, identity)": make(
            keras.layers.SimpleRNN(
                units, activation="relu", recurrent_initializer="identity"
            )
        ),
        "rnnapps.IRNN": make(IRNN(units)),
        "rnnapps.IRNN(hoist_input_projection=True)": make(
            IRNN(units, hoist_input_projection=True)
        ),
    }
    times = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            times[name].append((time.perf_counter() - start) * 1000 / args.steps)

    device = "cpu"
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0].platform
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, ms in medians.items():
        print(json.dumps({
            "backend": keras.backend.backend(), "device": device, "name": name,
            "median_ms_per_step": round(ms, 3),
            "all_ms": [round(t, 2) for t in times[name]],
            "B": batch, "T": steps_t, "F": features, "H": units,
        }))
    builtin, ours, hoisted = medians.values()
    print(
        f"IRNN / SimpleRNN training step: {ours / builtin:.2f}x "
        f"({ours:.2f} ms vs {builtin:.2f} ms; with the projection hoisted "
        f"{hoisted / builtin:.2f}x), median of {args.repeats}, "
        f"{keras.backend.backend()} on {device}, os.cpu_count={os.cpu_count()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
