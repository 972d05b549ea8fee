"""Draws docs/images/gradients_during_training.png: ‖∂L/∂h_t‖ as each model learns.

Trains a tanh RNN, an LSTM and an IRNN (100 units each) on the adding
problem with `ClippedOptimizer(Adam(1e-3), clipnorm=1)`, and records the
gradient reaching every step of the recurrent layer on one fixed batch before
training and after every epoch (`rnnapps.diagnostics.GradientThroughTime`).
One panel per model, one line per measurement (darker = earlier), the test MSE
in the title.

    KERAS_BACKEND=jax python docs/figures/gradients_during_training.py
"""

import argparse
import pathlib


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = pathlib.Path(__file__).resolve().parents[1] / "images" / "gradients_during_training.png"
    parser.add_argument("--out", default=str(default))
    parser.add_argument("--length", type=int, default=100, help="sequence length T")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps-per-epoch", type=int, default=500)
    parser.add_argument("--units", type=int, default=100)
    args = parser.parse_args(argv)

    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from rnnapps.datasets import adding_problem
    from rnnapps.diagnostics import GradientThroughTime
    from rnnapps.figures import save_figure
    from rnnapps.layers import IRNN
    from rnnapps.optimizers import ClippedOptimizer

    x, y = adding_problem(args.steps_per_epoch * 32, args.length, seed=0)
    x_test, y_test = adding_problem(1000, args.length, seed=1)
    probe = adding_problem(32, args.length, seed=2)  # the batch every measurement uses
    models = {
        "tanh RNN": lambda: keras.layers.SimpleRNN(args.units),
        "LSTM": lambda: keras.layers.LSTM(args.units),
        "IRNN": lambda: IRNN(args.units),
    }
    fig, axes = plt.subplots(1, len(models), figsize=(13, 3.8), sharey=True)
    for ax, (name, make) in zip(axes, models.items()):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((args.length, 2)), make(), keras.layers.Dense(1)])
        model.compile(optimizer=ClippedOptimizer(keras.optimizers.Adam(1e-3), clipnorm=1.0),
                      loss="mse")
        monitor = GradientThroughTime(*probe)
        model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=[monitor])
        mse = float(model.evaluate(x_test, y_test, verbose=0))
        colors = plt.cm.viridis(np.linspace(0, 0.95, len(monitor.epochs)))
        steps = np.arange(1, args.length + 1)
        for color, epoch, norms in zip(colors, monitor.epochs, monitor.norms):
            ax.plot(steps, np.where(norms > 0, norms, np.nan), color=color,
                    label=f"after {epoch * args.steps_per_epoch:,} steps"
                    if epoch in (0, monitor.epochs[-1]) else None)
        ax.set(yscale="log", title=f"{name}: test MSE {mse:.3f} (constant: 0.167)",
               xlabel="time step t (the loss reads step T)")
        ax.legend(fontsize=8)
        print(f"{name}: test MSE {mse:.4f}; first/last step "
              f"{monitor.norms[0][0] / monitor.norms[0][-1]:.2e} before training, "
              f"{monitor.norms[-1][0] / monitor.norms[-1][-1]:.2e} after", flush=True)
    axes[0].set_ylabel("‖∂L/∂h_t‖")
    fig.suptitle(f"adding problem, T = {args.length}: the gradient reaching each step, "
                 f"every {args.steps_per_epoch} training steps", fontsize=10)
    fig.tight_layout()
    save_figure(fig, args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
