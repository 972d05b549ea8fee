"""Early stopping that counts the model before training as a candidate."""

import keras


def average_weights(weight_lists):
    """The elementwise mean of several `model.get_weights()` lists; arrays
    that are not floating-point (a seed generator's state) come from the last."""
    import numpy as np

    return [np.mean(np.stack(arrays), axis=0).astype(arrays[-1].dtype)
            if np.issubdtype(arrays[-1].dtype, np.floating) else arrays[-1]
            for arrays in zip(*weight_lists)]


class EarlyStoppingFromStart(keras.callbacks.EarlyStopping):
    """`EarlyStopping` whose first candidate is the model before training.

    Keras's `EarlyStopping` compares epochs with each other, so with
    `restore_best_weights=True` it returns the best *trained* weights even
    when every epoch did worse on validation than the model did before the
    first step. That matters for a model that starts from a good solution
    (a seasonal-naive forecast, a pretrained encoder): here the starting
    weights are evaluated on `validation_data` when training begins and
    kept if no epoch beats them.

    With `average_epochs=k` (and `restore_best_weights=True`) it restores
    the average of the weights of the best epoch and of the `k - 1` epochs
    before it (those that ran): checkpoint averaging, as in Vaswani et al.
    (2017), ending at the epoch early stopping chose. Every floating-point
    variable is averaged, batch normalisation's moving statistics included;
    the others (a seed generator's state) are the best epoch's. It smooths
    the epoch-to-epoch noise of the weights at no cost in training time, and
    keeps those epochs' weights in host memory. When the starting weights
    win, they are restored alone. `averaged_epochs` lists the epochs
    (0-based, like `best_epoch`) whose average was restored.

    Args:
        validation_data: what `model.evaluate` scores the starting weights
            on: the same data as `fit`'s `validation_data`.
        monitor: a validation metric of `fit`'s logs (`"val_loss"`).
        average_epochs: how many epochs' weights to average, the best and
            those just before it (1: the best epoch's alone).
        **kwargs: the other arguments of `keras.callbacks.EarlyStopping`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones")])
    >>> model.compile(keras.optimizers.SGD(10.0), "mse")   # a step far too big
    >>> x = np.ones((8, 1), "float32")
    >>> stop = EarlyStoppingFromStart((x, x), patience=1, restore_best_weights=True)
    >>> _ = model.fit(x, 2 * x, validation_data=(x, x), epochs=2, callbacks=[stop], verbose=0)
    >>> stop.best_epoch, keras.ops.convert_to_numpy(model.layers[0].kernel).tolist()   # -1: the start won
    (-1, [[1.0]])

    Averaging: the kernel goes 0 -> 0.2 -> 0.36 -> 0.488 towards 1, every
    epoch better on validation; the last two are averaged.

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False,
    ...                                                                 kernel_initializer="zeros")])
    >>> model.compile(keras.optimizers.SGD(0.1), "mse")
    >>> stop = EarlyStoppingFromStart((x, x), restore_best_weights=True, average_epochs=2)
    >>> _ = model.fit(x, x, validation_data=(x, x), epochs=3, callbacks=[stop], verbose=0)
    >>> kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
    >>> stop.best_epoch, stop.averaged_epochs, round(float(kernel[0, 0]), 3)
    (2, [1, 2], 0.424)
    """

    def __init__(self, validation_data, monitor="val_loss", average_epochs=1, **kwargs):
        if not monitor.startswith("val_"):
            raise ValueError(
                f"monitor must be a validation metric (val_...). Received: monitor={monitor!r}"
            )
        if int(average_epochs) != average_epochs or average_epochs < 1:
            raise ValueError(f"average_epochs must be a whole number of epochs, 1 or more. "
                             f"Received: average_epochs={average_epochs!r}")
        super().__init__(monitor=monitor, **kwargs)
        if average_epochs > 1 and not self.restore_best_weights:
            raise ValueError("average_epochs averages the weights it restores: it needs "
                             "restore_best_weights=True")
        self.validation_data = validation_data
        self.average_epochs = int(average_epochs)
        self.averaged_epochs = []
        self._epoch_weights = {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if isinstance(self.validation_data, tuple):
            scores = self.model.evaluate(*self.validation_data, verbose=0, return_dict=True)
        else:
            scores = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
        name = self.monitor.removeprefix("val_")
        if name not in scores:
            raise ValueError(
                f"the model reports no {name!r} to monitor; it reports: {', '.join(scores)}"
            )
        self.best = float(scores[name])
        self.best_weights = self.model.get_weights()
        self.best_epoch = -1
        self.averaged_epochs, self._epoch_weights = [], {}

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.average_epochs < 2 or self.get_monitor_value(logs) is None:
            return
        self._epoch_weights[epoch] = (self.best_weights if self.best_epoch == epoch
                                      else self.model.get_weights())
        # A best epoch, this one or a later one, reaches back no further.
        for old in [e for e in self._epoch_weights if e <= self.best_epoch - self.average_epochs]:
            del self._epoch_weights[old]

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        kept, self._epoch_weights = self._epoch_weights, {}
        if self.average_epochs < 2 or self.best_epoch < 0:
            return
        epochs = sorted(e for e in kept if self.best_epoch - self.average_epochs < e <= self.best_epoch)
        if len(epochs) < 2:
            return
        averaged = average_weights([kept[e] for e in epochs])  # the best is the last
        self.model.set_weights(averaged)
        self.averaged_epochs = epochs
        if self.verbose > 0:
            print(f"Restoring the average of the weights from the end of epochs "
                  f"{', '.join(str(e + 1) for e in epochs)}.")
