"""`rnnapps train --distribute`: real worker processes on loopback ports."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_support import assert_one_line_error, last_json, run_cli

from rnnapps import distribute
from rnnapps.task import TaskError

pytestmark = pytest.mark.tensorflow_only

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


class Worker:
    """`rnnapps ARGS` as one worker of a cluster, its output going to files
    (a pipe nobody reads would stall it, and its heartbeats with it)."""

    def __init__(self, args, cwd, config, logs):
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = logs / "stdout", logs / "stderr"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-m", "rnnapps.cli", *args], cwd=cwd, text=True,
                stdout=out, stderr=err, env={
                    **os.environ, "CI": "1", "TF_CONFIG": config, "PYTHONPATH": os.pathsep.join(
                        [str(ROOT), os.environ.get("PYTHONPATH", "")])},
            )

    def wait(self, timeout=600):
        """Waits at most `timeout` seconds, then kills it."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.process.kill()
            self.process.wait()
        return self.process.returncode, self.stdout_path.read_text(), self.stderr_path.read_text()


def run_workers(args, cwd, logs, count=2):
    """Runs `count` workers of one cluster; their (returncode, stdout, stderr)."""
    ports = free_ports(count)
    workers = [Worker(args, cwd, tf_config(ports, i), logs / f"run{i}") for i in range(count)]
    try:
        return [w.wait() for w in workers]
    finally:
        for w in workers:
            w.process.kill()


def forecasting_flags(passengers_csv, epochs=2):
    return ["train", "forecasting", "--data", str(passengers_csv), "--value-column",
            "passengers", "--season", "12", "--horizon", "12", "--epochs", str(epochs),
            "--units", "8", "--export-dir", "out"]


def sentiment_flags(reviews_csv):
    return ["train", "sentiment", "--data", str(reviews_csv), "--text-column", "review",
            "--label-column", "stars", "--vocabulary-size", "500", "--sequence-length", "24",
            "--embedding-dim", "8", "--units", "8", "--epochs", "2", "--batch-size", "16",
            "--patience", "2", "--export-dir", "out"]


# --- TF_CONFIG ---------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("", "needs TF_CONFIG"),
    ("{not json", "TF_CONFIG is not JSON"),
    ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG has no "cluster"'),
    ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG has no "task"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "task worker:2 is not in its cluster ('worker' has 2 tasks)"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}',
     "bad address 'a' (want host:port)"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     'neither a "worker" nor a "chief"'),
])
def test_a_bad_tf_config_names_what_is_wrong(text, message):
    with pytest.raises(TaskError, match=None) as raised:
        distribute.read_tf_config(text)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_chief_and_facts():
    assert distribute.read_tf_config(tf_config([1, 2], 1)) == (
        {"worker": ["localhost:1", "localhost:2"]}, "worker", 1)
    assert distribute.is_chief(None)
    assert distribute.describe(None, 32)["per_replica_batch_size"] == 32


def test_cli_unparseable_tf_config_is_one_line(tmp_path, passengers_csv):
    proc = subprocess.run(
        [sys.executable, "-m", "rnnapps.cli", *forecasting_flags(passengers_csv),
         "--distribute", "multi-worker"], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, env={**os.environ, "TF_CONFIG": "{oops"})
    assert_one_line_error(proc, "TF_CONFIG is not JSON", tmp_path)


def test_cli_unreachable_peer_stops_with_its_address_instead_of_hanging(tmp_path, passengers_csv):
    ports = free_ports(2)
    start = time.monotonic()
    (tmp_path / "run").mkdir()
    code, _, stderr = Worker(
        [*forecasting_flags(passengers_csv), "--distribute", "multi-worker",
         "--distribute-timeout", "5"], tmp_path / "run", tf_config(ports, 0), tmp_path / "logs",
    ).wait(timeout=240)
    assert code == -9, stderr[-2000:]  # killed by the watchdog: TensorFlow ignores SIGTERM
    assert time.monotonic() - start < 200
    last = stderr.strip().splitlines()[-1]
    assert "did not come up within 5 s" in last and f"localhost:{ports[1]}" in last
    assert "Traceback" not in stderr
    assert list((tmp_path / "run").iterdir()) == []


# --- Two workers ---------------------------------------------------------------


@pytest.mark.parametrize("task", ["forecasting", "sentiment"])
def test_two_workers_train_like_one_process(tmp_path, task, passengers_csv, reviews_csv):
    args = (forecasting_flags(passengers_csv) if task == "forecasting"
            else sentiment_flags(reviews_csv))
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    workers = run_workers([*args, "--distribute", "multi-worker"], tmp_path / "two",
                          tmp_path / "logs")
    for code, stdout, stderr in workers:
        assert code == 0, stderr[-3000:]
    chief, other = (json.loads(out.strip().splitlines()[-1]) for _, out, _ in workers)
    assert chief["distribute"] == {
        "strategy": "CollectiveAllReduceStrategy", "replicas": 2, "chief": True,
        "global_batch_size": chief["distribute"]["global_batch_size"],
        "per_replica_batch_size": chief["distribute"]["global_batch_size"] / 2,
        "task_type": "worker", "task_id": 0, "workers": 2}
    assert other["export_path"] is None and not other["distribute"]["chief"]
    assert chief["epochs_run"] == other["epochs_run"] == 2
    versions = list((tmp_path / "two" / "out" / task).iterdir())
    assert [v.name for v in versions] == ["1"] and (versions[0] / "saved_model.pb").is_file()
    assert not list((tmp_path / "two").rglob("*partial*"))

    alone = last_json(run_cli(*args, cwd=tmp_path / "one"))
    # The same global batches and seed: the two-replica step sums the two
    # halves' gradients, which equals the whole batch's up to float rounding
    # (and Keras's per-replica loss scaling); 1 % on the test metrics.
    key, metric = ("model", "mae") if task == "forecasting" else (None, "loss")
    ours = chief["metrics"][key][metric] if key else chief["metrics"][metric]
    theirs = alone["metrics"][key][metric] if key else alone["metrics"][metric]
    assert ours == pytest.approx(theirs, rel=0.01)


def test_a_killed_worker_resumes_from_the_last_completed_epoch(tmp_path, passengers_csv):
    # batch size 2 (one window a replica): about fifty steps an epoch, so an epoch lasts long
    # enough to be interrupted.
    args = [*forecasting_flags(passengers_csv, epochs=4), "--batch-size", "2", "--patience",
            "10", "--distribute", "multi-worker"]
    ports = free_ports(2)
    run = tmp_path / "run"
    run.mkdir()
    chief, other = (Worker(args, run, tf_config(ports, i), tmp_path / f"logs{i}")
                    for i in range(2))
    deadline = time.monotonic() + 400
    while "Epoch 2/4" not in chief.stdout_path.read_text():
        assert chief.process.poll() is None, chief.stderr_path.read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    other.process.kill()  # during epoch 2
    other.wait()
    # The chief fails (or waits on its lost peer) and is restarted too, as
    # a cluster manager restarts a job whose worker died.
    chief.wait(timeout=90)  # it notices the lost peer within 30 s of heartbeats
    backups = list(run.glob("out/.checkpoints/forecasting/*/backup"))
    assert len(backups) == 1, list(tmp_path.rglob("*"))
    completed = json.loads((backups[0] / "training_metadata.json").read_text())["epoch"]
    assert completed in (1, 2, 3)
    assert not (run / "out" / "forecasting").exists()  # nothing exported yet
    assert not list(run.rglob("*partial*"))

    workers = run_workers(args, run, tmp_path / "logs-again")
    for code, _, stderr in workers:
        assert code == 0, stderr[-3000:]
    stdout = workers[0][1]
    assert f"Epoch {completed + 1}/4" in stdout and f"Epoch {completed}/4" not in stdout
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["epochs_run"] == 4 - completed
    assert [v.name for v in (run / "out" / "forecasting").iterdir()] == ["1"]
    assert not backups[0].exists()  # removed once training ended


# --- One host, two devices -----------------------------------------------------

MIRRORED_SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from rnnapps.tasks import forecasting, get_task

config = forecasting.ForecastingConfig(data=sys.argv[1], value_column="passengers",
                                       season=12, horizon=12, units=8, export_dir="out")
task = get_task("forecasting")
out = {}
for name, strategy in [("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                       ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
    keras.utils.set_random_seed(0)
    data = task.load_data(config)
    with strategy.scope():
        model = task.build_model(config, data)
    history = model.fit(data.train, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    clipped = model.optimizer
    out[name] = {"loss": history.history["loss"][0], "norm": float(clipped.last_norm),
                 "clip_rate": float(clipped.clip_rate),
                 "weights": [w.tolist() for w in model.get_weights()],
                 "replicas": strategy.num_replicas_in_sync}
print("RESULT " + json.dumps(out))
"""


def test_mirrored_over_two_devices_takes_the_first_step_of_one(tmp_path, passengers_csv):
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(passengers_csv)], cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")])})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    one, two = out["one"], out["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    assert two["norm"] == pytest.approx(one["norm"], rel=1e-5) and one["norm"] > 0
    assert two["clip_rate"] == one["clip_rate"]
    assert len(one["weights"]) == len(two["weights"])
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), atol=1e-6)


# --- Mixed precision -----------------------------------------------------------


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_exports_float32(tmp_path, reviews_csv, policy, run_here):
    import keras
    import tensorflow as tf

    result = last_json(run_here(*sentiment_flags(reviews_csv), "--epochs", "1",
                                "--mixed-precision", policy, cwd=tmp_path))
    assert np.isfinite(result["metrics"]["loss"]) and result["metrics"]["loss"] > 0
    assert keras.config.dtype_policy().name == "float32"  # restored after training
    serve = tf.saved_model.load(str(tmp_path / result["export_path"])).signatures[
        "serving_default"]
    assert {k: v.dtype for k, v in serve.structured_outputs.items()}["probabilities"] == tf.float32
    outputs = serve(text=tf.constant(["Great peanut butter, I love it", "Stale and awful"]))
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-2)
    # Trained in 16 bits with float32 variables; tested, kept and exported as
    # the float32 model of those variables.
    from rnnapps.tasks import sentiment  # noqa: F401 (registers the custom layers)

    model = keras.models.load_model(tmp_path / result["checkpoint"], compile=False)
    policies = {layer.dtype_policy.name for layer in model.layers
                if layer.weights and layer.dtype_policy.name != "string"}
    assert policies == {"float32"}
    assert all(w.dtype == "float32" for w in model.weights if "float" in str(w.dtype))
    # Its checkpoint is another run's than a float32 one's (other optimizer state).
    assert len(list((tmp_path / "out" / ".checkpoints" / "sentiment").iterdir())) == 1
    checkpoint = pathlib.Path(result["checkpoint"]).parent.name
    from rnnapps.task import run_id
    from rnnapps.tasks import get_task

    task = get_task("sentiment")
    config = task.config_class(**json.loads(
        (tmp_path / result["checkpoint"]).parent.joinpath("task.json").read_text())["config"])
    assert checkpoint == run_id(task, config, policy) != run_id(task, config)
