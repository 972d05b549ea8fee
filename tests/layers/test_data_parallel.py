"""The layers under JAX's `keras.distribution.DataParallel`, on two CPU devices."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json
import jax
import keras
import numpy as np
from rnnapps.layers import IRNN, ReverseSequence
from rnnapps.optimizers import ClippedOptimizer

rng = np.random.default_rng(0)
x = rng.normal(size=(16, 20, 2)).astype("float32")
y = rng.normal(size=(16, 1)).astype("float32")


def train(distribution):
    keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((20, 2)), ReverseSequence(), IRNN(8),
                              keras.layers.Dense(1)])
    model.compile(ClippedOptimizer(keras.optimizers.SGD(0.1), clipnorm=0.05), "mse")
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return {"loss": history.history["loss"][0], "norm": float(model.optimizer.last_norm),
            "clip_rate": float(model.optimizer.clip_rate),
            "weights": [np.asarray(w).tolist() for w in model.get_weights()]}


devices = keras.distribution.list_devices("cpu")
out = {"devices": len(devices), "one": train(None),
       "two": train(keras.distribution.DataParallel(devices=devices))}
print("RESULT " + json.dumps(out))
"""


def test_data_parallel_on_two_devices_takes_one_device_steps():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["devices"] == 2
    one, two = out["one"], out["two"]
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    # The global norm of the whole batch's gradient is clipped, on both.
    assert two["norm"] == pytest.approx(one["norm"], rel=1e-5) and one["norm"] > 0.05
    assert one["clip_rate"] == two["clip_rate"] == 1.0
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), atol=1e-5)
