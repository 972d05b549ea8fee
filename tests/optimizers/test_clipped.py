"""Tests for `rnnapps.optimizers.ClippedOptimizer` and `ClippingMonitor`."""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from rnnapps.optimizers import ClippedOptimizer
from rnnapps.optimizers import ClippingMonitor
from rnnapps.optimizers import clipped as clipped_module

ROOT = pathlib.Path(__file__).resolve().parents[2]


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def apply_steps(optimizer, grads_per_step, initial, stateless=False):
    """Applies each list of gradients in turn; returns the variables.

    With `stateless=True` the steps go through `stateless_apply`, as in
    `fit()` on JAX.
    """
    variables = [keras.Variable(np.array(v, "float32")) for v in initial]
    if stateless:
        optimizer.build(variables)
        values = [v.value for v in variables]
        state = [v.value for v in optimizer.variables]
        for grads in grads_per_step:
            grads = [keras.ops.convert_to_tensor(g, "float32") for g in grads]
            values, state = optimizer.stateless_apply(state, grads, values)
        for variable, value in zip(optimizer.variables, state):
            variable.assign(value)
        return [to_numpy(v) for v in values]
    for grads in grads_per_step:
        optimizer.apply([np.array(g, "float32") for g in grads], variables)
    return [to_numpy(v) for v in variables]


def numpy_clip(grads, threshold):
    norm = np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads))
    factor = threshold / norm if norm > threshold else 1.0
    return [g * factor for g in grads], norm


# NumPy references ----------------------------------------------------------


def test_sgd_update_matches_numpy_reference():
    lr, clipnorm = 0.1, 1.0
    w0 = [np.array([1.0, -2.0]), np.array([[0.5], [0.25]])]
    big = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])]  # norm 5
    small = [np.array([0.3, 0.0]), np.array([[0.0], [0.4]])]  # norm 0.5
    optimizer = ClippedOptimizer(keras.optimizers.SGD(lr), clipnorm=clipnorm)

    after_big = apply_steps(optimizer, [big], w0)
    for w, g, got in zip(w0, big, after_big):
        np.testing.assert_allclose(got, w - lr * clipnorm * g / 5.0, atol=1e-6)
    assert float(optimizer.last_norm) == pytest.approx(5.0)
    assert float(optimizer.threshold) == pytest.approx(clipnorm)
    assert float(optimizer.clip_rate) == pytest.approx(1.0)

    variables = [keras.Variable(w) for w in after_big]
    optimizer = ClippedOptimizer(keras.optimizers.SGD(lr), clipnorm=clipnorm)
    optimizer.apply([np.array(g, "float32") for g in big], variables)
    before = [to_numpy(v) for v in variables]
    optimizer.apply([np.array(g, "float32") for g in small], variables)
    for w, g, v in zip(before, small, variables):
        np.testing.assert_allclose(to_numpy(v), w - lr * g, atol=1e-6)
    assert float(optimizer.last_norm) == pytest.approx(0.5)
    assert float(optimizer.clip_rate) == pytest.approx(0.5)
    assert int(to_numpy(optimizer.iterations)) == 2


def numpy_adam(w, grads, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        w = w - alpha * m / (np.sqrt(v) + epsilon)
    return w


def test_adam_update_matches_numpy_reference():
    lr, clipnorm = 0.01, 2.0
    grads = [
        np.array([3.0, 4.0, 0.0]),
        np.array([0.5, 0.5, -1.0]),
        np.array([-6.0, 8.0, 0.0]),
    ]  # norms 5, 1.22, 10
    w0 = np.array([0.1, 0.2, 0.3])
    optimizer = ClippedOptimizer(keras.optimizers.Adam(lr), clipnorm=clipnorm)
    (got,) = apply_steps(optimizer, [[g] for g in grads], [w0])
    clipped = [numpy_clip([g], clipnorm)[0][0] for g in grads]
    np.testing.assert_allclose(got, numpy_adam(w0, clipped, lr), rtol=1e-5)
    # Without clipping the result would differ: the test can fail.
    assert not np.allclose(got, numpy_adam(w0, grads, lr), rtol=1e-3)
    assert float(optimizer.clip_rate) == pytest.approx(2 / 3)
    assert float(optimizer.last_norm) == pytest.approx(10.0)


@pytest.mark.parametrize("percentile", [10.0, 50.0, 70.0, 100.0])
def test_percentile_threshold_matches_numpy(percentile):
    history_size = 4
    norms = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5]
    direction = np.array([0.6, 0.0, -0.8])  # unit vector
    lr = 0.5
    optimizer = ClippedOptimizer(
        keras.optimizers.SGD(lr),
        clipnorm=None,
        percentile=percentile,
        history_size=history_size,
    )
    w = keras.Variable(np.zeros(3, "float32"))
    expected_w = np.zeros(3)
    clipped_steps = 0
    for step, norm in enumerate(norms):
        optimizer.apply([np.array(norm * direction, "float32")], [w])
        recent = norms[max(0, step + 1 - history_size) : step + 1]
        threshold = np.percentile(recent, percentile)
        assert float(optimizer.threshold) == pytest.approx(threshold, 1e-6)
        assert float(optimizer.last_norm) == pytest.approx(norm, 1e-6)
        expected_w -= lr * min(norm, threshold) * direction
        clipped_steps += norm > threshold
        np.testing.assert_allclose(to_numpy(w), expected_w, atol=1e-5)
    assert float(optimizer.clip_rate) == pytest.approx(
        clipped_steps / len(norms)
    )
    if percentile == 100.0:
        assert clipped_steps == 0
    else:
        assert clipped_steps > 0


def test_matches_keras_global_clipnorm_on_one_device_with_ema():
    # On one device the rule is Keras's `global_clipnorm`; the inner
    # optimizer's EMA is kept and `finalize_variable_values` forwarded.
    grads = [
        [np.array([3.0, 4.0]), np.array([1.0])],
        [np.array([0.1, 0.2]), np.array([0.1])],
        [np.array([-5.0, 2.0]), np.array([7.0])],
    ]
    w0 = [np.array([1.0, 2.0]), np.array([0.5])]

    def run(optimizer):
        variables = [keras.Variable(np.array(v, "float32")) for v in w0]
        for step in grads:
            optimizer.apply(
                [keras.ops.convert_to_tensor(np.array(g, "float32")) for g in step],
                variables,
            )
        raw = [to_numpy(v) for v in variables]
        optimizer.finalize_variable_values(variables)
        return raw, [to_numpy(v) for v in variables]

    ours = run(
        ClippedOptimizer(
            keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True),
            clipnorm=1.5,
        )
    )
    keras_own = run(
        keras.optimizers.SGD(
            0.1, momentum=0.9, use_ema=True, global_clipnorm=1.5
        )
    )
    for a, b in zip(ours[0] + ours[1], keras_own[0] + keras_own[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # finalize_variable_values replaced the weights by their EMA.
    assert not np.allclose(ours[0][0], ours[1][0])


def test_inner_loss_scale_factor_is_unscaled_before_clipping():
    g = [np.array([3.0, 4.0])]
    plain = ClippedOptimizer(keras.optimizers.SGD(0.1), clipnorm=1.0)
    scaled = ClippedOptimizer(
        keras.optimizers.SGD(0.1, loss_scale_factor=8.0), clipnorm=1.0
    )
    expected = apply_steps(plain, [g], [np.zeros(2)])
    got = apply_steps(scaled, [[8.0 * g[0]]], [np.zeros(2)])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
    assert float(scaled.last_norm) == pytest.approx(5.0)
    assert float(to_numpy(scaled.scale_loss(1.0))) == pytest.approx(8.0)


# Wrapper behaviour ---------------------------------------------------------


def test_forwards_learning_rate_iterations_and_variables():
    inner = keras.optimizers.Adam(learning_rate=0.05)
    optimizer = ClippedOptimizer(inner, clipnorm=1.0)
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(0.05)
    optimizer.learning_rate = 0.02
    assert float(to_numpy(inner.learning_rate)) == pytest.approx(0.02)

    w = keras.Variable(np.zeros((2, 3), "float32"))
    optimizer.build([w])
    assert inner.built
    own = [v.path for v in optimizer.variables[: -len(inner.variables)]]
    assert [v.path for v in optimizer.variables[len(own) :]] == [
        v.path for v in inner.variables
    ]
    assert any(p.endswith("clipped_count") for p in own)
    optimizer.apply([np.ones((2, 3), "float32")])
    optimizer.apply([np.ones((2, 3), "float32")])
    assert optimizer.iterations is inner.iterations
    assert int(to_numpy(optimizer.iterations)) == 2


def test_wraps_built_optimizer_with_schedule_without_rebuilding():
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=1, decay_rate=0.5
    )
    inner = keras.optimizers.SGD(schedule)
    w = keras.Variable(np.zeros(2, "float32"))
    inner.build([w])
    inner_variables = list(inner.variables)
    optimizer = ClippedOptimizer(inner, clipnorm=100.0)
    optimizer.apply([np.ones(2, "float32")], [w])
    optimizer.apply([np.ones(2, "float32")], [w])
    assert all(a is b for a, b in zip(inner.variables, inner_variables))
    assert len(inner.variables) == len(inner_variables)
    # lr 0.1 then 0.05 (schedule read through the inner optimizer).
    np.testing.assert_allclose(to_numpy(w), [-0.15, -0.15], rtol=1e-6)
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(0.025)
    with pytest.raises(TypeError):
        optimizer.learning_rate = 0.1  # as for the inner optimizer itself

    other = keras.Variable(np.zeros(2, "float32"))
    with pytest.raises(ValueError, match="Unknown variable"):
        ClippedOptimizer(inner).build([other])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"clipnorm": 0}, "clipnorm must be positive. Received: clipnorm=0"),
        ({"clipnorm": -1.5}, "Received: clipnorm=-1.5"),
        ({"clipnorm": "1"}, "Received: clipnorm=1"),
        ({"clipnorm": None}, "Received: clipnorm=None"),
        ({"percentile": 0}, "Received: percentile=0"),
        ({"percentile": 100.5}, "Received: percentile=100.5"),
        ({"percentile": 50, "clipnorm": 2.0}, "Received: clipnorm=2.0"),
        ({"history_size": 0}, "Received: history_size=0"),
        ({"history_size": 2.5}, "Received: history_size=2.5"),
        ({"global_clipnorm": 1.0}, "Received: global_clipnorm=1.0"),
        ({"clipvalue": 0.5}, "Received: clipvalue=0.5"),
        ({"use_ema": True}, "Received: use_ema=True"),
        (
            {"gradient_accumulation_steps": 2},
            "Received: gradient_accumulation_steps=2",
        ),
        ({"weight_decay": 0.01}, "Received: weight_decay=0.01"),
        ({"learning_rate": 0.1}, "Received: learning_rate=0.1"),
        ({"momentum": 0.9}, "momentum"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ClippedOptimizer(keras.optimizers.SGD(), **kwargs)


def test_default_valued_base_arguments_are_accepted():
    optimizer = ClippedOptimizer(
        keras.optimizers.SGD(), weight_decay=None, use_ema=False
    )
    assert optimizer.clipnorm == 1.0


def test_rejects_loss_scale_optimizer_and_non_optimizers():
    lso = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    with pytest.raises(ValueError, match=re.escape("LossScaleOptimizer(Clip")):
        ClippedOptimizer(lso)
    with pytest.raises(ValueError, match="Received: inner_optimizer='adam'"):
        ClippedOptimizer("adam")
    with pytest.raises(ValueError, match="inner_optimizer"):
        ClippedOptimizer(keras.layers.Dense(1))


def test_percentile_mode_keeps_clipnorm_none():
    optimizer = ClippedOptimizer(keras.optimizers.SGD(), percentile=90)
    assert optimizer.clipnorm is None and optimizer.percentile == 90.0


# Mixed precision -------------------------------------------------------------


def test_loss_scale_optimizer_clips_the_unscaled_gradient():
    g = [np.array([3.0, -4.0, 12.0]), np.array([[1.0, 2.0]])]
    w0 = [np.array([0.1, 0.2, 0.3]), np.array([[0.5, -0.5]])]
    scale = 1024.0
    lso = keras.optimizers.LossScaleOptimizer(
        ClippedOptimizer(keras.optimizers.Adam(0.01), clipnorm=2.0),
        initial_scale=scale,
    )
    plain = ClippedOptimizer(keras.optimizers.Adam(0.01), clipnorm=2.0)
    # On JAX, LossScaleOptimizer only works statelessly (as in `fit()`).
    got = apply_steps(
        lso,
        [[scale * x for x in g]] * 2,
        w0,
        stateless=keras.backend.backend() == "jax",
    )
    expected = apply_steps(plain, [g] * 2, w0)
    clipped, norm = numpy_clip(g, 2.0)
    for a, b, w, c in zip(got, expected, w0, clipped):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(a, numpy_adam(w, [c, c], 0.01), rtol=1e-5)
    assert float(lso.inner_optimizer.last_norm) == pytest.approx(norm, 1e-6)
    assert int(to_numpy(lso.iterations)) == 2


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_fit_under_mixed_float16_policy(mixed_float16):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4, 3)), keras.layers.SimpleRNN(4), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=ClippedOptimizer(keras.optimizers.Adam(0.01), clipnorm=0.1),
        loss="mse",
    )
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = [to_numpy(w).copy() for w in model.trainable_weights]
    x = np.random.rand(8, 4, 3).astype("float32")
    y = np.random.rand(8, 1).astype("float32")
    history = model.fit(
        x, y, batch_size=1, epochs=1, callbacks=[ClippingMonitor()], verbose=0
    )
    clipped = model.optimizer.inner_optimizer
    assert isinstance(clipped, ClippedOptimizer)
    # The loss-scale optimizer may skip the first steps (float16 overflow
    # while the scale halves from 2**15; on JAX three are skipped); the
    # skipped ones never reach the clipper. Eight steps leave room for it.
    steps = int(to_numpy(model.optimizer.iterations))
    assert 1 <= steps <= 8
    assert int(to_numpy(clipped._step_count)) == steps
    assert np.isfinite(float(clipped.last_norm))
    assert float(clipped.last_norm) > 0.0
    assert history.history["grad_norm"][0] == pytest.approx(
        float(clipped.last_norm)
    )
    assert any(
        not np.allclose(a, to_numpy(b))
        for a, b in zip(before, model.trainable_weights)
    )
    assert model.trainable_weights[0].dtype == "float32"


# model.fit on the current backend vs NumPy -----------------------------------


def numpy_dense_fit(kernel, bias, x, y, lr, batch, clipnorm, percentile):
    norms, clipped_steps = [], 0
    for start in range(0, len(x), batch):
        xb, yb = x[start : start + batch], y[start : start + batch]
        residual = (xb @ kernel + bias - yb) / yb.size  # d(mse)/d(pred) / 2
        grads = [2 * xb.T @ residual, 2 * residual.sum(0)]
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        norms.append(norm)
        threshold = (
            clipnorm if percentile is None else np.percentile(norms, percentile)
        )
        factor = min(1.0, threshold / norm)
        clipped_steps += norm > threshold
        kernel = kernel - lr * factor * grads[0]
        bias = bias - lr * factor * grads[1]
    return kernel, bias, norms, clipped_steps


@pytest.mark.parametrize(
    "clipnorm, percentile", [(0.5, None), (None, 50.0)], ids=["fixed", "p50"]
)
def test_fit_matches_numpy_reference(clipnorm, percentile):
    rng = np.random.default_rng(3)
    # Later batches are larger, so their gradient norms grow and even an
    # adaptive threshold clips.
    x = rng.normal(size=(12, 3)).astype("float32")
    x *= np.repeat([1.0, 3.0, 6.0], 4)[:, None].astype("float32")
    y = rng.normal(size=(12, 2)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    kernel = rng.normal(size=(3, 2)).astype("float32")
    bias = np.array([0.5, -0.5], "float32")
    model.set_weights([kernel, bias])
    optimizer = ClippedOptimizer(
        keras.optimizers.SGD(0.1),
        clipnorm=clipnorm,
        percentile=percentile,
        history_size=8,
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)

    ref_kernel, ref_bias, norms, clipped_steps = numpy_dense_fit(
        kernel.astype("float64"),
        bias.astype("float64"),
        x,
        y,
        0.1,
        4,
        clipnorm,
        percentile,
    )
    assert clipped_steps >= 1  # the reference did clip
    got_kernel, got_bias = model.get_weights()
    np.testing.assert_allclose(got_kernel, ref_kernel, atol=1e-5)
    np.testing.assert_allclose(got_bias, ref_bias, atol=1e-5)
    assert not np.allclose(got_kernel, kernel)
    # Own and inner optimizer state came back from the training step.
    assert int(to_numpy(model.optimizer.iterations)) == 3
    assert float(optimizer.last_norm) == pytest.approx(norms[-1], 1e-5)
    assert float(optimizer.clip_rate) == pytest.approx(clipped_steps / 3)
    if percentile is not None:
        history = to_numpy(optimizer._norm_history)[:3]
        np.testing.assert_allclose(history, norms, rtol=1e-5)


def test_fit_recurrent_model_with_adam_and_monitor():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((5, 2)), keras.layers.GRU(4), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=ClippedOptimizer(keras.optimizers.Adam(0.01), clipnorm=0.05),
        loss="mse",
    )
    x = np.random.rand(8, 5, 2).astype("float32")
    y = np.random.rand(8, 1).astype("float32") * 10.0
    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, sorted(logs)))

    history = model.fit(
        x,
        y,
        batch_size=2,
        epochs=2,
        verbose=0,
        callbacks=[ClippingMonitor(log_every=2), Recorder()],
    )
    for key in ("grad_norm", "clip_rate", "clip_threshold"):
        assert len(history.history[key]) == 2
    assert all(0.0 <= r <= 1.0 for r in history.history["clip_rate"])
    assert history.history["clip_rate"][-1] == pytest.approx(1.0)
    assert all(n > 0.0 for n in history.history["grad_norm"])
    assert history.history["clip_threshold"] == pytest.approx([0.05, 0.05])
    with_keys = [b for b, keys in seen if "grad_norm" in keys]
    assert with_keys == [1, 3, 1, 3]  # every second batch, twice


def test_monitor_rejects_models_without_clipped_optimizer():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="ClippedOptimizer"):
        model.fit(
            np.ones((2, 2)),
            np.ones((2, 1)),
            verbose=0,
            callbacks=[ClippingMonitor()],
        )
    with pytest.raises(ValueError, match="Received: log_every=0"):
        ClippingMonitor(log_every=0)


# Serialization ---------------------------------------------------------------


def test_config_round_trip():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    optimizer = ClippedOptimizer(
        keras.optimizers.RMSprop(schedule, rho=0.8),
        clipnorm=None,
        percentile=75,
        history_size=16,
        name="clip",
    )
    config = optimizer.get_config()
    assert "learning_rate" not in config
    assert config["inner_optimizer"]["class_name"] == "RMSprop"
    restored = ClippedOptimizer.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    assert isinstance(restored.inner_optimizer, keras.optimizers.RMSprop)
    assert restored.inner_optimizer.rho == 0.8
    assert restored.percentile == 75.0 and restored.history_size == 16
    assert restored.name == "clip"

    serialized = keras.saving.serialize_keras_object(optimizer)
    assert serialized["registered_name"] == "rnnapps>ClippedOptimizer"
    again = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(again, ClippedOptimizer)
    assert again.get_config() == config


def test_save_and_load_model(tmp_path):
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((4, 2)), keras.layers.SimpleRNN(3), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(0.02), percentile=80, history_size=8
        ),
        loss="mse",
    )
    x = np.random.rand(8, 4, 2).astype("float32")
    y = np.random.rand(8, 1).astype("float32")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)

    saved_opt, opt = model.optimizer, loaded.optimizer
    assert isinstance(opt, ClippedOptimizer)
    assert (opt.clipnorm, opt.percentile, opt.history_size) == (
        None,
        80.0,
        8,
    )
    assert isinstance(opt.inner_optimizer, keras.optimizers.Adam)
    assert float(to_numpy(opt.learning_rate)) == pytest.approx(0.02)
    assert len(opt.variables) == len(saved_opt.variables) == 4 + 5 + 2 * 5
    for a, b in zip(saved_opt.variables, opt.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert int(to_numpy(opt.iterations)) == 2
    assert float(opt.last_norm) == float(saved_opt.last_norm) > 0.0
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    )
    # The restored state continues training exactly like the original.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# TensorFlow only: sparse gradients, TensorBoard, tf.distribute ---------------


@pytest.mark.tensorflow_only
def test_indexed_slices_gradient_is_clipped_like_its_dense_value():
    import tensorflow as tf

    grad = tf.IndexedSlices(
        tf.constant([[1.0, 2.0], [3.0, 4.0], [1.0, 1.0]]),
        tf.constant([0, 2, 0]),
        tf.constant([4, 2]),
    )
    sparse = ClippedOptimizer(keras.optimizers.SGD(1.0), clipnorm=1.0)
    dense = ClippedOptimizer(keras.optimizers.SGD(1.0), clipnorm=1.0)
    w_sparse = keras.Variable(np.zeros((4, 2), "float32"))
    w_dense = keras.Variable(np.zeros((4, 2), "float32"))
    sparse.apply([grad], [w_sparse])
    dense.apply([tf.convert_to_tensor(grad)], [w_dense])
    dense_value = np.array([[2.0, 3.0], [0, 0], [3.0, 4.0], [0, 0]])
    norm = np.linalg.norm(dense_value)
    assert float(sparse.last_norm) == pytest.approx(norm, 1e-6)
    np.testing.assert_allclose(
        to_numpy(w_sparse), -dense_value / norm, rtol=1e-6
    )
    np.testing.assert_allclose(to_numpy(w_sparse), to_numpy(w_dense), rtol=1e-6)


@pytest.mark.tensorflow_only
def test_tensorboard_after_monitor_records_clip_rate(tmp_path):
    import importlib.util

    import tensorflow as tf

    assert importlib.util.find_spec("tensorboard") is not None, (
        "keras.callbacks.TensorBoard needs the `tensorboard` package, which "
        "tensorflow>=2.21 no longer installs: pip install tensorboard"
    )

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=ClippedOptimizer(keras.optimizers.SGD()), loss="mse"
    )
    model.fit(
        np.random.rand(4, 3),
        np.random.rand(4, 1) * 100,
        verbose=0,
        callbacks=[
            ClippingMonitor(),
            keras.callbacks.TensorBoard(log_dir=str(tmp_path)),
        ],
    )
    files = list((tmp_path / "train").glob("events.out.tfevents.*"))
    assert files
    tags = {}
    for record in tf.data.TFRecordDataset([str(f) for f in files]):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            if value.tag.startswith("epoch_"):
                tags[value.tag] = float(tf.make_ndarray(value.tensor))
    assert tags["epoch_clip_rate"] == pytest.approx(1.0)
    assert tags["epoch_grad_norm"] > 1.0
    assert tags["epoch_clip_threshold"] == pytest.approx(1.0)


DISTRIBUTED_SCRIPT = r"""
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras

from rnnapps.optimizers import ClippedOptimizer

rng = np.random.default_rng(0)
x = rng.normal(size=(16, 4, 3)).astype("float32")
y = rng.normal(size=(16, 2)).astype("float32")


def make_model():
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [keras.Input((4, 3)), keras.layers.SimpleRNN(5), keras.layers.Dense(2)]
    )


initial = make_model().get_weights()
one = tf.distribute.OneDeviceStrategy("/cpu:0")
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def run(make_optimizer, strategy):
    with strategy.scope():
        model = make_model()
        model.set_weights(initial)
        model.compile(optimizer=make_optimizer(), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model


def clipped_of(model):
    optimizer = model.optimizer
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer if isinstance(optimizer, ClippedOptimizer) else None


def max_diff(a, b):
    pairs = zip(a.get_weights(), b.get_weights())
    return max(float(np.abs(u - v).max()) for u, v in pairs)


out = {"replicas": two.num_replicas_in_sync}
cases = {
    "fixed": lambda: ClippedOptimizer(keras.optimizers.SGD(0.1), clipnorm=0.05),
    "percentile": lambda: ClippedOptimizer(
        keras.optimizers.Adam(0.01), percentile=30, history_size=4
    ),
    "loss_scale": lambda: keras.optimizers.LossScaleOptimizer(
        ClippedOptimizer(keras.optimizers.SGD(0.1), clipnorm=0.05)
    ),
    "keras_global_clipnorm": lambda: keras.optimizers.SGD(
        0.1, global_clipnorm=0.05
    ),
}
for name, make in cases.items():
    a, b = run(make, one), run(make, two)
    result = {"diff": max_diff(a, b)}
    clipped = [clipped_of(a), clipped_of(b)]
    if clipped[0] is not None:
        result["clip_rate"] = [float(c.clip_rate) for c in clipped]
        result["norm"] = [float(c.last_norm) for c in clipped]
    result["iterations"] = int(b.optimizer.iterations.numpy())
    out[name] = result
print("RESULT " + json.dumps(out))
"""


@pytest.mark.tensorflow_only
def test_mirrored_strategy_clips_the_all_reduced_gradient():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    proc = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [
        line for line in proc.stdout.splitlines() if line.startswith("RESULT ")
    ]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["replicas"] == 2
    for name in ("fixed", "percentile", "loss_scale"):
        result = out[name]
        assert result["diff"] < 1e-5, (name, result)
        assert result["iterations"] == 2
        assert result["norm"][0] == pytest.approx(result["norm"][1], 1e-5)
        assert result["clip_rate"][0] == result["clip_rate"][1]
    assert out["fixed"]["clip_rate"] == [1.0, 1.0]
    assert out["percentile"]["clip_rate"][1] == 0.5  # 2nd step clipped
    # Keras's own global_clipnorm clips per replica, before the all-reduce:
    # the two-replica update differs from the one-device update.
    assert out["keras_global_clipnorm"]["diff"] > 1e-4


# Import hygiene, docstring and docs ------------------------------------------


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="starts its own JAX process: runs once, on the TensorFlow pass")
def test_jax_backend_import_does_not_import_tensorflow():
    script = (
        "import sys\n"
        "import numpy as np, keras\n"
        "import rnnapps.optimizers as o\n"
        "opt = o.ClippedOptimizer(keras.optimizers.SGD(0.1), percentile=50)\n"
        "w = keras.Variable(np.ones(2, 'float32'))\n"
        "opt.apply([np.ones(2, 'float32')], [w])\n"
        "o.ClippingMonitor()\n"
        "print(keras.backend.backend(), 'tensorflow' in sys.modules)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["jax", "False"]


def test_module_is_public_api():
    assert clipped_module.ClippedOptimizer is ClippedOptimizer
    assert issubclass(ClippedOptimizer, keras.optimizers.Optimizer)
    assert issubclass(ClippingMonitor, keras.callbacks.Callback)
