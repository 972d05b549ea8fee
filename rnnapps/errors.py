"""The error a user can fix, shared by the task interface and the library
modules it uses (`rnnapps.task`, `rnnapps.distribute`, `rnnapps.predict_files`)
without importing one another."""

__all__ = ["TaskError"]


class TaskError(ValueError):
    """A problem with the user's input (data, flags); shown as one line."""
