"""The next-word task: the `Task` the command line runs and `NextWordPredictor`,
its Python API.

Both are made of the same pieces: `NextWordPreprocessor` (the vocabulary,
strings to ids in TensorFlow ops, in `tf.data` and in the export), the
model (`rnnapps.language_model.WordLanguageModel`: ids in, `keras.ops`, any
backend) and the export's serving functions (TensorFlow, built from the
trained weights: `rnnapps.task.export_checkpoint`).
"""

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.task import TaskError
from rnnapps.task import raw_values
from rnnapps.text import standardize
from rnnapps.tasks.next_word.config import PRESETS
from rnnapps.tasks.next_word.config import NextWordConfig
from rnnapps.tasks.next_word.data import PAD_ID
from rnnapps.tasks.next_word.data import fit_vocabulary
from rnnapps.tasks.next_word.data import load_data
from rnnapps.tasks.next_word.data import load_sentences
from rnnapps.tasks.next_word.metrics import FIRST_WORD_ID
from rnnapps.tasks.next_word.metrics import language_model_metrics
from rnnapps.tasks.next_word.metrics import ngram_metrics
from rnnapps.tasks.next_word.preprocessor import NextWordPreprocessor

__all__ = ["NextWordTask", "NextWordPredictor", "build_model", "suggest"]

_PROMPTS = ("I would like a cup of", "The capital of France is", "She opened the door and",
            "A large body of")


class NextWordTask(Task):
    name = "next_word"
    config_class = NextWordConfig
    presets = PRESETS
    data_fields = ("data", "max_length", "batch_size", "seed")
    predict_help = "texts to continue ('-' reads one text per line from stdin)"

    def load_data(self, config):
        return load_data(config)

    def load_evaluation_data(self, config, trained=None):
        """A named corpus, or the text file the export was trained on
        (`trained`, its training config, where known), is scored on its test
        split, as the run tested it; any other text file whole."""
        from rnnapps.tasks.next_word.data import SOURCES
        from rnnapps.tasks.next_word.data import _splits

        sentences = load_sentences(config.data)
        if config.data in SOURCES or _same_file(config.data, trained and trained.data):
            splits = _splits(sentences)
        else:  # new text: every sentence of it
            splits = {"train": [], "validation": [], "test": sentences}
        if len(splits["test"]) == 0:
            raise TaskError(f"the test split of {config.data} is empty (too few sentences?)")
        info = {"name": config.data, "sizes": {k: len(v) for k, v in splits.items()},
                "max_length": config.max_length}
        return TaskData(train=None, validation=None, test=None, info=info,
                        raw={"sentences": splits})

    def build_model(self, config, data):
        return build_model(config, data.raw["vocabulary"])

    def preprocessor(self, model, info):
        """The preprocessor of a trained model (its vocabulary) and run (`info`)."""
        return NextWordPreprocessor(model.vocabulary, int(info.get("max_length", 40)))

    def load_checkpoint(self, path):
        import rnnapps.language_model  # noqa: F401  (registers the model)

        return super().load_checkpoint(path)

    def _serving_preprocessor(self, model, info):
        """The preprocessor the export's signatures share, its lookup table
        kept by the model (the SavedModel saves the resources the model
        tracks; the table is a TensorFlow resource, not a Keras layer)."""
        if getattr(model, "serving_preprocessor", None) is None:
            model.serving_preprocessor = self.preprocessor(model, info)
            model.serving_word_ids = model.serving_preprocessor.table
        return model.serving_preprocessor

    def serving_signature(self, model, info):
        return _suggest_fn(model, self._serving_preprocessor(model, info), info), [
            _spec("text", "string"), _spec("k", "int32"),
        ]

    def other_signatures(self, model, info):
        return {"score": (_score_fn(model, self._serving_preprocessor(model, info)),
                          [_spec("text", "string")])}

    def diagnostic_layer(self, model):
        return model.recurrent[0].name

    def after_fit(self, model, data):
        """With `interpolate`: fits the Kneser-Ney n-gram on the training
        ids and attaches it to the model, its weight in the mixture chosen
        on the validation split (`interpolation.choose_weight`)."""
        if not data.info.get("interpolate"):
            return False
        from rnnapps.tasks.next_word.interpolation import choose_weight

        lm = _fitted_ngram(data)
        weight, perplexities = choose_weight(model, lm, data.validation)
        model.interpolate(lm, weight)
        data.info["ngram_weight"] = weight
        data.info["validation_perplexity_by_ngram_weight"] = {
            f"{w:.2f}": round(p, 3) for w, p in perplexities.items()}
        return True

    def test_metrics(self, model, data):
        metrics = language_model_metrics(model, data.test)
        metrics.update(vocabulary_size=data.info["vocabulary_size"],
                       test_unknown_rate=data.info["test_unknown_rate"])
        if data.info.get("ngram_order"):
            metrics.update(ngram_metrics(data, data.info["ngram_order"], _fitted_ngram(data)))
        return metrics

    def example_predictions(self, model, data, count=5):
        prompts = list(_PROMPTS)
        for sentence in data.raw["sentences"]["test"][:count]:
            words = sentence.split()
            prompts.append(" ".join(words[: max(1, len(words) // 2)]))
        suggestions = suggest(model, self.preprocessor(model, data.info), prompts, 5,
                              int(data.info.get("continuation_length", 8)))
        lines = ["Next words (top 5) and greedy continuations:"]
        for prompt, (words, p, continuation) in zip(prompts, suggestions):
            shown = ", ".join(f"{w} {q:.2f}" for w, q in zip(words, p))
            lines.append(f"  {prompt!r} -> {shown}  | ...{continuation}")
        return lines

    def add_arguments(self, command, parser):
        if command == "predict":
            parser.add_argument("--k", type=int, default=5,
                                help="suggestions per text (default: %(default)s)")

    def evaluate_export(self, loaded, data, options=None):
        import tensorflow as tf

        sentences = list(data.raw["sentences"]["test"])
        score = loaded.signatures["score"]
        total, tokens = 0.0, 0
        for start in range(0, len(sentences), 512):
            out = score(text=tf.constant(sentences[start:start + 512]))
            total += float(np.sum(out["log_probability"].numpy().astype(np.float64)))
            tokens += int(np.sum(out["tokens"].numpy()))
        if tokens == 0:
            raise TaskError("the test sentences have no words")
        metrics = {"perplexity": round(float(np.exp(-total / tokens)), 3), "tokens": tokens}
        # Suggestions: every position of the first 1,000 test sentences.
        suggest = loaded.signatures["serving_default"]
        prefixes, targets = [], []
        for sentence in sentences[:1000]:
            words = standardize(sentence)[: data.info["max_length"]]
            for i in range(len(words)):
                prefixes.append(" ".join(words[:i]))
                targets.append(words[i])
        hits1 = hits5 = 0
        for start in range(0, len(prefixes), 512):
            batch = prefixes[start:start + 512]
            out = suggest(text=tf.constant(batch), k=tf.fill([len(batch)], 5))
            for words, target in zip(out["words"].numpy(), targets[start:start + 512]):
                words = [w.decode() for w in words]
                hits1 += words[0] == target
                hits5 += target in words
        n = max(len(targets), 1)
        metrics.update(suggestion_top1=round(hits1 / n, 4), suggestion_top5=round(hits5 / n, 4),
                       suggestion_positions=len(targets))
        return metrics

    def predict_export(self, loaded, inputs, metadata=None, options=None):
        import tensorflow as tf

        k = (options or {}).get("k")
        k = 5 if k is None else int(k)
        if k < 1:
            raise TaskError(f"--k must be at least 1. Received: {k}")
        out = loaded.signatures["serving_default"](
            text=tf.constant(list(inputs), tf.string), k=tf.fill([len(inputs)], k)
        )
        predictions = []
        for text, words, probabilities, continuation in zip(
            inputs, out["words"].numpy(), out["probabilities"].numpy(), out["continuation"].numpy()
        ):
            predictions.append({
                "text": text,
                "next_words": [
                    {"word": w.decode("utf-8"), "probability": round(float(p), 4)}
                    for w, p in zip(words, probabilities) if w
                ],
                "continuation": continuation.decode("utf-8"),
            })
        return predictions

    def format_prediction(self, prediction):
        shown = "  ".join(f"{s['word']} ({s['probability']:.3f})" for s in prediction["next_words"])
        return f"{prediction['text']} ->  {shown}\n  continued: {prediction['text']} {prediction['continuation']}"



def _fitted_ngram(data):
    """The run's Kneser-Ney n-gram, fitted once on the training ids."""
    from rnnapps.tasks.next_word.ngram import KneserNeyLM

    if data.raw.get("ngram") is None:
        data.raw["ngram"] = KneserNeyLM(
            data.info["vocabulary_size"], order=data.info["ngram_order"]).fit(data.raw["train"])
    return data.raw["ngram"]


def _same_file(path, other):
    """Whether the text file `path` is `other` (a path or None)."""
    if not other:
        return False
    return path == other or pathlib.Path(path).resolve() == pathlib.Path(other).resolve()


class NextWordPredictor:
    """A next-word model fitted on your own sentences: raw text in, the most
    likely next words out, on any Keras backend.

    `from_data` fits the vocabulary (the preprocessor) on your sentences
    and builds the compiled language model; `fit`, `predict` and `evaluate`
    take raw sentences, looked up into word ids in `tf.data`; `export`
    writes the SavedModel `rnnapps serve` and TensorFlow Serving load
    (strings in, the top-k next words and their probabilities out).

    Attributes:
        model: the `rnnapps.language_model.WordLanguageModel` (ids in,
            next-word logits out).
        preprocessor: the `NextWordPreprocessor` (the vocabulary).
        config: the `NextWordConfig`.

    Example:

    >>> from rnnapps.tasks.next_word import NextWordPredictor
    >>> sentences = ["the cat sat on the mat", "the dog sat on the rug",
    ...              "a cat ate the fish", "a dog ate the bone"] * 25
    >>> predictor = NextWordPredictor.from_data(
    ...     sentences, vocabulary_size=30, embedding_dim=8, units=16, epochs=3,
    ...     batch_size=16, learning_rate=0.02, ngram_order=0)
    >>> history = predictor.fit(sentences, validation_data=sentences[:20], verbose=0)
    >>> [suggestion] = predictor.predict(["the cat sat on the"], k=3)
    >>> len(suggestion["next_words"]), type(suggestion["next_words"][0]["word"]).__name__
    (3, 'str')
    >>> sorted(predictor.evaluate(sentences))
    ['perplexity', 'tokens', 'top1_accuracy', 'top5_accuracy']
    >>> import tempfile
    >>> predictor.export(tempfile.mkdtemp()).name  # EXPORT_DIR/next_word/1
    '1'
    """

    def __init__(self, model, preprocessor, config, info=None):
        self.model = model
        self.preprocessor = preprocessor
        self.config = config
        self.info = dict(info or {})

    @classmethod
    def from_data(cls, sentences, config=None, **overrides):
        """Fits the vocabulary on `sentences` (a list, array, pandas Series
        or `tf.data.Dataset` of texts, or the path of a UTF-8 text file, one
        sentence or paragraph per line) and builds the compiled model for
        `config` (a `NextWordConfig`; the task's defaults when `None`) with
        `overrides` of its fields (e.g. `units=64`)."""
        config = dataclasses.replace(config or NextWordConfig(), **overrides)
        sentences = _sentences(sentences)
        vocabulary = fit_vocabulary(sentences, config.vocabulary_size)
        preprocessor = NextWordPreprocessor(vocabulary, config.max_length)
        model = build_model(config, vocabulary)
        info = {"name": "python", "sizes": {"train": len(sentences)},
                "vocabulary_size": preprocessor.vocabulary_size,
                "max_length": config.max_length,
                "continuation_length": config.continuation_length, "ngram_order": 0}
        return cls(model, preprocessor, config, info)

    def _batches(self, sentences, batch_size=None, shuffle_seed=None, name="x"):
        return self.preprocessor.batches(_sentences(sentences, name),
                                         batch_size or self.config.batch_size, shuffle_seed)

    def fit(self, x, y=None, validation_data=None, epochs=None, batch_size=None, callbacks=None,
            verbose="auto"):
        """Trains on the sentences `x` (each predicts its own next words:
        there is no `y`); returns Keras's `History`."""
        if y is not None:
            raise ValueError("a language model learns from the sentences alone: pass them as x "
                             "and leave y out. Received: y")
        train = self._batches(x, batch_size, shuffle_seed=self.config.seed)
        validation = (None if validation_data is None else
                      self._batches(validation_data, batch_size, name="validation_data"))
        return self.model.fit(train, validation_data=validation,
                              epochs=epochs or self.config.epochs, callbacks=callbacks,
                              shuffle=False, verbose=verbose)

    def predict(self, x, k=5):
        """The `k` most likely next words after each text of `x`, with their
        probabilities, and a short greedy continuation: a list of dicts
        `{"text", "next_words": [{"word", "probability"}, ...], "continuation"}`
        (what `rnnapps predict next_word` prints)."""
        texts = [str(t) for t in raw_values(x, "x")]
        if not texts:
            raise ValueError("x is empty: give at least one text to continue")
        if k < 1:
            raise ValueError(f"k must be at least 1. Received: k={k}")
        suggestions = suggest(self.model, self.preprocessor, texts, k,
                              self.config.continuation_length)
        return [{"text": text,
                 "next_words": [{"word": w, "probability": float(p)} for w, p in zip(words, ps)],
                 "continuation": continuation}
                for text, (words, ps, continuation) in zip(texts, suggestions)]

    def evaluate(self, x, y=None, batch_size=None):
        """The per-word perplexity of the sentences `x` (every next word and
        sentence end), and the top-1/top-5 accuracy of the suggestions."""
        if y is not None:
            raise ValueError("a language model is scored on the sentences alone: pass them as "
                             "x and leave y out. Received: y")
        return language_model_metrics(self.model, self._batches(x, batch_size))

    def export(self, export_dir="saved_models"):
        """Exports a SavedModel to `export_dir/next_word/<version>/` (built on
        TensorFlow from this model's weights, whatever the backend); returns
        the version folder."""
        from rnnapps.task import export_checkpoint
        from rnnapps.task import export_metadata

        folder = pathlib.Path(tempfile.mkdtemp(prefix="next_word-"))
        try:
            self.model.save(str(folder / "model.keras"))
            metadata = export_metadata(NextWordTask(), self.config, self.info)
            (folder / "task.json").write_text(json.dumps(metadata, default=str))
            return export_checkpoint(NextWordTask.name, folder, export_dir)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _sentences(x, name="x"):
    """Sentences from a text file's path or from what `raw_values` takes."""
    if isinstance(x, (str, os.PathLike)):
        sentences = load_sentences(str(x))
    else:
        sentences = [str(s) for s in raw_values(x, name)]
    if not any(s.strip() for s in sentences):
        raise ValueError(f"{name} has no sentence: give a list of texts or a text file's path")
    return sentences


def build_model(config, vocabulary):
    """A compiled `rnnapps.language_model.WordLanguageModel` for `config`."""
    from rnnapps.tasks.next_word import model

    return model.build_model(config, vocabulary)


def suggest(model, preprocessor, texts, k, continuation_length):
    """`(words, probabilities, continuation)` for each text: the `k` most
    likely next words (most likely first) with their probabilities, and a
    greedy continuation of up to `continuation_length` words. The model
    runs in `keras.ops` on the training backend; it answers as the export's
    `serving_default` does."""
    from keras import ops

    ids = preprocessor.prompt_ids(list(texts)).numpy()
    logits, states = model.next_word(ids)
    ngram = _serving_ngram(model)
    if ngram is None:
        continuation = ops.convert_to_numpy(
            model.greedy_continuation(logits, states, continuation_length))
        logits = ops.convert_to_numpy(logits).astype(np.float64)
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
    else:
        probabilities, continuation = _mixed_next_words(
            model, ngram, ids, logits, states, continuation_length, numpy=True)
        probabilities = np.asarray(probabilities, np.float64)
        continuation = np.asarray(continuation)
    probabilities[:, :FIRST_WORD_ID] = 0.0
    k = min(k, model.vocabulary_size - FIRST_WORD_ID)
    top = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
    table = ["", "[UNK]", *model.vocabulary]
    results = []
    for row, p, words in zip(top, probabilities, continuation):
        results.append(([table[i] for i in row], p[row].astype(np.float32).tolist(),
                        " ".join(table[i] for i in words if i != PAD_ID)))
    return results


def _serving_ngram(model, variables=False):
    """The model's n-gram as `NGramTensors`, or `None` without one. With
    `variables` (for an export), built once and kept on the model, so that
    the SavedModel built from it saves the n-gram's arrays as variables."""
    from rnnapps.tasks.next_word.interpolation import NGramTensors

    if getattr(model, "ngram", None) is None or model.ngram_weight >= 1.0:
        return None
    if not variables:
        return NGramTensors(model.ngram)
    if getattr(model, "serving_ngram", None) is None:
        model.serving_ngram = NGramTensors(model.ngram, variables=True)
    return model.serving_ngram


def _mixed_next_words(model, ngram, ids, logits, states, length, numpy=False):
    """The mixture's next-word probabilities `[batch, vocabulary]` after
    each row of `ids`, and its greedy continuation `[batch, length]` ids
    (padding after `</s>`; `[UNK]` and `<s>` never chosen), as
    `WordLanguageModel.greedy_continuation` does for the model alone."""
    import tensorflow as tf
    from keras import ops

    from rnnapps.tasks.next_word.interpolation import last_history

    weight = model.ngram_weight

    def mix(logits, history):
        rnn = tf.nn.softmax(tf.cast(ops.convert_to_numpy(logits) if numpy else logits,
                                    tf.float32))
        return weight * rnn + (1 - weight) * ngram.distribution(history)

    history = last_history(tf.constant(ids) if numpy else ids, ngram.order)
    first = probabilities = mix(logits, history)
    banned = np.zeros(model.vocabulary_size, np.float32)
    banned[[PAD_ID, 1, 2]] = -1.0  # padding, [UNK], <s>
    done = tf.zeros(tf.shape(history)[:1], tf.bool)
    words = []
    for _ in range(length):
        token = tf.argmax(probabilities + banned, axis=-1, output_type=tf.int32)
        token = tf.where(done, 0, token)
        done = tf.logical_or(done, tf.equal(token, 3))
        words.append(tf.where(tf.equal(token, 3), 0, token))
        fed = tf.maximum(token, 3)
        logits, states = model.step(fed.numpy() if numpy else fed, states)
        history = tf.concat([history[:, 1:], tf.cast(fed, history.dtype)[:, None]], axis=1)
        probabilities = mix(logits, history)
    return first, tf.stack(words, axis=1)


def _spec(name, dtype):
    import tensorflow as tf

    return tf.TensorSpec([None], dtype, name=name)


def _suggest_fn(model, preprocessor, info):
    """`serving_default(text string[batch], k int32[batch])`."""
    import tensorflow as tf

    vocabulary = tf.constant(["", "[UNK]", *model.vocabulary])
    length = int(info.get("continuation_length", 8))
    is_word = tf.constant(np.arange(model.vocabulary_size) >= FIRST_WORD_ID, tf.float32)

    def serve(text, k):
        check = tf.debugging.assert_greater_equal(
            k, 1, message="k must be at least 1 (the number of next words to suggest)"
        )
        with tf.control_dependencies([check]):
            ids = preprocessor.prompt_ids(text)
        logits, states = model.next_word(ids)
        ngram = _serving_ngram(model, variables=True)
        if ngram is None:
            probabilities = tf.nn.softmax(tf.cast(logits, tf.float32)) * is_word
            continued = model.greedy_continuation(logits, states, length)
        else:
            probabilities, continued = _mixed_next_words(model, ngram, ids, logits, states,
                                                         length)
            probabilities = probabilities * is_word
        most = tf.clip_by_value(tf.reduce_max(k), 1, model.vocabulary_size - FIRST_WORD_ID)
        top = tf.math.top_k(probabilities, most)
        keep = tf.range(most)[None, :] < k[:, None]
        words = tf.where(keep, tf.gather(vocabulary, top.indices), "")
        continuation = tf.gather(vocabulary, continued)
        return {
            "words": words,
            "probabilities": tf.where(keep, top.values, 0.0),
            "continuation": tf.strings.strip(
                tf.strings.reduce_join(continuation, axis=1, separator=" ")
            ),
        }

    return serve


def _score_fn(model, preprocessor):
    """`score(text string[batch])`: log P(text) and the words counted (+ </s>)."""
    import tensorflow as tf

    def score(text):
        inputs, targets = preprocessor(text)
        log_probabilities = -tf.nn.sparse_softmax_cross_entropy_with_logits(
            targets, tf.cast(model(inputs), tf.float32)
        )
        ngram = _serving_ngram(model, variables=True)
        if ngram is not None:  # the mixture's probability of each word
            from rnnapps.tasks.next_word.interpolation import histories

            context = histories(inputs, ngram.order)
            shape = tf.shape(targets)
            kn = tf.reshape(ngram.probabilities(
                tf.reshape(context, [-1, ngram.order - 1]), tf.reshape(targets, [-1])), shape)
            weight = model.ngram_weight
            mixed = weight * tf.exp(log_probabilities) + (1 - weight) * kn
            # Padding (never a word the n-gram predicts) is left out below.
            log_probabilities = tf.math.log(tf.where(targets != PAD_ID, mixed, 1.0))
        valid = tf.cast(targets != PAD_ID, tf.float32)
        return {
            "log_probability": tf.reduce_sum(log_probabilities * valid, axis=1),
            "tokens": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
        }

    return score
