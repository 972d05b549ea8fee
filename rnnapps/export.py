"""Versioned, atomic SavedModel export in TensorFlow Serving's layout.

    saved_models/<task>/<version>/saved_model.pb, variables/, assets/,
        assets.extra/rnnapps.json

`assets.extra/` is TensorFlow Serving's folder for files the server itself
ignores; rnnapps keeps there what the command line needs to use the export
again (the task, its config and facts about its data, e.g. the forecasting
window length): `read_metadata(path)` returns it.

Versions are integers; an export takes the next free number. It is written
into a hidden temporary folder beside the version folders and renamed into
place only when complete, so an interrupted export never leaves a partial
version folder (TensorFlow Serving ignores names that are not integers).
"""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

__all__ = ["export_serving_model", "next_version", "read_metadata"]

METADATA_FILE = pathlib.Path("assets.extra") / "rnnapps.json"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_metadata(path):
    """The metadata dict saved with the export at `path` (`{}` if none)."""
    file = pathlib.Path(path) / METADATA_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def next_version(task_dir):
    """The next free integer version in `task_dir` (1 if there is none)."""
    task_dir = pathlib.Path(task_dir)
    versions = [
        int(p.name) for p in task_dir.iterdir() if p.is_dir() and p.name.isdigit()
    ] if task_dir.is_dir() else []
    return max(versions, default=0) + 1


def _recurrent_layers(layer):
    """`layer` and every layer inside it (models, Bidirectional, wrappers)."""
    yield layer
    children = list(getattr(layer, "layers", []))
    for name in ("forward_layer", "backward_layer", "layer"):
        child = getattr(layer, name, None)
        if child is not None:
            children.append(child)
    for child in children:
        yield from _recurrent_layers(child)


@contextlib.contextmanager
def _without_cudnn(model):
    """Keras's LSTM/GRU pick the cuDNN kernel whenever a GPU is visible, and
    a graph holding it does not run on a CPU-only server; trace without it."""
    layers = [l for l in _recurrent_layers(model) if hasattr(l, "use_cudnn")]
    saved = [l.use_cudnn for l in layers]
    for l in layers:
        l.use_cudnn = False
    try:
        yield
    finally:
        for l, value in zip(layers, saved):
            l.use_cudnn = value


def export_serving_model(model, serve_fn, input_signature, export_dir, task, metadata=None):
    """Exports `serve_fn` as the `serving_default` signature of a SavedModel.

    Args:
        model: The Keras model whose variables the function uses (tracked, so
            they are saved).
        serve_fn: A function of the signature's inputs returning a dict of
            named output tensors.
        input_signature: A list of `tf.TensorSpec`, one per input.
        export_dir: The root folder (e.g. `saved_models`).
        task: The task name; the export goes to `export_dir/task/<version>`.
        metadata: An optional JSON-serializable dict saved as
            `assets.extra/rnnapps.json` (see `read_metadata`).

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
        # No GPU-only kernel (cuDNN RNN) may be baked into the graph: the
        # export must serve on CPU-only machines too.
        with _without_cudnn(model), tf.device("/cpu:0"):
            archive.add_endpoint("serving_default", serve_fn, input_signature)
            archive.write_out(str(staging), verbose=False)
        # mkdtemp makes the folder private (0700); a version folder must be
        # readable like any other the user makes (a server may run as
        # another user).
        os.chmod(staging, 0o777 & ~_umask())
        if metadata is not None:
            (staging / METADATA_FILE).parent.mkdir()
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
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
