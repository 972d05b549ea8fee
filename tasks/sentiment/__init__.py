"""Sentiment classification (many-to-one): text in, label and probability out.

Use it from the command line (`rnnapps train sentiment`) or from Python:

    from rnnapps.tasks import sentiment

    config = sentiment.SentimentConfig(epochs=3, cell="gru")
    data = sentiment.load_data(config)            # tf.data: (text, label id)
    model = sentiment.build_model(config, data.raw["train"][0], len(data.info["label_names"]))
    model.fit(data.train, validation_data=data.validation, epochs=config.epochs)
"""

import numpy as np

from rnnapps.task import Task
from rnnapps.tasks.sentiment.config import PRESETS
from rnnapps.tasks.sentiment.config import SentimentConfig
from rnnapps.tasks.sentiment.data import load_data
from rnnapps.tasks.sentiment.data import load_examples

__all__ = ["SentimentConfig", "PRESETS", "SentimentTask", "load_data", "load_examples", "build_model", "task"]


class SentimentTask(Task):
    name = "sentiment"
    config_class = SentimentConfig
    presets = PRESETS
    # The flags `rnnapps evaluate sentiment` takes to load a test split.
    data_fields = ("data", "text_column", "label_column", "batch_size", "seed")
    predict_help = "texts to classify ('-' reads one text per line from stdin)"

    def load_data(self, config):
        return load_data(config)

    def build_model(self, config, data):
        return build_model(config, data.raw["train"][0], len(data.info["label_names"]))

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
        texts, labels = data.raw["test"]
        predicted = []
        serve = loaded.signatures["serving_default"]
        for start in range(0, len(texts), 256):
            import tensorflow as tf

            out = serve(text=tf.constant(list(texts[start:start + 256])))
            predicted.extend(label.decode("utf-8") for label in out["labels"].numpy())
        accuracy = float(np.mean(np.array(predicted, object) == np.asarray(labels, object)))
        return {"accuracy": round(accuracy, 5), "examples": len(texts)}

    def predict_export(self, loaded, inputs, metadata=None):
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


def build_model(config, train_texts, num_classes):
    """A compiled sentiment classifier; see `rnnapps.tasks.sentiment.model`."""
    # Imported here so that reading the config (e.g. `rnnapps train
    # sentiment --help`) does not import Keras and TensorFlow.
    from rnnapps.tasks.sentiment import model

    return model.build_model(config, train_texts, num_classes)
