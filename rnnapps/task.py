"""The small interface every package in `rnnapps.tasks` implements.

A task turns a config (a dataclass; presets are instances, CLI flags
override fields) into data, a model and a servable export:

    task = rnnapps.tasks.get_task("sentiment")
    config = task.config_class(epochs=3)
    data = task.load_data(config)             # TaskData: tf.data train/validation/test
    model = task.build_model(config, data)    # compiled keras.Model
    model.fit(data.train, validation_data=data.validation, epochs=config.epochs)

`train(task, config)` runs that flow with the callbacks a Keras user expects
(progress bar, early stopping, checkpoints that resume after an interruption,
TensorBoard when asked), evaluates on the test split and exports a SavedModel;
the `rnnapps` command line is a thin layer over it. A task never imports
another task: what they share lives here and in `rnnapps.export`.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import typing

from rnnapps.errors import TaskError

__all__ = [
    "Task", "TaskData", "TaskError", "train", "config_from_dict", "config_field", "export_metadata",
    "add_decoding_export_flags", "decoding_export_info", "export_checkpoint", "raw_values",
    "learning_rate",
]


@dataclasses.dataclass
class TaskData:
    """The splits of a task's data and what is known about them.

    Attributes:
        train, validation, test: batched `tf.data.Dataset`s of `(x, y)`.
        info: JSON-serializable facts: at least `name` and `sizes`
            (examples per split); tasks add e.g. `label_names`.
        raw: optional unbatched examples per split, for tasks that need them
            (e.g. to fit a vocabulary or show example predictions).
    """

    train: typing.Any
    validation: typing.Any
    test: typing.Any
    info: dict
    raw: dict = dataclasses.field(default_factory=dict)


def without_autotune_thread(dataset):
    """`dataset` (a `tf.data.Dataset`; anything else is returned as it is)
    without tf.data's autotuning thread.

    An autotuned iterator runs a thread that re-optimises the pipeline at
    growing intervals, and destroying the iterator waits for that thread's
    current interval to run out (TensorFlow 2.21, `benchmarks/iterator_teardown.py`:
    0.3-8.7 s, by where the thread is in its interval, against 0.3 s without
    it). Keras drops the
    validation iterator at every epoch's evaluation and the training iterator
    at every epoch's start, so training stalled 6-40 s at about every other
    epoch. Without the thread, `AUTOTUNE` parallelism is the size of the
    pipeline's thread pool, here half the cores (at least one), so that the
    input work leaves the training step its cores (captioning's step on 2
    cores: 141-148 ms autotuned, 158 ms with a pool of 2, 144-152 ms of 1);
    prefetching keeps its own buffer sizing.
    """
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        return dataset
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = max(1, (os.cpu_count() or 2) // 2)
    return dataset.with_options(options)


class Task:
    """Base class of the task packages.

    Subclasses set `name`, `config_class` (a dataclass whose fields become
    CLI flags; `dataclasses.field(metadata={"help": ..., "choices": ...})`)
    and `presets` (name -> config), and implement the methods below.
    """

    name = None
    config_class = None
    presets = {}
    # Config fields `rnnapps evaluate TASK` accepts (which data to load).
    data_fields = ("data", "batch_size", "seed")
    # What `rnnapps predict TASK INPUT...` takes, for its --help.
    predict_help = "raw inputs"
    # Whether `rnnapps predict TASK --input FILE` hands the whole file to
    # `predict_export` as one input (a forecast's history) rather than one
    # input per row of a column.
    predict_reads_whole_file = False
    # Whether each input is a file's path (images): `predict --input FILE`
    # then reads relative paths from FILE's folder.
    predict_inputs_are_paths = False

    def load_data(self, config):
        """Returns `TaskData` for `config`; raises `TaskError` on bad input."""
        raise NotImplementedError

    def load_evaluation_data(self, config, trained=None):
        """The data `rnnapps evaluate` scores an export on (`evaluate_export`).

        `config` is the export's training config with the command's data
        flags applied; `trained` is the training config itself, where the
        export recorded it. A user's file that is not the run's own data is
        scored whole (or its `test` rows, where it has a `split` column); the
        run's own data is scored on the run's test split, so training rows
        never count. By default `load_data(config)`; a task whose
        `load_data` also fits preprocessing the export already holds can
        return less.
        """
        return self.load_data(config)

    def build_model(self, config, data):
        """Returns a compiled `keras.Model` that takes raw inputs."""
        raise NotImplementedError

    def serving_signature(self, model, info):
        """Returns `(serve_fn, input_signature)` for the SavedModel export."""
        raise NotImplementedError

    def other_signatures(self, model, info):
        """Signatures the export has besides `serving_default`:
        `{name: (fn, input_signature)}`; none by default."""
        return {}

    def load_checkpoint(self, path):
        """Loads a `.keras` checkpoint written by `train` (for `rnnapps export`)."""
        import keras

        import rnnapps.layers  # noqa: F401  (registers the custom layers
        import rnnapps.optimizers  # noqa: F401   and optimizers)

        return keras.saving.load_model(path)

    def diagnostic_batch(self, data):
        """One `(x, y)` batch that `rnnapps diagnose` measures gradients on.

        By default the first batch of the validation split.
        """
        return next(iter(data.validation))

    def diagnostic_layer(self, model):
        """The recurrent layer `rnnapps diagnose` measures by default.

        A name or path from `rnnapps.diagnostics.recurrent_layers(model)`;
        `None` (the default) means the model's first recurrent layer.
        """
        return None

    def after_fit(self, model, data):
        """Runs once training ends, before testing and exporting: e.g. keeps
        what the trained model needs at serving time (the captioning
        task's memory of training captions). Returns whether it changed
        the model (the run's checkpoint is then saved again). By default,
        nothing."""
        return False

    def example_predictions(self, model, data, count=5):
        """Returns a few lines showing the model's predictions."""
        return []

    def evaluation_lines(self, metrics):
        """Lines `rnnapps evaluate` prints before its JSON line: a readable
        view of `metrics` (e.g. a table). By default, none."""
        return []

    def test_metrics(self, model, data):
        """Metrics (a JSON-serializable dict) of a trained model on `data.test`.

        By default, the compiled metrics from `model.evaluate`.
        """
        metrics = model.evaluate(data.test, return_dict=True, verbose=0)
        return {k: round(float(v), 5) for k, v in metrics.items()}

    def add_arguments(self, command, parser):
        """Adds task-specific flags to the CLI `command` ("train", "evaluate"...)."""

    def export_info(self, info, options):
        """The data facts `serving_signature` gets when `rnnapps export` runs.

        `info` is what the training run saved; `options` the values of the
        export command's own flags (`add_arguments`), e.g. a decoding
        setting to change. By default, `info` unchanged.
        """
        return info

    def evaluate_export(self, loaded, data, options=None):
        """Metrics (dict) of a loaded SavedModel on `data.test`.

        `options` holds the values of the flags from `add_arguments`.
        """
        raise NotImplementedError

    def predict_export(self, loaded, inputs, metadata, options=None):
        """Predictions (list of dicts) of a loaded SavedModel for raw inputs.

        `metadata` is what the export saved about its training run
        (`rnnapps.export.read_metadata`); `options` holds the values of the
        flags from `add_arguments` (e.g. how many suggestions).
        """
        raise NotImplementedError

    def format_prediction(self, prediction):
        """One line of `rnnapps predict` output for one prediction dict."""
        return json.dumps(prediction)


def add_decoding_export_flags(parser, length_penalty=False):
    """`rnnapps export` flags that change a text-writing task's decoding:
    `--beam-size` (and `--length-penalty`), with their own dests so that they
    do not clash with the config fields of the same name."""
    parser.add_argument("--beam-size", dest="export_beam_size", type=int, default=None,
                        help="beams kept while decoding (default: the training run's)")
    if length_penalty:
        parser.add_argument("--length-penalty", dest="export_length_penalty", type=float,
                            default=None, help="alpha of the length normalisation "
                            "(default: the run's)")


def decoding_export_info(info, options):
    """`info` with its `decoding` settings changed by `add_decoding_export_flags`'s flags."""
    decoding = dict(info["decoding"])
    beam_size = options.get("export_beam_size")
    if beam_size is not None:
        if beam_size < 1:
            raise TaskError(f"--beam-size must be at least 1. Received: {beam_size}")
        decoding["beam_size"] = beam_size
    if options.get("export_length_penalty") is not None:
        decoding["length_penalty"] = options["export_length_penalty"]
    return {**info, "decoding": decoding}


def learning_rate(config, examples):
    """The optimizer's learning rate for a task config with `learning_rate`,
    `batch_size`, `epochs` and `lr_schedule`: `config.learning_rate` when the
    schedule is `"constant"`; with `"cosine"` a
    `keras.optimizers.schedules.CosineDecay` from it to a tenth of it over the
    epoch cap (`examples` training examples an epoch, `config.batch_size` a
    step), so that the run ends at the low rate whatever early stopping does.

    Example:

    >>> import types
    >>> config = types.SimpleNamespace(
    ...     learning_rate=1e-3, batch_size=10, epochs=2, lr_schedule="cosine")
    >>> schedule = learning_rate(config, examples=95)  # 10 steps an epoch
    >>> round(float(schedule(0)), 6), round(float(schedule(20)), 6)
    (0.001, 0.0001)
    """
    import math

    import keras

    schedule = getattr(config, "lr_schedule", "constant")
    if schedule == "constant":
        return config.learning_rate
    if schedule != "cosine":
        raise TaskError(f"lr_schedule must be constant or cosine. Received: {schedule!r}")
    steps = math.ceil(examples / config.batch_size) * config.epochs
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, steps), alpha=0.1
    )


def config_field(default, help, **metadata):
    """A config dataclass field with its CLI help (and e.g. `choices`)."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def config_from_dict(config_class, values):
    """Builds a config from a dict, ignoring keys the dataclass lacks."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return config_class(**{k: v for k, v in values.items() if k in names})


# Fields that do not change what is trained, so a run that differs only in
# them resumes the same checkpoint.
_NOT_PART_OF_THE_RUN = ("export_dir", "checkpoint_dir", "tensorboard_dir")


def run_id(task, config, mixed_precision=None):
    """A short stable id of (task, config), naming the run's checkpoints
    (and of the mixed-precision policy, when there is one: its optimizer
    state differs)."""
    values = {
        k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_PART_OF_THE_RUN
    }
    if mixed_precision:
        values["mixed_precision"] = mixed_precision
    text = json.dumps({"task": task.name, **values}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def export_metadata(task, config, info):
    """What an export keeps about its run (`assets.extra/rnnapps.json`)."""
    return {"task": task.name, "config": dataclasses.asdict(config), "data": info}


def checkpoint_dir(task, config, mixed_precision=None):
    if getattr(config, "checkpoint_dir", None):
        return pathlib.Path(config.checkpoint_dir)
    return (pathlib.Path(config.export_dir) / ".checkpoints" / task.name
            / run_id(task, config, mixed_precision))


MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")


def train(task, config, verbose="auto", log=print, distribute="none", mixed_precision=None,
          timeout=120.0):
    """Loads data, fits, evaluates on the test split and exports.

    Callbacks: Keras's progress bar, early stopping on the validation loss
    (`rnnapps.callbacks.EarlyStoppingFromStart`: restoring the best
    weights, the weights before training among the candidates),
    `ModelCheckpoint` keeping the best model as `model.keras` in the run's
    checkpoint folder (with `task.json`, the config and data facts
    `rnnapps export` needs), `SharedBackupAndRestore`, so
    that the same command after an interruption resumes from the last
    completed epoch, and `TensorBoard` when `config.tensorboard_dir` is set
    (with `rnnapps.diagnostics.GradientThroughTime`: the gradient reaching
    each step of the recurrent layer, per epoch).

    `distribute` is one of `rnnapps.distribute.KINDS` (or a
    `tf.distribute.Strategy`): the model is built under it and
    `config.batch_size` is the global batch. Under multi-worker training
    every worker runs this same function; only the chief writes the
    checkpoint folder and the export, the others a scratch folder they
    remove, and all of them resume from the chief's backup (the checkpoint
    folder must be on storage they share). `mixed_precision` is a Keras
    dtype policy (`MIXED_PRECISION`); the export's signature stays float32.

    Returns:
        A dict with `task`, `export_path` (`None` on workers other than the
        chief), `metrics` (test), `data` (name and split sizes),
        `checkpoint`, `examples`, `epochs_run` and `distribute`
        (`rnnapps.distribute.describe`).
    """
    import contextlib
    import shutil
    import tempfile

    import keras

    from rnnapps import distribute as distribute_lib

    if mixed_precision not in (None, *MIXED_PRECISION):
        raise TaskError(f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)}. "
                        f"Received: {mixed_precision!r}")
    distribution = None  # keras.distribution's, on JAX
    if isinstance(distribute, str) and keras.backend.backend() != "tensorflow":
        strategy, distribution = None, distribute_lib.make_distribution(distribute)
    else:
        strategy = (distribute_lib.make_strategy(distribute, timeout)
                    if isinstance(distribute, str) else distribute)
    chief = distribute_lib.is_chief(strategy)
    replicas = (strategy.num_replicas_in_sync if strategy is not None else
                distribute_lib.describe(distribution, 1)["replicas"] if distribution else 1)
    batch_size = getattr(config, "batch_size", None)
    if batch_size is not None and batch_size < replicas:
        raise TaskError(f"--batch-size is the global batch, split over the {replicas} "
                        f"replicas: it must be at least {replicas}. Received: {batch_size}")
    run_dir = checkpoint_dir(task, config, mixed_precision)
    # Workers other than the chief write where they cannot collide with it.
    write_dir = run_dir if chief else pathlib.Path(tempfile.mkdtemp(prefix="rnnapps-worker-"))
    policy = keras.config.dtype_policy()
    if distribution is not None:
        keras.distribution.set_distribution(distribution)
    if mixed_precision:
        keras.config.set_dtype_policy(mixed_precision)
    try:
        # Seed before loading the data: in TensorFlow, setting the seed clears
        # the eager context's kernel caches, which deletes resources that data
        # pipelines hold (e.g. a SentencePiece tokenizer's model).
        keras.utils.set_random_seed(config.seed)
        data = task.load_data(config)
        data.train, data.validation, data.test = (
            without_autotune_thread(d) for d in (data.train, data.validation, data.test))
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = task.build_model(config, data)
        distribute_lib.prepare_model(model)
        run_dir.mkdir(parents=True, exist_ok=True)
        if chief:
            _write_atomically(run_dir / "task.json", json.dumps(
                export_metadata(task, config, data.info), indent=2, default=str))
        return _fit_and_export(task, config, data, model, strategy or distribution, run_dir,
                               write_dir, verbose if chief else 0, log,
                               float32_policy=policy if mixed_precision else None)
    finally:
        keras.config.set_dtype_policy(policy)
        if distribution is not None:
            keras.distribution.set_distribution(None)
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _whole_batches(dataset, replicas):
    """`dataset` without the batches that do not split evenly over
    `replicas` devices (the last, partial one of each epoch or length
    bucket): `keras.distribution.DataParallel` shards every batch."""
    import tensorflow as tf

    def even(*element):
        return tf.shape(tf.nest.flatten(element)[0])[0] % replicas == 0

    return dataset.filter(even)


def _save_atomically(model, path):
    path = pathlib.Path(path)
    partial = path.with_name(path.stem + ".partial.keras")
    model.save(str(partial))
    os.replace(partial, path)


def export_checkpoint(task_name, checkpoint, export_dir, options=None):
    """Exports a run's checkpoint (`model.keras` beside its `task.json`) as a
    SavedModel in `export_dir/TASK/<version>/`; returns the version folder.

    The export is built on TensorFlow whatever backend trained the weights:
    in this process when Keras runs on TensorFlow, otherwise by
    `rnnapps export TASK --checkpoint CHECKPOINT` in a new Python process
    with `KERAS_BACKEND=tensorflow`, which rebuilds the model from the
    backend-independent `.keras` file. `options` are the values of the
    export command's task flags (e.g. `{"export_beam_size": 4}`).
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        return export_checkpoint_here(task_name, checkpoint, export_dir, options)
    import subprocess
    import sys

    if _find_spec("tensorflow") is None:
        raise TaskError(
            f"the export needs TensorFlow, which this Python lacks: the checkpoint "
            f"{checkpoint} is kept; export it where TensorFlow is installed with "
            f"`rnnapps export {task_name} --checkpoint {checkpoint}`")
    command = [sys.executable, "-m", "rnnapps.cli", "export", task_name,
               "--checkpoint", str(checkpoint), "--export-dir", str(export_dir)]
    for key, value in (options or {}).items():
        if value is not None:
            command += ["--" + key.removeprefix("export_").replace("_", "-"), str(value)]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TaskError(f"exporting {checkpoint} on TensorFlow failed: {last}")
    return pathlib.Path(json.loads(done.stdout.strip().splitlines()[-1])["export_path"])


def _find_spec(name):
    import importlib.util

    return importlib.util.find_spec(name)


def export_checkpoint_here(task_name, checkpoint, export_dir, options=None):
    """`export_checkpoint` in this process (Keras on TensorFlow)."""
    from rnnapps.export import export_serving_model
    from rnnapps.tasks import get_task

    task = get_task(task_name)
    model_file, saved = read_checkpoint(task, checkpoint)
    try:
        model = task.load_checkpoint(model_file)
    except (OSError, ValueError) as error:
        raise TaskError(f"cannot load {model_file}: {str(error).splitlines()[0]}")
    saved["data"] = task.export_info(saved["data"], options or {})
    serve_fn, signature = task.serving_signature(model, saved["data"])
    return export_serving_model(
        model, serve_fn, signature, export_dir, task.name, metadata=saved,
        signatures=task.other_signatures(model, saved["data"]),
    )


def read_checkpoint(task, path):
    """`(model.keras path, task.json contents)` of a training checkpoint
    path (a run's folder or its `model.keras`)."""
    path = pathlib.Path(path)
    run_dir, model_file = (path, path / "model.keras") if path.is_dir() else (path.parent, path)
    if not model_file.is_file() or not (run_dir / "task.json").is_file():
        raise TaskError(f"{path} is not a training checkpoint (needs model.keras and task.json)")
    saved = json.loads((run_dir / "task.json").read_text())
    if saved.get("task") != task.name:
        raise TaskError(f"{path} is a checkpoint of task {saved.get('task')!r}, not {task.name!r}")
    return model_file, saved


def raw_values(x, name="x"):
    """`x` as a Python list: a list or tuple, a NumPy array, a pandas
    Series (or a one-column DataFrame), or an unbatched `tf.data.Dataset`
    of scalars; bytes are decoded as UTF-8. The Python API's fit/predict
    take any of them.

    >>> raw_values(("a", b"b"))
    ['a', 'b']
    """
    if x is None:
        raise TaskError(f"{name} is missing")
    if hasattr(x, "to_numpy") and hasattr(x, "columns"):  # pandas DataFrame
        if len(x.columns) != 1:
            raise TaskError(f"{name} is a DataFrame of {len(x.columns)} columns; pass "
                            f"the one column that holds the inputs")
        x = x[x.columns[0]]
    if hasattr(x, "to_numpy"):  # pandas Series
        x = x.to_numpy()
    if hasattr(x, "as_numpy_iterator"):  # tf.data.Dataset
        x = list(x.as_numpy_iterator())
    if isinstance(x, (str, bytes)):
        raise TaskError(f"{name} must be a list of inputs, not one {type(x).__name__}; "
                        f"wrap it in a list")
    try:
        values = list(x)
    except TypeError:
        raise TaskError(f"{name} must be a list, array, pandas Series or tf.data.Dataset. "
                        f"Received: {type(x).__name__}")
    return [v.decode("utf-8") if isinstance(v, bytes) else
            (v.item() if hasattr(v, "item") and getattr(v, "ndim", 1) == 0 else v)
            for v in values]


def _write_atomically(path, text):
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def _fit_and_export(task, config, data, model, strategy, run_dir, write_dir, verbose, log,
                    float32_policy=None):
    import keras

    from rnnapps import distribute as distribute_lib
    from rnnapps.callbacks import EarlyStoppingFromStart, SharedBackupAndRestore
    from rnnapps.export import export_serving_model

    chief = write_dir == run_dir
    train_data, validation_data = data.train, data.validation
    if hasattr(strategy, "device_mesh"):  # keras.distribution on JAX
        replicas = distribute_lib.describe(strategy, None)["replicas"]
        train_data, validation_data = (_whole_batches(d, replicas)
                                       for d in (train_data, validation_data))
    # The untrained model counts too: a model that starts from a good
    # solution (a seasonal-naive forecast) keeps it if no epoch is better.
    # A task's `average_epochs` restores the average of the weights of the
    # best epoch and of the epochs just before it.
    stopping = EarlyStoppingFromStart(
        validation_data, monitor="val_loss", patience=config.patience,
        restore_best_weights=True, average_epochs=getattr(config, "average_epochs", 1),
    )
    callbacks = [
        # All workers restore from the chief's backup; each writes its own.
        SharedBackupAndRestore(str(run_dir / "backup"), write_dir=str(write_dir / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(write_dir / "model.keras"), monitor="val_loss", save_best_only=True
        ),
        stopping,
    ]
    if getattr(config, "tensorboard_dir", None) and chief:
        from rnnapps.diagnostics import GradientThroughTime

        # The gradient reaching each step of the recurrent layer, per epoch,
        # on one validation batch (before TensorBoard, so the epoch logs it
        # adds are written too).
        x, y = task.diagnostic_batch(data)
        callbacks.append(GradientThroughTime(
            x, y, layer=task.diagnostic_layer(model), log_dir=config.tensorboard_dir
        ))
        callbacks.append(keras.callbacks.TensorBoard(config.tensorboard_dir))
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,  # the training dataset reshuffles itself every epoch
        verbose=verbose,
    )
    epochs_run = len(history.history.get("loss", []))
    facts = distribute_lib.describe(strategy, getattr(config, "batch_size", None))
    if not chief:  # training was the shared part; the chief tests and exports
        return {"task": task.name, "export_path": None, "metrics": None,
                "data": {"name": data.info["name"], "sizes": data.info["sizes"]},
                "checkpoint": str(run_dir / "model.keras"), "epochs_run": epochs_run,
                "examples": [], "distribute": facts}
    if strategy is not None or float32_policy is not None:
        # Test and export a copy outside the strategy: no collective op then
        # waits on the other workers, the export holds plain variables, and
        # (on JAX) a test batch need not split evenly over the devices.
        # After mixed precision, the copy computes in float32 (the trained
        # variables are float32): the test report and the export are exact.
        if hasattr(strategy, "device_mesh"):
            keras.distribution.set_distribution(None)
        if float32_policy is not None:
            keras.config.set_dtype_policy(float32_policy)
        trained, model = model, task.build_model(config, data)
        if not model.built:
            model(next(iter(data.train))[0])
        model.set_weights(trained.get_weights())
        if float32_policy is not None:  # the checkpoint holds the float32 model too
            _save_atomically(model, run_dir / "model.keras")
    # After averaging, the checkpoint holds the best epoch's weights: save it again.
    if task.after_fit(model, data) or stopping.averaged_epochs:
        # The checkpoint `rnnapps export --checkpoint` reads holds it too.
        model.save(str(run_dir / "model.keras.tmp.keras"))
        os.replace(run_dir / "model.keras.tmp.keras", run_dir / "model.keras")
    metrics = task.test_metrics(model, data)
    examples = task.example_predictions(model, data)
    if keras.backend.backend() == "tensorflow":
        serve_fn, signature = task.serving_signature(model, data.info)
        export_path = export_serving_model(
            model, serve_fn, signature, config.export_dir, task.name,
            metadata=export_metadata(task, config, data.info),
            signatures=task.other_signatures(model, data.info),
        )
    else:
        # The checkpoint holds exactly the weights tested above (the best
        # epoch's, or the untrained ones when no epoch beat them); the export
        # is rebuilt from it on TensorFlow.
        _save_atomically(model, run_dir / "model.keras")
        export_path = export_checkpoint(task.name, run_dir, config.export_dir)
    for line in examples:
        log(line)
    return {
        "task": task.name,
        "export_path": str(export_path),
        "metrics": metrics,
        "data": {"name": data.info["name"], "sizes": data.info["sizes"]},
        "checkpoint": str(run_dir / "model.keras"),
        "epochs_run": epochs_run,
        "examples": examples,
        "distribute": facts,
        "backend": keras.backend.backend(),
    }
