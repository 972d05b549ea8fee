"""Translation data: pairs of source and target sentences.

Sources:

- `ding` (default, offline): German -> English example sentences from the
  Ding dictionary (Debian package `trans-de-en`, file
  `/usr/share/trans/de-en`). Each line is `de1 | de2 ... :: en1 | en2 ...`
  with the `|`-separated parts aligned; a part whose German and English
  sides are both full sentences (English of 5 words or more, both ending in
  `.`, `?` or `!`) is one example. `{...}` and `[...]` annotations are
  stripped; the alternatives a part lists (`; `) give the example one
  source (the first German alternative) and one or more references (every
  English alternative; the first is the training target). About 21,000
  pairs.
- `wmt14_translate/de-en`, `ted_hrlr_translate/pt_to_en` (or any of their
  configs) through tensorflow-datasets (downloads on first use).
- a TSV file of `source<TAB>target` lines (UTF-8; a first line
  `source<TAB>target` is taken as a header; further columns are ignored,
  except a `split` column the header names: `train`, `validation` or `test`
  for each pair, which then splits the file).

Splits are deterministic and never share a source sentence: sources are
grouped by their lower-cased, space-normalised text, and each group goes to
train, validation or test (90/5/5) by the MD5 hash of that text. tfds
sources keep their own splits, and so does a file with a `split` column.

`rnnapps evaluate translation --data FILE` scores the whole file (or its
`test` rows, where it has a `split` column): `evaluation_pairs`.
"""

import hashlib
import os
import pathlib
import re

from rnnapps.task import TaskError

__all__ = [
    "DING_PACKAGE", "ding_path", "evaluation_pairs", "load_examples", "make_dataset", "merge_sources",
    "parse_ding", "parse_entries", "read_dictionary", "read_tsv", "split_pairs",
]

DING_PACKAGE = "trans-de-en"
DING_FILE = pathlib.PurePosixPath("usr/share/trans/de-en")

_ANNOTATION = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\])")
_SENTENCE_END = (".", "?", "!")
# Dictionary phrases that end in an abbreviation, not sentences
# ("to clamp sth. together / to sth.").
_PLACEHOLDER_END = re.compile(r"\b(sth|sb|etw|jdn|jdm|jds|etc)\.$")


def ding_path():
    """Where the Ding dictionary is: `RNNAPPS_DING`, the system, or the cache.

    Raises:
        TaskError: naming the Debian package when none is installed.
    """
    candidates = []
    if os.environ.get("RNNAPPS_DING"):
        candidates.append(pathlib.Path(os.environ["RNNAPPS_DING"]))
    candidates.append(pathlib.Path("/") / DING_FILE)
    from rnnapps.datasets import debian

    candidates.append(debian.package_root(DING_PACKAGE) / DING_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise TaskError(
        f"the default translation data is the Ding dictionary from the Debian package "
        f"{DING_PACKAGE}, which is not installed: run `sudo apt-get install {DING_PACKAGE}`, "
        f"or without root `python -m rnnapps.datasets.debian {DING_PACKAGE}` (unpacks it "
        f"into {debian.cache_dir()}), or set RNNAPPS_DING to the file's path"
    )


def _alternatives(part):
    part = _ANNOTATION.sub("", part)
    return [a.strip() for a in part.split(";") if a.strip()]


def _is_sentence(text, min_words=1):
    return (
        text.endswith(_SENTENCE_END)
        and not _PLACEHOLDER_END.search(text)
        and len(text.split()) >= min_words
    )


def aligned_parts(lines):
    """`(index, german_part, english_part)` of every aligned `|` part of
    Ding dictionary lines (comments and lines whose sides do not align are
    skipped); `index` is the part's position in its line.

    >>> list(aligned_parts(["Aal {m} | Aale {pl} :: eel | eels", "# comment :: x"]))
    [(0, 'Aal {m} ', ' eel '), (1, ' Aale {pl} ', ' eels')]
    """
    for line in lines:
        if line.startswith("#") or "::" not in line:
            continue
        german, english = line.split("::", 1)
        german_parts, english_parts = german.split("|"), english.split("|")
        if len(german_parts) != len(english_parts):
            continue
        yield from (
            (index, g, e) for index, (g, e) in enumerate(zip(german_parts, english_parts))
        )


def parse_ding(lines):
    """Example sentence pairs from Ding dictionary lines.

    Args:
        lines: an iterable of the file's lines (str).

    Returns:
        A list of `(source, references)`: a German sentence and the list of
        its English translations (the first is the training target).

    Example:

    >>> parse_ding(["Das Abendessen hat mir gut geschmeckt. :: I really enjoyed my supper."])
    [('Das Abendessen hat mir gut geschmeckt.', ['I really enjoyed my supper.'])]
    >>> parse_ding(["Aal {m} | Aale {pl} :: eel | eels"])
    []
    """
    pairs = []
    for _, german_part, english_part in aligned_parts(lines):
        sources = _alternatives(german_part)
        references = [e for e in _alternatives(english_part) if _is_sentence(e)]
        if not sources or not references or not _is_sentence(sources[0]):
            continue
        if len(references[0].split()) < 5:
            continue
        pairs.append((sources[0], references))
    return pairs


def parse_entries(lines, exclude=()):
    """Every word and phrase pair of Ding dictionary lines, for training.

    Each German alternative of an aligned `|` part (annotations stripped,
    `lexicon`'s cleaning) is paired with the part's first English
    alternative (a leading infinitive "to" dropped). Pairs are kept once,
    in file order. Nothing held out reaches training:

    - no pair whose German side is in `exclude` (the validation and test
      sources), compared as `split_pairs` groups sources (lower-cased,
      spaces normalised);
    - no sentence (German ending in `.`, `?` or `!`) that `split_pairs`
      would put into validation or test by its hash, whether or not it is
      one of the task's example sentences;
    - nothing from a `|` part that holds one of these.

    Returns:
        A list of `(german, english)` strings.

    Example:

    >>> parse_entries(["essen {vt} | gegessen :: to eat | eaten", "Haus {n}; Heim {n} :: house"])
    [('essen', 'eat'), ('gegessen', 'eaten'), ('Haus', 'house'), ('Heim', 'house')]
    >>> parse_entries(["Haus {n} :: house"], exclude=["HAUS"])
    []
    """
    from rnnapps.tasks.translation import lexicon

    excluded = {_group_key(text) for text in exclude}
    seen, pairs = set(), []
    for _, german_part, english_part in aligned_parts(lines):
        targets = [lexicon._english(e) for e in lexicon._alternatives(english_part)]
        if not targets or not any(c.isalnum() for c in targets[0]):
            continue
        sources = lexicon._alternatives(german_part)
        # A part holding a held-out sentence, as the splits or the lexicon
        # read it, gives nothing (not even its other alternatives).
        if any(_held_out(text, excluded) for text in sources + _alternatives(german_part)):
            continue
        for source in sources:
            if not any(c.isalnum() for c in source):
                continue
            if (source, targets[0]) not in seen:
                seen.add((source, targets[0]))
                pairs.append((source, targets[0]))
    return pairs


def _held_out(source, excluded):
    return _group_key(source) in excluded or (
        source.endswith(_SENTENCE_END) and _bucket(source) < 2
    )


def ding_entries(exclude=()):
    """`parse_entries` of the installed Ding dictionary (`ding_path`)."""
    path = ding_path()
    try:
        with open(path, encoding="utf-8") as file:
            return parse_entries(file, exclude=exclude)
    except (OSError, UnicodeDecodeError) as error:
        raise TaskError(f"cannot read the Ding dictionary {path}: {error}")


def _ding():
    path = ding_path()
    try:
        with open(path, encoding="utf-8") as file:
            pairs = parse_ding(file)
    except (OSError, UnicodeDecodeError) as error:
        raise TaskError(f"cannot read the Ding dictionary {path}: {error}")
    if not pairs:
        raise TaskError(f"{path} holds no example sentences; is it the Ding de-en dictionary?")
    return pairs


def read_tsv(path, with_splits=False):
    """`(source, [target])` pairs from a TSV file of `source<TAB>target` lines.

    With `with_splits`, `(pairs, splits)`: `splits` holds each pair's value
    of the file's `split` column (`train`, `validation` or `test`; a header
    line `source<TAB>target<TAB>split` names it), or is `None` where the
    file has none.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise TaskError(f"no such data file: {path}")
    pairs, splits, split_column = [], [], None
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                line = line.rstrip("\n").rstrip("\r")
                if not line.strip():
                    continue
                columns = line.split("\t")
                if len(columns) < 2:
                    raise TaskError(
                        f"{path}, line {number}: expected source<TAB>target, found no tab"
                    )
                source, target = columns[0].strip(), columns[1].strip()
                if number == 1 and (source.lower(), target.lower()) == ("source", "target"):
                    names = [c.strip().lower() for c in columns]
                    split_column = names.index(SPLIT_COLUMN) if SPLIT_COLUMN in names else None
                    continue
                if not source or not target:
                    raise TaskError(f"{path}, line {number}: empty source or target")
                if split_column is not None:
                    split = columns[split_column].strip().lower() if split_column < len(columns) else ""
                    if split not in SPLITS:
                        raise TaskError(
                            f"{path}, line {number}: the {SPLIT_COLUMN!r} column must be one of "
                            f"{', '.join(SPLITS)}. Received: {split!r}"
                        )
                    splits.append(split)
                pairs.append((source, [target]))
    except UnicodeDecodeError as error:
        raise TaskError(f"{path} is not UTF-8 text: {error}")
    if not pairs:
        raise TaskError(f"{path} holds no sentence pairs")
    if with_splits:
        return pairs, splits if split_column is not None else None
    return pairs


# The column that, where a TSV file's header has it, says each pair's split.
SPLIT_COLUMN = "split"
SPLITS = ("train", "validation", "test")


def read_dictionary(path):
    """`(source, target)` entries of a user's dictionary: a TSV file of
    `source word<TAB>target word` lines (UTF-8, any language pair; blank
    lines and `#` comments skipped, a first line `source<TAB>target` taken
    as a header, further columns ignored).

    Raises:
        TaskError: naming the file (and line) when it is missing, not UTF-8,
            has a line without a tab or with an empty side, or holds no entry.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise TaskError(f"no such dictionary file: {path}")
    entries, first = [], True
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                line = line.rstrip("\n").rstrip("\r")
                if not line.strip() or line.startswith("#"):
                    continue
                columns = line.split("\t")
                source, target = columns[0].strip(), columns[1].strip() if len(columns) > 1 else ""
                header, first = first and (source.lower(), target.lower()) == ("source", "target"), False
                if header:
                    continue
                if len(columns) < 2 or not source or not target:
                    raise TaskError(
                        f"dictionary {path}, line {number}: expected source word<TAB>target "
                        f"word. Received: {line[:60]!r}"
                    )
                entries.append((source, target))
    except UnicodeDecodeError as error:
        raise TaskError(f"dictionary {path} is not UTF-8 text: {error}")
    if not entries:
        raise TaskError(f"dictionary {path} holds no entries (source word<TAB>target word lines)")
    return entries


def _group_key(source):
    return " ".join(source.lower().split())


def _bucket(source, buckets=20):
    return int(hashlib.md5(_group_key(source).encode("utf-8")).hexdigest(), 16) % buckets


def split_pairs(pairs):
    """Train/validation/test (90/5/5) with no source sentence in two splits.

    Pairs with the same source (up to case and spacing) are merged first:
    their references are pooled, so the test split scores a sentence
    against every translation the data gives for it.

    >>> pairs = [(f"Satz {i}.", [f"Sentence {i}."]) for i in range(200)]
    >>> splits = split_pairs(pairs + [("satz  1.", ["Phrase 1."])])
    >>> sum(len(s) for s in splits.values())
    200
    """
    splits = {"train": [], "validation": [], "test": []}
    for source, references in merge_sources(pairs):
        bucket = _bucket(source)
        split = "test" if bucket == 0 else "validation" if bucket == 1 else "train"
        splits[split].append((source, references))
    return splits


def merge_sources(pairs):
    """`pairs` with repeated sources (up to case and spacing) merged into
    one pair, their references pooled, in order of first appearance."""
    merged = {}
    for source, references in pairs:
        key = _group_key(source)
        if key in merged:
            known = merged[key][1]
            known.extend(r for r in references if r not in known)
        else:
            merged[key] = (source, list(references))
    return list(merged.values())


def _tsv_splits(path):
    """A TSV file's splits: by its `split` column, else `split_pairs`."""
    pairs, splits = read_tsv(path, with_splits=True)
    if splits is None:
        return split_pairs(pairs)
    by_split = {split: merge_sources([p for p, s in zip(pairs, splits) if s == split])
                for split in SPLITS}
    keys = {split: {_group_key(s) for s, _ in by_split[split]} for split in SPLITS}
    shared = (keys["train"] & (keys["validation"] | keys["test"])) | (keys["validation"] & keys["test"])
    if shared:
        raise TaskError(
            f"{path}: {len(shared)} source sentence(s) appear in two splits of its "
            f"{SPLIT_COLUMN!r} column, e.g. {sorted(shared)[0]!r}"
        )
    return by_split


def evaluation_pairs(data):
    """`(pairs, name)` that `rnnapps evaluate` scores: a TSV file whole
    (repeated sources merged), or its test rows where it has a `split`
    column; `ding` and tfds names, their test split."""
    if pathlib.Path(data).suffix.lower() in (".tsv", ".tab", ".txt") and data != "ding":
        pairs, splits = read_tsv(data, with_splits=True)
        name = pathlib.Path(data).name
        if splits is None:
            return merge_sources(pairs), f"{name} (whole file)"
        pairs = merge_sources([p for p, s in zip(pairs, splits) if s == "test"])
        if not pairs:
            raise TaskError(f"{data} has no pair whose {SPLIT_COLUMN!r} is test")
        return pairs, f"{name} (its test rows)"
    return load_examples(data)["test"], f"{data} (test split)"


def _tfds(name):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
    except Exception as error:  # tfds raises several types for unknown names
        raise TaskError(f"tensorflow-datasets has no dataset {name!r}: {error}".splitlines()[0])
    builder.download_and_prepare()
    splits = {}
    for split in ("train", "validation", "test"):
        try:
            dataset = builder.as_dataset(split=split, as_supervised=True)
        except (KeyError, ValueError):  # the dataset has no such split
            continue
        splits[split] = [
            (source.decode("utf-8"), [target.decode("utf-8")])
            for source, target in tfds.as_numpy(dataset)
        ]
    if "train" not in splits:
        raise TaskError(f"{name} has no train split")
    if "validation" not in splits or "test" not in splits:
        # Cut what is missing out of train, by source, as for files.
        cut = split_pairs(splits["train"])
        splits["train"] = cut["train"]
        splits.setdefault("validation", cut["validation"])
        splits.setdefault("test", cut["test"])
    return splits


TFDS_PREFIXES = ("wmt14_translate", "wmt15_translate", "wmt16_translate", "ted_hrlr_translate")


def load_examples(data):
    """Raw splits `{"train": [(source, references)], "validation": ..., "test": ...}`.

    `data` is `ding`, a tensorflow-datasets translation dataset name (e.g.
    `wmt14_translate/de-en`, `ted_hrlr_translate/pt_to_en`) or the path of a
    TSV file of `source<TAB>target` lines.
    """
    if data == "ding":
        splits = split_pairs(_ding())
    elif data.split("/")[0] in TFDS_PREFIXES:
        splits = _tfds(data)
    elif pathlib.Path(data).suffix.lower() in (".tsv", ".tab", ".txt"):
        splits = _tsv_splits(data)
    elif pathlib.Path(data).exists():
        raise TaskError(f"{data}: expected a .tsv file of source<TAB>target lines")
    else:
        raise TaskError(
            f"unknown data {data!r}: give ding, a tensorflow-datasets name such as "
            f"wmt14_translate/de-en, or the path of a TSV file"
        )
    for split, pairs in splits.items():
        if not pairs:
            raise TaskError(f"the {split} split of {data} is empty (too few sentence pairs?)")
    return splits


def make_dataset(preprocessor, sources, targets, batch_size, shuffle_seed=None, extra=None):
    """Batched `({"source", "target_in"}, target_out)` ids for teacher forcing:
    the pairs' strings, turned into ids by `preprocessor` (a
    `TranslationPreprocessor`) inside `tf.data`, whatever the Keras backend.

    `extra`, for training, is `(sources, targets, count)`: pairs of which a
    fresh random `count` join every epoch (the dictionary's entries next to
    the sentences).

    Training examples are grouped into batches of similar length in
    tokens: each window of `BUCKET_WINDOW` batches of shuffled pairs is
    tokenized at once, its rows sorted by target length (in steps of 8),
    then source length, cut into batches, and each batch trimmed to its longest row
    rounded up to a multiple of 8, exactly the ids `preprocessor` gives
    that batch on its own; the batches are then shuffled. (Sorting by
    characters, as before, left the padded target 1.8 times the real one,
    and the output layer and copy distribution cost per padded step.)
    Validation and test keep their order: batches of `batch_size` in turn.
    The training set is reshuffled every epoch when seeded.
    """
    import tensorflow as tf

    sources, targets = list(sources), list(targets)
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(sources, tf.string), tf.constant(targets, tf.string))
    )
    size = len(sources)
    if extra is not None:
        if shuffle_seed is None:
            raise ValueError("extra pairs are sampled for training: give shuffle_seed")
        extra_sources, extra_targets, count = extra
        sampled = tf.data.Dataset.from_tensor_slices(
            (tf.constant(list(extra_sources), tf.string), tf.constant(list(extra_targets), tf.string))
        ).shuffle(len(extra_sources), seed=shuffle_seed + 1, reshuffle_each_iteration=True)
        count = min(int(count), len(extra_sources))
        dataset, size = dataset.concatenate(sampled.take(count)), size + count
    if shuffle_seed is None:
        dataset = dataset.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)
    dataset = dataset.shuffle(size, seed=shuffle_seed, reshuffle_each_iteration=True)

    def by_length(x, y):
        source, target_in = x["source"], x["target_in"]
        source_lengths = tf.reduce_sum(tf.cast(source != 0, tf.int32), axis=1)
        target_lengths = tf.reduce_sum(tf.cast(target_in != 0, tf.int32), axis=1)
        # The padded target length first (8-token classes: the padding's
        # rounding), then the source length within each class.
        target_classes = (target_lengths + 7) // 8
        order = tf.argsort(target_classes * (tf.shape(source)[1] + 1) + source_lengths,
                           stable=True)
        return {"source": tf.gather(source, order),
                "target_in": tf.gather(target_in, order)}, tf.gather(y, order)

    dataset = (
        dataset.batch(batch_size * BUCKET_WINDOW)
        .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        .map(by_length).unbatch().batch(batch_size).map(_trim)
        .shuffle(BUCKET_WINDOW, seed=shuffle_seed, reshuffle_each_iteration=True)
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


# Training batches sorted by length together (`make_dataset`): wider
# windows pad less but shuffle less.
BUCKET_WINDOW = 20


def _trim(x, y, multiple=8):
    """A batch of a window's rows, cut to its longest row rounded up to a
    multiple of `multiple` (what `TranslationPreprocessor` pads a batch to)."""
    import tensorflow as tf

    def cut(ids):
        length = tf.reduce_max(tf.concat(
            [tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1), [1]], 0))
        return ids[:, : (length + multiple - 1) // multiple * multiple]

    # target_out is target_in shifted: both have the same count of ids.
    target_length = tf.shape(cut(x["target_in"]))[1]
    return ({"source": cut(x["source"]), "target_in": x["target_in"][:, :target_length]},
            y[:, :target_length])
