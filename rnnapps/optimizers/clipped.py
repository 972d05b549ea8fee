"""`ClippedOptimizer`: global-norm gradient clipping as an optimizer wrapper.

Also defines `ClippingMonitor`, a callback that puts the gradient norm, the
clip rate and the clip threshold into the training logs.

TensorFlow is imported lazily, only inside the branches that run on the
TensorFlow backend, so this module works with `KERAS_BACKEND=jax` (or
`"torch"`) without importing TensorFlow.
"""

import numbers

import keras
from keras import ops

# Arguments of `keras.optimizers.Optimizer` that belong to the inner
# optimizer, with their defaults. Passing a default value is harmless;
# any other value is rejected with a pointer to the inner optimizer.
_INNER_OPTIMIZER_ARGS = {
    "learning_rate": None,
    "weight_decay": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="rnnapps")
class ClippedOptimizer(keras.optimizers.Optimizer):
    """An optimizer wrapper that clips the global gradient norm.

    Gradients of recurrent networks are products of one Jacobian per time
    step, so over long sequences their norm can grow exponentially: a single
    step with an "exploding gradient" throws the weights far away from
    anything learned so far (Pascanu, Mikolov & Bengio, 2013, "On the
    difficulty of training recurrent neural networks", arXiv:1211.5063). Their
    remedy is to rescale the gradient when its norm is too large: with `g` the
    list of all gradients and `||g||` its global L2 norm (over every
    gradient tensor together), every gradient becomes
    `clipnorm * g / ||g||` whenever `||g|| > clipnorm`, and is left alone
    otherwise. The direction of the step is kept; only its length is capped.

    `ClippedOptimizer` wraps any Keras optimizer instance (with its own
    settings and learning-rate schedule, built or not), applies this rescaling
    and then hands the gradients to the inner optimizer. Unlike the
    `global_clipnorm` argument of Keras optimizers it:

    - composes with mixed precision: wrap it as
      `LossScaleOptimizer(ClippedOptimizer(...))` (which `compile()` does by
      itself under the `"mixed_float16"` policy), and the unscaled gradient
      is clipped;
    - clips the all-reduced (global-batch) gradient under a
      `tf.distribute` strategy, so a step on N replicas equals a step on one
      device with the same global batch (`global_clipnorm` clips each
      replica's local gradient before the all-reduce);
    - records the gradient norm, the threshold and the fraction of clipped
      steps in optimizer variables (`last_norm`, `threshold`, `clip_rate`),
      which `ClippingMonitor` writes into the training logs;
    - can use an adaptive threshold: with `percentile=p`, the threshold of
      each step is the p-th percentile of the last `history_size` gradient
      norms, the current one included (AutoClip, Seetharaman et al., 2020).

    The inner optimizer keeps its own learning rate, `iterations`, weight
    decay, EMA and gradient accumulation; `learning_rate` and `iterations`
    on the wrapper read and write the inner optimizer's.

    Args:
        inner_optimizer: The `keras.optimizers.Optimizer` instance to wrap.
            It must not be a `keras.optimizers.LossScaleOptimizer`; wrap the
            other way round: `LossScaleOptimizer(ClippedOptimizer(Adam()))`.
        clipnorm: Positive float, the fixed threshold on the global gradient
            norm. Defaults to `1.0`. Must be `None` or left at its default
            when `percentile` is set (the threshold is then adaptive).
        percentile: Optional float in `(0, 100]`. If set, the threshold of
            each step is this percentile (linear interpolation, as
            `numpy.percentile`) of the last `history_size` gradient norms,
            the current one included. Defaults to `None` (fixed threshold).
        history_size: Integer >= 1, the number of past gradient norms kept
            for `percentile`. Defaults to `1000`.
        name: String, the name of the optimizer (its variables' name scope).

    Example:

    >>> import numpy as np
    >>> optimizer = ClippedOptimizer(
    ...     keras.optimizers.SGD(learning_rate=0.1), clipnorm=1.0
    ... )
    >>> w = keras.Variable(np.zeros(2, "float32"))
    >>> optimizer.apply([np.array([3.0, 4.0], "float32")], [w])
    >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(w)]
    [-0.06, -0.08]
    >>> round(float(optimizer.last_norm), 4), float(optimizer.clip_rate)
    (5.0, 1.0)
    """

    def __init__(
        self,
        inner_optimizer,
        clipnorm=1.0,
        percentile=None,
        history_size=1000,
        name=None,
        **kwargs,
    ):
        for arg_name, default in _INNER_OPTIMIZER_ARGS.items():
            if arg_name not in kwargs:
                continue
            value = kwargs.pop(arg_name)
            if value is None and default is None:
                continue
            if value is not None and default is not None and value == default:
                continue
            raise ValueError(
                f"ClippedOptimizer does not support `{arg_name}`; set it on "
                f"the `inner_optimizer` instead. Received: {arg_name}={value}"
            )
        if kwargs:
            raise ValueError(
                "ClippedOptimizer does not support argument(s) "
                f"{', '.join(f'`{k}`' for k in kwargs)}. Received: {kwargs}"
            )

        if isinstance(inner_optimizer, keras.optimizers.LossScaleOptimizer):
            raise ValueError(
                "`inner_optimizer` must not be a LossScaleOptimizer: "
                "ClippedOptimizer would then clip the scaled gradient. Wrap "
                "the other way round, e.g. "
                "`LossScaleOptimizer(ClippedOptimizer(Adam()))`, so that the "
                "unscaled gradient is clipped. "
                f"Received: inner_optimizer={inner_optimizer}"
            )
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise ValueError(
                "`inner_optimizer` must be a `keras.optimizers.Optimizer` "
                "instance (for a name such as 'adam', pass "
                "`keras.optimizers.get('adam')`). "
                f"Received: inner_optimizer={inner_optimizer!r}"
            )

        if percentile is not None:
            if not _is_number(percentile) or not 0 < percentile <= 100:
                raise ValueError(
                    "percentile must be a number in (0, 100]. "
                    f"Received: percentile={percentile}"
                )
            if clipnorm is not None and clipnorm != 1.0:
                raise ValueError(
                    "clipnorm must be None (or left at its default) when "
                    "percentile is set: the threshold is then the percentile "
                    f"of recent gradient norms. Received: clipnorm={clipnorm}"
                    f", percentile={percentile}"
                )
            clipnorm = None
        elif clipnorm is None:
            raise ValueError(
                "clipnorm must be a positive number unless percentile is "
                "set. Received: clipnorm=None"
            )
        elif not _is_number(clipnorm) or not clipnorm > 0:
            raise ValueError(
                f"clipnorm must be positive. Received: clipnorm={clipnorm}"
            )
        if not _is_integer(history_size) or history_size < 1:
            raise ValueError(
                "history_size must be an integer >= 1. "
                f"Received: history_size={history_size}"
            )

        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.percentile = None if percentile is None else float(percentile)
        self.history_size = int(history_size)

    # The inner optimizer owns the learning rate, the iteration count and the
    # loss scale factor; the wrapper reads and writes them through.

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def loss_scale_factor(self):
        inner = self.__dict__.get("inner_optimizer")
        return None if inner is None else inner.loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        # The base constructor sets `None` before the inner optimizer exists;
        # afterwards (e.g. `LossScaleOptimizer` disabling it) it goes through.
        inner = self.__dict__.get("inner_optimizer")
        if inner is not None:
            inner.loss_scale_factor = value

    def build(self, var_list):
        var_list = list(var_list)
        self._grad_norm = self.add_variable(
            shape=(),
            dtype="float32",
            initializer="zeros",
            aggregation="only_first_replica",
            name="grad_norm",
        )
        self._clip_threshold = self.add_variable(
            shape=(),
            dtype="float32",
            initializer=keras.initializers.Constant(self.clipnorm or 0.0),
            aggregation="only_first_replica",
            name="clip_threshold",
        )
        self._step_count = self.add_variable(
            shape=(),
            dtype="int",
            initializer="zeros",
            aggregation="only_first_replica",
            name="step_count",
        )
        self._clipped_count = self.add_variable(
            shape=(),
            dtype="int",
            initializer="zeros",
            aggregation="only_first_replica",
            name="clipped_count",
        )
        if self.percentile is not None:
            self._norm_history = self.add_variable(
                shape=(self.history_size,),
                dtype="float32",
                initializer="zeros",
                aggregation="only_first_replica",
                name="norm_history",
            )
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        elif var_list:
            # A built inner optimizer is used as is (not rebuilt), so it must
            # have been built for these variables.
            self.inner_optimizer._check_variables_are_known(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if trainable_variables is not None:
            trainable_variables = list(trainable_variables)
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    "When passing `grads` without `trainable_variables`, the "
                    "optimizer must already be built. Call "
                    "`optimizer.build(trainable_variables)` first."
                )
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        if not grads:
            return

        variables = trainable_variables or self._trainable_variables
        if len(variables) != len(grads):
            raise ValueError(
                f"Received {len(grads)} gradients for {len(variables)} "
                "variables; pass one gradient per variable."
            )
        # Variables overwritten by their "gradient" (float8 scaling state)
        # take no part in clipping.
        clip = [
            g is not None and not getattr(v, "overwrite_with_gradient", False)
            for g, v in zip(grads, variables)
        ]

        with keras.name_scope(self.name, caller=self):
            norm = self._global_norm([g for g, c in zip(grads, clip) if c])
            if self.loss_scale_factor is not None:
                # The inner optimizer unscales; the threshold is on the
                # unscaled gradient.
                norm = ops.divide(norm, self.loss_scale_factor)
            if self.percentile is None:
                threshold = ops.convert_to_tensor(self.clipnorm, "float32")
            else:
                threshold = self._adaptive_threshold(norm)
            clipped = ops.greater(norm, threshold)
            factor = ops.where(
                clipped,
                ops.divide(threshold, ops.maximum(norm, 1e-30)),
                ops.ones_like(norm),
            )

            self._grad_norm.assign(norm)
            self._clip_threshold.assign(threshold)
            self._step_count.assign_add(
                ops.ones((), dtype=self._step_count.dtype)
            )
            self._clipped_count.assign_add(
                ops.cast(clipped, self._clipped_count.dtype)
            )

            grads = [
                self._scale(g, factor) if c else g for g, c in zip(grads, clip)
            ]
        self.inner_optimizer.apply(grads, trainable_variables)

    def _global_norm(self, grads):
        """Global L2 norm (float32) of the gradients of all replicas."""
        if keras.backend.backend() == "tensorflow":
            return _tf_global_norm(grads)
        squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads]
        if not squares:
            return ops.zeros((), "float32")
        return ops.sqrt(ops.sum(ops.stack(squares)))

    def _scale(self, gradient, factor):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if isinstance(gradient, tf.IndexedSlices):
                return tf.IndexedSlices(
                    gradient.values * tf.cast(factor, gradient.values.dtype),
                    gradient.indices,
                    gradient.dense_shape,
                )
        gradient = ops.convert_to_tensor(gradient)
        return ops.multiply(gradient, ops.cast(factor, gradient.dtype))

    def _adaptive_threshold(self, norm):
        """Records `norm` and returns the percentile of the recent norms."""
        size = self.history_size
        count = ops.cast(self._step_count.value, "int32")
        positions = ops.arange(size, dtype="int32")
        slot = ops.mod(count, size)
        history = ops.where(
            ops.equal(positions, slot), norm, self._norm_history.value
        )
        self._norm_history.assign(history)

        valid = ops.minimum(count + 1, size)
        ordered = ops.sort(
            ops.where(ops.less(positions, valid), history, float("inf"))
        )
        # numpy.percentile(method="linear"): rank (p/100)(n-1), lerp between
        # the neighbouring order statistics.
        rank = ops.multiply(
            self.percentile / 100.0, ops.cast(valid - 1, "float32")
        )
        low = ops.floor(rank)
        high = ops.minimum(low + 1.0, ops.cast(valid - 1, "float32"))
        weight = rank - low
        below = ops.take(ordered, ops.cast(low, "int32"))
        above = ops.take(ordered, ops.cast(high, "int32"))
        step = above - below
        return ops.where(
            weight >= 0.5,
            above - step * (1.0 - weight),
            below + step * weight,
        )

    @property
    def last_norm(self):
        """Global gradient norm of the last step, before clipping.

        A float32 scalar tensor (`None` before the optimizer is built). With
        a loss-scaled inner optimizer this is the unscaled norm.
        """
        if not self.built:
            return None
        return ops.copy(self._grad_norm.value)

    @property
    def threshold(self):
        """The clipping threshold used on the last step (float32 tensor).

        `clipnorm` for a fixed threshold; the percentile of the recent norms
        when `percentile` is set (0 before the first step). `None` before
        the optimizer is built.
        """
        if not self.built:
            return None
        return ops.copy(self._clip_threshold.value)

    @property
    def clip_rate(self):
        """Fraction of the steps so far whose gradient was clipped.

        A float32 scalar tensor in [0, 1] (0 before the first step, `None`
        before the optimizer is built).
        """
        if not self.built:
            return None
        steps = ops.maximum(ops.cast(self._step_count.value, "float32"), 1.0)
        clipped = ops.cast(self._clipped_count.value, "float32")
        return ops.divide(clipped, steps)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        # Not `super().get_config()`: the base arguments belong to the inner
        # optimizer, which is serialized whole.
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(
                self.inner_optimizer
            ),
            "clipnorm": self.clipnorm,
            "percentile": self.percentile,
            "history_size": self.history_size,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner_optimizer = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner_optimizer, **config)


def _tf_global_norm(grads):
    """TensorFlow: global norm of the (all-reduced) gradients.

    Inside a replica context of a strategy with more than one replica, the
    gradients are summed over the replicas first, so the norm is that of the
    global-batch gradient that the inner optimizer applies (it all-reduces the
    gradients it receives with the same SUM).
    """
    import tensorflow as tf

    if tf.distribute.in_cross_replica_context():
        raise ValueError(
            "ClippedOptimizer.apply() must be called in a replica context "
            "(e.g. inside `strategy.run`)."
        )
    context = tf.distribute.get_replica_context()
    if grads and context.num_replicas_in_sync > 1:
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, list(grads))
    squares = []
    for g in grads:
        if isinstance(g, tf.IndexedSlices):
            # Sum the rows of repeated indices, so that the norm is that of
            # the dense gradient (static shapes, so XLA compiles it).
            g = tf.math.unsorted_segment_sum(
                g.values, g.indices, g.dense_shape[0]
            )
        g = tf.cast(tf.convert_to_tensor(g), tf.float32)
        squares.append(tf.reduce_sum(tf.square(g)))
    if not squares:
        return tf.zeros((), tf.float32)
    return tf.sqrt(tf.add_n(squares))


def _find_clipped_optimizer(optimizer):
    """The `ClippedOptimizer` in a chain of `inner_optimizer`s, or None."""
    for _ in range(16):
        if optimizer is None or isinstance(optimizer, ClippedOptimizer):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


class ClippingMonitor(keras.callbacks.Callback):
    """Writes the gradient norm and clip statistics into the training logs.

    At the end of training batches and epochs this callback adds three
    entries to the `logs` dict, read from the model's `ClippedOptimizer`
    (found inside a `LossScaleOptimizer` too):

    - `grad_norm`: the global gradient norm of the last step, before
      clipping;
    - `clip_rate`: the fraction of all steps so far that were clipped;
    - `clip_threshold`: the threshold used on the last step.

    Callbacks that come after it in the `callbacks` list see them, and so do
    `History` and the progress bar, which `fit()` appends at the end: place
    it before a `keras.callbacks.TensorBoard` (or `CSVLogger`) to record
    them. Epoch-end values are those of the last step of the epoch.

    Args:
        log_every: Integer >= 1 or `None`. Add the values to the batch logs
            every `log_every` training batches; `None` adds them to the epoch
            logs only. Reading them waits for the step to finish (and on JAX
            syncs the training state), so a larger value costs less on an
            accelerator. Defaults to `1`.

    Example:

    ```python
    model.compile(optimizer=ClippedOptimizer(keras.optimizers.Adam()),
                  loss="mse")
    history = model.fit(x, y, callbacks=[ClippingMonitor()])
    history.history["clip_rate"]
    ```
    """

    def __init__(self, log_every=1):
        super().__init__()
        if log_every is not None and (
            not _is_integer(log_every) or log_every < 1
        ):
            raise ValueError(
                "log_every must be an integer >= 1 or None. "
                f"Received: log_every={log_every}"
            )
        self.log_every = log_every

    def _optimizer(self):
        # Going through `self.model` syncs the JAX training state.
        optimizer = getattr(self.model, "optimizer", None)
        clipped = _find_clipped_optimizer(optimizer)
        if clipped is None:
            raise ValueError(
                "ClippingMonitor needs a model compiled with a "
                "ClippedOptimizer (possibly inside a LossScaleOptimizer). "
                f"Received: optimizer={optimizer}"
            )
        return clipped

    def on_train_begin(self, logs=None):
        self._optimizer()

    def _values(self):
        optimizer = self._optimizer()
        if not optimizer.built:
            return {}
        return {
            "grad_norm": float(ops.convert_to_numpy(optimizer.last_norm)),
            "clip_rate": float(ops.convert_to_numpy(optimizer.clip_rate)),
            "clip_threshold": float(ops.convert_to_numpy(optimizer.threshold)),
        }

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or self.log_every is None:
            return
        if (batch + 1) % self.log_every == 0:
            logs.update(self._values())

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._values())
