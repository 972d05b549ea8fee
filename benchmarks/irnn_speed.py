"""IRNN vs the Keras built-in it replaces, one training step, side by side.

The built-in is `keras.layers.SimpleRNN(units, activation="relu",
recurrent_initializer="identity")`. Both models are one recurrent layer +
Dense(1), Adam(1e-3, global_clipnorm=1.0), MSE, the same shapes and data, as
in a hand-written JAX reference script kept outside this repository. Timings alternate between the two
models (ABAB...) so that machine noise hits both alike; the script prints the
median ms per step of each and the ratio ours / built-in.

Usage (the backend is chosen by KERAS_BACKEND):

    KERAS_BACKEND=jax python benchmarks/irnn_speed.py            # GPU shapes
    KERAS_BACKEND=tensorflow python benchmarks/irnn_speed.py --cpu
    python benchmarks/irnn_speed.py --small                      # smoke test

On a GPU the layer runs its hoisted loop as one `keras.ops.scan` with
`IRNN._scan_unroll` steps per loop iteration. `--scan-unroll 1,2,4,8,16`
also times the layer at other settings (and `none`: the hoisted projection
fed to Keras's own loop), and `--raw` adds a hand-written `jax.lax.scan` ReLU
RNN (a hand-written reference, plain SGD, no Keras) as a floor.

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
    parser.add_argument(
        "--scan-unroll", default="",
        help="comma-separated IRNN._scan_unroll values to time as well "
        "('none' = Keras's loop)",
    )
    parser.add_argument(
        "--scan-gradient", default="autodiff",
        help="comma-separated IRNN._scan_gradient values (autodiff, custom) "
        "to time with each --scan-unroll value",
    )
    parser.add_argument(
        "--raw", action="store_true",
        help="also time a raw jax.lax.scan ReLU RNN (JAX backend only)",
    )
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

    def irnn(unroll, gradient, **kwargs):
        layer = IRNN(units, **kwargs)
        # Read when the training step is traced.
        layer._scan_unroll, layer._scan_gradient = unroll, gradient
        return layer

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
    for value in filter(None, args.scan_unroll.split(",")):
        unroll = None if value == "none" else int(value)
        for gradient in args.scan_gradient.split(",") if unroll else ["-"]:
            name = f"rnnapps.IRNN(hoisted, _scan_unroll={unroll}, {gradient})"
            models[name] = make(
                irnn(unroll, gradient, hoist_input_projection=True)
            )
    if args.raw:
        if keras.backend.backend() != "jax":
            parser.error("--raw needs KERAS_BACKEND=jax")
        for unroll in (1, 8):
            models[f"raw jax.lax.scan(unroll={unroll}), SGD"] = RawJaxRNN(
                x, y, batch, units, unroll
            )
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
    elif keras.backend.backend() == "torch":
        import torch

        device = "gpu" if torch.cuda.is_available() else "cpu"
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        device = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, ms in medians.items():
        print(json.dumps({
            "backend": keras.backend.backend(), "device": device, "name": name,
            "median_ms_per_step": round(ms, 3),
            "all_ms": [round(t, 2) for t in times[name]],
            "B": batch, "T": steps_t, "F": features, "H": units,
        }))
    builtin, ours, hoisted = list(medians.values())[:3]
    print(
        f"IRNN / SimpleRNN training step: {ours / builtin:.2f}x "
        f"({ours:.2f} ms vs {builtin:.2f} ms; with the projection hoisted "
        f"{hoisted / builtin:.2f}x), median of {args.repeats}, "
        f"{keras.backend.backend()} on {device}, os.cpu_count={os.cpu_count()}"
    )
    return 0


class RawJaxRNN:
    """A hand-written ReLU RNN training step in JAX, with a `fit`-like call.

    As the hand-written JAX reference RNN: input projection hoisted, plain
    SGD, the data already on the device; a floor for what the loop costs.
    """

    def __init__(self, x, y, batch, units, unroll):
        import jax
        import jax.numpy as jnp

        self.batch = batch
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        keys = jax.random.split(jax.random.PRNGKey(0), 2)
        self.params = {
            "W": jax.random.normal(keys[0], (x.shape[-1], units)) * 0.01,
            "U": jnp.eye(units),
            "b": jnp.zeros(units),
            "V": jax.random.normal(keys[1], (units, 1)) * 0.01,
        }

        def loss_fn(p, xb, yb):
            projected = jnp.einsum("btf,fh->tbh", xb, p["W"]) + p["b"]

            def step(h, x_t):
                return jax.nn.relu(x_t + h @ p["U"]), None

            h0 = jnp.zeros((xb.shape[0], units), xb.dtype)
            h, _ = jax.lax.scan(step, h0, projected, unroll=unroll)
            return jnp.mean((h @ p["V"] - yb) ** 2)

        @jax.jit
        def train_step(p, xb, yb):
            loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
            return jax.tree_util.tree_map(lambda a, g: a - 1e-4 * g, p, grads), loss

        self.train_step = train_step
        self.fit(x[:batch], y[:batch])

    def fit(self, x, y, batch_size=None, **_):
        loss = None
        for start in range(0, len(x), self.batch):
            self.params, loss = self.train_step(
                self.params,
                self.x[start:start + self.batch],
                self.y[start:start + self.batch],
            )
        loss.block_until_ready()


if __name__ == "__main__":
    sys.exit(main())
