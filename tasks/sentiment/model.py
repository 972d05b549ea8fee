"""The sentiment model: token ids in, class probabilities out.

    token ids -> Embedding (masked) -> [ReverseSequence]
         -> LSTM | GRU | IRNN [Bidirectional] -> [max | mean | concat over steps]
         -> Dropout -> Dense(softmax)

With a pretrained language model (`encoder`, see
`rnnapps.tasks.sentiment.encoder`), the vocabulary, the embedding and the
stack of recurrent layers are the language model's, with its weights, and
the optimizer is `DiscriminativeAdam` (ULMFiT's discriminative learning
rates and gradual unfreezing).

The ids come from `rnnapps.tasks.sentiment.SentimentPreprocessor` (padding
0, `[UNK]` 1), which runs in `tf.data` and in the export's serving function;
the model itself is Keras layers and `keras.ops` only, so it trains on any
backend. LSTM and GRU keep Keras's cuDNN-eligible settings (default
activations, no recurrent dropout, right-padded masks).
"""

import keras

from rnnapps.layers import IRNN
from rnnapps.layers import ReverseSequence
from rnnapps.optimizers import ClippedOptimizer
from rnnapps.optimizers import DiscriminativeAdam

__all__ = ["build_model"]

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "irnn": IRNN}


@keras.saving.register_keras_serializable(package="rnnapps.sentiment")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean over the valid steps; zeros for a text with no valid step.

    `keras.layers.GlobalAveragePooling1D` divides by the number of valid
    steps, which is 0 for an empty text (NaN); this layer divides by at
    least 1.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return keras.ops.mean(inputs, axis=1)
        weights = keras.ops.expand_dims(keras.ops.cast(mask, inputs.dtype), -1)
        total = keras.ops.sum(inputs * weights, axis=1)
        return total / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="rnnapps.sentiment")
class ConcatPooling(keras.layers.Layer):
    """`[last valid step, max over steps, mean over valid steps]` (ULMFiT's
    concat pooling) of `(batch, steps, features)` right-padded outputs."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.mean = MaskedMeanPooling()

    def call(self, inputs, mask=None):
        if mask is None:
            mask = keras.ops.ones(keras.ops.shape(inputs)[:2], "bool")
        lengths = keras.ops.sum(keras.ops.cast(mask, "int32"), axis=1)
        index = keras.ops.reshape(keras.ops.maximum(lengths - 1, 0), (-1, 1, 1))
        last = keras.ops.take_along_axis(inputs, index, axis=1)[:, 0]
        # Masked steps repeat the previous output, so they never raise the max.
        return keras.ops.concatenate(
            [last, keras.ops.max(inputs, axis=1), self.mean(inputs, mask=mask)], axis=-1
        )

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3 * input_shape[2])


# Max pooling needs no mask: masked steps repeat the previous output.
_POOLING = {"max": keras.layers.GlobalMaxPooling1D, "mean": MaskedMeanPooling,
            "concat": ConcatPooling}


def _classifier_head(x, config, num_classes):
    """Pooling of the encoder's steps (unless `last`), dropout, softmax."""
    if config.pooling != "last":
        x = _POOLING[config.pooling](name=f"{config.pooling}_pooling")(x)
    x = keras.layers.Dropout(config.dropout, name="encoder_dropout")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)


def build_model(config, vocabulary_size, num_classes, encoder=None, steps_per_epoch=0):
    """A compiled sentiment classifier for `config` (a `SentimentConfig`):
    `(batch, steps)` int32 token ids in, `(batch, num_classes)` probabilities out.

    Args:
        config: the settings (`cell`, `bidirectional`, `reverse`, sizes...).
        vocabulary_size: ids the embedding reads (the preprocessor's
            `vocabulary_size`: its words, padding and `[UNK]`).
        num_classes: number of labels (2 or more).
        encoder: optionally, a `rnnapps.language_model.WordLanguageModel`
            whose vocabulary, embedding and recurrent layers (and weights)
            the classifier starts from.
        steps_per_epoch: with `encoder` and `config.unfreeze`, the steps
            between the unfreezing of one layer group and the next.
    """
    if encoder is not None:
        return _build_from_language_model(config, num_classes, encoder, steps_per_epoch)
    if config.cell not in _CELLS:
        raise ValueError(
            f"cell must be one of {', '.join(_CELLS)}. Received: cell={config.cell!r}"
        )
    # === Layers ===
    embedding = keras.layers.Embedding(
        vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding"
    )
    if config.pooling not in ("last", *_POOLING):
        raise ValueError(
            f"pooling must be last, max, mean or concat. Received: pooling={config.pooling!r}"
        )
    encoder = _CELLS[config.cell](
        config.units, return_sequences=config.pooling != "last", name=f"encoder_{config.cell}"
    )
    if config.bidirectional:
        encoder = keras.layers.Bidirectional(encoder, name="encoder")

    # === Functional Model ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = embedding(token_ids)
    x = keras.layers.SpatialDropout1D(config.dropout, name="embedding_dropout")(x)
    if config.reverse:
        x = ReverseSequence(name="reverse")(x)
    x = encoder(x)
    probabilities = _classifier_head(x, config, num_classes)
    model = keras.Model(token_ids, probabilities, name=f"sentiment_{config.cell}")

    # === Training setup ===
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(config.learning_rate), clipnorm=config.clipnorm
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _build_from_language_model(config, num_classes, encoder, steps_per_epoch):
    """The classifier over a pretrained language model's layers (ULMFiT);
    it reads the ids of the language model's vocabulary."""
    # === Layers, with the language model's weights ===
    embedding = keras.layers.Embedding(
        encoder.vocabulary_size, encoder.embedding_dim, mask_zero=True, name="embedding"
    )
    recurrent = []
    for i, pretrained in enumerate(encoder.recurrent):
        last = i == len(encoder.recurrent) - 1
        layer_config = {
            **pretrained.get_config(), "return_state": False, "name": f"encoder_{i}",
            "return_sequences": not last or config.pooling != "last",
        }
        recurrent.append(type(pretrained).from_config(layer_config))

    # === Functional Model ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = embedding(token_ids)
    x = keras.layers.SpatialDropout1D(config.dropout, name="embedding_dropout")(x)
    for layer in recurrent:
        x = layer(x)
    probabilities = _classifier_head(x, config, num_classes)
    model = keras.Model(token_ids, probabilities, name=f"sentiment_{encoder.cell_name}_pretrained")
    embedding.embeddings.assign(encoder.embedding.embeddings)
    for layer, pretrained in zip(recurrent, encoder.recurrent):
        layer.set_weights(pretrained.get_weights())

    # === Training setup: ULMFiT's discriminative rates and gradual unfreezing ===
    groups = [layer.name for layer in reversed(recurrent)] + ["embedding"]
    optimizer = DiscriminativeAdam(
        config.learning_rate, groups=groups, decay=2.6 if config.unfreeze else 1.0,
        unfreeze_every=steps_per_epoch if config.unfreeze else 0,
    )
    model.compile(
        optimizer=ClippedOptimizer(optimizer, clipnorm=config.clipnorm),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
