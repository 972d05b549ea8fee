"""Training callbacks: `EarlyStoppingFromStart`, `SharedBackupAndRestore`."""

from rnnapps.callbacks.early_stopping_from_start import EarlyStoppingFromStart
from rnnapps.callbacks.shared_backup_and_restore import SharedBackupAndRestore

__all__ = ["EarlyStoppingFromStart", "SharedBackupAndRestore"]
