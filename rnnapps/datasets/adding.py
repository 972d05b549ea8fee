"""The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015)."""

import numpy as np

__all__ = ["adding_problem"]


def adding_problem(num_samples, steps, seed=None):
    """Generates the adding problem: sum the two marked values of a sequence.

    Each input sequence has `steps` steps of two features: a value drawn
    uniformly from [0, 1], and a marker that is 1 at exactly two steps (one
    in the first half, one in the second, as in Le et al. 2015) and 0
    elsewhere. The target is the sum of the two marked values. A model
    must carry the first marked value across up to `steps` steps, which is
    what plain RNNs fail at. Predicting the constant 1 gives a mean squared
    error of about 1/6 (0.167): a model has learned something only below that.

    Args:
        num_samples: Positive integer, number of sequences.
        steps: Integer >= 2, the sequence length T (the paper: 150 to 400).
        seed: Optional integer seed for NumPy's generator.

    Returns:
        A tuple `(x, y)`: `x` float32 of shape `(num_samples, steps, 2)`,
        `y` float32 of shape `(num_samples, 1)`.

    Example:

    >>> from rnnapps.datasets import adding_problem
    >>> x, y = adding_problem(4, steps=10, seed=0)
    >>> x.shape, y.shape
    ((4, 10, 2), (4, 1))
    >>> bool((x[..., 1].sum(axis=1) == 2).all())
    True
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise ValueError(
            f"num_samples must be a positive integer. Received: num_samples={num_samples!r}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2. Received: steps={steps!r}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(num_samples, steps))
    half = steps // 2
    first = rng.integers(0, half, size=num_samples)
    second = rng.integers(half, steps, size=num_samples)
    markers = np.zeros((num_samples, steps))
    rows = np.arange(num_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype("float32")
    y = (values[rows, first] + values[rows, second])[:, None].astype("float32")
    return x, y
