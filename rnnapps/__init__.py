"""rnnapps: recurrent-network applications on Keras 3.

The reusable pieces are in `rnnapps.layers` (`IRNNCell`, `IRNN`,
`ReverseSequence`) and `rnnapps.optimizers` (`ClippedOptimizer`); the task
packages are in `rnnapps.tasks`.

`import rnnapps` is cheap: it imports neither Keras nor TensorFlow. The
submodules are loaded on first attribute access, so `rnnapps.layers.IRNN`
works after a bare `import rnnapps`, and the layers run on any Keras backend
(TensorFlow, JAX, PyTorch) without TensorFlow installed.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("layers", "optimizers", "datasets", "diagnostics", "tasks", "cli")

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
