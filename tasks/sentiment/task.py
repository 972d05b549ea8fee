"""The sentiment task: the `rnnapps` command line's `SentimentTask` and the
Python API's `SentimentClassifier`, built on the same pieces.

Both fit a `SentimentPreprocessor` on the training texts (TensorFlow string
ops, run in `tf.data`), build the model on its token ids
(`rnnapps.tasks.sentiment.model`: Keras layers only, any backend) and serve
raw strings from a SavedModel whose signature runs the two together.
"""

import dataclasses
import json
import pathlib
import shutil
import tempfile
import typing

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.task import export_checkpoint
from rnnapps.task import export_metadata
from rnnapps.task import raw_values
from rnnapps.tasks.sentiment.config import PRESETS
from rnnapps.tasks.sentiment.config import SentimentConfig
from rnnapps.tasks.sentiment.data import load_data
from rnnapps.tasks.sentiment.data import load_evaluation_examples
from rnnapps.tasks.sentiment.data import make_dataset
from rnnapps.tasks.sentiment.data import sentence_pieces
from rnnapps.tasks.sentiment.metrics import binary_auc
from rnnapps.tasks.sentiment.metrics import classifier_metrics

__all__ = ["SentimentTask", "SentimentClassifier", "SentimentData", "fit_preprocessor",
           "build_pretrained_model"]


@dataclasses.dataclass
class SentimentData(TaskData):
    """`TaskData` whose datasets hold `(token ids, label id)` batches.

    Attributes:
        preprocessor: the `SentimentPreprocessor` that made the ids (its
            config is `info["preprocessor"]` too, for the export).
        language_model: with `config.encoder`, the language model whose
            vocabulary the preprocessor holds (not fine-tuned yet).
    """

    preprocessor: typing.Any = None
    language_model: typing.Any = None


def fit_preprocessor(config, texts, more_texts=(), log=print):
    """`(preprocessor, language_model, encoder_info)` for `config`.

    From scratch (no `config.encoder`): a `SentimentPreprocessor` of the
    `config.vocabulary_size` most frequent words of `texts` (the training
    texts), and `None`, `None`. With `config.encoder`: a preprocessor of
    the language model's vocabulary (the same ids), extended with the words
    of `texts` and `more_texts` (e.g. the validation texts: no labels are
    read) that it lacks; the language model with that vocabulary; and
    `{"language_model": config.encoder, "words_added": ...}` (JSON).
    """
    from rnnapps.tasks.sentiment.preprocessor import SentimentPreprocessor

    if not config.encoder:
        preprocessor = SentimentPreprocessor.from_texts(
            texts, config.vocabulary_size, config.sequence_length, name="preprocessor")
        return preprocessor, None, None
    from rnnapps.tasks.sentiment import encoder

    language_model = encoder.load_language_model(config.encoder, log=log)
    size = language_model.vocabulary_size
    language_model = encoder.extend_vocabulary(language_model, [*texts, *more_texts])
    words_added = language_model.vocabulary_size - size
    log(f"Language model {config.encoder}: {words_added} words of the training texts "
        f"added to its vocabulary of {size}")
    preprocessor = SentimentPreprocessor(
        language_model.vocabulary, config.sequence_length, name="preprocessor")
    return preprocessor, language_model, {"language_model": config.encoder,
                                          "words_added": words_added}


def preprocessed(dataset, preprocessor):
    """A dataset of `(text, ...)` batches as `(token ids, ...)` batches."""
    import tensorflow as tf

    return dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def build_pretrained_model(config, language_model, texts, num_classes, steps_per_epoch,
                           log=print):
    """A compiled classifier whose encoder starts from `language_model` (a
    `WordLanguageModel` whose vocabulary `fit_preprocessor` extended; ULMFiT,
    `rnnapps.tasks.sentiment.encoder`): a copy of it is fine-tuned on the
    sentences of `texts` for `config.lm_epochs` epochs, then its layers
    become the classifier's. Returns `(model, report)`: `report` says what
    fine-tuning did (for `data.info["encoder"]`)."""
    from rnnapps.tasks.sentiment import encoder
    from rnnapps.tasks.sentiment import model

    # A copy (same vocabulary, same weights): the one given stays as loaded.
    language_model = language_model.with_words([])
    log(f"Fine-tuning the language model on the training texts ({config.lm_epochs} epochs)")
    report = encoder.fine_tune_language_model(
        language_model, texts, config.lm_epochs, seed=config.seed
    )
    log(f"Language model perplexity on held-out training sentences: "
        f"{report['perplexity_before']} before, {report['perplexity_after']} after")
    classifier = model.build_model(
        config, language_model.vocabulary_size, num_classes, encoder=language_model,
        steps_per_epoch=max(steps_per_epoch, 1),
    )
    return classifier, report


def predict_probabilities(model, preprocessor, texts, batch_size=256):
    """`(len(texts), classes)` NumPy probabilities of `model` for raw `texts`."""
    import tensorflow as tf

    texts = [str(text) for text in texts]
    if not texts:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    dataset = preprocessed(tf.data.Dataset.from_tensor_slices(
        tf.constant(texts, tf.string)).batch(batch_size), preprocessor)
    return np.asarray(model.predict(dataset, verbose=0))


class SentimentTask(Task):
    name = "sentiment"
    config_class = SentimentConfig
    presets = PRESETS
    # The flags `rnnapps evaluate sentiment` takes to load what it scores.
    data_fields = ("data", "test_data", "text_column", "label_column", "batch_size", "seed")
    predict_help = "texts to classify ('-' reads one text per line from stdin)"

    def load_data(self, config, log=print):
        """`SentimentData` for `config`: the splits as `(token ids, label id)`
        batches, the preprocessor fitted on the training texts (its config,
        the vocabulary, in `info["preprocessor"]`) and the raw splits."""
        data = load_data(config)
        preprocessor, language_model, encoder_info = fit_preprocessor(
            config, data.raw["train"][0], data.raw["validation"][0], log=log)
        info = {**data.info, "preprocessor": _preprocessor_config(preprocessor)}
        if encoder_info is not None:
            info["encoder"] = encoder_info  # build_model adds what fine-tuning did
        return SentimentData(
            train=preprocessed(data.train, preprocessor),
            validation=preprocessed(data.validation, preprocessor),
            test=preprocessed(data.test, preprocessor),
            info=info,
            raw=data.raw,
            preprocessor=preprocessor,
            language_model=language_model,
        )

    def load_evaluation_data(self, config, trained=None):
        """What `rnnapps evaluate` scores (`data.load_evaluation_examples`):
        `--test-data`, else `--data`; a file whole, or its test rows where
        it has a `split` column. `trained`, the export's training config
        where known, tells the run's own data (scored as the run tested it)
        from new data. The export holds its vocabulary: nothing is fitted."""
        texts, labels, name = load_evaluation_examples(
            config.data, config.text_column, config.label_column, config.test_data,
            trained=None if trained is None else (
                trained.data, trained.validation_data, trained.test_data),
        )
        return TaskData(
            train=None, validation=None, test=None,
            info={"name": name, "sizes": {"test": int(len(texts))},
                  "label_names": sorted(set(labels))},
            raw={"test": (texts, labels)},
        )

    def build_model(self, config, data):
        from rnnapps.tasks.sentiment import model

        num_classes = len(data.info["label_names"])
        if not config.encoder:
            return model.build_model(config, data.preprocessor.vocabulary_size, num_classes)
        # The texts the classifier trains on (validation included: no labels
        # are used), never the test texts.
        texts = [*data.raw["train"][0], *data.raw["validation"][0]]
        classifier, report = build_pretrained_model(
            config, data.language_model, texts, num_classes, int(data.train.cardinality()))
        data.info["encoder"] = {**data.info.get("encoder", {}), **report}
        return classifier

    def load_checkpoint(self, path):
        from rnnapps.tasks.sentiment import model  # noqa: F401  (registers its layers)

        return super().load_checkpoint(path)

    def serving_signature(self, model, info):
        import tensorflow as tf

        from rnnapps.tasks.sentiment.preprocessor import SentimentPreprocessor

        label_names = tf.constant([str(name) for name in info["label_names"]])
        if "preprocessor" not in info:
            # A checkpoint from before the preprocessor left the model: its
            # model takes the strings itself.
            preprocessor = None
        else:
            preprocessor = SentimentPreprocessor.from_config(info["preprocessor"])
            # An attribute of the model, so that the export tracks (and
            # saves) its vocabulary's lookup table with the model's weights.
            model.preprocessor = preprocessor

        def serve(text):
            inputs = text if preprocessor is None else preprocessor(text)
            probabilities = model(inputs, training=False)
            labels = tf.gather(label_names, tf.argmax(probabilities, axis=-1))
            return {"probabilities": probabilities, "labels": labels}

        return serve, [tf.TensorSpec([None], tf.string, name="text")]

    def test_metrics(self, model, data):
        """`loss` and `accuracy` on the test split, its `auc`, and the same on
        its sentences (`pieces_accuracy`, `pieces_auc`, and `pieces`, their count).

        `auc` (two classes only) ranks the test texts by the probability of
        the label with index 1 (`other` for the default data); for two
        classes that is the same AUC as ranking by the other label's
        probability. It is `None` when the texts hold one label only.
        """
        index = {name: i for i, name in enumerate(data.info["label_names"])}

        def scores(texts, labels):
            ids = np.array([index[label] for label in labels], np.int64)
            probabilities = predict_probabilities(model, data.preprocessor, texts)
            return classifier_metrics(probabilities, ids)

        metrics = super().test_metrics(model, data)  # loss and accuracy, by model.evaluate
        texts, labels = data.raw["test"]
        on_test = scores(texts, labels)
        if "auc" in on_test:  # two classes
            metrics["auc"] = on_test["auc"]
        pieces, piece_labels = sentence_pieces(texts, labels)
        metrics.update({f"pieces_{k}": v for k, v in scores(pieces, piece_labels).items()})
        metrics["pieces"] = len(pieces)
        return metrics

    def example_predictions(self, model, data, count=5):
        texts, labels = data.raw["test"]
        texts, labels = list(texts[:count]), list(labels[:count])
        names = data.info["label_names"]
        probabilities = predict_probabilities(model, data.preprocessor, texts)
        lines = []
        for text, label, p in zip(texts, labels, probabilities):
            guess = int(np.argmax(p))
            snippet = text if len(text) <= 70 else text[:67] + "..."
            lines.append(f"  {names[guess]:>8} ({p[guess]:.2f})  true: {label:<8} {snippet!r}")
        return ["Example predictions on the test split:", *lines]

    def evaluate_export(self, loaded, data, options=None):
        """`accuracy` and `auc` on the test split and on its sentences, from the
        export's `labels` and `probabilities`: `test_metrics` without the loss."""
        label_names = data.info["label_names"]

        def scores(texts, labels):
            probabilities, predicted = _serve_in_batches(loaded, texts)
            labels = np.asarray(labels, object)
            metrics = {"accuracy": round(float(np.mean(predicted == labels)), 5) if len(labels) else None}
            if probabilities.shape[1] == 2:
                # Column 1's label, read off the export's own outputs, in case
                # the data's label names differ from the training run's.
                positives = labels == _column_names(probabilities, predicted, label_names)[1]
                both = positives.any() and not positives.all()
                metrics["auc"] = round(binary_auc(probabilities[:, 1], positives), 5) if both else None
            return metrics

        texts, labels = data.raw["test"]
        pieces, piece_labels = sentence_pieces(texts, labels)
        return {
            **scores(texts, labels),
            "examples": len(texts),
            **{f"pieces_{k}": v for k, v in scores(pieces, piece_labels).items()},
            "pieces": len(pieces),
        }

    def predict_export(self, loaded, inputs, metadata=None, options=None):
        import tensorflow as tf

        out = loaded.signatures["serving_default"](text=tf.constant(list(inputs), tf.string))
        labels = [label.decode("utf-8") for label in out["labels"].numpy()]
        probabilities = out["probabilities"].numpy()
        return [
            {"text": text, "label": label, "probability": round(float(p.max()), 4)}
            for text, label, p in zip(inputs, labels, probabilities)
        ]

    def format_prediction(self, prediction):
        return f"{prediction['label']}\t{prediction['probability']:.4f}\t{prediction['text'][:100]}"


class SentimentClassifier:
    """A sentiment classifier fitted on your own texts: raw strings in,
    labels and probabilities out, on any Keras backend.

    `from_data` fits a `SentimentPreprocessor` (the vocabulary) on your
    training texts and builds the compiled Keras model on its token ids;
    `fit`, `evaluate` and `predict` take raw texts, which `tf.data` turns
    into ids before the model sees them, and `export` writes the SavedModel
    that `rnnapps serve` and TensorFlow Serving serve (strings in,
    `probabilities` and `labels` out), also when the model trained on JAX.

    Texts and labels may be lists, tuples, NumPy arrays, pandas Series or
    `tf.data.Dataset`s of scalars. Labels are strings or integers (the
    export returns them as strings); there must be two or more.

    Args:
        model: the compiled `keras.Model` (token ids in, probabilities out).
        preprocessor: the `SentimentPreprocessor` that makes its ids.
        label_names: the labels, in the order of the model's outputs.
        config: the `SentimentConfig` it was built with.

    Attributes:
        model, preprocessor, label_names, config: as given.
        info: what `from_data` learnt besides the vocabulary (with an
            encoder: the language model's fine-tuning report), saved
            with the export.

    Example:

    >>> from rnnapps.tasks.sentiment import SentimentClassifier
    >>> texts = ["Great tea, lovely taste", "Stale and bitter, awful",
    ...          "I love this tea", "Bitter, I hate it"] * 8
    >>> labels = ["good", "bad", "good", "bad"] * 8
    >>> classifier = SentimentClassifier.from_data(
    ...     texts, labels, vocabulary_size=50, sequence_length=8, embedding_dim=8, units=8)
    >>> history = classifier.fit(texts, labels, epochs=2, batch_size=8, verbose=0)
    >>> len(history.history["loss"])
    2
    >>> prediction = classifier.predict(["Great tea"])[0]
    >>> prediction["label"] in ("bad", "good"), sorted(prediction["probabilities"])
    (True, ['bad', 'good'])
    >>> sorted(classifier.evaluate(texts, labels, verbose=0))
    ['accuracy', 'auc', 'loss']
    """

    def __init__(self, model, preprocessor, label_names, config=None):
        self.model = model
        self.preprocessor = preprocessor
        self.label_names = list(label_names)
        self.config = config if config is not None else SentimentConfig()
        self.info = {}

    @classmethod
    def from_data(cls, texts, labels, config=None, log=None, **overrides):
        """Fits the preprocessor on `texts` and builds the compiled model.

        Args:
            texts: the training texts (the vocabulary is theirs).
            labels: their labels: every label the model can predict.
            config: a `SentimentConfig` (default: the default settings);
                with `encoder` set, the classifier starts from that language
                model (ULMFiT), fine-tuned on `texts` first.
            log: a function that gets progress lines (default: none).
            **overrides: fields of `config` to change, e.g. `units=32`.

        Returns:
            A `SentimentClassifier`, untrained (`fit` trains it).
        """
        import keras

        config = _with_overrides(config, overrides)
        texts, labels = _texts_and_labels(texts, labels)
        label_names = _label_names(labels)
        keras.utils.set_random_seed(config.seed)
        log = log or (lambda *lines: None)
        preprocessor, language_model, encoder_info = fit_preprocessor(config, texts, log=log)
        if language_model is None:
            from rnnapps.tasks.sentiment import model

            classifier = cls(
                model.build_model(config, preprocessor.vocabulary_size, len(label_names)),
                preprocessor, label_names, config)
            return classifier
        steps = -(-len(texts) // config.batch_size)
        built, report = build_pretrained_model(
            config, language_model, texts, len(label_names), steps, log=log)
        classifier = cls(built, preprocessor, label_names, config)
        classifier.info["encoder"] = {**encoder_info, **report}
        return classifier

    def fit(self, x, y, validation_data=None, epochs=None, batch_size=None, callbacks=None,
            verbose="auto"):
        """Trains on texts `x` with labels `y` (reshuffled every epoch);
        `validation_data` is `(texts, labels)`. `epochs` and `batch_size`
        default to the config's. Returns the Keras `History`."""
        batch_size = batch_size or self.config.batch_size
        train = self._dataset(x, y, batch_size, shuffle_seed=self.config.seed)
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a (texts, labels) pair. Received: "
                                 f"{type(validation_data).__name__}")
            validation = self._dataset(*validation_data, batch_size, names=(
                "validation_data texts", "validation_data labels"))
        return self.model.fit(
            train, validation_data=validation,
            epochs=self.config.epochs if epochs is None else epochs, callbacks=callbacks,
            shuffle=False,  # the dataset reshuffles itself every epoch
            verbose=verbose)

    def predict_probabilities(self, x, batch_size=256):
        """`(len(x), classes)` NumPy probabilities, columns in the order of
        `label_names`."""
        return predict_probabilities(self.model, self.preprocessor, _texts(x, "x"), batch_size)

    def predict(self, x, batch_size=256):
        """One dict per text of `x`: `{"label": the most probable label,
        "probabilities": {label: probability}}`."""
        probabilities = self.predict_probabilities(x, batch_size)
        return [{"label": self.label_names[int(np.argmax(p))],
                 "probabilities": {name: float(v) for name, v in zip(self.label_names, p)}}
                for p in probabilities]

    def evaluate(self, x, y, batch_size=256, verbose="auto"):
        """`{"loss", "accuracy"}` on texts `x` with labels `y`, and `auc`
        for two classes (ranking by the probability of `label_names[1]`;
        `None` when `y` holds one label only)."""
        dataset = self._dataset(x, y, batch_size)
        metrics = self.model.evaluate(dataset, return_dict=True, verbose=verbose)
        metrics = {name: round(float(value), 5) for name, value in metrics.items()}
        if len(self.label_names) == 2:
            texts, labels = _texts_and_labels(x, y)
            ids = self._label_ids(labels, "y")
            probabilities = predict_probabilities(self.model, self.preprocessor, texts, batch_size)
            metrics["auc"] = classifier_metrics(probabilities, ids)["auc"]
        return metrics

    def save(self, folder):
        """Writes a training checkpoint to `folder`: the model (`model.keras`)
        and `task.json` (the config, the labels and the preprocessor's
        vocabulary), which `rnnapps export sentiment --checkpoint FOLDER`
        exports on any machine with TensorFlow. Returns the folder's path."""
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder / "model.keras"))
        info = {
            "name": "python", "sizes": {},
            "label_names": [str(name) for name in self.label_names],
            "preprocessor": _preprocessor_config(self.preprocessor), **self.info,
        }
        (folder / "task.json").write_text(json.dumps(
            export_metadata(SentimentTask(), self.config, info), indent=2, default=str))
        return folder

    def export(self, export_dir="saved_models"):
        """Writes the SavedModel (raw strings in; `probabilities` and
        `labels` out, the labels as strings) to
        `export_dir/sentiment/<next version>/` and returns that folder. It is
        built on TensorFlow, in a subprocess when Keras runs on another
        backend (`rnnapps.task.export_checkpoint`)."""
        folder = pathlib.Path(tempfile.mkdtemp(prefix="rnnapps-sentiment-"))
        try:
            return export_checkpoint(SentimentTask.name, self.save(folder), export_dir)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _label_ids(self, labels, name):
        index = {label: i for i, label in enumerate(self.label_names)}
        unknown = sorted({repr(label) for label in labels if label not in index})
        if unknown:
            raise ValueError(f"{name} must hold the labels the classifier was built with "
                             f"({', '.join(map(repr, self.label_names))}). Received: "
                             f"{', '.join(unknown[:3])}")
        return np.array([index[label] for label in labels], np.int32)

    def _dataset(self, x, y, batch_size, shuffle_seed=None, names=("x", "y")):
        texts, labels = _texts_and_labels(x, y, names)
        ids = self._label_ids(labels, names[1])
        return preprocessed(make_dataset(texts, ids, batch_size, shuffle_seed), self.preprocessor)


def _with_overrides(config, overrides):
    if config is None:
        config = SentimentConfig()
    if not isinstance(config, SentimentConfig):
        raise ValueError(f"config must be a SentimentConfig. Received: {type(config).__name__}")
    fields = {field.name for field in dataclasses.fields(SentimentConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{unknown[0]} is not a SentimentConfig field. Received: "
                         f"{unknown[0]}={overrides[unknown[0]]!r}")
    return dataclasses.replace(config, **overrides)


def _texts(x, name):
    """`x` as a non-empty list of strings."""
    texts = raw_values(x, name)
    if not texts:
        raise ValueError(f"{name} is empty: give at least one text")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name} must hold strings. Received: {text!r} "
                             f"({type(text).__name__}) at index {i}")
    return texts


def _texts_and_labels(x, y, names=("x", "y")):
    texts = _texts(x, names[0])
    labels = raw_values(y, names[1])
    if len(texts) != len(labels):
        raise ValueError(f"{names[0]} and {names[1]} must have the same length. Received: "
                         f"{len(texts)} texts and {len(labels)} labels")
    return texts, labels


def _label_names(labels):
    """The sorted labels: all strings or all integers, two or more."""
    def is_int(label):
        return isinstance(label, int) and not isinstance(label, bool)

    if not (all(isinstance(label, str) for label in labels) or all(map(is_int, labels))):
        odd = next(label for label in labels if not isinstance(label, type(labels[0]))
                   or not isinstance(label, (str, int)) or isinstance(label, bool))
        raise ValueError(f"labels must be all strings or all integers. Received: {odd!r} "
                         f"({type(odd).__name__}) among {type(labels[0]).__name__} labels")
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError(f"labels must hold two or more classes. Received: only {names[0]!r}")
    return names


def _preprocessor_config(preprocessor):
    """What the export needs to rebuild `preprocessor` (JSON)."""
    return {"vocabulary": preprocessor.vocabulary,
            "sequence_length": preprocessor.sequence_length}


def _serve_in_batches(loaded, texts, batch_size=256):
    """The export's `probabilities` and `labels` (decoded) for `texts`."""
    import tensorflow as tf

    serve = loaded.signatures["serving_default"]
    probabilities, labels = [], []
    for start in range(0, len(texts), batch_size):
        out = serve(text=tf.constant([str(t) for t in texts[start:start + batch_size]], tf.string))
        probabilities.append(out["probabilities"].numpy())
        labels.extend(label.decode("utf-8") for label in out["labels"].numpy())
    if not probabilities:  # no texts: ask the export for its number of classes
        probabilities.append(serve(text=tf.constant([""]))["probabilities"].numpy()[:0])
    return np.concatenate(probabilities), np.asarray(labels, object)


def _column_names(probabilities, predicted, fallback):
    """The label each probability column stands for: the export's `labels`
    where it chose that column, else `fallback` (the data's label names)."""
    classes = probabilities.shape[1]
    names = list(fallback) if len(fallback) == classes else [None] * classes
    chosen = probabilities.argmax(axis=1)
    for column in np.unique(chosen):
        names[column] = predicted[chosen == column][0]
    return names
