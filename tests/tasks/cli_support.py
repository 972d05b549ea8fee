"""Running the `rnnapps` command in a subprocess, shared by the task tests.

(pytest puts this folder on `sys.path` when it collects the tests beside it.)
"""

import json
import os
import subprocess
import sys


def run_cli(*args, cwd, timeout=600, stdin=None):
    """`python -m rnnapps.cli ARGS` in `cwd`; the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "rnnapps.cli", *args], capture_output=True, text=True,
        cwd=cwd, timeout=timeout, env={**os.environ, "CI": "1"}, input=stdin,
    )


def last_json(proc):
    """The JSON object on the last line of a successful command's stdout."""
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_one_line_error(proc, message, cwd):
    """Exit status 2, `message` on the last stderr line, no traceback, nothing written."""
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]
    assert list(cwd.iterdir()) == []


def serve_in_fresh_process(script, cwd, env=None):
    """Runs `script` in a new Python without a visible GPU (and with `env`
    added to the environment); the JSON object on its last stdout line. The
    script reports whether rnnapps got imported."""
    return json.loads(_stdout_lines_in_fresh_process(script, cwd, env)[-1])


def _stdout_lines_in_fresh_process(script, cwd, env=None):
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        cwd=cwd, env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})},
    )
    assert proc.returncode == 0, f"{env or ''} {proc.stderr[-2000:]}"
    return proc.stdout.strip().splitlines()


_EMPTY_BATCH_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops of the text exports
from tensorflow.python.util import _pywrap_util_port
serve = tf.saved_model.load({export!r}).signatures["serving_default"]
_, specs = serve.structured_input_signature
empty = {{name: tf.zeros([0, *spec.shape[1:]], spec.dtype) for name, spec in specs.items()}}
outputs = serve(**empty)
print("EMPTY " + json.dumps({{
    "onednn": bool(_pywrap_util_port.IsMklEnabled()),
    "outputs": {{name: [t.shape.as_list(), t.dtype.name] for name, t in outputs.items()}},
    "rnnapps": any(m.startswith("rnnapps") for m in sys.modules),
}}))
"""


def assert_serves_empty_batch(export, cwd, expected, script=None):
    """The export at `export`, loaded in a fresh process (without rnnapps),
    answers an empty batch with `expected` ({output: (shape, dtype)}), with
    TensorFlow's oneDNN path forced on and forced off: whether it is on by
    default depends on the CPU, so both paths are covered on any machine.

    With `script` (a `serve_in_fresh_process` script), each of the two
    processes runs it first, so it is checked on both paths too (one Python
    start-up fewer); its JSON object from the oneDNN run is returned."""
    expected = {name: [list(shape), dtype] for name, (shape, dtype) in expected.items()}
    served = None
    for onednn in ("1", "0"):
        lines = _stdout_lines_in_fresh_process(
            (script or "") + _EMPTY_BATCH_SCRIPT.format(export=str(export)), cwd,
            env={"TF_ENABLE_ONEDNN_OPTS": onednn},
        )
        assert lines[-1].startswith("EMPTY ")
        empty = json.loads(lines[-1].removeprefix("EMPTY "))
        assert empty["onednn"] is (onednn == "1")
        assert empty["rnnapps"] is False
        assert empty["outputs"] == expected, f"TF_ENABLE_ONEDNN_OPTS={onednn}"
        if script is not None:
            result = json.loads(lines[-2])
            assert result["rnnapps"] is False
            if onednn == "1":
                served = result
    return served


def run_cli_in_process(*args, cwd, capsys, monkeypatch):
    """`rnnapps ARGS` run by `rnnapps.cli.main` in this process (no start-up
    cost of a new Python with TensorFlow); a CompletedProcess like `run_cli`."""
    from rnnapps.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("CI", "1")  # as `run_cli` sets it
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse errors
        code = exit.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)
