"""Writing matplotlib figures whole or not at all (used by the plots rnnapps writes)."""

import os
import pathlib
import tempfile

__all__ = ["save_figure"]


def save_figure(figure, path, **savefig_kwargs):
    """Saves `figure` to `path` atomically, with the usual file permissions.

    The figure is drawn into a hidden temporary file beside `path` and
    renamed into place, so an error (or an interrupt) never leaves a
    half-written image; the file gets the permissions the user's umask
    gives a new file (not `tempfile`'s private 0600). The format comes from
    the extension, as in `Figure.savefig`.

    Raises:
        ValueError: `path`'s folder does not exist (nothing is written).

    Example:

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> figure, ax = plt.subplots()
    >>> _ = ax.plot([1, 2, 3])
    >>> save_figure(figure, "nowhere/plot.png")
    Traceback (most recent call last):
    ...
    ValueError: cannot write nowhere/plot.png: folder nowhere does not exist
    """
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {path.parent} does not exist")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        figure.savefig(temporary, **savefig_kwargs)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
