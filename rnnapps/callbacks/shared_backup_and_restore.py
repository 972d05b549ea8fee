"""`SharedBackupAndRestore`: Keras's `BackupAndRestore` for several workers."""

import json
import os
import shutil

import keras


class SharedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that restores from one folder and
    backs up to another, each file written atomically.

    Under multi-worker training every worker restores from the chief's
    `backup_dir` (on storage they share), while only the chief backs up
    there: the others write to their own `write_dir`, so that no two
    processes write one file. A backup is written to a temporary name and
    renamed, so a worker killed while it writes leaves the previous backup
    whole; the epoch count is written after the weights it belongs to.

    Args:
        backup_dir: where the backup is read from (and, by default, written).
        write_dir: where this process writes its backup (default:
            `backup_dir`).
        delete_checkpoint: remove `write_dir` when training ends.

    Example:

    >>> import numpy as np, tempfile
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> folder = tempfile.mkdtemp()
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                     callbacks=[SharedBackupAndRestore(folder)])
    >>> len(history.history["loss"])
    2
    """

    def __init__(self, backup_dir, write_dir=None, delete_checkpoint=True):
        super().__init__(backup_dir, delete_checkpoint=delete_checkpoint)
        self.write_dir = write_dir or backup_dir

    def _save_model(self):
        os.makedirs(self.write_dir, exist_ok=True)
        weights = os.path.join(self.write_dir, "latest.weights.h5")
        partial = os.path.join(self.write_dir, "partial.weights.h5")
        self.model.save_weights(partial, overwrite=True)
        os.replace(partial, weights)
        metadata = os.path.join(self.write_dir, "training_metadata.json")
        with open(metadata + ".partial", "w") as file:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, file)
        os.replace(metadata + ".partial", metadata)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            shutil.rmtree(self.write_dir, ignore_errors=True)
