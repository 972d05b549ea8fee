"""`rnnapps.task`: what `rnnapps train` hands to `model.fit`."""

import numpy as np
import pytest

import keras

from rnnapps.task import train
from rnnapps.task import without_autotune_thread


def test_without_autotune_thread_keeps_the_elements_and_turns_autotuning_off():
    import tensorflow as tf

    dataset = tf.data.Dataset.range(10).map(
        lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    assert dataset.options().autotune.enabled is not False  # TensorFlow's default: on
    steady = without_autotune_thread(dataset)
    assert steady.options().autotune.enabled is False
    assert list(steady.as_numpy_iterator()) == list(range(0, 20, 2))
    arrays = np.ones(3)
    assert without_autotune_thread(arrays) is arrays and without_autotune_thread(None) is None


def test_train_fits_and_evaluates_on_datasets_without_the_autotune_thread(tmp_path, monkeypatch):
    # An autotuned iterator's teardown waits out its autotuning thread's
    # interval (benchmarks/iterator_teardown.py): Keras drops an iterator at
    # every epoch, so `rnnapps train` turns the thread off for what it fits on.
    from rnnapps.tasks import forecasting

    seen = []
    fit = keras.Model.fit

    def recording_fit(self, x=None, *args, validation_data=None, **kwargs):
        seen.extend([x, validation_data])
        return fit(self, x, *args, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    config = forecasting.ForecastingConfig(units=8, epochs=1, batch_size=16, patience=1,
                                           export_dir=str(tmp_path / "exports"))
    train(forecasting.task, config, verbose=0)
    assert len(seen) == 2
    assert all(d.options().autotune.enabled is False for d in seen)
