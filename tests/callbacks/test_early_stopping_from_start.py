"""EarlyStoppingFromStart keeps the starting weights unless an epoch beats them (every backend)."""

import keras
import numpy as np
import pytest

from rnnapps.callbacks import EarlyStoppingFromStart


def linear_model(learning_rate):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones")])
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


def kernel(model):
    return keras.ops.convert_to_numpy(model.layers[0].kernel).item()


def test_keeps_the_start_when_every_epoch_is_worse_on_validation():
    x = np.ones((8, 1), "float32")
    model = linear_model(0.1)
    stop = EarlyStoppingFromStart((x, x), patience=2, restore_best_weights=True)
    # Training pulls the kernel towards 2; validation wants it at 1, where it starts.
    history = model.fit(x, 2 * x, validation_data=(x, x), epochs=3, callbacks=[stop], verbose=0)
    assert all(loss > 0 for loss in history.history["val_loss"])
    assert stop.best_epoch == -1 and kernel(model) == pytest.approx(1.0)
    # Plain EarlyStopping keeps the best trained epoch instead.
    model = linear_model(0.1)
    plain = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    model.fit(x, 2 * x, validation_data=(x, x), epochs=3, callbacks=[plain], verbose=0)
    assert plain.best_epoch == 0 and kernel(model) > 1.0


def test_keeps_training_when_an_epoch_beats_the_start():
    x = np.ones((8, 1), "float32")
    model = linear_model(0.1)
    data = (x, 2 * x)
    stop = EarlyStoppingFromStart(data, patience=2, restore_best_weights=True)
    model.fit(x, 2 * x, validation_data=data, epochs=3, callbacks=[stop], verbose=0)
    assert stop.best_epoch == 2 and kernel(model) > 1.0
    assert stop.best < 1.0  # the starting MSE on validation was (1 - 2)^2 = 1


def test_monitor_must_be_a_validation_metric():
    with pytest.raises(ValueError, match="monitor must be a validation metric"):
        EarlyStoppingFromStart((np.ones((1, 1)),) * 2, monitor="loss")
