import pytest
from cli_support import run_cli_in_process


@pytest.fixture
def run_here(capsys, monkeypatch):
    """`run_cli_in_process` for this test: `run_here(*args, cwd=folder)` runs
    `rnnapps ARGS` in this process (no TensorFlow start-up of a new Python)
    and gives a CompletedProcess with the exit status the command line gets."""
    def run(*args, cwd):
        return run_cli_in_process(*args, cwd=cwd, capsys=capsys, monkeypatch=monkeypatch)

    return run
