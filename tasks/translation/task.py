"""The translation task: `TranslationTask` (the `rnnapps` command) and
`Translator` (the Python API), both built from the same pieces.

    raw pairs --(data.py)--> TranslationPreprocessor (TensorFlow ops, in tf.data)
              --> ids --> Seq2Seq (keras.ops: any backend) --> beam search (keras.ops)
              --> ids --> TranslationPreprocessor.detokenize --> strings

Training, test scores and example translations run on whatever backend
Keras runs (`rnnapps train translation --backend jax|tensorflow`); the
export is built on TensorFlow from the model's `.keras` file, which holds
the preprocessor (its SentencePiece model and dictionary gloss).
"""

import dataclasses
import pathlib

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.task import TaskError
from rnnapps.task import add_decoding_export_flags
from rnnapps.task import decoding_export_info
from rnnapps.tasks.translation.config import PRESETS
from rnnapps.tasks.translation.config import TranslationConfig
from rnnapps.tasks.translation.data import load_examples

__all__ = [
    "Translator", "TranslationTask", "load_data", "build_model", "make_model", "translator",
    "beam_searcher", "translate_texts",
    "corpus_scores", "perplexity", "dictionary_lookup", "own_lookup",
]


# --dictionary values that are not a file.
DICTIONARY_CHOICES = ("auto", "gloss", "none")


def _check_config(config):
    if config.max_length < 4:
        raise TaskError(f"--max-length must be at least 4. Received: {config.max_length}")
    if config.vocabulary_size < 16:
        raise TaskError(f"--vocabulary-size must be at least 16. Received: {config.vocabulary_size}")
    if config.beam_size < 1:
        raise TaskError(f"--beam-size must be at least 1. Received: {config.beam_size}")
    if config.copy and config.attention == "none":
        raise TaskError("--copy needs --attention luong or bahdanau (it copies where the decoder attends)")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise TaskError(
            f"--label-smoothing must be in [0, 1). Received: {config.label_smoothing}"
        )


def load_data(config, log=print):
    """`TaskData` for a `TranslationConfig`.

    Fits the `TranslationPreprocessor` (its SentencePiece model, one
    vocabulary for both languages, on the training split; the dictionary
    gloss where the run has one): `data.raw["preprocessor"]`. Leaves out
    training pairs whose target is longer than `max_length - 1` tokens.
    The datasets hold ids (the preprocessor runs in tf.data, so the model
    trains on any backend). `data.raw[split]` holds the `(source,
    references)` pairs, `data.raw["lookup"]` the dictionary's word-by-word
    lookup (`dictionary_lookup`) where the run glosses or adds its pairs,
    else `None`; `info` the sizes and the decoding settings the export uses.

    The dictionary (`config.dictionary`): a user's TSV file glosses any
    data; `auto` glosses German -> English data with the Ding dictionary.
    One line saying which, or why none, goes to `log`.

    Seed (`keras.utils.set_random_seed`) before calling this, not after: in
    TensorFlow, setting the seed clears the kernel caches, which deletes
    the SentencePiece model the datasets hold.
    """
    from rnnapps.tasks.translation.data import make_dataset
    from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor

    _check_config(config)
    own_dictionary = config.dictionary not in DICTIONARY_CHOICES
    if config.dictionary == "gloss" and not _german_english(config.data):
        raise TaskError(
            "--dictionary gloss needs German -> English data (ding, or a tfds de-en dataset "
            f"with the Ding dictionary installed); for other data give --dictionary FILE (a "
            f"TSV of source word<TAB>target word). Received: --data {config.data}"
        )
    if config.dictionary_pairs < 0:
        raise TaskError(
            f"--dictionary-pairs must be 0 (none) or more. Received: {config.dictionary_pairs}"
        )
    if config.dictionary_pairs and not own_dictionary and not _german_english(config.data):
        raise TaskError(
            "--dictionary-pairs needs a dictionary: German -> English data (ding, or a tfds "
            "de-en dataset with the Ding dictionary installed) or --dictionary FILE. "
            f"Received: --data {config.data}"
        )
    if config.train_size < 0:
        raise TaskError(f"--train-size must be 0 (all) or more. Received: {config.train_size}")
    own_entries = None
    if own_dictionary:  # read before the data: a bad file fails fast
        from rnnapps.tasks.translation.data import read_dictionary

        own_entries = read_dictionary(config.dictionary)
    splits = load_examples(config.data)
    if config.train_size:
        splits["train"] = splits["train"][: config.train_size]

    gloss = None
    wants_gloss = own_dictionary or config.dictionary == "gloss" or (
        config.dictionary == "auto" and _german_english(config.data)
    )
    lookup = None
    if own_dictionary:
        lookup = own_lookup(own_entries, splits)
    elif wants_gloss or config.dictionary_pairs:
        lookup = dictionary_lookup(_data_name(config.data), splits)
        if lookup is None and (config.dictionary == "gloss" or config.dictionary_pairs):
            flag = "--dictionary gloss" if config.dictionary == "gloss" else "--dictionary-pairs"
            raise TaskError(
                f"{flag} needs the Ding dictionary (Debian package trans-de-en) for "
                f"{config.data}: run `python -m rnnapps.datasets.debian trans-de-en`"
            )
        # (auto: a tfds de-en dataset without the Ding dictionary installed
        # trains on its sentences alone.)
    if lookup is not None and wants_gloss:
        gloss = lookup.gloss_layer()
    log(_dictionary_line(config, lookup if wants_gloss else None))
    train_sources = [s for s, _ in splits["train"]]
    train_targets = [r[0] for _, r in splits["train"]]
    try:
        preprocessor = TranslationPreprocessor.from_texts(
            train_sources, train_targets, config.vocabulary_size, gloss=gloss,
            sequence_length=config.max_length,
        )
    except ValueError as error:
        raise TaskError(str(error))
    keep = preprocessor.token_lengths(train_targets) <= config.max_length - 1
    if not keep.any():
        raise TaskError(f"no training target is {config.max_length - 1} tokens or shorter")
    train_sources = [s for s, k in zip(train_sources, keep) if k]
    train_targets = [t for t, k in zip(train_targets, keep) if k]
    extra = None
    if config.dictionary_pairs:
        extra = _dictionary_pairs(splits, preprocessor, config, own_entries)
    datasets = {
        "train": make_dataset(preprocessor, train_sources, train_targets, config.batch_size,
                              shuffle_seed=config.seed, extra=extra)
    }
    for split in ("validation", "test"):
        datasets[split] = make_dataset(
            preprocessor, [s for s, _ in splits[split]], [r[0] for _, r in splits[split]],
            config.batch_size,
        )
    sizes = {split: len(pairs) for split, pairs in splits.items()}
    sizes["train_used"] = len(train_sources)
    if extra is not None:
        sizes["dictionary_pairs"] = len(extra[0])
        sizes["dictionary_pairs_per_epoch"] = extra[2]
    info = {
        "name": _data_name(config.data),
        "sizes": sizes,
        "vocabulary_size": preprocessor.vocabulary_size,
        "decoding": _decoding(config, glossed=gloss is not None),
        "dictionary": "none" if gloss is None else "gloss",
        # Where the gloss comes from: the Ding dictionary or the user's file.
        **({"dictionary_file": pathlib.Path(config.dictionary).name} if own_dictionary else {}),
    }
    return TaskData(
        train=datasets["train"], validation=datasets["validation"], test=datasets["test"],
        info=info,
        raw={**splits, "preprocessor": preprocessor, "tokenizer": preprocessor.tokenizer,
             "gloss": gloss, "lookup": lookup},
    )


def _dictionary_pairs(splits, preprocessor, config, own_entries=None):
    """`(sources, targets, per epoch)`: the dictionary's word and phrase
    pairs for training (the user's `own_entries`, else the Ding
    dictionary's `data.ding_entries`; no held-out source), targets of at
    most `max_length - 1` tokens (the sources are glossed in tf.data, like
    the sentences)."""
    from rnnapps.tasks.translation import data as data_module

    held_out = {data_module._group_key(s) for s in _held_out_sources(splits)}
    if own_entries is not None:
        entries = [(s, t) for s, t in own_entries if data_module._group_key(s) not in held_out]
    else:
        entries = data_module.ding_entries(exclude=_held_out_sources(splits))
    targets = [english for _, english in entries]
    keep = preprocessor.token_lengths(targets) <= config.max_length - 1
    sources = [german for (german, _), k in zip(entries, keep) if k]
    targets = [t for t, k in zip(targets, keep) if k]
    return sources, targets, min(config.dictionary_pairs, len(sources))


def own_lookup(entries, splits):
    """The word-by-word `lexicon.Lexicon` of a user's dictionary entries
    (`data.read_dictionary`): single-word sources only (the gloss goes
    token by token), the first entry of a word winning, none whose source
    is a validation or test source."""
    from rnnapps.tasks.translation import data as data_module
    from rnnapps.tasks.translation import lexicon

    held_out = {data_module._group_key(s) for s in _held_out_sources(splits)}
    table = {}
    for source, target in entries:
        if len(lexicon.tokenize(source)) == 1 and data_module._group_key(source) not in held_out:
            table.setdefault(source, target)
    return lexicon.Lexicon(table)


def _dictionary_line(config, lookup):
    """One line for the training output: whether the source is glossed and
    copied from, from which dictionary, or why not."""
    copying = "the decoder copies from the source and its gloss" if config.copies else (
        "no copying (--no-copy or --attention none)")
    if lookup is not None:
        where = ("the Ding dictionary" if config.dictionary in DICTIONARY_CHOICES
                 else config.dictionary)
        return f"Dictionary gloss: on, from {where} ({len(lookup):,} words); {copying}"
    if config.dictionary == "none":
        why = "--dictionary none"
    elif _german_english(config.data):
        why = f"the Ding dictionary is not installed for {config.data}"
    else:
        why = (f"the Ding dictionary glosses only ding and tfds de-en data; give --dictionary "
               f"FILE, a TSV of source word<TAB>target word, to gloss {_data_name(config.data)}")
    copying = "the decoder copies from the source" if config.copies else copying
    return f"Dictionary gloss: off ({why}); {copying}"


def _data_name(data):
    """`ding`, a tfds name, or a file's name (not its path)."""
    from rnnapps.tasks.translation.data import TFDS_PREFIXES

    if data == "ding" or data.split("/")[0] in TFDS_PREFIXES:
        return data
    return pathlib.Path(data).name


def _is_file(data):
    """Whether `data` names a file (not `ding` or a tfds dataset)."""
    from rnnapps.tasks.translation.data import TFDS_PREFIXES

    return data != "ding" and data.split("/")[0] not in TFDS_PREFIXES


def _decoding(config, glossed=False):
    return {
        "beam_size": config.beam_size,
        "length_penalty": config.length_penalty,
        "max_length": config.max_length,
        # A glossed source is about twice as long.
        "source_max_length": config.max_length * (2 if glossed else 1),
    }


def build_model(config, data):
    """A compiled `Seq2Seq` for `config`, holding `data`'s preprocessor."""
    sizes = data.info["sizes"]
    return make_model(config, data.raw["preprocessor"],
                      train_pairs=sizes.get("train_used", sizes["train"]))


def make_model(config, preprocessor, train_pairs=None):
    """A compiled `Seq2Seq` for `config` and a fitted `TranslationPreprocessor`
    (kept with the model, so that its `.keras` file is complete).
    `train_pairs`, the sentence pairs of an epoch, sizes a `lr_schedule`."""
    import keras

    from rnnapps.optimizers import ClippedOptimizer
    from rnnapps.task import learning_rate
    from rnnapps.tasks.translation.model import PAD_ID
    from rnnapps.tasks.translation.model import Seq2Seq
    from rnnapps.tasks.translation.model import SmoothedCrossentropy

    model = Seq2Seq(
        source_vocabulary_size=preprocessor.vocabulary_size,
        target_vocabulary_size=preprocessor.vocabulary_size,
        embedding_dim=config.embedding_dim,
        units=config.units,
        layers=config.layers,
        cell=config.cell,
        attention=None if config.attention == "none" else config.attention,
        reverse=config.reversed_source,
        dropout=config.dropout,
        copy=config.copies,
        tie_embeddings=config.tie_embeddings,
        preprocessor=preprocessor,
        name=f"translation_{config.cell}",
    )
    model.build()  # BackupAndRestore and the optimizer need the weights now
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(learning_rate(config, train_pairs or config.batch_size)),
            clipnorm=config.clipnorm,
        ),
        loss=(
            SmoothedCrossentropy(config.label_smoothing, ignore_class=PAD_ID)
            if config.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
        ),
        # Batches come in a handful of lengths (multiples of 8). TensorFlow
        # runs its graph as it is (XLA would compile once per shape); JAX
        # must compile (its eager steps are many times slower), once per shape.
        jit_compile=keras.backend.backend() == "jax",
    )
    return model


def translator(model, decoding):
    """A `tf.function` `strings -> (translations, scores)`: the export's graph
    (TensorFlow backend).

    Glosses, tokenizes (the model's `TranslationPreprocessor`), encodes,
    beam-searches and detokenizes in one graph. `decoding` holds
    `beam_size`, `length_penalty`, `max_length` (a `TranslationConfig` or
    `info["decoding"]`).
    """
    import tensorflow as tf

    preprocessor = model.preprocessor
    if not isinstance(decoding, dict):
        decoding = _decoding(decoding, glossed=preprocessor.gloss is not None)

    def translate(texts):
        tokens, scores = model.translate(
            preprocessor.encode_source(texts),
            beam_size=decoding["beam_size"],
            max_length=decoding["max_length"],
            length_penalty=decoding["length_penalty"],
        )
        return preprocessor.detokenize(tokens), scores

    # One trace for every batch (a Python list of strings would retrace per call).
    return tf.function(translate, input_signature=[tf.TensorSpec([None], tf.string)])


def beam_searcher(model, decoding):
    """`source ids -> (tokens, scores)`: `model.translate` with the
    `decoding` settings (`info["decoding"]`), compiled on the backend Keras
    runs (`compiled`; keep it to translate many batches: JAX compiles once
    per source shape)."""
    import functools

    from rnnapps.decoding import compiled

    return compiled(model, functools.partial(
        model.translate, beam_size=decoding["beam_size"], max_length=decoding["max_length"],
        length_penalty=decoding["length_penalty"],
    ))


def translate_texts(model, texts, decoding, batch_size=128, search=None):
    """`(translations, scores)` (lists) of source strings, on the backend
    Keras runs: ids from the model's `TranslationPreprocessor` (TensorFlow),
    the beam search in `keras.ops` (`search`, default
    `beam_searcher(model, decoding)`), strings back from the preprocessor.
    The export's graph (`translator`) computes the same, batch by batch."""
    import keras
    from keras import ops

    from rnnapps.text import END_ID

    preprocessor = model.preprocessor
    search = search or beam_searcher(model, decoding)
    # JAX compiles once per input shape: batches are padded to a power of 2
    # rows (lengths are already multiples of 8), so a few programs serve
    # every call. (Each row is translated on its own: padding rows change
    # nothing in the others.)
    pad_rows = keras.backend.backend() == "jax"
    texts, translations, scores = list(texts), [], []
    for start in range(0, len(texts), batch_size):
        source = preprocessor.encode_source(texts[start:start + batch_size]).numpy()
        rows = len(source)
        if pad_rows:
            padding = np.zeros((_power_of_2(rows) - rows, source.shape[1]), source.dtype)
            padding[:, 0] = END_ID
            source = np.concatenate([source, padding])
        tokens, batch_scores = search(source)
        tokens = ops.convert_to_numpy(tokens)[:rows]
        strings = preprocessor.detokenize(tokens).numpy().tolist()
        translations += [s.decode("utf-8") for s in strings]
        scores += ops.convert_to_numpy(batch_scores)[:rows].tolist()
    return translations, scores


def _power_of_2(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def perplexity(model, dataset):
    """Per-token perplexity of `model` on a `({"source", "target_in"},
    target_out)` dataset: exp of the mean negative log-likelihood of the
    reference tokens, padding left out, without label smoothing (which the
    training loss includes). Compiled on the backend Keras runs."""
    import keras
    from keras import ops

    from rnnapps.tasks.translation.model import PAD_ID

    nll = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=PAD_ID, reduction="sum"
    )

    def batch_sums(source, target_in, targets):
        logits = model({"source": source, "target_in": target_in}, training=False)
        return nll(targets, logits), ops.sum(ops.cast(ops.not_equal(targets, PAD_ID), "int32"))

    # Compiled once for every batch length (eager calls cost ~0.5 s a batch on CPU).
    from rnnapps.decoding import compiled

    run = compiled(model, batch_sums)
    total, tokens = 0.0, 0
    for inputs, targets in dataset:
        batch_total, batch_tokens = run(
            inputs["source"].numpy(), inputs["target_in"].numpy(), targets.numpy())
        total += float(batch_total)
        tokens += int(batch_tokens)
    return float(np.exp(total / max(tokens, 1)))


def corpus_scores(hypotheses, references):
    """Detokenized corpus BLEU and chrF (sacrebleu) against all references.

    `references` is one list of reference strings per hypothesis (any
    number each).
    """
    import sacrebleu

    most = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else None for r in references] for i in range(most)]
    bleu = sacrebleu.corpus_bleu(hypotheses, streams)
    chrf = sacrebleu.corpus_chrf(hypotheses, streams)
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2)}


def dictionary_lookup(data_name, splits):
    """The word-by-word Ding dictionary lookup (`lexicon.Lexicon`) for the
    data `data_name`, built without any validation or test source, or `None`
    where it does not apply: data other than German -> English (a TSV file,
    other tfds pairs), or a tfds de-en dataset without the Ding dictionary
    installed.
    """
    from rnnapps.tasks.translation import data as data_module
    from rnnapps.tasks.translation import lexicon

    if not _german_english(data_name):
        return None
    try:
        path = data_module.ding_path()
    except TaskError:
        if data_name == "ding":
            raise
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return lexicon.Lexicon(lexicon.parse_lexicon(file, exclude=_held_out_sources(splits)))
    except (OSError, UnicodeDecodeError) as error:
        raise TaskError(f"cannot read the Ding dictionary {path}: {error}")


def _held_out_sources(splits):
    """The validation and test sources, which no dictionary entry may be."""
    return [source for split in ("validation", "test") for source, _ in splits.get(split, [])]


def _german_english(data):
    return data == "ding" or data.endswith("/de-en")




def _lookup_scores(data):
    """`(scores, hypotheses)` of the dictionary lookup on the test split,
    or `(None, None)` where there is none (`dictionary_lookup`)."""
    lookup = data.raw.get("lookup")  # load_data's, where the run glosses
    if lookup is None:
        lookup = dictionary_lookup(_data_name(data.raw.get("data", data.info["name"])), data.raw)
    if lookup is None:
        return None, None
    pairs = data.raw["test"]
    hypotheses = [lookup.translate(source) for source, _ in pairs]
    return corpus_scores(hypotheses, [r for _, r in pairs]), hypotheses


def _translate_all(translate, sources, batch_size=128):
    outputs, scores = [], []
    for start in range(0, len(sources), batch_size):
        strings, batch_scores = translate(list(sources[start:start + batch_size]))
        outputs.extend(s.decode("utf-8") for s in np.asarray(strings).tolist())
        scores.extend(np.asarray(batch_scores).tolist())
    return outputs, scores


class TranslationTask(Task):
    name = "translation"
    config_class = TranslationConfig
    presets = PRESETS
    data_fields = ("data", "batch_size", "seed")
    predict_help = "sentences to translate ('-' reads one per line from stdin)"

    def load_data(self, config):
        return load_data(config)

    def build_model(self, config, data):
        return build_model(config, data)

    def load_evaluation_data(self, config, trained=None):
        """The pairs `rnnapps evaluate` scores (the export holds its
        tokenizer and gloss: no tokenizer is refitted, no pipeline built).

        A TSV file is scored whole (or its `test` rows, where it has a
        `split` column: `data.evaluation_pairs`), unless it is the data of
        the training run (`trained`, the export's config, where known):
        that is scored on the run's own test split. `ding` and tfds data,
        on their test split. The dictionary lookup baseline comes along
        where the run had a dictionary (`dictionary_lookup`, `own_lookup`).
        """
        from rnnapps.tasks.translation.data import evaluation_pairs
        from rnnapps.tasks.translation.data import read_dictionary

        name = _data_name(config.data)
        if _is_file(config.data) and (trained is None or trained.data != config.data):
            pairs, name = evaluation_pairs(config.data)
            # No train or validation source here: the lookup keeps every entry.
            splits = {"train": [], "validation": [], "test": pairs}
        else:
            splits = load_examples(config.data)
            if config.train_size:
                splits["train"] = splits["train"][: config.train_size]
        lookup = None
        if config.dictionary not in DICTIONARY_CHOICES and pathlib.Path(config.dictionary).is_file():
            lookup = own_lookup(read_dictionary(config.dictionary), splits)
        return TaskData(
            train=None, validation=None, test=None,
            info={"name": name, "sizes": {split: len(pairs) for split, pairs in splits.items()
                                          if pairs or split == "test"}},
            raw={**splits, "lookup": lookup, "data": config.data},
        )

    def load_checkpoint(self, path):
        from rnnapps.tasks.translation import model  # noqa: F401  (registers Seq2Seq)
        from rnnapps.tasks.translation import preprocessor  # noqa: F401

        return super().load_checkpoint(path)

    def serving_signature(self, model, info):
        import tensorflow as tf

        translate = translator(model, info["decoding"])

        def serve(text):
            translations, scores = translate(text)
            return {"translations": translations, "scores": scores}

        return serve, [tf.TensorSpec([None], tf.string, name="text")]

    def _test_scores(self, translate, data, limit=None):
        pairs = data.raw["test"][:limit] if limit else data.raw["test"]
        hypotheses, _ = _translate_all(translate, [s for s, _ in pairs])
        return corpus_scores(hypotheses, [r for _, r in pairs]), hypotheses

    def test_metrics(self, model, data):
        loss = model.evaluate(data.test, verbose=0)  # the training objective (smoothed)
        pairs = data.raw["test"]
        hypotheses, _ = translate_texts(model, [s for s, _ in pairs], data.info["decoding"])
        scores = corpus_scores(hypotheses, [r for _, r in pairs])
        self._hypotheses = hypotheses
        lookup, self._lookup_hypotheses = _lookup_scores(data)
        return {
            **scores,
            "loss": round(float(loss), 4),
            "perplexity": round(perplexity(model, data.test), 3),
            "sentences": len(hypotheses),
            **{k: v for k, v in data.info["decoding"].items() if not k.endswith("max_length")},
            # The baseline to beat: the Ding dictionary, word by word.
            **({"dictionary_lookup": lookup} if lookup else {}),
        }

    def example_predictions(self, model, data, count=5):
        hypotheses = getattr(self, "_hypotheses", None)
        if not hypotheses:
            return []
        lookups = getattr(self, "_lookup_hypotheses", None) or [None] * len(hypotheses)
        lines = ["Example translations from the test split:"]
        for (source, references), hypothesis, lookup in zip(data.raw["test"][:count], hypotheses, lookups):
            lines += [f"  source:    {source}", f"  output:    {hypothesis}"]
            if lookup is not None:
                lines.append(f"  lookup:    {lookup}")
            lines.append(f"  reference: {references[0]}")
        return lines

    def add_arguments(self, command, parser):
        if command == "export":
            add_decoding_export_flags(parser, length_penalty=True)

    def export_info(self, info, options):
        return decoding_export_info(info, options)

    def evaluate_export(self, loaded, data, options=None):
        serve = loaded.signatures["serving_default"]

        def translate(texts):
            import tensorflow as tf

            out = serve(text=tf.constant(texts, tf.string))
            return out["translations"].numpy(), out["scores"].numpy()

        scores, _ = self._test_scores(translate, data)
        lookup, _ = _lookup_scores(data)
        return {
            **scores, "sentences": len(data.raw["test"]),
            **({"dictionary_lookup": lookup} if lookup else {}),
        }

    def predict_export(self, loaded, inputs, metadata=None, options=None):
        import tensorflow as tf

        out = loaded.signatures["serving_default"](text=tf.constant(list(inputs), tf.string))
        translations = [t.decode("utf-8") for t in out["translations"].numpy()]
        return [
            {"text": text, "translation": translation, "score": round(float(score), 4)}
            for text, translation, score in zip(inputs, translations, out["scores"].numpy())
        ]

    def format_prediction(self, prediction):
        return f"{prediction['translation']}\t{prediction['score']:.4f}\t{prediction['text'][:100]}"


def _strings(values, name, allow_empty=False):
    """`raw_values(values)` checked to be non-empty strings (a `ValueError`
    naming `name` and the first bad one otherwise)."""
    from rnnapps.task import raw_values

    values = raw_values(values, name)
    if not values:
        raise ValueError(f"{name} is empty: give at least one sentence")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f"{name} must hold strings. Received: {name}[{index}]={value!r}")
        if not allow_empty and not value.strip():
            raise ValueError(f"{name}[{index}] is an empty string")
    return values


def _references(values, name):
    """Each item a list of reference strings (a string is one reference)."""
    from rnnapps.task import raw_values

    values = raw_values(values, name)
    references = [[v] if isinstance(v, str) else list(v) for v in values]
    if not references or any(not r or not all(isinstance(t, str) and t.strip() for t in r)
                              for r in references):
        raise ValueError(f"{name} must hold one reference string (or a list of them) per "
                         f"sentence, none empty")
    return references


def _pairs(data):
    """`(sources, targets)` of `from_data`'s `data`: a list of `(source,
    target)` pairs, or a tuple `(sources, targets)`."""
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], str):
        sources, targets = data
    else:
        from rnnapps.task import raw_values

        pairs = raw_values(data, "data")
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
            raise ValueError("data must be a list of (source, target) pairs or a tuple "
                             "(sources, targets)")
        sources, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    sources, targets = _strings(sources, "sources"), _strings(targets, "targets")
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must be as many. Received: {len(sources)} "
                         f"sources, {len(targets)} targets")
    return sources, targets


class Translator:
    """A translation model fitted on your own sentence pairs, on any Keras backend.

    `from_data` fits the `TranslationPreprocessor` (SentencePiece, one
    vocabulary for both languages; optionally a word-by-word dictionary
    whose gloss is fed with each source and copied from) and builds the
    compiled `Seq2Seq` (`TranslationConfig`'s defaults: LSTM(128), Luong
    attention, copying). `fit`, `predict` and `evaluate` take raw strings
    (lists, NumPy arrays, pandas Series, `tf.data.Dataset`s); the
    preprocessor turns them into ids in `tf.data`, so the model trains on
    JAX as on TensorFlow. `export` writes the SavedModel `rnnapps train
    translation` writes (strings in, translations out).

    Attributes:
        model: the `keras.Model` (`Seq2Seq`), on ids.
        preprocessor: the `TranslationPreprocessor`.
        config: the `TranslationConfig`.

    Example:

    >>> pairs = [("ein Haus", "a house"), ("ein Hund", "a dog"), ("das Haus", "the house"),
    ...          ("der Hund", "the dog")] * 16
    >>> translator = Translator.from_data(pairs, dictionary={"Haus": "house"},
    ...     vocabulary_size=30, units=16, embedding_dim=8, max_length=8, beam_size=2)
    >>> history = translator.fit([s for s, _ in pairs], [t for _, t in pairs],
    ...                          epochs=2, batch_size=16, verbose=0)
    >>> len(history.history["loss"])
    2
    >>> translations = translator.predict(["ein Haus", "der Hund"])
    >>> [type(t).__name__ for t in translations]
    ['str', 'str']
    >>> sorted(translator.evaluate(["ein Haus"], ["a house"]))
    ['bleu', 'chrf', 'sentences']
    """

    def __init__(self, model, config, info):
        self.model = model
        self.preprocessor = model.preprocessor
        self.config = config
        self.info = info
        self._search = None

    @classmethod
    def from_data(cls, data, config=None, dictionary=None, **overrides):
        """A `Translator` whose preprocessor is fitted on `data`.

        Args:
            data: a list of `(source, target)` string pairs, or a tuple
                `(sources, targets)` of two equally long lists (arrays,
                Series).
            config: a `TranslationConfig` (default: its defaults).
            dictionary: optional `{source word: target word}` dict, or the
                path of a TSV file of `source word<TAB>target word` lines:
                each source is then fed with its word-by-word gloss.
            **overrides: `TranslationConfig` fields to change (`units=64`).
        """
        from rnnapps.tasks.translation.data import read_dictionary
        from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor

        config = config or TranslationConfig()
        fields = {f.name for f in dataclasses.fields(TranslationConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"unknown TranslationConfig fields: {', '.join(unknown)}. "
                             f"Received: {overrides}")
        if dictionary is not None and not isinstance(dictionary, dict):
            overrides["dictionary"] = str(dictionary)
        config = dataclasses.replace(config, **overrides)
        _check_config(config)
        sources, targets = _pairs(data)
        gloss = None
        if dictionary is not None:
            entries = (list(dictionary.items()) if isinstance(dictionary, dict)
                       else read_dictionary(dictionary))
            if not entries:
                raise ValueError("dictionary is empty: give {source word: target word} entries")
            gloss = own_lookup(entries, {"train": list(zip(sources, targets))}).gloss_layer()
        try:
            preprocessor = TranslationPreprocessor.from_texts(
                sources, targets, config.vocabulary_size, gloss=gloss,
                sequence_length=config.max_length,
            )
        except ValueError as error:
            raise TaskError(str(error))
        info = {
            "name": "Translator.from_data",
            "sizes": {"train": len(sources)},
            "vocabulary_size": preprocessor.vocabulary_size,
            "decoding": _decoding(config, glossed=gloss is not None),
            "dictionary": "none" if gloss is None else "gloss",
        }
        return cls(make_model(config, preprocessor, train_pairs=len(sources)), config, info)

    def _dataset(self, x, y, batch_size, shuffle):
        from rnnapps.tasks.translation.data import make_dataset

        sources, targets = _strings(x, "x"), _strings(y, "y")
        if len(sources) != len(targets):
            raise ValueError(f"x and y must be as many. Received: {len(sources)} sources, "
                             f"{len(targets)} targets")
        return make_dataset(self.preprocessor, sources, targets,
                            batch_size or self.config.batch_size,
                            shuffle_seed=self.config.seed if shuffle else None)

    def fit(self, x, y, validation_data=None, epochs=None, batch_size=None, callbacks=None,
            verbose="auto"):
        """Trains on source strings `x` and target strings `y`; returns the
        Keras `History`. `validation_data` is a tuple `(sources, targets)`."""
        train = self._dataset(x, y, batch_size, shuffle=True)
        validation = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a tuple (sources, targets)")
            validation = self._dataset(*validation_data, batch_size, shuffle=False)
        return self.model.fit(
            train, validation_data=validation, epochs=epochs or self.config.epochs,
            callbacks=callbacks, verbose=verbose, shuffle=False,
        )

    def predict(self, x, return_scores=False):
        """Translations (a list of str) of source strings `x`; with
        `return_scores`, `(translations, scores)`, each score the
        length-normalised log-probability of its translation."""
        if getattr(self, "_search", None) is None:  # compiled once (JAX: per source length)
            self._search = beam_searcher(self.model, self.info["decoding"])
        translations, scores = translate_texts(
            self.model, _strings(x, "x", allow_empty=True), self.info["decoding"],
            search=self._search)
        return (translations, scores) if return_scores else translations

    def evaluate(self, x, y):
        """`{"bleu", "chrf", "sentences"}` (sacrebleu, detokenized, corpus
        level) of the translations of `x` against `y`: one reference string
        per source, or a list of references each."""
        sources, references = _strings(x, "x"), _references(y, "y")
        if len(sources) != len(references):
            raise ValueError(f"x and y must be as many. Received: {len(sources)} sources, "
                             f"{len(references)} references")
        translations = self.predict(sources)
        return {**corpus_scores(translations, references), "sentences": len(sources)}

    def export(self, export_dir="saved_models"):
        """Writes the SavedModel (`serving_default(text) -> translations,
        scores`) to `export_dir/translation/<version>/`; returns that folder.
        Built on TensorFlow from the model's weights, whichever backend trained them."""
        import json
        import tempfile

        from rnnapps.task import export_checkpoint
        from rnnapps.task import export_metadata

        with tempfile.TemporaryDirectory(prefix="rnnapps-translator-") as folder:
            folder = pathlib.Path(folder)
            self.model.save(folder / "model.keras")
            (folder / "task.json").write_text(json.dumps(
                export_metadata(TranslationTask(), self.config, self.info), default=str))
            return pathlib.Path(export_checkpoint("translation", folder, export_dir))
