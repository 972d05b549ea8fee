"""Early stopping that counts the model before training as a candidate."""

import keras


class EarlyStoppingFromStart(keras.callbacks.EarlyStopping):
    """`EarlyStopping` whose first candidate is the model before training.

    Keras's `EarlyStopping` compares epochs with each other, so with
    `restore_best_weights=True` it returns the best *trained* weights even
    when every epoch did worse on validation than the model did before the
    first step. That matters for a model that starts from a good solution
    (a seasonal-naive forecast, a pretrained encoder): here the starting
    weights are evaluated on `validation_data` when training begins and
    kept if no epoch beats them.

    Args:
        validation_data: what `model.evaluate` scores the starting weights
            on: the same data as `fit`'s `validation_data`.
        monitor: a validation metric of `fit`'s logs (`"val_loss"`).
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
    """

    def __init__(self, validation_data, monitor="val_loss", **kwargs):
        if not monitor.startswith("val_"):
            raise ValueError(
                f"monitor must be a validation metric (val_...). Received: monitor={monitor!r}"
            )
        super().__init__(monitor=monitor, **kwargs)
        self.validation_data = validation_data

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
