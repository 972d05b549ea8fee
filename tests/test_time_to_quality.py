"""`benchmarks/time_to_quality.py curve`: a run's epochs saved, scored and timed.

The benchmark is Keras code on the task's default backend, run in its own
processes; it runs once per test run, on the TensorFlow pass (time budget).
"""

import json
import pathlib
import subprocess
import sys

import pytest

import keras

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="runs `rnnapps train` in its own processes: on the TensorFlow pass only (time budget)",
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_curve_scores_each_saved_epoch_as_the_run_tested_it():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "time_to_quality.py"), "curve",
         "--tasks", "captioning", "--seeds", "0", "--quick", "--epochs", "2",
         "--target", "bleu1=0", "--target", "bleu4=0"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    epochs = [r for r in rows if "epoch" in r]
    [summary] = [r for r in rows if "reached_at_epoch" in r]
    assert [r["epoch"] for r in epochs] == [1, 2]
    # The clock: epochs in order, each run stopped there would still pay the report.
    assert 0 < epochs[0]["at_s"] < epochs[1]["at_s"] < epochs[1]["if_stopped_s"]
    assert summary["report_s"] > 0 and epochs[1]["if_stopped_s"] <= summary["wall_s"] + 1
    # The run tested its best epoch's weights (by validation loss); scored again
    # from that epoch's saved weights, on the data rebuilt from the run's
    # config, they give the same test report.
    best = min(epochs, key=lambda r: r["val_loss"])
    for key, value in summary["result"].items():
        assert best[key] == pytest.approx(value, abs=0.01), key
    # Targets of 0 are met by the first epoch scored.
    assert summary["reached_at_epoch"] == 1
    assert summary["time_to_quality_s"] == epochs[0]["if_stopped_s"]
    assert "| captioning | 0 | bleu1 0.0, bleu4 0.0 | 1 of 2 |" in done.stdout


def _benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "time_to_quality", ROOT / "benchmarks" / "time_to_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task_name", ["next_word", "translation", "captioning"])
def test_the_previous_settings_are_flags_today_accepts(task_name):
    # `runs` times the previous default with these flags: a flag whose
    # accepted values changed since would fail the run an hour in.
    import importlib

    from rnnapps import cli

    flags = _benchmark().PREVIOUS[task_name]
    args = cli.parse_args(["train", task_name, *flags])
    config = cli._config(args.task_object, args)
    assert config != args.task_object.config_class()  # the flags change the settings
    module = importlib.import_module(f"rnnapps.tasks.{task_name}.task")
    if hasattr(module, "_check_config"):
        module._check_config(config)  # raises TaskError on a value out of range
