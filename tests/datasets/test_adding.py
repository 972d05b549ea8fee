import numpy as np
import pytest

from rnnapps.datasets import adding_problem


def test_targets_are_the_sum_of_the_two_marked_values():
    x, y = adding_problem(500, steps=40, seed=3)
    assert x.shape == (500, 40, 2) and y.shape == (500, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    markers = x[..., 1]
    np.testing.assert_array_equal(markers.sum(axis=1), 2.0)
    np.testing.assert_array_equal(markers[:, :20].sum(axis=1), 1.0)  # one per half
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(axis=1), rtol=1e-6)
    assert 0.0 <= x[..., 0].min() and x[..., 0].max() <= 1.0


def test_constant_predictor_mse_is_about_one_sixth():
    _, y = adding_problem(20_000, steps=10, seed=0)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.01


def test_seed_makes_it_reproducible():
    a = adding_problem(8, steps=6, seed=1)
    b = adding_problem(8, steps=6, seed=1)
    c = adding_problem(8, steps=6, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_samples": 0, "steps": 5}, "num_samples=0"),
        ({"num_samples": 4, "steps": 1}, "steps=1"),
        ({"num_samples": 4.5, "steps": 5}, "num_samples=4.5"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adding_problem(**kwargs)
