"""The `rnnapps` command line.

    rnnapps train TASK [--preset NAME] [--data NAME_OR_PATH] [--epochs N] ...
    rnnapps evaluate TASK --model EXPORT_PATH [--data ...]
    rnnapps export TASK --checkpoint RUN_DIR_OR_KERAS_FILE [--export-dir DIR]
    rnnapps predict TASK --model EXPORT_PATH INPUT [INPUT ...]
    rnnapps serve [--model-base-path saved_models] [--model NAME=PATH ...] [--port 8501]
    rnnapps diagnose TASK [--model RUN_DIR_OR_KERAS_FILE ...] [--fresh] [--output PNG]
    rnnapps demo [--steps T] [--epochs N] [--units H] [--seed S]

The flags of `train` are the fields of the task's config dataclass
(`rnnapps train sentiment --help` lists them). Every command prints, as its
last line of stdout, one JSON object with its results. Errors a user can
make print one line on stderr and exit with status 2.

`diagnose` plots the norm of the loss's gradient with respect to the hidden
state at every step of the task's recurrent layer (`rnnapps.diagnostics`),
for trained checkpoints and/or a fresh (untrained) model built from the flags.

`demo` fits a small model made of the three rnnapps pieces (`ReverseSequence`,
`IRNN`, `ClippedOptimizer`) on the adding problem and prints its loss falling
below the constant predictor's.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

from rnnapps.backends import PRECISIONS
from rnnapps.task import TaskError

TASK_COMMANDS = ("train", "evaluate", "export", "predict", "diagnose")


class UsageError(TaskError):
    """An error the user can fix; printed as one line, exit status 2."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_config_arguments(parser, config_class, only=None):
    """One flag per config field; unset flags keep the preset's value."""
    group = parser.add_argument_group(f"{config_class.__name__} settings")
    for field in dataclasses.fields(config_class):
        if only is not None and field.name not in only:
            continue
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "")
        if "default:" not in help_text and "0: " not in help_text:
            help_text += f" (default: {field.default})"
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        if field.metadata.get("multiple"):
            group.add_argument(flag, dest=field.name, action="append", default=argparse.SUPPRESS,
                               help=help_text, metavar=field.name.upper())
            continue
        if field.type is bool:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
            continue
        kind = {int: int, float: float}.get(field.type, str)
        group.add_argument(flag, dest=field.name, type=kind, default=argparse.SUPPRESS,
                           choices=field.metadata.get("choices"), help=help_text,
                           metavar=None if field.metadata.get("choices") else field.name.upper())


def _add_task_command(commands, name, help_text, argv):
    from rnnapps.tasks import TASKS

    command = commands.add_parser(name, help=help_text, description=help_text)
    command.add_argument("task", choices=TASKS, help="the task")
    # The flags depend on the task: add those of the task named on the line.
    task_name = argv[1] if len(argv) > 1 and argv[0] == name else None
    if task_name not in TASKS:
        return command
    from rnnapps.tasks import get_task

    task = get_task(task_name)
    if name in ("train", "diagnose"):
        command.add_argument("--preset", choices=sorted(task.presets),
                             default=next(iter(task.presets)),
                             help="settings to start from (default: %(default)s)")
        _add_config_arguments(command, task.config_class)
    if name == "train":
        command.add_argument(
            "--backend", choices=("auto", "jax", "tensorflow"), default=None,
            help="the Keras backend that trains: auto takes the one benchmarks/backend_speed.py "
            "measured fastest for this task (docs/scaling.md); the export is a TensorFlow "
            "SavedModel whichever trains (default: KERAS_BACKEND if set, else auto)")
        scaling = command.add_argument_group("past one device (docs/scaling.md)")
        scaling.add_argument(
            "--distribute", choices=("none", "mirrored", "multi-worker"), default="none",
            help="mirrored: every local GPU (tf.distribute.MirroredStrategy); multi-worker: "
            "the machines named in TF_CONFIG (MultiWorkerMirroredStrategy), each running this "
            "command. --batch-size is the global batch (default: %(default)s)")
        scaling.add_argument(
            "--distribute-timeout", type=float, default=120.0, metavar="SECONDS",
            help="how long a multi-worker run waits for every worker to join before it stops "
            "with an error (default: %(default)s)")
        scaling.add_argument(
            "--mixed-precision", choices=PRECISIONS, default="auto",
            help="compute in 16-bit floats while training, variables in float32 (float16 with "
            "loss scaling); the test report and the export compute in float32. auto: bfloat16 "
            "for the tasks measured faster in it (next_word) where the CPU has bfloat16 units "
            "(avx512_bf16) or on a GPU, else float32 (default: %(default)s)")
    if name == "evaluate":
        command.add_argument("--model", required=True, help="an exported version folder")
        _add_config_arguments(command, task.config_class, only=task.data_fields)
    elif name == "export":
        command.add_argument("--checkpoint", required=True,
                             help="a run's checkpoint folder (or its model.keras)")
        command.add_argument("--export-dir", default="saved_models",
                             help="exports go to EXPORT_DIR/TASK/<version>/ (default: %(default)s)")
    elif name == "predict":
        command.add_argument("--model", required=True, help="an exported version folder")
        command.add_argument("inputs", nargs="*", metavar="INPUT", help=task.predict_help)
        files = command.add_argument_group("predicting a file")
        if task.predict_reads_whole_file:
            files.add_argument("--input", metavar="FILE", help="the file to predict from, "
                               "instead of INPUT")
        else:
            files.add_argument("--input", metavar="FILE", help="predict every row of FILE "
                               "instead of INPUT: a CSV or TSV (quoted texts may span lines), "
                               "JSON Lines (one object per line) or plain text (one input per "
                               "line); relative image paths are read from FILE's folder")
            files.add_argument("--column", metavar="NAME", help="the column (or JSON key) of "
                               "--input that holds the inputs (default: its only column, else "
                               "one named text, sentence, source, image or input)")
        files.add_argument("--output", metavar="FILE.jsonl|FILE.csv",
                           help="write the predictions to this file (JSON Lines or CSV, by its "
                           "extension) instead of printing one line each; written whole or "
                           "not at all")
    if name == "diagnose":
        command.add_argument(
            "--model", action="append", default=[], metavar="CHECKPOINT",
            help="a run's checkpoint folder (or its model.keras); repeat to compare several. "
            "The data is that of the first one, with --data/--batch-size/--seed overriding",
        )
        command.add_argument(
            "--fresh", action="store_true",
            help="also measure an untrained model built from the settings (the default "
            "when no --model is given)",
        )
        command.add_argument("--layer", help="which recurrent layer (name or path; "
                             "default: the task's main one)")
        command.add_argument("--output", default=f"diagnose-{task_name}.png",
                             help="the plot to write (default: %(default)s)")
    task.add_arguments(name, command)
    command.set_defaults(run=globals()[f"run_{name}"], task_object=task)
    return command


def build_parser(argv=()):
    parser = _Parser(
        prog="rnnapps",
        description="Recurrent-network applications on Keras 3.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    commands.required = True
    _add_task_command(commands, "train", "train a task, evaluate it and export it", argv)
    _add_task_command(commands, "evaluate", "evaluate an exported model on a test split", argv)
    _add_task_command(commands, "export", "export a training checkpoint for serving", argv)
    _add_task_command(commands, "predict", "predict with an exported model", argv)
    _add_task_command(
        commands, "diagnose",
        "plot the gradient reaching each time step (vanishing/exploding) of a task's model", argv,
    )
    _add_serve_command(commands)
    demo = commands.add_parser(
        "demo",
        help="fit ReverseSequence + IRNN + ClippedOptimizer on the adding problem",
        description=(
            "Fits Input -> ReverseSequence -> IRNN -> Dense(1), trained with "
            "ClippedOptimizer(Adam(5e-4), clipnorm=1), on the adding problem (Le et al. 2015) and "
            "reports the test MSE against the constant predictor's (about 0.167)."
        ),
    )
    # Defaults: long enough that a plain tanh RNN learns nothing, short
    # enough to finish in about a minute on 2 CPU cores.
    demo.add_argument("--steps", type=_positive_int, default=100,
                      help="sequence length T (default: 100)")
    demo.add_argument("--units", type=_positive_int, default=64,
                      help="IRNN units (default: 64)")
    demo.add_argument("--epochs", type=_positive_int, default=20,
                      help="training epochs (default: 20)")
    demo.add_argument("--train-size", type=_positive_int, default=10_000,
                      help="training sequences (default: 10000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.set_defaults(run=run_demo)
    return parser


def _add_serve_command(commands):
    from rnnapps.serving.server import ServerConfig

    defaults = ServerConfig()
    serve = commands.add_parser(
        "serve",
        help="serve exports over TensorFlow Serving's REST API, with a web page",
        description=(
            "Serves every model under --model-base-path (each a folder of numbered "
            "SavedModel versions, as `rnnapps train` writes them) over TensorFlow Serving's "
            "REST API (GET /v1/models/NAME[/metadata], POST /v1/models/NAME:predict), and a "
            "page at / to try each one. New versions are loaded and swapped in while "
            "serving; deleted ones are unloaded. SIGTERM or Ctrl-C finishes the requests "
            "in flight and exits 0."
        ),
    )
    serve.add_argument("--model-base-path", default=None, metavar="DIR",
                       help="a folder of models, each a folder of numbered versions "
                       "(default: saved_models, unless --model is given)")
    serve.add_argument("--model", action="append", metavar="NAME=PATH",
                       help="serve PATH (a folder of numbered versions, or one version) as "
                       "NAME; repeat for several")
    serve.add_argument("--host", default=defaults.host,
                       help="address to listen on (default: %(default)s, this machine only: "
                       "the API has no authentication)")
    serve.add_argument("--port", type=int, default=defaults.port,
                       help="port (default: %(default)s, TF Serving's REST port; 0 picks a free one)")
    serve.add_argument("--poll-seconds", type=float, default=defaults.poll_seconds,
                       help="how often to look for new or deleted versions (0: never; "
                       "default: %(default)s)")
    serve.add_argument("--num-versions", type=_non_negative_int, default=defaults.num_versions,
                       help="how many of each model's newest versions to keep loaded "
                       "(0: all; default: %(default)s)")
    serve.add_argument("--batching", action=argparse.BooleanOptionalAction,
                       default=defaults.batching,
                       help="merge concurrent requests into batches (default: on)")
    serve.add_argument("--max-batch-size", type=_positive_int, default=defaults.max_batch_size,
                       help="most examples in one batch (default: %(default)s)")
    serve.add_argument("--batch-timeout-micros", type=_non_negative_int,
                       default=defaults.batch_timeout_micros,
                       help="how long a batch waits for more requests under concurrent load "
                       "(a lone request never waits); 0 waits only while every batch thread "
                       "is busy (default: %(default)s)")
    serve.add_argument("--max-enqueued-batches", type=_positive_int,
                       default=defaults.max_enqueued_batches,
                       help="queue capacity in batches; past it requests get 503 at once "
                       "(default: %(default)s)")
    serve.add_argument("--num-batch-threads", type=_positive_int,
                       default=defaults.num_batch_threads,
                       help="batches run at once (default: %(default)s)")
    serve.add_argument("--max-body-bytes", type=_positive_int, default=defaults.max_body_bytes,
                       help="larger requests get 413 (default: %(default)s)")
    serve.set_defaults(run=run_serve)


def run_serve(args):
    from rnnapps.serving import server

    try:
        config = server.main_options(args)
        return server.serve(config, ready=lambda url, loaded: print(
            json.dumps({"url": url, "models": loaded}), flush=True))
    except (ValueError, OSError) as error:
        raise UsageError(str(error))


def run_demo(args):
    import keras
    import numpy as np

    from rnnapps.datasets import adding_problem
    from rnnapps.layers import IRNN
    from rnnapps.layers import ReverseSequence
    from rnnapps.optimizers import ClippedOptimizer
    from rnnapps.optimizers import ClippingMonitor

    if args.steps < 2:
        raise UsageError(f"--steps must be at least 2, got {args.steps}")
    keras.utils.set_random_seed(args.seed)
    x_train, y_train = adding_problem(args.train_size, args.steps, seed=args.seed)
    x_test, y_test = adding_problem(2_000, args.steps, seed=args.seed + 1)
    constant_mse = float(np.mean((y_test - 1.0) ** 2))

    # === Model: the three rnnapps pieces in a plain Keras model ===
    model = keras.Sequential(
        [
            keras.Input((args.steps, 2)),
            ReverseSequence(name="reverse"),
            IRNN(args.units, name="irnn"),
            keras.layers.Dense(1, name="sum"),
        ],
        name="adding_irnn",
    )
    model.compile(
        optimizer=ClippedOptimizer(keras.optimizers.Adam(5e-4), clipnorm=1.0),
        loss="mse",
    )
    print(
        f"Adding problem, T={args.steps}: {args.train_size} training sequences; "
        f"predicting the constant 1 gives test MSE {constant_mse:.3f}.",
        flush=True,
    )
    start = time.perf_counter()
    history = model.fit(
        x_train, y_train,
        batch_size=32,
        epochs=args.epochs,
        validation_split=0.1,
        callbacks=[ClippingMonitor()],
        verbose=2 if os.environ.get("CI") else "auto",
    )
    seconds = time.perf_counter() - start
    test_mse = float(model.evaluate(x_test, y_test, verbose=0))
    losses = [round(float(v), 4) for v in history.history["loss"]]
    print(
        f"Training loss by epoch: {losses}. Test MSE {test_mse:.4f} vs the "
        f"constant predictor's {constant_mse:.4f} "
        f"({'learned' if test_mse < 0.5 * constant_mse else 'not learned'})."
    )
    print(json.dumps({
        "task": "adding_demo",
        "backend": keras.backend.backend(),
        "steps": args.steps,
        "metrics": {"test_mse": round(test_mse, 5), "constant_mse": round(constant_mse, 5)},
        "loss_by_epoch": losses,
        "clip_rate": round(float(history.history["clip_rate"][-1]), 4),
        "train_seconds": round(seconds, 1),
    }))
    return 0


def _config(task, args, preset=None, base=None):
    if base is None:
        base = task.presets[preset] if preset else task.config_class()
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(base) if hasattr(args, f.name)}
    for field in dataclasses.fields(base):
        if field.metadata.get("multiple") and field.name in overrides:
            overrides[field.name] = ",".join(overrides[field.name])
    return dataclasses.replace(base, **overrides)


def _task_options(task, args):
    """The values of the task's own flags (`Task.add_arguments`)."""
    names = {f.name for f in dataclasses.fields(task.config_class)}
    common = {"command", "task", "run", "task_object", "model", "inputs", "preset", "checkpoint", "export_dir",
              "fresh", "layer", "output", "distribute", "distribute_timeout", "mixed_precision",
              "input", "column", "backend"}
    return {k: v for k, v in vars(args).items() if k not in names and k not in common}


def _load_export(path):
    path = pathlib.Path(path)
    if not (path / "saved_model.pb").is_file():
        raise UsageError(f"{path} is not an exported model (no saved_model.pb in it)")
    import tensorflow as tf

    try:  # registers TensorFlow Text's ops (SentencePiece) that text exports use
        import tensorflow_text  # noqa: F401
    except ImportError:  # pragma: no cover - installed with keras-hub
        pass
    return tf.saved_model.load(str(path))


def _export_config(task, path):
    """The config the export at `path` was trained with (defaults if unknown)."""
    from rnnapps.export import read_metadata
    from rnnapps.task import config_from_dict

    metadata = read_metadata(path)
    if metadata.get("task") not in (None, task.name):
        raise UsageError(f"{path} is an export of task {metadata['task']!r}, not {task.name!r}")
    return metadata, config_from_dict(task.config_class, metadata.get("config", {}))


def run_train(args):
    from rnnapps.task import train

    task = args.task_object
    config = _config(task, args, args.preset)
    import keras

    from rnnapps.backends import choose_precision

    precision = choose_precision(task.name, args.mixed_precision, keras.backend.backend())
    result = train(task, config, verbose=2 if os.environ.get("CI") else "auto",
                   distribute=args.distribute, mixed_precision=precision,
                   timeout=args.distribute_timeout)
    print(json.dumps(result))
    return 0


def run_evaluate(args):
    task = args.task_object
    loaded = _load_export(args.model)
    # Unless flags say otherwise, evaluate on the data the model was trained on.
    metadata, base = _export_config(task, args.model)
    config = _config(task, args, base=base)
    data = task.load_evaluation_data(config, trained=base if metadata.get("config") else None)
    metrics = task.evaluate_export(loaded, data, _task_options(task, args))
    for line in task.evaluation_lines(metrics):
        print(line)
    print(json.dumps({
        "task": task.name, "model": str(args.model), "metrics": metrics,
        "data": {"name": data.info["name"], "sizes": data.info["sizes"]},
    }))
    return 0


def run_export(args):
    from rnnapps.task import export_checkpoint_here
    from rnnapps.task import read_checkpoint

    task = args.task_object
    model_file, _ = read_checkpoint(task, args.checkpoint)
    export_path = export_checkpoint_here(task.name, args.checkpoint, args.export_dir,
                                         _task_options(task, args))
    print(f"Exported {model_file} to {export_path}")
    print(json.dumps({"task": task.name, "export_path": str(export_path), "checkpoint": str(model_file)}))
    return 0


def run_predict(args):
    from rnnapps import predict_files

    task = args.task_object
    if args.input is not None and args.inputs:
        raise UsageError("give either INPUT arguments or --input FILE, not both")
    if args.input is None and not args.inputs:
        raise UsageError(f"nothing to predict: give INPUT arguments or --input FILE "
                         f"(see rnnapps predict {task.name} --help)")
    output = predict_files.check_output(args.output) if args.output else None
    if args.input is None:
        inputs = args.inputs
        if inputs == ["-"]:
            inputs = [line.rstrip("\n") for line in sys.stdin]
    elif task.predict_reads_whole_file:
        inputs = [predict_files.check_input(args.input)]
    else:
        inputs = predict_files.read_column(args.input, args.column,
                                           paths=task.predict_inputs_are_paths)
    loaded = _load_export(args.model)
    metadata, _ = _export_config(task, args.model)
    predictions = task.predict_export(loaded, inputs, metadata, _task_options(task, args))
    if output is not None:
        predict_files.write_predictions(output, predictions)
        print(f"wrote {len(predictions)} predictions to {output}")
        print(json.dumps({"task": task.name, "model": str(args.model), "output": str(output),
                          "count": len(predictions)}))
        return 0
    for p in predictions:
        print(task.format_prediction(p))
    print(json.dumps({"task": task.name, "model": str(args.model), "predictions": predictions}))
    return 0


def _checkpoint_files(task, path):
    """`(model.keras, task.json contents)` of a training checkpoint path."""
    from rnnapps.task import read_checkpoint

    return read_checkpoint(task, path)


def _load_checkpoint_model(task, model_file):
    try:
        return task.load_checkpoint(model_file)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot load {model_file}: {str(error).splitlines()[0]}")


def run_diagnose(args):
    import keras

    from rnnapps.diagnostics import first_over_last
    from rnnapps.diagnostics import hidden_state_gradients
    from rnnapps.diagnostics import plot_gradient_norms
    from rnnapps.task import config_from_dict

    task = args.task_object
    output = pathlib.Path(args.output)
    if not output.parent.is_dir():
        raise UsageError(f"cannot write {output}: folder {output.parent} does not exist")
    checkpoints = [_checkpoint_files(task, path) for path in args.model]
    fresh_config = _config(task, args, args.preset)
    if checkpoints:
        saved_config = config_from_dict(task.config_class, checkpoints[0][1].get("config", {}))
        data_overrides = {f: getattr(args, f) for f in task.data_fields if hasattr(args, f)}
        data_config = dataclasses.replace(saved_config, **data_overrides)
    else:
        data_config = fresh_config
    keras.utils.set_random_seed(data_config.seed)  # before the data: see rnnapps.task.train
    data = task.load_data(data_config)
    x, y = task.diagnostic_batch(data)

    models = []
    for (model_file, _), path in zip(checkpoints, args.model):
        models.append((str(path), _load_checkpoint_model(task, model_file)))
    if args.fresh or not checkpoints:
        label = "untrained" + "".join(
            f", {k}={v}" for k, v in sorted(vars(args).items())
            if k in {f.name for f in dataclasses.fields(task.config_class)}
            and k not in task.data_fields
        )
        models.append((label, task.build_model(fresh_config, data)))

    curves, summary = {}, {}
    for label, model in models:
        layer = args.layer or task.diagnostic_layer(model)
        try:
            norms = hidden_state_gradients(model, x, y, layer=layer)
        except ValueError as error:
            raise UsageError(f"{label}: {error}")
        curves[label] = norms
        ratio = first_over_last(norms)
        print(f"{label}: |dL/dh_t| at t=1: {norms[0]:.3g}, at t={len(norms)}: {norms[-1]:.3g} "
              f"(first/last {ratio:.3g})")
        summary[label] = {"norms": [float(f"{v:.6g}") for v in norms], "first_over_last": ratio}
    plot_gradient_norms(curves, output, title=f"{task.name}: gradient reaching each step")
    print(f"wrote {output}")
    print(json.dumps({
        "task": task.name, "output": str(output), "models": summary,
        "data": {"name": data.info["name"], "batch": int(len(y) if hasattr(y, "__len__") else 0)},
    }))
    return 0


def parse_args(argv):
    """The command line `argv` parsed (argparse's errors exit with status 2)."""
    parser = build_parser(argv)
    args, extras = parser.parse_known_args(argv)
    # argparse gives `predict`'s optional INPUT list (nargs="*") its empty
    # match before the flags that follow the task name, so inputs after
    # --model come back as extras: they are the inputs.
    if extras and args.command == "predict" and not args.inputs and not any(
            e.startswith("-") and e != "-" for e in extras):
        args.inputs, extras = extras, []
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _choose_backend(args):
    """Sets the Keras backend a command runs on, before Keras is imported.

    `train` takes `--backend` (else `KERAS_BACKEND`, else `auto`:
    `rnnapps.backends`); `export` builds a TensorFlow SavedModel, so it runs
    on TensorFlow whatever trained the checkpoint. The other commands run
    on `KERAS_BACKEND` as set.
    """
    from rnnapps import backends

    if args.command == "train":
        requested = args.backend or os.environ.get("KERAS_BACKEND") or "auto"
        if requested not in backends.BACKENDS:
            raise UsageError(f"KERAS_BACKEND={requested} cannot train a task: use jax or "
                             f"tensorflow")
        loaded = sys.modules.get("keras")
        if requested == "auto" and loaded is not None:  # in-process use: keep it
            requested = loaded.backend.backend()
        if requested == "auto" and args.distribute == "multi-worker":
            requested = "tensorflow"  # tf.distribute's
        backends.use_backend(backends.choose_backend(args.task, requested))
    elif args.command == "export":
        backends.use_backend("tensorflow")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # Keep TensorFlow's C++ start-up chatter out of the output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = parse_args(argv)
    try:
        _choose_backend(args)
        return args.run(args)
    except (UsageError, TaskError) as error:
        print(f"rnnapps: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnapps: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
