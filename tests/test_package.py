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


def test_demo_learns_the_adding_problem_and_prints_json_last(capsys):
    # Shorter than the default (T = 100, about a minute) but long enough that
    # the IRNN gets well under the constant predictor (0.57x of it on JAX;
    # an untrained model scores about 1x or worse).
    status = cli.main(["demo", "--steps", "20", "--epochs", "16", "--train-size", "4000",
                       "--units", "32"])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["task"] == "adding_demo"
    losses = result["loss_by_epoch"]
    assert len(losses) == 16 and losses[-1] < 0.9 * min(losses[:4])
    # The constant 1 predicts the sum of two U(0, 1) numbers with MSE 1/6.
    assert result["metrics"]["constant_mse"] == pytest.approx(1 / 6, abs=0.01)
    assert result["metrics"]["test_mse"] < 0.8 * result["metrics"]["constant_mse"]


def test_help_of_every_command_and_task(capsys):
    from rnnapps.tasks import TASKS

    commands = [[c, t] for c in cli.TASK_COMMANDS for t in TASKS] + [["serve"], ["demo"], []]
    for argv in commands:
        with pytest.raises(SystemExit) as exit:
            cli.main([*argv, "--help"])
        assert exit.value.code == 0, argv
        out = capsys.readouterr().out
        assert out.startswith("usage: rnnapps") and "--help" in out, argv
        if argv and argv[0] == "train":
            assert "--epochs" in out and "--data" in out, argv


def _documented_commands():
    """Every `rnnapps ...` command line in the shell blocks of the README and docs."""
    import re
    import shlex

    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", page.read_text(), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"&&|;", line.split(" #")[0]):
                    if "rnnapps " not in part:
                        continue
                    part = re.sub(r"<[^>]*>", "PLACEHOLDER", part)  # <run id>
                    part = re.sub(r"\$\{?\w+\}?", "0", part)  # a loop's $seed
                    words = shlex.split(part.strip().rstrip("&"))
                    if "rnnapps" in words:
                        yield page.name, words[words.index("rnnapps") + 1:]


def test_every_documented_command_line_parses():
    """The flags and choices the README and docs show exist (running them is
    each task's tests' job, at tiny sizes)."""
    documented = list(_documented_commands())
    assert len(documented) > 40
    for page, argv in documented:
        try:
            cli.parse_args(argv)
        except SystemExit as error:
            raise AssertionError(f"{page}: rnnapps {' '.join(argv)} does not parse") from error


def test_the_readme_test_command_is_what_ci_runs():
    import re

    readme = (ROOT / "README.md").read_text()
    (command,) = [line for line in readme.splitlines() if line.startswith("python -m pip install -e \".[test]\"")]
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()
    assert re.search(r"KERAS_BACKEND=torch python -m pytest", command)


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
