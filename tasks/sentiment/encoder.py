"""A sentiment encoder that starts from a pretrained language model (ULMFiT).

Semi-supervised sequence learning (Dai & Le 2015) and ULMFiT (Howard &
Ruder 2018) in three steps:

1. a word-level recurrent language model trained on a large unlabelled
   corpus (the `next_word` task's model, WordNet by default:
   `rnnapps.language_model.pretrained`);
2. the same model fine-tuned to predict the next word of the task's own
   training texts (`fine_tune_language_model`), so it learns their
   vocabulary and style;
3. its vocabulary, embedding and recurrent layers become the classifier's
   encoder (`rnnapps.tasks.sentiment.model.build_model(..., encoder=...)`),
   fine-tuned with discriminative learning rates and gradual unfreezing
   (`rnnapps.optimizers.DiscriminativeAdam`).
"""

import pathlib

from rnnapps.task import TaskError

__all__ = ["load_language_model", "extend_vocabulary", "fine_tune_language_model"]


def load_language_model(encoder, log=print):
    """The `WordLanguageModel` named by `encoder`: a `next_word` preset
    ("wordnet": trained once into the cache) or the path of a `next_word`
    checkpoint (a run folder or its `model.keras`)."""
    from rnnapps import language_model

    path = pathlib.Path(encoder)
    if path.is_dir():
        path = path / "model.keras"
    if path.suffix == ".keras" or path.exists():
        if not path.is_file():
            raise TaskError(f"no language model at {encoder} (expected a next_word checkpoint)")
        try:
            model = language_model.load(path)
        except (OSError, ValueError, TypeError) as error:
            raise TaskError(f"cannot load {path}: {str(error).splitlines()[0]}")
    else:
        try:
            model = language_model.pretrained(encoder, log=log)
        except ValueError as error:
            raise TaskError(str(error))
    if not isinstance(model, language_model.WordLanguageModel):
        raise TaskError(f"{path} is a {type(model).__name__}, not a next_word language model")
    return model


def extend_vocabulary(model, texts, min_count=2):
    """`model` with the words of `texts` it lacks that occur at least
    `min_count` times added to its vocabulary (ULMFiT: their embeddings
    start as the mean embedding; `WordLanguageModel.with_words`).

    WordNet's vocabulary misses 8.6% of the running words of the default
    reviews, among them "recommend", "awesome", "yummy", "horrible".
    """
    import collections

    from rnnapps.text import standardize

    counts = collections.Counter(word for text in texts for word in standardize(text))
    known = set(model.vocabulary)
    new = [w for w, n in counts.most_common() if n >= min_count and w not in known]
    return model.with_words(new)


def fine_tune_language_model(model, texts, epochs, batch_size=64, learning_rate=1e-3, seed=0,
                             verbose="auto"):
    """Fits `model` to predict the next word of the sentences of `texts`
    (ULMFiT's second step); returns the held-out perplexity before and after.

    One text in ten (by position) is held out to report the perplexity.
    """
    import keras

    from rnnapps.language_model import perplexity
    from rnnapps.language_model import sentence_batches
    from rnnapps.language_model import token_ids
    from rnnapps.optimizers import ClippedOptimizer
    from rnnapps.tasks.sentiment.data import _split_sentences

    sentences = [s for text in texts for s in _split_sentences(text) if s]
    ids = token_ids(sentences, model.vocabulary, max_length=60)
    held_out = ids[::10]
    train = [row for i, row in enumerate(ids) if i % 10]
    train_batches = sentence_batches(train, batch_size, shuffle_seed=seed)
    held_out_batches = sentence_batches(held_out, batch_size)
    model.compile(
        optimizer=ClippedOptimizer(keras.optimizers.Adam(learning_rate), clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    before = perplexity(model, held_out_batches)
    if epochs:
        model.fit(train_batches, epochs=epochs, verbose=verbose)
    return {"perplexity_before": round(before, 2),
            "perplexity_after": round(perplexity(model, held_out_batches), 2),
            "sentences": len(ids)}
