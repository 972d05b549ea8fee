"""The model of the next-word task: `rnnapps.language_model.WordLanguageModel`,
compiled with the task's settings."""

import keras

from rnnapps.language_model import PAD_ID
from rnnapps.language_model import WordLanguageModel
from rnnapps.optimizers import ClippedOptimizer

__all__ = ["build_model"]


def build_model(config, vocabulary):
    """A compiled `WordLanguageModel` for `config` (a `NextWordConfig`).

    The loss is the cross-entropy of the next word, padding left out; the
    progress bar shows keras-hub's per-word `Perplexity`.
    """
    import keras_hub

    model = WordLanguageModel(
        vocabulary,
        cell=config.cell,
        layers=config.layers,
        embedding_dim=config.embedding_dim,
        units=config.units,
        tie_embeddings=config.tie_embeddings,
        embedding_dropout=config.embedding_dropout,
        input_dropout=config.input_dropout,
        output_dropout=config.output_dropout,
        name=f"next_word_{config.cell}",
    )
    model.build((None, None))
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(config.learning_rate), clipnorm=config.clipnorm
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
        metrics=[keras_hub.metrics.Perplexity(from_logits=True, mask_token_id=PAD_ID)],
    )
    return model
