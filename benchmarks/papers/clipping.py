"""Gradient clipping (Pascanu, Mikolov & Bengio 2013) on an exploding setting, with and without.

The setting: an IRNN (ReLU, recurrent matrix = identity; `rnnapps.layers.IRNN`,
100 units) on the adding problem with T = 150 steps, Adam(1e-3), batch 32.
A ReLU recurrence at the identity is on the edge: as soon as training pushes
the recurrent matrix's largest eigenvalue above 1, the gradient through 150
steps grows like that eigenvalue to the 150th power. Both runs use
`ClippedOptimizer` around the same Adam, from the same initial weights and on
the same batches; "clipped" has clipnorm 1 (Le et al.'s threshold for the
adding problem), "not clipped" a threshold of 10^12 that never binds, so the
two differ only in the rescaling and both record the global gradient norm of
every step (`ClippingMonitor`).

It prints a table (test MSE against the constant predictor's 0.167, the
largest gradient norm, the share of steps over 1, the clip rate) and writes
`clipping.json` and `clipping.png`: training loss, gradient norm per step
and clip rate against training steps.

    KERAS_BACKEND=jax python benchmarks/papers/clipping.py
    KERAS_BACKEND=jax python benchmarks/papers/clipping.py --data-parallel  # every device
    python benchmarks/papers/clipping.py --plot-only
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402

NEVER = 1e12  # a threshold no gradient reaches: the norm is recorded, nothing clipped


def run_one(clipnorm, args):
    import keras

    from rnnapps.datasets import adding_problem
    from rnnapps.layers import IRNN
    from rnnapps.optimizers import ClippedOptimizer
    from rnnapps.optimizers import ClippingMonitor

    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential(
        [keras.Input((args.length, 2)), IRNN(args.units), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=ClippedOptimizer(keras.optimizers.Adam(args.learning_rate), clipnorm=clipnorm),
        loss="mse",
    )
    norms = []

    class RecordNorms(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            norms.append(logs["grad_norm"])

    x_test, y_test = adding_problem(1_000, args.length, seed=10_000 + args.seed)
    rng = np.random.default_rng(args.seed)
    losses, tests, clip_rates = [], [], []
    start = time.perf_counter()
    for done in range(0, args.train_steps, args.log_every):
        x, y = adding_problem(args.log_every * args.batch_size, args.length,
                              seed=int(rng.integers(2**31)))
        history = model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False,
                            callbacks=[ClippingMonitor(), RecordNorms()])
        loss = float(history.history["loss"][-1])
        losses.append([done + args.log_every, loss if np.isfinite(loss) else None])
        clip_rates.append([done + args.log_every, float(history.history["clip_rate"][-1])])
        if (done + args.log_every) % args.eval_every == 0:
            mse = float(model.evaluate(x_test, y_test, verbose=0))
            tests.append([done + args.log_every, mse if np.isfinite(mse) else None])
            print(f"  clipnorm {clipnorm:g} step {done + args.log_every}: loss {loss:.4f}, "
                  f"test MSE {mse:.4f}, max norm so far {max(norms):.3g}", flush=True)
    return {
        "clipnorm": clipnorm,
        "loss": losses,
        "test_mse": tests,
        "grad_norms": [float(f"{n:.4g}") for n in norms],
        "clip_rate": clip_rates,
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(results):
    rows = [
        "| run | test MSE at the end | best | largest gradient norm | steps with norm > 1 | clip rate | s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, run in results.items():
        tests = [m for _, m in run["test_mse"] if m is not None]
        norms = np.array(run["grad_norms"], dtype="float64")
        final = run["test_mse"][-1][1]
        rows.append(
            f"| {name} | {'NaN' if final is None else f'{final:.4f}'} | "
            f"{min(tests):.4f} | {np.nanmax(norms):.3g} | {np.mean(norms > 1):.1%} | "
            f"{run['clip_rate'][-1][1]:.1%} | {run['seconds']:.0f} |"
        )
    return "\n".join(rows)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    colors = {"clipped": "tab:red", "not clipped": "tab:grey"}
    for name, run in results.items():
        color = colors.get(name)
        axes[0].plot(*zip(*[(s, m) for s, m in run["test_mse"] if m is not None]),
                     label=name, color=color)
        norms = np.array(run["grad_norms"], dtype="float64")
        axes[1].plot(np.arange(1, len(norms) + 1), norms, label=name, color=color,
                     linewidth=0.5, alpha=0.8)
        if name == "clipped":
            axes[2].plot(*zip(*run["clip_rate"]), label=name, color=color)
    axes[0].axhline(1 / 6, color="black", linewidth=0.8, linestyle=":")
    axes[0].set(yscale="log", xlabel="training steps", ylabel="test MSE (dotted: 0.167)",
                title="adding problem, T = 150, IRNN")
    axes[1].axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    axes[1].set(yscale="log", xlabel="training step", ylabel="global gradient norm",
                title="gradient norm per step (dotted: threshold 1)")
    axes[2].set(xlabel="training steps", ylabel="share of steps clipped so far",
                title="clip rate", ylim=(0, 1))
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    _common.save_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=150)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--train-steps", type=int, default=6_000)
    parser.add_argument("--log-every", type=int, default=50, help="steps per loss point")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--clipnorm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/papers/results")
    parser.add_argument("--plot-only", action="store_true")
    _common.add_data_parallel_flag(parser)
    args = parser.parse_args(argv)
    if args.eval_every % args.log_every:
        parser.error("--eval-every must be a multiple of --log-every")
    out = pathlib.Path(args.out)
    json_path = out / "clipping.json"
    if args.plot_only:
        results = json.loads(json_path.read_text())
    else:
        import keras

        with _common.data_parallel(args, parser) as devices:
            print(f"IRNN({args.units}) on the adding problem, T={args.length}, "
                  f"Adam({args.learning_rate}), {keras.backend.backend()}, {devices} device(s)",
                  flush=True)
            results = {
                "clipped": run_one(args.clipnorm, args),
                "not clipped": run_one(NEVER, args),
            }
        for run in results.values():
            run["devices"] = devices
        _common.write_json(json_path, results)
    print(table(results))
    plot(results, out / "clipping.png")
    print(f"wrote {json_path} and {out / 'clipping.png'}")


if __name__ == "__main__":
    main()
