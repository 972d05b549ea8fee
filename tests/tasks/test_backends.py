"""`rnnapps train TASK --backend auto|jax|tensorflow` and data parallelism on JAX.

The tests that start their own JAX and TensorFlow processes run once, in the
TensorFlow pass; the JAX pass runs the task tests themselves on JAX.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest
from cli_support import last_json

from rnnapps import backends
from rnnapps.task import TaskError

ROOT = pathlib.Path(__file__).resolve().parents[2]
starts_its_own_processes = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="starts its own JAX and TensorFlow processes: the TensorFlow pass runs it")


def rnnapps(*args, cwd, env=()):
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return subprocess.run(
        [sys.executable, "-m", "rnnapps.cli", *args], capture_output=True, text=True, cwd=cwd,
        timeout=600, env={**environment, "CI": "1", **dict(env)})


def test_auto_takes_the_measured_fastest_backend_of_each_task(monkeypatch):
    monkeypatch.setattr(backends, "_installed", lambda name: True)
    monkeypatch.setattr(backends, "_jax_sees_a_gpu", lambda: False)
    for task, fastest in backends.FASTEST.items():
        assert backends.choose_backend(task, "auto") == fastest
    assert backends.choose_backend("sentiment", "jax") == "jax"
    assert backends.choose_backend("sentiment", "tensorflow") == "tensorflow"


def test_auto_falls_back_to_what_is_installed(monkeypatch):
    monkeypatch.setattr(backends, "_jax_sees_a_gpu", lambda: False)
    monkeypatch.setitem(backends.FASTEST, "sentiment", "jax")
    monkeypatch.setattr(backends, "_installed", lambda name: name == "tensorflow")
    assert backends.choose_backend("sentiment", "auto") == "tensorflow"
    with pytest.raises(TaskError, match="jax is not installed"):
        backends.choose_backend("sentiment", "jax")
    with pytest.raises(TaskError, match="--backend must be one of"):
        backends.choose_backend("sentiment", "torch")


def test_auto_takes_jax_on_a_gpu(monkeypatch):
    monkeypatch.setattr(backends, "_installed", lambda name: True)
    monkeypatch.setattr(backends, "_jax_sees_a_gpu", lambda: True)
    monkeypatch.setitem(backends.FASTEST, "next_word", "tensorflow")
    assert backends.choose_backend("next_word", "auto") == "jax"


def test_auto_precision_is_bfloat16_only_where_it_is_fast(monkeypatch):
    monkeypatch.setitem(backends.FAST_PRECISION, "next_word", "mixed_bfloat16")
    monkeypatch.setattr(backends, "_jax_sees_a_gpu", lambda: False)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(backends, "cpu_has_bfloat16", lambda: True)
    assert backends.choose_precision("next_word", "auto", "tensorflow") == "mixed_bfloat16"
    assert backends.choose_precision("sentiment", "auto", "tensorflow") is None
    assert backends.choose_precision("next_word", "auto", "jax") is None  # XLA on a CPU
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # emulated bfloat16 matmuls
    assert backends.choose_precision("next_word", "auto", "tensorflow") is None
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setattr(backends, "cpu_has_bfloat16", lambda: False)
    assert backends.choose_precision("next_word", "auto", "tensorflow") is None
    monkeypatch.setattr(backends, "_jax_sees_a_gpu", lambda: True)
    assert backends.choose_precision("next_word", "auto", "jax") == "mixed_bfloat16"
    # Asked for, it is what was asked, anywhere.
    assert backends.choose_precision("sentiment", "bfloat16") == "mixed_bfloat16"
    assert backends.choose_precision("next_word", "float32") is None
    with pytest.raises(TaskError, match="--mixed-precision must be one of"):
        backends.choose_precision("next_word", "int8")


def test_another_backend_than_the_loaded_one_is_one_line(tmp_path, run_here):
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    done = run_here("train", "forecasting", "--backend", other, "--epochs", "1",
                    "--export-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert f"Keras already runs on {keras.backend.backend()}" in done.stderr.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


@starts_its_own_processes
def test_train_on_jax_exports_a_savedmodel_built_on_tensorflow(tmp_path):
    done = rnnapps("train", "forecasting", "--backend", "jax", "--epochs", "1",
                   "--export-dir", "models", cwd=tmp_path)
    result = last_json(done)
    assert result["backend"] == "jax"
    export = tmp_path / result["export_path"]
    assert (export / "saved_model.pb").is_file()
    metadata = json.loads((export / "assets.extra" / "rnnapps.json").read_text())
    assert metadata["task"] == "forecasting"
    assert (tmp_path / result["checkpoint"]).is_file()


@starts_its_own_processes
def test_mirrored_on_jax_splits_each_batch_over_the_devices(tmp_path):
    two_cpus = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = rnnapps("train", "forecasting", "--backend", "jax", "--distribute", "mirrored",
                   "--epochs", "1", "--export-dir", "models", cwd=tmp_path, env=two_cpus)
    result = last_json(done)
    assert result["backend"] == "jax"
    assert result["distribute"]["strategy"] == "DataParallel"
    assert result["distribute"]["replicas"] == 2
    assert result["distribute"]["per_replica_batch_size"] * 2 == result["distribute"][
        "global_batch_size"]
    assert (tmp_path / result["export_path"] / "saved_model.pb").is_file()


@starts_its_own_processes
def test_multi_worker_on_jax_is_one_line(tmp_path):
    done = rnnapps("train", "forecasting", "--backend", "jax", "--distribute", "multi-worker",
                   "--epochs", "1", "--export-dir", "models", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "--backend tensorflow" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "models" / "forecasting").exists()
