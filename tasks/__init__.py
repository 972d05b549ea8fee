"""The rnnapps task packages, installed as `rnnapps.tasks`.

Each subpackage (sentiment, forecasting, translation, captioning, next_word) is one complete application: data loaders, preprocessing, model,
presets, export. A task never imports another task; what they share lives in
`rnnapps` itself (`rnnapps.task`, `rnnapps.export`).

    >>> from rnnapps.tasks import get_task
    >>> get_task("sentiment").name
    'sentiment'
"""

import importlib

TASKS = ("sentiment", "forecasting", "translation", "captioning", "next_word")

__all__ = ["TASKS", "get_task"]


def get_task(name):
    """The `rnnapps.task.Task` instance of the task package `name`."""
    from rnnapps.task import TaskError

    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return importlib.import_module(f"{__name__}.{name}").task
