"""Versioned, atomic SavedModel export in TensorFlow Serving's layout.

    saved_models/<task>/<version>/saved_model.pb, variables/, assets/

Versions are integers; an export takes the next free number. It is written
into a hidden temporary folder beside the version folders and renamed into
place only when complete, so an interrupted export never leaves a partial
version folder (TensorFlow Serving ignores names that are not integers).
"""

import os
import pathlib
import shutil
import tempfile

__all__ = ["export_serving_model", "next_version"]


def next_version(task_dir):
    """The next free integer version in `task_dir` (1 if there is none)."""
    task_dir = pathlib.Path(task_dir)
    versions = [
        int(p.name) for p in task_dir.iterdir() if p.is_dir() and p.name.isdigit()
    ] if task_dir.is_dir() else []
    return max(versions, default=0) + 1


def export_serving_model(model, serve_fn, input_signature, export_dir, task):
    """Exports `serve_fn` as the `serving_default` signature of a SavedModel.

    Args:
        model: The Keras model whose variables the function uses (tracked, so
            they are saved).
        serve_fn: A function of the signature's inputs returning a dict of
            named output tensors.
        input_signature: A list of `tf.TensorSpec`, one per input.
        export_dir: The root folder (e.g. `saved_models`).
        task: The task name; the export goes to `export_dir/task/<version>`.

    Returns:
        The `pathlib.Path` of the new version folder.

    Raises:
        ValueError: if the Keras backend is not TensorFlow.
    """
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "Exporting a SavedModel for serving needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow). Received: backend={keras.backend.backend()}"
        )
    task_dir = pathlib.Path(export_dir) / task
    task_dir.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".export-", dir=task_dir))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        # Trace on the CPU so that no GPU-only kernel (cuDNN RNN) is baked
        # into the graph: the export must serve on CPU-only machines.
        with tf.device("/cpu:0"):
            archive.add_endpoint("serving_default", serve_fn, input_signature)
            archive.write_out(str(staging), verbose=False)
        # Another export may have taken the number meanwhile: retry.
        while True:
            target = task_dir / str(next_version(task_dir))
            try:
                os.rename(staging, target)
                return target
            except OSError:
                if not target.exists():
                    raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
