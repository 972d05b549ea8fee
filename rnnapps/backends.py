"""Which Keras backend trains a task: `rnnapps train TASK --backend auto|jax|tensorflow`.

Every task's model is `keras.ops` and Keras layers, so it trains on JAX or
TensorFlow; its preprocessing (strings, images) runs in `tf.data` either way
and its SavedModel is built on TensorFlow from the trained weights
(`rnnapps.task.export_checkpoint`). Which backend is faster depends on the
model: `benchmarks/backend_speed.py` times each task's training step on
every installed backend, side by side in one run, and `FASTEST` below is
what it measured on 2 CPU cores (docs/scaling.md has the numbers and the rule).

`auto` takes `FASTEST[task]` on a CPU and JAX on a GPU when JAX sees one
(JAX is the backend the GPU machines this project is tested on carry), and
TensorFlow whenever the chosen backend is not installed.

The same goes for the precision a task computes in (`--mixed-precision
auto|float32|bfloat16|float16`): `auto` takes `FAST_PRECISION[task]` where
it is fast here (`choose_precision`), float32 elsewhere.
"""

import importlib.util
import os
import sys

from rnnapps.errors import TaskError

__all__ = ["BACKENDS", "FASTEST", "PRECISIONS", "FAST_PRECISION", "choose_backend",
           "choose_precision", "cpu_has_bfloat16", "use_backend"]

BACKENDS = ("auto", "jax", "tensorflow")

# The backend whose training step `benchmarks/backend_speed.py` measured
# fastest for the task's default model on 2 CPU cores (median of the steps).
FASTEST = {
    "sentiment": "jax",
    "forecasting": "tensorflow",
    "translation": "tensorflow",
    "captioning": "tensorflow",
    "next_word": "tensorflow",
}


def _installed(backend):
    return importlib.util.find_spec(backend) is not None


def _jax_sees_a_gpu():
    """Whether JAX would run on a GPU, without importing JAX when it cannot."""
    if not _installed("jax"):
        return False
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


def choose_backend(task_name, requested="auto"):
    """The backend (`"jax"` or `"tensorflow"`) that trains `task_name`.

    `requested` is `--backend`: `"auto"` picks `FASTEST[task_name]` (JAX on
    a GPU), falling back to TensorFlow where the pick is not installed; a
    named backend must be installed.
    """
    if requested not in BACKENDS:
        raise TaskError(f"--backend must be one of {', '.join(BACKENDS)}. "
                        f"Received: {requested!r}")
    if requested != "auto":
        if not _installed(requested):
            raise TaskError(f"--backend {requested}: {requested} is not installed "
                            f"(pip install {'jax' if requested == 'jax' else 'tensorflow'})")
        return requested
    pick = "jax" if _jax_sees_a_gpu() else FASTEST.get(task_name, "tensorflow")
    if pick == "tensorflow" and not _installed("tensorflow") and _installed("jax"):
        pick = "jax"
    if pick == "jax" and not _installed("jax"):
        pick = "tensorflow"
    return pick


def use_backend(backend):
    """Makes Keras run on `backend`: sets `KERAS_BACKEND` before Keras is
    imported. Where Keras is already imported (e.g. in a notebook or a test
    process), its backend cannot change: asking for another is an error."""
    keras = sys.modules.get("keras")
    if keras is not None:
        loaded = keras.backend.backend()
        if loaded != backend:
            raise TaskError(
                f"--backend {backend}: Keras already runs on {loaded} in this process; "
                f"set KERAS_BACKEND={backend} before Python imports Keras, or run the "
                f"`rnnapps` command")
        return
    os.environ["KERAS_BACKEND"] = backend


# === Precision ===

PRECISIONS = ("auto", "float32", "bfloat16", "float16", "mixed_bfloat16", "mixed_float16")
_POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16",
             "mixed_bfloat16": "mixed_bfloat16", "mixed_float16": "mixed_float16"}

# The mixed-precision policy `--mixed-precision auto` trains a task's default
# model in, measured by `benchmarks/time_to_quality.py` on 2 CPU cores with
# bfloat16 units (validation perplexity and time; docs/scaling.md). Tasks not
# listed train in float32.
FAST_PRECISION = {
    "next_word": "mixed_bfloat16",
}


def cpu_has_bfloat16():
    """Whether this CPU multiplies bfloat16 natively (the `avx512_bf16` or
    `amx_bf16` flags of Linux's /proc/cpuinfo; False where it cannot tell)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _bfloat16_is_fast(backend):
    """bfloat16 pays on an accelerator, and on a CPU with bfloat16 units
    through TensorFlow's oneDNN kernels (off with `TF_ENABLE_ONEDNN_OPTS=0`,
    where bfloat16 matmuls are emulated)."""
    if backend == "jax":
        return _jax_sees_a_gpu()
    return cpu_has_bfloat16() and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"


def choose_precision(task_name, requested="auto", backend="tensorflow"):
    """The Keras dtype policy to train `task_name` with: `None` for float32,
    else "mixed_bfloat16" or "mixed_float16" (variables stay float32).

    `auto` takes `FAST_PRECISION[task]` where it is fast on this machine and
    `backend`, and float32 elsewhere.

    >>> choose_precision("sentiment")  # not listed: float32
    >>> choose_precision("next_word", "float32")
    >>> choose_precision("next_word", "bfloat16")
    'mixed_bfloat16'
    """
    if requested not in PRECISIONS:
        raise TaskError(f"--mixed-precision must be one of {', '.join(PRECISIONS)}. "
                        f"Received: {requested!r}")
    if requested != "auto":
        return _POLICIES[requested]
    pick = FAST_PRECISION.get(task_name)
    if pick == "mixed_bfloat16" and not _bfloat16_is_fast(backend):
        return None
    return pick
