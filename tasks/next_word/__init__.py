"""Next-word prediction (many-to-many, one prediction per step): a recurrent
language model over English words.

Trained on sentences that install offline (WordNet's glosses and examples
by default), it predicts every word of a sentence from the words before it.
The export suggests the `k` most likely next words after a text, with their
probabilities and a short greedy continuation; it also scores texts (the
`score` signature: the log-probability of each text, for perplexity). The
baseline printed next to it is an interpolated Kneser-Ney n-gram model
(`rnnapps.tasks.next_word.ngram`) fitted on the same training sentences.

From Python:

    from rnnapps.tasks import next_word

    config = next_word.NextWordConfig(epochs=2)
    data = next_word.load_data(config)        # tf.data: (<s> w1..wn, w1..wn </s>)
    model = next_word.build_model(config, data.raw["vocabulary"])
    model.fit(data.train, validation_data=data.validation, epochs=config.epochs)

The presets are the offline corpora:

>>> from rnnapps.tasks import next_word
>>> next_word.task.name, sorted(next_word.PRESETS)
('next_word', ['english', 'gcide', 'wordnet'])
"""

import pathlib

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.task import TaskError
from rnnapps.text import standardize
from rnnapps.tasks.next_word.config import PRESETS
from rnnapps.tasks.next_word.config import NextWordConfig
from rnnapps.tasks.next_word.data import END_ID
from rnnapps.tasks.next_word.data import PAD_ID
from rnnapps.tasks.next_word.data import START_ID
from rnnapps.tasks.next_word.data import load_data
from rnnapps.tasks.next_word.data import load_sentences

__all__ = ["NextWordConfig", "PRESETS", "NextWordTask", "load_data", "build_model", "task",
           "language_model_metrics", "ngram_metrics"]

# Suggestions are words: ids 0-3 (padding, [UNK], <s>, </s>) never are.
_FIRST_WORD_ID = 4
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

    def load_checkpoint(self, path):
        import rnnapps.language_model  # noqa: F401  (registers the model)

        return super().load_checkpoint(path)

    def serving_signature(self, model, info):
        return _suggest_fn(model, info), [
            _spec("text", "string"), _spec("k", "int32"),
        ]

    def other_signatures(self, model, info):
        return {"score": (_score_fn(model, info), [_spec("text", "string")])}

    def diagnostic_layer(self, model):
        return model.recurrent[0].name

    def test_metrics(self, model, data):
        metrics = language_model_metrics(model, data.test)
        metrics.update(vocabulary_size=data.info["vocabulary_size"],
                       test_unknown_rate=data.info["test_unknown_rate"])
        if data.info.get("ngram_order"):
            metrics.update(ngram_metrics(data, data.info["ngram_order"]))
        return metrics

    def example_predictions(self, model, data, count=5):
        serve = _suggest_fn(model, data.info)
        prompts = list(_PROMPTS)
        for sentence in data.raw["sentences"]["test"][:count]:
            words = sentence.split()
            prompts.append(" ".join(words[: max(1, len(words) // 2)]))
        import tensorflow as tf

        out = serve(tf.constant(prompts), tf.fill([len(prompts)], 5))
        lines = ["Next words (top 5) and greedy continuations:"]
        for prompt, words, p, continuation in zip(
            prompts, out["words"].numpy(), out["probabilities"].numpy(), out["continuation"].numpy()
        ):
            shown = ", ".join(f"{w.decode()} {q:.2f}" for w, q in zip(words, p))
            lines.append(f"  {prompt!r} -> {shown}  | ...{continuation.decode()}")
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


task = NextWordTask()


def _same_file(path, other):
    """Whether the text file `path` is `other` (a path or None)."""
    if not other:
        return False
    return path == other or pathlib.Path(path).resolve() == pathlib.Path(other).resolve()


def build_model(config, vocabulary):
    """A compiled `rnnapps.language_model.WordLanguageModel` for `config`."""
    from rnnapps.tasks.next_word import model

    return model.build_model(config, vocabulary)


def _spec(name, dtype):
    import tensorflow as tf

    return tf.TensorSpec([None], dtype, name=name)


def _vocabulary_table(model):
    import tensorflow as tf

    return tf.constant(["", "[UNK]", *model.vocabulary])


def _with_start(model, text, max_length):
    """Right-padded `<s> w1 .. wn` ids of each text, its last `max_length` words."""
    import tensorflow as tf

    words = model.tokenize(text)[:, -max_length:]
    start = tf.fill([tf.shape(text)[0], 1], START_ID)
    return tf.concat([tf.RaggedTensor.from_tensor(start), words], axis=1).to_tensor(PAD_ID)


def _suggest_fn(model, info):
    """`serving_default(text string[batch], k int32[batch])`."""
    import tensorflow as tf

    vocabulary = _vocabulary_table(model)
    max_length = int(info.get("max_length", 40))
    length = int(info.get("continuation_length", 8))
    is_word = tf.constant(np.arange(model.vocabulary_size) >= _FIRST_WORD_ID, tf.float32)

    def suggest(text, k):
        check = tf.debugging.assert_greater_equal(
            k, 1, message="k must be at least 1 (the number of next words to suggest)"
        )
        with tf.control_dependencies([check]):
            ids = _with_start(model, text, max_length)
        logits, states = model.next_word(ids)
        probabilities = tf.nn.softmax(logits) * is_word
        most = tf.clip_by_value(tf.reduce_max(k), 1, model.vocabulary_size - _FIRST_WORD_ID)
        top = tf.math.top_k(probabilities, most)
        keep = tf.range(most)[None, :] < k[:, None]
        words = tf.where(keep, tf.gather(vocabulary, top.indices), "")
        continuation = tf.gather(vocabulary, model.greedy_continuation(logits, states, length))
        return {
            "words": words,
            "probabilities": tf.where(keep, top.values, 0.0),
            "continuation": tf.strings.strip(
                tf.strings.reduce_join(continuation, axis=1, separator=" ")
            ),
        }

    return suggest


def _score_fn(model, info):
    """`score(text string[batch])`: log P(text) and the words counted (+ </s>)."""
    import tensorflow as tf

    max_length = int(info.get("max_length", 40))

    def score(text):
        words = model.tokenize(text)[:, :max_length]
        rows = tf.shape(text)[0]
        start = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], START_ID))
        end = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], END_ID))
        inputs = tf.concat([start, words], axis=1).to_tensor(PAD_ID)
        targets = tf.concat([words, end], axis=1).to_tensor(PAD_ID)
        log_probabilities = -tf.nn.sparse_softmax_cross_entropy_with_logits(
            targets, tf.cast(model(inputs), tf.float32)
        )
        valid = tf.cast(targets != PAD_ID, tf.float32)
        return {
            "log_probability": tf.reduce_sum(log_probabilities * valid, axis=1),
            "tokens": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
        }

    return score


def _top(scores, k):
    """Indices of the `k` largest scores along the last axis (unordered)."""
    if scores.shape[-1] <= k:
        return np.broadcast_to(np.arange(scores.shape[-1]), scores.shape)
    return np.argpartition(-scores, k - 1, axis=-1)[..., :k]


def language_model_metrics(model, dataset):
    """Perplexity (every next token, `</s>` and `[UNK]` included) and the
    top-1/top-5 accuracy of word suggestions (positions whose next token is
    a vocabulary word; the model's most likely words) of `model` on batches
    of `(inputs, targets)`."""
    from rnnapps.language_model import log_probabilities_of

    total = 0.0
    tokens = hits1 = hits5 = words = 0
    for inputs, targets in dataset:
        log_probabilities = log_probabilities_of(model, inputs)
        targets = np.asarray(targets)
        valid = targets != PAD_ID
        picked = np.take_along_axis(log_probabilities, targets[..., None], -1)[..., 0]
        total += float(picked[valid].sum())
        tokens += int(valid.sum())
        is_word = targets >= _FIRST_WORD_ID
        scores = log_probabilities[is_word][:, _FIRST_WORD_ID:]
        top5 = _top(scores, 5) + _FIRST_WORD_ID
        top1 = np.argmax(scores, -1) + _FIRST_WORD_ID
        hits1 += int((top1 == targets[is_word]).sum())
        hits5 += int((top5 == targets[is_word][:, None]).any(-1).sum())
        words += int(is_word.sum())
    return {
        "perplexity": round(float(np.exp(-total / max(tokens, 1))), 3),
        "top1_accuracy": round(hits1 / max(words, 1), 4),
        "top5_accuracy": round(hits5 / max(words, 1), 4),
        "tokens": tokens,
    }


def ngram_metrics(data, order):
    """The Kneser-Ney baseline on `data`: fitted on the training ids, scored
    on the test ids like `language_model_metrics`."""
    from rnnapps.tasks.next_word.ngram import KneserNeyLM

    lm = KneserNeyLM(data.info["vocabulary_size"], order=order).fit(data.raw["train"])
    hits1 = hits5 = words = 0
    for sentence in data.raw["test"]:
        for i, target in enumerate(sentence):
            if target < _FIRST_WORD_ID:
                continue
            p = lm.distribution(sentence[:i])[_FIRST_WORD_ID:]
            top5 = _top(p, 5) + _FIRST_WORD_ID
            hits1 += int(np.argmax(p) + _FIRST_WORD_ID == target)
            hits5 += int(target in top5)
            words += 1
    return {
        "ngram_order": order,
        "ngram_perplexity": round(float(lm.perplexity(data.raw["test"])), 3),
        "ngram_top1_accuracy": round(hits1 / max(words, 1), 4),
        "ngram_top5_accuracy": round(hits5 / max(words, 1), 4),
    }
