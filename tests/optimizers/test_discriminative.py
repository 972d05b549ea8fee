"""`DiscriminativeAdam` on every backend: rates per group, gradual unfreezing."""

import numpy as np
import pytest

import keras

from rnnapps.optimizers import ClippedOptimizer
from rnnapps.optimizers import DiscriminativeAdam


def three_layers():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, name="embedding")(inputs)
    x = keras.layers.Dense(4, name="encoder")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(x))


def kernels(model):
    return {name: keras.ops.convert_to_numpy(model.get_layer(name).kernel).copy()
            for name in ("head", "encoder", "embedding")}


def steps(model, optimizer, count):
    model.compile(optimizer, "mse")
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    moved = []
    for _ in range(count):
        before = kernels(model)
        model.fit(x, np.ones((8, 1)), batch_size=8, epochs=1, verbose=0)
        after = kernels(model)
        moved.append({k: float(np.abs(after[k] - before[k]).max()) for k in after})
    return moved


def test_each_group_learns_decay_times_slower():
    model = three_layers()
    moved = steps(model, DiscriminativeAdam(0.01, groups=["encoder", "embedding"], decay=4.0), 1)[0]
    # Adam's first step moves each weight by about its learning rate.
    assert moved["head"] == pytest.approx(0.01, rel=1e-3)
    assert moved["encoder"] == pytest.approx(0.01 / 4, rel=1e-3)
    assert moved["embedding"] == pytest.approx(0.01 / 16, rel=1e-3)


def test_groups_unfreeze_one_at_a_time_inside_clipped_optimizer():
    model = three_layers()
    inner = DiscriminativeAdam(0.01, groups=["encoder", "embedding"], unfreeze_every=2)
    moved = steps(model, ClippedOptimizer(inner, clipnorm=10.0), 5)
    trains = [{k for k, v in step.items() if v > 0} for step in moved]
    assert trains == [{"head"}, {"head"}, {"head", "encoder"}, {"head", "encoder"},
                      {"head", "encoder", "embedding"}]


def test_serialization_keeps_the_groups(tmp_path):
    model = three_layers()
    model.compile(DiscriminativeAdam(0.01, groups=["encoder"], decay=3.0, unfreeze_every=7), "mse")
    model.fit(np.ones((2, 3)), np.ones((2, 1)), verbose=0)
    model.save(tmp_path / "m.keras")
    optimizer = keras.saving.load_model(tmp_path / "m.keras").optimizer
    assert isinstance(optimizer, DiscriminativeAdam)
    assert (optimizer.groups, optimizer.decay, optimizer.unfreeze_every) == (["encoder"], 3.0, 7)
    assert optimizer.group_of("encoder/kernel") == 1 and optimizer.group_of("encoder_2/kernel") == 0
    with pytest.raises(ValueError, match="decay must be positive"):
        DiscriminativeAdam(groups=["a"], decay=0)
