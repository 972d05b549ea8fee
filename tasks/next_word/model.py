"""The model of the next-word task: `rnnapps.language_model.WordLanguageModel`,
compiled with the task's settings."""

import keras

from rnnapps.language_model import WordLanguageModel
from rnnapps.optimizers import ClippedOptimizer

__all__ = ["build_model"]


def build_model(config, vocabulary):
    """A compiled `WordLanguageModel` for `config` (a `NextWordConfig`).

    The model computes its own loss, the cross-entropy of the next word,
    padding left out (with `config.softmax`: full, sampled or adaptive),
    and shows the per-word perplexity in the progress bar.
    """
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
        softmax=config.softmax,
        samples=config.softmax_samples,
        seed=config.seed,
        name=f"next_word_{config.cell}",
    )
    model.build((None, None))
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(config.learning_rate), clipnorm=config.clipnorm
        ),
    )
    return model
