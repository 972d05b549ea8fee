"""Settings of the translation task: a dataclass, presets, CLI flags override."""

import dataclasses

from rnnapps.task import config_field as _field


@dataclasses.dataclass
class TranslationConfig:
    # === Data ===
    data: str = _field(
        "ding",
        "ding (German->English sentences of the Ding dictionary, Debian trans-de-en), "
        "a tensorflow-datasets name (wmt14_translate/de-en, ted_hrlr_translate/pt_to_en) "
        "or the path of a TSV file of source<TAB>target lines",
    )
    train_size: int = _field(
        0, "use only the first N training pairs (0 = all; for quick runs and learning curves)"
    )
    # The dictionary's word-by-word gloss fed with the source, copied from
    # by the decoder: validation BLEU 4.65 against 0.37 without it on the
    # Ding data (8 epochs, Luong attention; docs/translation.md).
    dictionary: str = _field(
        "auto", "feed the source followed by its word-by-word translation ('source = gloss'; "
        "the decoder copies from it) from a dictionary: FILE, a TSV of source word<TAB>target "
        "word lines (any language pair, any data); auto: the Ding dictionary where the data "
        "is German->English (ding, tfds de-en) and it is installed, else none; gloss: the "
        "Ding dictionary, required; none: no gloss",
    )
    dictionary_pairs: int = _field(
        0, "word and phrase pairs of the dictionary (--dictionary FILE, else the Ding "
        "dictionary for German->English data) that join the sentences in each training "
        "epoch, a fresh random sample every epoch (0 = the sentences alone)"
    )
    # === Tokenization (SentencePiece, fitted on the training split, inside the export) ===
    # ~15,000 short training sentences per side: 4,000 pieces for both
    # languages keep frequent words whole and spell rare ones from pieces.
    vocabulary_size: int = _field(
        4_000, "SentencePiece pieces, one vocabulary for both languages (ids 0-3 reserved)"
    )
    max_length: int = _field(
        48, "most tokens per sentence: longer sources are cut, longer training targets "
        "are left out, translations stop there"
    )
    # === Model ===
    cell: str = _field("lstm", "recurrent cell", choices=("lstm", "gru", "irnn"))
    layers: int = _field(1, "stacked recurrent layers in the encoder and in the decoder")
    # Sized for CPUs (a few minutes per epoch on 2 cores); on a GPU,
    # --units 512 --layers 2 is the usual next step.
    units: int = _field(128, "recurrent units per layer")
    embedding_dim: int = _field(128, "token embedding size")
    attention: str = _field(
        "luong", "attention of the decoder over the encoder outputs",
        choices=("none", "luong", "bahdanau"),
    )
    copy: bool = _field(
        None, "pointer-generator (See et al. 2017): the decoder may copy source tokens "
        "where it attends; default: on with attention (which it needs), off without"
    )
    reverse: bool = _field(
        None, "feed the source backwards (Sutskever et al.); default: on without "
        "attention, off with it"
    )
    # At the learning rate below, the validation loss stopped falling after
    # ~17 epochs at dropout 0.2 (3.979); 0.3 reached 3.946 (seed 0, 30 epochs;
    # docs/translation.md).
    dropout: float = _field(0.3, "dropout on the embeddings and between layers")
    # Tied embeddings with label smoothing 0.1: validation BLEU 4.48 / chrF
    # 25.6 against 4.24 / 24.9 (8 epochs, seed 0; docs/translation.md).
    tie_embeddings: bool = _field(
        True, "one embedding matrix for source, target and output (Press & Wolf 2017)"
    )
    # === Training ===
    # 30 epochs of ~40 s on 2 CPU cores: the default run takes 21-22 minutes
    # (data, training, test report, export; docs/translation.md).
    epochs: int = _field(30, "most epochs; early stopping may end sooner")
    batch_size: int = _field(64, "sentence pairs per training step")
    # Seed 0, 30 epochs, best validation loss: 4.007 at 1e-3 constant, 4.092
    # at 1e-3 falling along a cosine (too slow), 3.979 at 2e-3 along a cosine.
    learning_rate: float = _field(2e-3, "Adam learning rate (the peak, with a schedule)")
    lr_schedule: str = _field(
        "cosine", "constant, or cosine: the learning rate falls along a cosine to a tenth of "
        "itself over the epoch cap", choices=("constant", "cosine"),
    )
    # Sutskever et al. clipped the global norm at 5.
    label_smoothing: float = _field(
        0.1, "share of the target probability spread over the vocabulary (0 = none)"
    )
    clipnorm: float = _field(5.0, "ClippedOptimizer threshold on the global gradient norm")
    patience: int = _field(3, "epochs without validation improvement before stopping")
    seed: int = _field(0, "random seed (weights, shuffling)")
    # === Decoding (a setting of the export too) ===
    # Validation BLEU / chrF of the trained default (seed 0): beam 4, length
    # penalty 1.0: 8.12 / 30.10; 1.5: 8.29 / 30.67; 2.0 (the run before it):
    # lower BLEU; beam 8 at 1.5: 8.53 / 30.62 (+0.2 BLEU on two models, twice
    # the decoding time). Outputs are short (0.90 of the reference's length
    # at 1.0, 0.96 at 1.5), and chrF weighs recall twice.
    beam_size: int = _field(8, "beams kept while decoding; 1 = greedy")
    length_penalty: float = _field(
        1.5, "alpha of the GNMT length normalisation of beam scores (0 = none)"
    )
    # === Outputs ===
    export_dir: str = _field("saved_models", "exports go to EXPORT_DIR/translation/<version>/")
    checkpoint_dir: str = _field(
        None, "checkpoints (default: EXPORT_DIR/.checkpoints/translation/<run id>)"
    )
    tensorboard_dir: str = _field(None, "write TensorBoard logs here")

    @property
    def reversed_source(self):
        """Whether the source is reversed (the default depends on attention)."""
        return self.attention == "none" if self.reverse is None else bool(self.reverse)

    @property
    def copies(self):
        """Whether the decoder may copy (the default depends on attention)."""
        return self.attention != "none" if self.copy is None else bool(self.copy)


PRESETS = {
    "ding": TranslationConfig(),
    # The model before the dictionary gloss: the sentences alone, no
    # attention, source reversed (Sutskever et al.).
    "ding_plain": TranslationConfig(
        attention="none", dictionary="none", tie_embeddings=False, label_smoothing=0.0,
        length_penalty=0.6,
    ),
    "ding_attention": TranslationConfig(attention="luong", copy=False, dictionary="none"),
    # For a GPU: a wider model and vocabulary, longer training.
    "gpu": TranslationConfig(
        units=512, embedding_dim=256, vocabulary_size=8_000, batch_size=128, epochs=40,
        patience=5,
    ),
    "wmt14_translate/de-en": TranslationConfig(
        data="wmt14_translate/de-en", vocabulary_size=32_000, layers=2, units=512,
        embedding_dim=256, max_length=64, epochs=10,
    ),
}
