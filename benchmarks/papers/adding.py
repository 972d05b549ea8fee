"""The adding problem (Hochreiter & Schmidhuber 1997) as Le, Jaitly & Hinton (2015) use it.

Each sequence has T steps of (value in [0, 1], marker); exactly two markers
are 1 (one in each half) and the target is the sum of the two marked values.
Predicting the constant 1 gives a mean squared error of 1/6 ≈ 0.167; a model
has learned to carry the first value across the sequence only if it gets far
below that. Le et al. (Fig. 2): at T = 150 the IRNN and the LSTM reach an MSE
near 0 while the tanh RNN stays at 0.167; at T = 300-400 the LSTM struggles
too and the IRNN still converges.

This script trains IRNN (`rnnapps.layers.IRNN`), a tanh RNN
(`keras.layers.SimpleRNN`) and an LSTM (`keras.layers.LSTM`), each followed
by Dense(1), with Adam, with and without gradient clipping
(`rnnapps.optimizers.ClippedOptimizer`, clipnorm 1), on fresh sequences every
step (as the paper does: the data is unlimited), and measures the test MSE on
1,000 fixed sequences every `--eval-every` steps. It prints a table and
writes `adding.json` (every curve) and `adding.png` (MSE against training
steps, one panel per T).

Usage (run on the JAX backend: it is the fastest on CPU here):

    KERAS_BACKEND=jax python benchmarks/papers/adding.py            # the CPU budget
    KERAS_BACKEND=jax python benchmarks/papers/adding.py --gpu      # the paper's settings
    KERAS_BACKEND=jax python benchmarks/papers/adding.py --gpu --data-parallel  # every device
    python benchmarks/papers/adding.py --plot-only                  # redraw from the JSON

Differences from the paper, stated where the numbers are reported: Adam
instead of SGD with a tuned learning rate, batch 32 instead of 16, and 10,000
training steps (the CPU budget) instead of the paper's far longer training. `--gpu` uses 100,000
steps. Runs already in the JSON are kept (a killed run resumes), so the
grid can be filled in a few sittings; `--fresh` starts over.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402

CONSTANT_MSE = 1.0 / 6.0
LEARNED = 0.1 * CONSTANT_MSE  # "far below": under a tenth of the constant predictor's MSE


def build_model(cell, steps, units, learning_rate, clipnorm):
    import keras

    from rnnapps.optimizers import ClippedOptimizer

    recurrent = _common.recurrent_layer(cell, units)
    model = keras.Sequential(
        [keras.Input((steps, 2)), recurrent, keras.layers.Dense(1, name="sum")],
        name=f"adding_{cell}",
    )
    optimizer = keras.optimizers.Adam(learning_rate)
    if clipnorm:
        optimizer = ClippedOptimizer(optimizer, clipnorm=clipnorm)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def run_one(cell, steps, clipnorm, args):
    """Trains one model; returns its curve (steps, test MSE) and timing."""
    import keras

    from rnnapps.datasets import adding_problem

    keras.utils.set_random_seed(args.seed)
    model = build_model(cell, steps, args.units, args.learning_rate, clipnorm)
    x_test, y_test = adding_problem(1_000, steps, seed=10_000 + args.seed)
    rng = np.random.default_rng(args.seed)
    curve = [[0, float(model.evaluate(x_test, y_test, verbose=0))]]
    start = time.perf_counter()
    done = 0
    while done < args.train_steps:
        chunk = min(args.eval_every, args.train_steps - done)
        x, y = adding_problem(chunk * args.batch_size, steps, seed=int(rng.integers(2**31)))
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
        done += chunk
        mse = float(model.evaluate(x_test, y_test, verbose=0))
        curve.append([done, mse if np.isfinite(mse) else None])
        print(f"  {cell:>4} T={steps} clip={clipnorm or 'off'} step {done:>6}: test MSE "
              f"{mse:.4f}", flush=True)
        if not np.isfinite(mse):  # diverged: the weights are NaN from here on
            break
    seconds = time.perf_counter() - start
    return {"curve": curve, "seconds": round(seconds, 1), "train_steps": done}


def summarize(run):
    mses = [m for _, m in run["curve"] if m is not None]
    final = run["curve"][-1][1]
    first_learned = next(
        (s for s, m in run["curve"] if m is not None and m < LEARNED), None
    )
    return {
        "final": final,
        "best": min(mses) if mses else None,
        "first_learned": first_learned,
        "diverged": final is None,
    }


def table(results):
    rows = [
        "| T | model | clipping | seed | test MSE at the end | best | first step under 0.0167 | s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in sorted(results, key=_common.sort_key):
        run = results[key]
        s = summarize(run)
        final = "diverged (NaN)" if s["diverged"] else f"{s['final']:.4f}"
        best = "-" if s["best"] is None else f"{s['best']:.4f}"
        learned = "never" if s["first_learned"] is None else f"{s['first_learned']:,}"
        rows.append(
            f"| {run['T']} | {_common.CELL_NAMES[run['cell']]} | {run['clipping']} | {run['seed']} | "
            f"{final} | {best} | {learned} | {run['seconds']:.0f} |"
        )
    return "\n".join(rows)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted({run["T"] for run in results.values()})
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.6),
                             squeeze=False, sharey=True)
    for ax, steps in zip(axes[0], lengths):
        for key in sorted(results, key=_common.sort_key):
            run = results[key]
            if run["T"] != steps:
                continue
            xs = [s for s, m in run["curve"] if m is not None]
            ys = [m for s, m in run["curve"] if m is not None]
            first_seed = run["seed"] == min(r["seed"] for r in results.values())
            ax.plot(xs, ys, color=_common.CELL_COLORS[run["cell"]],
                    label=f"{_common.CELL_NAMES[run['cell']]}, clip {run['clipping']}"
                    if first_seed else None,  # one legend entry for all seeds
                    linestyle="-" if run["clipping"] != "off" else "--",
                    alpha=1.0 if first_seed else 0.5, linewidth=1.2 if first_seed else 0.8)
        ax.axhline(CONSTANT_MSE, color="grey", linewidth=0.8, linestyle=":")
        ax.set_yscale("log")
        ax.set_title(f"adding problem, T = {steps}")
        ax.set_xlabel("training steps (batch 32)")
    axes[0][0].set_ylabel("test MSE (dotted: predict 1, 0.167)")
    axes[0][0].legend(fontsize=7)  # the T = 150 panel has every variant
    fig.tight_layout()
    _common.save_figure(fig, path)


def train_grid(results, json_path, devices, args):
    """Trains every (T, cell, clipping) run not yet in `results`, saving after each."""
    import keras

    for steps in _common.int_list(args.lengths):
        for cell in args.cells.split(","):
            for clip in args.clipping.split(","):
                clipnorm = None if clip == "off" else float(clip)
                key = f"T={steps} {cell} clip={clip} steps={args.train_steps} seed={args.seed}"
                if key in results:
                    continue
                print(f"{key} ({keras.backend.backend()}, {devices} device(s))", flush=True)
                run = run_one(cell, steps, clipnorm, args)
                run.update(T=steps, cell=cell, clipping=clip, seed=args.seed,
                           backend=keras.backend.backend(), devices=devices, units=args.units,
                           batch_size=args.batch_size, learning_rate=args.learning_rate)
                results[key] = run
                _common.write_json(json_path, results)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="150,200,300,400", help="sequence lengths T")
    parser.add_argument("--cells", default="irnn,rnn,lstm", help="irnn, rnn (tanh), lstm")
    parser.add_argument("--clipping", default="1,off",
                        help="clipnorm values to try, 'off' = plain Adam (default: 1,off)")
    parser.add_argument("--train-steps", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--units", type=int, default=100, help="hidden units (paper: 100)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu", action="store_true",
                        help="the paper's budget: 100,000 steps, evaluated every 2,000")
    parser.add_argument("--out", default="benchmarks/papers/results",
                        help="folder for adding.json and adding.png")
    parser.add_argument("--plot-only", action="store_true", help="redraw from adding.json")
    parser.add_argument("--fresh", action="store_true", help="ignore runs already in the JSON")
    _common.add_merge_flag(parser)
    _common.add_data_parallel_flag(parser)
    args = parser.parse_args(argv)
    if args.gpu:
        args.train_steps, args.eval_every = 100_000, 2_000
    out = pathlib.Path(args.out)
    json_path = out / "adding.json"
    results = _common.load_results(json_path, args.fresh, args.merge)
    if not args.plot_only:
        with _common.data_parallel(args, parser) as devices:
            train_grid(results, json_path, devices, args)
    if not results:
        raise SystemExit(f"no results in {json_path}")
    print(table(results))
    plot(results, out / "adding.png")
    print(f"wrote {json_path} and {out / 'adding.png'}")


if __name__ == "__main__":
    main()
