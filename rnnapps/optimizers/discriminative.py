"""`DiscriminativeAdam`: a learning rate per layer group, and gradual unfreezing.

Fine-tuning a pretrained network on a small labelled set can destroy what
pretraining taught it within a few steps. Howard & Ruder (2018, *Universal
Language Model Fine-tuning for Text Classification*, ULMFiT) fine-tune with

- **discriminative learning rates**: each layer group, counted from the
  output down, learns `decay` (2.6) times slower than the one above it, so
  the new classifier learns fast and the embedding barely moves;
- **gradual unfreezing**: only the top group trains in the first epoch, the
  next one joins in the second epoch, and so on.

`DiscriminativeAdam` is Adam with both. Groups are named by variable-path
prefixes, from the top (output side) down; variables under none of them
(the new classifier head) are group 0 and train from the start at the full
learning rate. Group `g` learns at `learning_rate / decay ** g` once
`g * unfreeze_every` steps have run (`unfreeze_every=0`: all from the
start). A frozen group keeps its values exactly (its learning rate is 0),
and the schedule follows the optimizer's own step counter, so a run resumed
from a checkpoint unfreezes at the same steps.

Example: a head over a pretrained `encoder` layer and `embedding`:

>>> import numpy as np, keras
>>> inputs = keras.Input((3,))
>>> x = keras.layers.Dense(4, name="embedding")(inputs)
>>> x = keras.layers.Dense(4, name="encoder")(x)
>>> model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x))
>>> optimizer = DiscriminativeAdam(0.01, groups=["encoder", "embedding"], unfreeze_every=1)
>>> model.compile(optimizer, "mse")
>>> before = model.get_layer("embedding").kernel.numpy().copy()
>>> _ = model.fit(np.ones((2, 3)), np.ones((2, 1)), batch_size=2, epochs=2, verbose=0)
>>> bool(np.all(model.get_layer("embedding").kernel.numpy() == before))  # frozen for 2 steps
True
"""

import keras
from keras import ops

__all__ = ["DiscriminativeAdam"]


@keras.saving.register_keras_serializable(package="rnnapps")
class DiscriminativeAdam(keras.optimizers.Adam):
    """Adam with a learning rate per layer group and gradual unfreezing.

    Args:
        learning_rate: the rate of the top group (the new head).
        groups: variable-path prefixes of the pretrained layer groups, from
            the output side down (e.g. `["encoder_lstm_1", "encoder_lstm_0",
            "embedding"]`); a variable whose path starts with none of them
            belongs to group 0.
        decay: each group learns `decay` times slower than the one above.
        unfreeze_every: steps between the unfreezing of one group and the
            next (e.g. the steps of an epoch); 0 trains every group from
            the first step.
        **kwargs: `keras.optimizers.Adam`'s other arguments.
    """

    def __init__(self, learning_rate=0.001, groups=(), decay=2.6, unfreeze_every=0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if decay <= 0:
            raise ValueError(f"decay must be positive. Received: decay={decay}")
        if unfreeze_every < 0:
            raise ValueError(f"unfreeze_every must be >= 0. Received: {unfreeze_every}")
        self.groups = [str(g) for g in groups]
        self.decay = float(decay)
        self.unfreeze_every = int(unfreeze_every)
        self._group_of = []

    def group_of(self, path):
        """The group (0 = the head) of a variable with this path."""
        for index, prefix in enumerate(self.groups, start=1):
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return index
        return 0

    def build(self, var_list):
        super().build(var_list)
        self._group_of = [self.group_of(v.path) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        group = self._group_of[self._get_variable_index(variable)]
        if group:
            learning_rate = ops.cast(learning_rate, variable.dtype) / (self.decay ** group)
            if self.unfreeze_every:
                unfrozen = ops.greater_equal(self.iterations, group * self.unfreeze_every)
                learning_rate = learning_rate * ops.cast(unfrozen, variable.dtype)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {
            **super().get_config(), "groups": self.groups, "decay": self.decay,
            "unfreeze_every": self.unfreeze_every,
        }
