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

__all__ = ["export_serving_model", "next_version", "read_metadata", "serve_empty_batches"]

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


def _batch_input(input_signature):
    """Index of the first input whose leading dimension is the batch (`None`)."""
    for index, spec in enumerate(input_signature):
        if spec.shape.rank and spec.shape[0] is None:
            return index
    return None


def _float32_outputs(serve_fn):
    """`serve_fn` with its 16-bit float outputs (a model trained under a
    mixed-precision policy) cast to float32: the signature a client sees
    does not change with how the model computes."""
    import tensorflow as tf

    def cast(value):
        if isinstance(value, tf.Tensor) and value.dtype in (tf.float16, tf.bfloat16):
            return tf.cast(value, tf.float32)
        return value

    def serve(*args):
        return tf.nest.map_structure(cast, serve_fn(*args))

    return serve


def serve_empty_batches(serve_fn, input_signature):
    """`serve_fn`, answering a zero-size batch without running it.

    A network run on a zero-size batch depends on every kernel handling
    zero-size tensors, and some do not on some machines (TensorFlow's oneDNN
    batch normalization fails on an empty batch on CPUs where oneDNN is on).
    The returned function branches on the batch size with `tf.cond`: an empty
    batch gets empty outputs of the dtypes and shapes `serve_fn` returns
    (leading dimension 0, other unknown dimensions 0), and the network never
    runs. The batch is the leading dimension of the first input whose
    leading dimension is `None`; a signature with none is returned as is.

    Args:
        serve_fn: A function of the signature's inputs returning a dict (or
            any nest) of tensors whose leading dimension is the batch.
        input_signature: A list of `tf.TensorSpec`, one per input.

    Returns:
        A function of the same inputs and outputs.

    Raises:
        ValueError: if an output has no leading batch dimension.

    Example:

    >>> import tensorflow as tf
    >>> def double(x):
    ...     return {"y": tf.linalg.matmul(x, tf.ones([3, 2]))}
    >>> signature = [tf.TensorSpec([None, 3], tf.float32)]
    >>> serve = tf.function(serve_empty_batches(double, signature), input_signature=signature)
    >>> serve(tf.zeros([0, 3]))["y"].shape
    TensorShape([0, 2])
    """
    import tensorflow as tf

    batch_input = _batch_input(input_signature)
    if batch_input is None:
        return serve_fn
    # Trace once to learn what the outputs are (dtypes, inner dimensions).
    outputs = tf.function(serve_fn, autograph=False).get_concrete_function(
        *input_signature
    ).structured_outputs
    named = outputs.items() if isinstance(outputs, dict) else enumerate(tf.nest.flatten(outputs))
    for name, output in named:
        for tensor in tf.nest.flatten(output):
            if not tensor.shape.rank:
                raise ValueError(
                    "Every serving output needs a leading batch dimension. "
                    f"Received: output {name!r} of shape {tensor.shape}"
                )

    def empty(output):
        return tf.zeros([0] + [size or 0 for size in output.shape.as_list()[1:]], output.dtype)

    def serve(*inputs):
        size = tf.shape(inputs[batch_input])[0]
        return tf.cond(
            size > 0,
            lambda: serve_fn(*inputs),
            lambda: tf.nest.map_structure(empty, outputs),
        )

    return serve


def export_serving_model(model, serve_fn, input_signature, export_dir, task, metadata=None,
                         signatures=None):
    """Exports `serve_fn` as the `serving_default` signature of a SavedModel.

    An empty batch is answered with empty outputs without running
    `serve_fn`'s network (`serve_empty_batches`), on every machine.

    Args:
        model: The Keras model whose variables the function uses (tracked, so
            they are saved).
        serve_fn: A function of the signature's inputs returning a dict of
            named output tensors, each with a leading batch dimension.
        input_signature: A list of `tf.TensorSpec`, one per input.
        export_dir: The root folder (e.g. `saved_models`).
        task: The task name; the export goes to `export_dir/task/<version>`.
        metadata: An optional JSON-serializable dict saved as
            `assets.extra/rnnapps.json` (see `read_metadata`).
        signatures: Optional other signatures, `{name: (fn, input_signature)}`
            (served by name: TF Serving's `signature_name`).

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
            # An empty batch gets empty outputs without running the network
            # (kernels differ in whether they accept zero-size tensors).
            endpoints = {"serving_default": (serve_fn, input_signature), **(signatures or {})}
            for name, (fn, signature) in endpoints.items():
                archive.add_endpoint(
                    name, serve_empty_batches(_float32_outputs(fn), signature), signature)
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
