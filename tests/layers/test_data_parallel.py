"""The layers under JAX's `keras.distribution.DataParallel`, on two CPU devices."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import keras

# Each test starts its own Python on the JAX backend, so it runs once, on the
# TensorFlow pass (the JAX pass would only repeat it).
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="starts its own JAX process: runs once, on the TensorFlow pass",
)

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


def run_on_two_jax_devices(script, *args):
    """Runs `script` (with `args` as sys.argv[1:]) in a new Python on the JAX
    backend with two CPU devices; the JSON object it prints after "RESULT "."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_data_parallel_on_two_devices_takes_one_device_steps():
    out = run_on_two_jax_devices(SCRIPT)
    assert out["devices"] == 2
    one, two = out["one"], out["two"]
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    # The global norm of the whole batch's gradient is clipped, on both.
    assert two["norm"] == pytest.approx(one["norm"], rel=1e-5) and one["norm"] > 0.05
    assert one["clip_rate"] == two["clip_rate"] == 1.0
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), atol=1e-5)


PAPERS_SCRIPT = r"""
import importlib.util, json, pathlib, sys

def load(name):
    spec = importlib.util.spec_from_file_location(name, f"benchmarks/papers/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

out = {}
adding, clipping = load("adding"), load("clipping")
tiny = ["--lengths", "8", "--cells", "irnn", "--clipping", "1,off", "--train-steps", "4",
        "--eval-every", "2", "--units", "4"]
for name, flags in (("one", []), ("two", ["--data-parallel"])):
    folder = pathlib.Path(sys.argv[1]) / name
    adding.main([*tiny, *flags, "--out", str(folder)])
    clipping.main(["--length", "8", "--units", "4", "--train-steps", "4", "--log-every", "2",
                   "--eval-every", "4", "--clipnorm", "0.01", *flags, "--out", str(folder)])
    out[name] = {f: json.loads((folder / f"{f}.json").read_text()) for f in ("adding", "clipping")}
try:
    adding.main([*tiny, "--batch-size", "3", "--data-parallel", "--out", sys.argv[1]])
except SystemExit as exit:
    out["odd_batch"] = exit.code
print("RESULT " + json.dumps(out))
"""


def test_papers_benchmarks_run_data_parallel_like_one_device(tmp_path):
    out = run_on_two_jax_devices(PAPERS_SCRIPT, str(tmp_path))
    one, two = out["one"], out["two"]
    assert sorted(two["adding"]) == sorted(one["adding"]) and len(one["adding"]) == 2
    for key, run in two["adding"].items():
        assert run["devices"] == 2 and one["adding"][key]["devices"] == 1
        (steps_one, mse_one), (steps_two, mse_two) = (
            zip(*one["adding"][key]["curve"]), zip(*run["curve"]))
        assert steps_two == steps_one == (0, 2, 4)
        np.testing.assert_allclose(mse_two, mse_one, rtol=1e-4)
    # The norm each step clips is that of the whole batch's gradient.
    for name in ("clipped", "not clipped"):
        run = two["clipping"][name]
        assert run["devices"] == 2
        np.testing.assert_allclose(run["grad_norms"], one["clipping"][name]["grad_norms"],
                                   rtol=1e-3)
    assert two["clipping"]["clipped"]["clip_rate"][-1][1] == 1.0
    assert out["odd_batch"] == 2  # argparse's exit status for a usage error
