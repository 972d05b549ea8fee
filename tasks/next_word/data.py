"""Next-word data: English sentences as token ids, in tf.data datasets.

Sources (all offline):

- `wordnet` (default): WordNet 3.0's glosses and example sentences, from
  Debian's `wordnet-base` (165k sentences, 1.3M words);
- `gcide`: the GCIDE dictionary's definitions and quotations, from Debian's
  `dict-gcide` (222k sentences, 3.7M words, much of it 19th-century);
- `english`: both;
- the path of a UTF-8 text file: each line is cut into sentences.

The Debian packages are unpacked into the cache without root on first use
(`rnnapps.datasets.debian`) when they are not installed.

Splits are deterministic: the MD5 hash of a sentence sends 5% of them to
validation and 5% to test, so a repeated sentence never lands in two splits.

Words are what `keras.layers.TextVectorization` makes of a sentence by
default (lower case, punctuation stripped, split on whitespace); the
vocabulary holds the most frequent training words, with ids 0-3 for
padding, `[UNK]`, `<s>` and `</s>`. A sentence `w1 .. wn` becomes the pair
`(<s> w1 .. wn, w1 .. wn </s>)`: at every step, the next word.
"""

import hashlib
import pathlib
import re

import numpy as np

from rnnapps.task import TaskData
from rnnapps.task import TaskError

__all__ = [
    "PAD_ID", "UNK_ID", "START_ID", "END_ID", "START", "END", "SOURCES",
    "load_sentences", "split_sentences", "fit_vocabulary", "load_data",
]

# The ids `rnnapps.language_model` reserves (not imported: it imports Keras).
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
START, END = "<s>", "</s>"


def _english(package, read):
    from rnnapps.datasets import debian

    try:
        return read()
    except FileNotFoundError:
        print(f"Unpacking Debian's {package} into {debian.cache_dir()} (once)...", flush=True)
        try:
            debian.install(package)
        except RuntimeError as error:
            raise TaskError(
                f"the default data needs Debian's {package} ({error}): `sudo apt-get install "
                f"{package}`, or download its .deb from https://packages.debian.org/{package} "
                f"and run `python -m rnnapps.datasets.debian FILE.deb`, or train on your own "
                f"text with --data FILE"
            )
        return read()


def _wordnet():
    from rnnapps.datasets import english

    return _english(english.WORDNET_PACKAGE, english.wordnet_sentences)


def _gcide():
    from rnnapps.datasets import english

    return _english(english.GCIDE_PACKAGE, english.gcide_sentences)


SOURCES = {
    "wordnet": _wordnet,
    "gcide": _gcide,
    "english": lambda: _wordnet() + _gcide(),
}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text):
    """The sentences of a paragraph: cut after `.`, `!` or `?` before a capital.

    >>> split_sentences("I liked it. So did she! Was it 3 p.m. then?")
    ['I liked it.', 'So did she!', 'Was it 3 p.m. then?']
    """
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _text_file(path):
    path = pathlib.Path(path)
    if not path.is_file():
        raise TaskError(f"no such text file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise TaskError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})")
    return [sentence for line in text.splitlines() for sentence in split_sentences(line)]


def load_sentences(data):
    """The sentences of `data`: a source name or a text file's path."""
    if data in SOURCES:
        sentences = SOURCES[data]()
    elif pathlib.Path(data).exists() or pathlib.Path(data).suffix:
        sentences = _text_file(data)
    else:
        raise TaskError(
            f"unknown data {data!r}: give one of {', '.join(SOURCES)} or the path of a text file"
        )
    return sentences


def _bucket(sentence, buckets=20):
    return int(hashlib.md5(sentence.encode("utf-8")).hexdigest(), 16) % buckets


def _splits(sentences):
    buckets = np.array([_bucket(s) for s in sentences])
    sentences = np.asarray(sentences, dtype=object)
    return {
        "train": sentences[buckets >= 2],
        "validation": sentences[buckets == 1],
        "test": sentences[buckets == 0],
    }


def fit_vocabulary(sentences, vocabulary_size):
    """The `vocabulary_size - 4` most frequent words of `sentences`, after
    `<s>` and `</s>` (TextVectorization adds padding and `[UNK]` in front)."""
    import keras
    import tensorflow as tf

    if vocabulary_size < 6:
        raise TaskError(f"vocabulary_size must be at least 6. Received: {vocabulary_size}")
    counter = keras.layers.TextVectorization(max_tokens=vocabulary_size - 2)
    counter.adapt(tf.data.Dataset.from_tensor_slices(tf.constant(list(sentences))).batch(4096))
    return [START, END, *(str(word) for word in counter.get_vocabulary()[2:])]


def load_data(config):
    """`TaskData` for a `NextWordConfig`.

    `raw` holds the sentences (`raw["sentences"][split]`), their token ids
    (`raw[split]`, lists of int32 arrays without `<s>`/`</s>`), the
    vocabulary (`raw["vocabulary"]`) and the `NextWordPreprocessor` that
    made the batches (`raw["preprocessor"]`).
    """
    sentences = load_sentences(config.data)
    splits = _splits(sentences)
    if config.max_sentences:
        splits["train"] = splits["train"][: config.max_sentences]
    for split, texts in splits.items():
        if len(texts) == 0:
            raise TaskError(f"the {split} split of {config.data} is empty (too few sentences?)")
    vocabulary = fit_vocabulary(splits["train"], config.vocabulary_size)
    from rnnapps.language_model import token_ids
    from rnnapps.tasks.next_word.preprocessor import NextWordPreprocessor

    # The ids as NumPy (for the n-gram baseline and the facts below)...
    ids = {
        split: token_ids(texts, vocabulary, config.max_length) for split, texts in splits.items()
    }
    for split, rows in ids.items():
        if not rows:
            raise TaskError(f"the {split} split of {config.data} has no words")
    # ...and the model's batches, looked up again in tf.data by the preprocessor.
    preprocessor = NextWordPreprocessor(vocabulary, config.max_length)
    datasets = {
        split: preprocessor.batches(
            texts, config.batch_size, config.seed if split == "train" else None)
        for split, texts in splits.items()
    }
    tokens = {split: int(sum(len(r) + 1 for r in rows)) for split, rows in ids.items()}
    test_words = np.concatenate(ids["test"])
    name = config.data if config.data in SOURCES else pathlib.Path(config.data).name
    return TaskData(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        info={
            "name": name,
            "sizes": {split: len(rows) for split, rows in ids.items()},
            "tokens": tokens,
            "vocabulary_size": len(vocabulary) + 2,
            "test_unknown_rate": round(float(np.mean(test_words == UNK_ID)), 4),
            # What the export and the test report need of the config.
            "max_length": config.max_length,
            "continuation_length": config.continuation_length,
            "ngram_order": config.ngram_order,
            "interpolate": bool(config.interpolate and config.ngram_order >= 2),
        },
        raw={"sentences": splits, "vocabulary": vocabulary, "preprocessor": preprocessor, **ids},
    )
