"""The package as a user meets it: imports, the `rnnapps` command."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import rnnapps
from rnnapps import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_python(code, **env):
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_rnnapps_imports_neither_keras_nor_tensorflow():
    out = run_python(
        "import sys, rnnapps; "
        "print('keras' in sys.modules, 'tensorflow' in sys.modules, rnnapps.__version__)"
    )
    assert out.split() == ["False", "False", rnnapps.__version__]


def test_layers_on_jax_backend_do_not_import_tensorflow():
    out = run_python(
        "import sys, numpy as np, rnnapps\n"
        "x = np.ones((2, 5, 3), 'float32')\n"
        "y = rnnapps.layers.IRNN(4)(rnnapps.layers.ReverseSequence()(x))\n"
        "opt = rnnapps.optimizers.ClippedOptimizer(__import__('keras').optimizers.SGD())\n"
        "print(tuple(y.shape), 'tensorflow' in sys.modules)",
        KERAS_BACKEND="jax",
    )
    assert out.split()[-3:] == ["(2,", "4)", "False"]


def test_tasks_are_installed_inside_rnnapps():
    import rnnapps.tasks

    assert pathlib.Path(rnnapps.tasks.__file__).resolve() == ROOT / "tasks" / "__init__.py"


def test_demo_fits_and_prints_json_last(capsys):
    status = cli.main(["demo", "--steps", "12", "--epochs", "2", "--train-size", "64", "--units", "8"])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["task"] == "adding_demo"
    assert len(result["loss_by_epoch"]) == 2
    assert 0.0 < result["metrics"]["test_mse"] < 10.0
    assert 0.1 < result["metrics"]["constant_mse"] < 0.25
    assert 0.0 <= result["clip_rate"] <= 1.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--steps", "0"], "expected a positive integer, got '0'"),
        (["demo", "--epochs", "many"], "expected a positive integer, got 'many'"),
        (["dance"], "invalid choice: 'dance'"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "rnnapps.cli", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_demo_rejects_a_single_step_sequence(capsys):
    assert cli.main(["demo", "--steps", "1"]) == 2
    assert "--steps must be at least 2" in capsys.readouterr().err


def test_every_package_folder_is_listed_in_pyproject():
    # pyproject.toml lists packages explicitly (tasks/ is mapped to
    # rnnapps.tasks); a new subpackage missing there would be left out of
    # the wheel.
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for root, prefix in ((ROOT / "rnnapps", "rnnapps"), (ROOT / "tasks", "rnnapps.tasks")):
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            found.add(".".join((prefix, *parts)))
    assert found == listed
