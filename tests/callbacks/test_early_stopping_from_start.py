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



def fit_towards_two(average_epochs, epochs=8, validation_target=1.8):
    """SGD pulls the output 1 -> 1.4 -> 1.64 -> 1.784 -> 1.870 -> ... towards
    2; the validation target 1.8 is closest after the third epoch (the best,
    index 2), and early stopping ends the run two epochs later."""
    x = np.ones((8, 1), "float32")
    model = linear_model(0.1)
    kernels = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: kernels.append(kernel(model)))
    stop = EarlyStoppingFromStart((x, validation_target * x), patience=2, restore_best_weights=True,
                                  average_epochs=average_epochs)
    model.fit(x, 2 * x, validation_data=(x, validation_target * x), epochs=epochs,
              callbacks=[record, stop], verbose=0)
    return model, stop, kernels


def test_restores_the_average_of_the_best_epoch_and_those_before_it():
    model, stop, kernels = fit_towards_two(average_epochs=3)
    assert stop.best_epoch == 2 and len(kernels) == 5  # stopped after 2 epochs without a better one
    assert stop.averaged_epochs == [0, 1, 2]
    assert kernel(model) == pytest.approx(np.mean(kernels[:3]), abs=1e-6)
    assert kernel(model) != pytest.approx(kernels[2], abs=1e-3)
    model, stop, kernels = fit_towards_two(average_epochs=2)
    assert stop.averaged_epochs == [1, 2]
    assert kernel(model) == pytest.approx(np.mean(kernels[1:3]), abs=1e-6)
    # Never the epochs after the best, nor the start; as many as ran before it.
    model, stop, kernels = fit_towards_two(average_epochs=5)
    assert stop.averaged_epochs == [0, 1, 2]
    assert kernel(model) == pytest.approx(np.mean(kernels[:3]), abs=1e-6)
    # 1 (the default): the best epoch's weights alone.
    model, stop, kernels = fit_towards_two(average_epochs=1)
    assert stop.averaged_epochs == [] and kernel(model) == pytest.approx(kernels[2], abs=1e-6)


def test_a_later_best_epoch_averages_its_own_predecessors_and_the_start_alone_stays():
    # Validation wants 1.9: each epoch is better than the last, the best is the last.
    model, stop, kernels = fit_towards_two(average_epochs=3, epochs=6, validation_target=1.95)
    assert stop.best_epoch == 5 and stop.averaged_epochs == [3, 4, 5]
    assert kernel(model) == pytest.approx(np.mean(kernels[3:]), abs=1e-6)
    # The start wins (validation wants the starting output, 1): it is restored alone.
    model, stop, kernels = fit_towards_two(average_epochs=3, epochs=3, validation_target=1.0)
    assert stop.best_epoch == -1 and stop.averaged_epochs == []
    assert kernel(model) == pytest.approx(1.0)


def test_average_epochs_must_be_a_count_of_epochs_with_restored_weights():
    data = (np.ones((1, 1)),) * 2
    with pytest.raises(ValueError, match="average_epochs must be a whole number"):
        EarlyStoppingFromStart(data, average_epochs=0, restore_best_weights=True)
    with pytest.raises(ValueError, match="needs restore_best_weights=True"):
        EarlyStoppingFromStart(data, average_epochs=2)
