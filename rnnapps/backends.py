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
"""

import importlib.util
import os
import sys

from rnnapps.errors import TaskError

__all__ = ["BACKENDS", "FASTEST", "choose_backend", "use_backend"]

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
