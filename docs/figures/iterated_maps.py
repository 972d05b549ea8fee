"""Draws docs/images/iterated_maps.png: why gradients vanish or explode through time.

A recurrent network without input is an iterated map h_t = f(h_{t-1}). The
gradient that flows from step T back to step t is the product of the slopes
along the way: dh_T/dh_t = f'(h_t) f'(h_{t+1}) ... f'(h_{T-1}). Near a fixed
point x* = f(x*) every factor is about f'(x*), so the product behaves like
f'(x*)^(T-t): a fixed point with |f'| < 1 attracts the state and the gradient
vanishes; one with |f'| > 1 repels it and the gradient explodes while the
state is near it. The left panel shows the trajectories as cobwebs (go up to
the curve, across to the diagonal, repeat); the right panel the gradient
dh_T/dh_t for T = 30 on a log scale, the same curve `rnnapps diagnose` draws
for a real model.

    python docs/figures/iterated_maps.py [--out docs/images/iterated_maps.png]
"""

import argparse
import pathlib

import numpy as np

STEPS = 30

# (label, f, f', h_0, colour)
MAPS = [
    ("tanh(0.5 h): fixed point 0, slope 0.5 (attracts: vanishing)",
     lambda h: np.tanh(0.5 * h), lambda h: 0.5 * (1 - np.tanh(0.5 * h) ** 2), 0.9, "tab:blue"),
    ("tanh(2 h): 0 has slope 2 (repels: exploding), ±0.96 slope 0.15",
     lambda h: np.tanh(2 * h), lambda h: 2 * (1 - np.tanh(2 * h) ** 2), 1e-6, "tab:orange"),
    ("relu(h), the IRNN's start: every h ≥ 0 is fixed, slope 1",
     lambda h: np.maximum(h, 0), lambda h: (h > 0).astype(float), 0.5, "tab:red"),
]


def trajectory(f, h0, steps=STEPS):
    h = [h0]
    for _ in range(steps):
        h.append(float(f(h[-1])))
    return np.array(h)


def gradient_to_last(fprime, h):
    """dh_T/dh_t for t = 0..T-1: the product of the slopes from t to T-1."""
    slopes = fprime(h[:-1])
    return np.cumprod(slopes[::-1])[::-1]


def draw(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnapps.figures import save_figure

    fig, (cobweb, grads) = plt.subplots(1, 2, figsize=(11, 4.4))
    x = np.linspace(-1.1, 1.1, 400)
    cobweb.plot(x, x, color="black", linewidth=0.8, label="$h_t = h_{t-1}$")
    for label, f, fprime, h0, color in MAPS:
        cobweb.plot(x, f(x), color=color, linewidth=1.2, label=label)
        h = trajectory(f, h0)
        xs, ys = [h[0]], [h[0]]
        for a, b in zip(h[:-1], h[1:]):
            xs += [a, b]
            ys += [b, b]
        cobweb.plot(xs, ys, color=color, linewidth=0.7, alpha=0.8)
        slopes = gradient_to_last(fprime, h)
        grads.plot(np.arange(STEPS), slopes, color=color, marker=".", label=label.split(":")[0])
    cobweb.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xlabel="$h_{t-1}$", ylabel="$h_t$",
               title="iterating $h_t = f(h_{t-1})$ (cobweb)")
    cobweb.legend(fontsize=7, loc="lower right")
    grads.set(yscale="log", xlabel=f"step t (T = {STEPS})", ylabel=r"$\partial h_T / \partial h_t$",
              title="gradient reaching step t from step T")
    grads.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = pathlib.Path(__file__).resolve().parents[1] / "images" / "iterated_maps.png"
    parser.add_argument("--out", default=str(default))
    args = parser.parse_args(argv)
    print(f"wrote {draw(args.out)}")


if __name__ == "__main__":
    main()
