"""Translation (many-to-many): source strings in, translated strings out.

An encoder-decoder LSTM (Sutskever, Vinyals & Le 2014) with Luong attention;
for German -> English, the source is fed with its word-by-word Ding dictionary
gloss, which the decoder may copy from (a pointer-generator). SentencePiece
subwords (keras-hub), tied embeddings, label smoothing, beam search with a
length penalty, BLEU and chrF with sacrebleu next to the dictionary lookup's;
the source can be fed backwards (`--reverse`). Trains on JAX or TensorFlow.
From the command line: `rnnapps train translation`; from Python:

    from rnnapps.tasks.translation import Translator

    translator = Translator.from_data(pairs)      # [(source, target), ...]
    translator.fit(sources, targets, validation_data=(val_sources, val_targets))
    translator.predict(["Wie spät ist es?"])      # strings in, strings out
    translator.evaluate(test_sources, test_targets)  # {"bleu", "chrf", ...}
    translator.export("saved_models")

The modules: `config` (settings), `data` (pairs, splits, tf.data),
`preprocessor` (`TranslationPreprocessor`: SentencePiece and the gloss, in
TensorFlow ops), `model` (`Seq2Seq`, `keras.ops`), `task` (the CLI task and
`Translator`), `lexicon` and `gloss` (the dictionary).
"""

from rnnapps.tasks.translation.config import PRESETS
from rnnapps.tasks.translation.config import TranslationConfig
from rnnapps.tasks.translation.data import load_examples
from rnnapps.tasks.translation.task import TranslationTask
from rnnapps.tasks.translation.task import Translator
from rnnapps.tasks.translation.task import build_model
from rnnapps.tasks.translation.task import corpus_scores
from rnnapps.tasks.translation.task import dictionary_lookup
from rnnapps.tasks.translation.task import load_data
from rnnapps.tasks.translation.task import perplexity
from rnnapps.tasks.translation.task import translate_texts
from rnnapps.tasks.translation.task import translator

__all__ = [
    "TranslationConfig", "PRESETS", "TranslationTask", "Translator", "TranslationPreprocessor",
    "load_data", "load_examples", "build_model", "translator", "translate_texts",
    "corpus_scores", "perplexity", "dictionary_lookup", "task",
]


def __getattr__(name):
    # Imported when first used: the `rnnapps` command imports this package
    # before it chooses the Keras backend, so nothing here may import Keras.
    if name == "TranslationPreprocessor":
        from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor

        return TranslationPreprocessor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Last: the Task instance `rnnapps.tasks.get_task("translation")` returns
# (it shadows the `task` submodule's name on the package).
task = TranslationTask()
