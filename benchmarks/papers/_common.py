"""What the papers' benchmark scripts share: names, colours, atomic writes, data
parallelism on JAX."""

import contextlib
import json
import os
import pathlib
import re
import tempfile

CELL_NAMES = {"irnn": "IRNN", "rnn": "tanh RNN", "lstm": "LSTM"}
CELL_COLORS = {"irnn": "tab:red", "rnn": "tab:blue", "lstm": "tab:green"}


def recurrent_layer(cell, units):
    """The recurrent layer the papers compare: "irnn", "rnn" (tanh) or "lstm"."""
    import keras

    from rnnapps.layers import IRNN

    return {
        "irnn": lambda: IRNN(units, name="irnn"),
        "rnn": lambda: keras.layers.SimpleRNN(units, name="tanh_rnn"),
        "lstm": lambda: keras.layers.LSTM(units, name="lstm"),
    }[cell]()


def int_list(text):
    return [int(v) for v in text.split(",") if v]


def sort_key(key):
    """Sorts result keys like 'T=150 irnn clip=1 ...' by T, then the rest."""
    match = re.match(r"T=(\d+) (.*)", key)
    return (int(match.group(1)), match.group(2)) if match else (0, key)


def _atomic_write(path, write):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's file is private
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_results(json_path, fresh=False, merge=()):
    """The runs in `json_path` (none if `fresh`), plus those of each folder in
    `merge` (runs made in parallel into another --out); merged runs are saved."""
    json_path = pathlib.Path(json_path)
    results = {} if fresh or not json_path.exists() else json.loads(json_path.read_text())
    for folder in merge:
        results.update(json.loads((pathlib.Path(folder) / json_path.name).read_text()))
    if merge:
        write_json(json_path, results)
    return results


def add_merge_flag(parser):
    parser.add_argument("--merge", action="append", default=[], metavar="FOLDER",
                        help="add the runs in FOLDER's JSON (e.g. run in parallel into another "
                        "--out) to this one's")


def add_data_parallel_flag(parser):
    parser.add_argument(
        "--data-parallel", action="store_true",
        help="JAX backend: split every batch over all local devices "
        "(keras.distribution.DataParallel); --batch-size stays the global batch")


@contextlib.contextmanager
def data_parallel(args, parser):
    """With `--data-parallel`, trains under `keras.distribution.DataParallel`
    over every local device (JAX only) and yields the number of devices;
    without it, yields 1 and changes nothing. The gradient is that of the
    whole batch, so a run matches the one-device run up to float rounding."""
    if not args.data_parallel:
        yield 1
        return
    import keras

    if keras.backend.backend() != "jax":
        parser.error(f"--data-parallel needs the JAX backend (KERAS_BACKEND=jax), not "
                     f"{keras.backend.backend()}")
    devices = keras.distribution.list_devices()
    if args.batch_size % len(devices):
        parser.error(f"--batch-size {args.batch_size} does not split evenly over "
                     f"{len(devices)} devices")
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        yield len(devices)
    finally:
        keras.distribution.set_distribution(previous)


def write_json(path, value):
    _atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(value, indent=1)))


def save_figure(fig, path):
    """Writes `fig` (atomically, creating the folder) and closes it."""
    import matplotlib.pyplot as plt

    from rnnapps.figures import save_figure

    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)
