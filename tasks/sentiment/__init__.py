"""Sentiment classification (many-to-one): text in, label and probability out.

Use it from the command line (`rnnapps train sentiment`) or from Python:

    from rnnapps.tasks import sentiment

    config = sentiment.SentimentConfig(epochs=3, cell="gru")
    data = sentiment.load_data(config)            # tf.data: (text, label id)
    model = sentiment.build_model(config, data.raw["train"][0], len(data.info["label_names"]))
    model.fit(data.train, validation_data=data.validation, epochs=config.epochs)
    print(sentiment.task.test_metrics(model, data))   # accuracy, AUC; on sentences too

Besides the test reviews, the metrics score the model on their sentences
(`data.sentence_pieces`), each labelled with its review's label: how it does
on one-liners. `metrics.binary_auc` is the AUC, in NumPy.
"""

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.tasks.sentiment.config import PRESETS
from rnnapps.tasks.sentiment.config import SentimentConfig
from rnnapps.tasks.sentiment.data import load_data
from rnnapps.tasks.sentiment.data import load_evaluation_examples
from rnnapps.tasks.sentiment.data import load_examples
from rnnapps.tasks.sentiment.data import rotten_tomatoes_snippets
from rnnapps.tasks.sentiment.data import sentence_pieces
from rnnapps.tasks.sentiment.metrics import binary_auc
from rnnapps.tasks.sentiment.metrics import classifier_metrics

__all__ = [
    "SentimentConfig", "PRESETS", "SentimentTask", "load_data", "load_examples", "sentence_pieces",
    "rotten_tomatoes_snippets", "binary_auc", "build_model", "build_pretrained_model", "task",
]


class SentimentTask(Task):
    name = "sentiment"
    config_class = SentimentConfig
    presets = PRESETS
    # The flags `rnnapps evaluate sentiment` takes to load what it scores.
    data_fields = ("data", "test_data", "text_column", "label_column", "batch_size", "seed")
    predict_help = "texts to classify ('-' reads one text per line from stdin)"

    def load_data(self, config):
        return load_data(config)

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
        num_classes = len(data.info["label_names"])
        if not config.encoder:
            return build_model(config, data.raw["train"][0], num_classes)
        return build_pretrained_model(config, data)

    def load_checkpoint(self, path):
        from rnnapps.tasks.sentiment import model  # noqa: F401  (registers its layers)

        return super().load_checkpoint(path)

    def serving_signature(self, model, info):
        import tensorflow as tf

        label_names = tf.constant(info["label_names"])

        def serve(text):
            probabilities = model(text, training=False)
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
            if len(texts) == 0:
                return classifier_metrics(np.zeros((0, len(index))), ids)
            probabilities = model.predict(np.asarray(texts, object), batch_size=256, verbose=0)
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
        probabilities = model.predict(np.array(texts, dtype=object), verbose=0)
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


task = SentimentTask()


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


def build_pretrained_model(config, data, log=print):
    """A compiled classifier whose encoder starts from the language model
    `config.encoder` (ULMFiT: `rnnapps.tasks.sentiment.encoder`): its
    vocabulary is extended with the training texts' words, it is fine-tuned
    on their sentences for `config.lm_epochs` epochs, then its layers become
    the classifier's. What that did goes into `data.info["encoder"]`."""
    from rnnapps.tasks.sentiment import encoder
    from rnnapps.tasks.sentiment import model

    language_model = encoder.load_language_model(config.encoder, log=log)
    # The texts the classifier trains on (validation included: no labels
    # are used), never the test texts.
    texts = [*data.raw["train"][0], *data.raw["validation"][0]]
    size = language_model.vocabulary_size
    language_model = encoder.extend_vocabulary(language_model, texts)
    log(f"Fine-tuning the language model on the training texts ({config.lm_epochs} epochs; "
        f"{language_model.vocabulary_size - size} of their words added to its vocabulary)")
    report = encoder.fine_tune_language_model(
        language_model, texts, config.lm_epochs, seed=config.seed
    )
    log(f"Language model perplexity on held-out training sentences: "
        f"{report['perplexity_before']} before, {report['perplexity_after']} after")
    data.info["encoder"] = {
        "language_model": config.encoder, "words_added": language_model.vocabulary_size - size,
        **report,
    }
    steps = int(data.train.cardinality())
    return model.build_model(
        config, None, len(data.info["label_names"]), encoder=language_model,
        steps_per_epoch=max(steps, 1),
    )


def build_model(config, train_texts, num_classes):
    """A compiled sentiment classifier; see `rnnapps.tasks.sentiment.model`."""
    # Imported here so that reading the config (e.g. `rnnapps train
    # sentiment --help`) does not import Keras and TensorFlow.
    from rnnapps.tasks.sentiment import model

    return model.build_model(config, train_texts, num_classes)
