"""Settings of the sentiment task: a dataclass, presets, CLI flags override."""

import dataclasses


from rnnapps.task import config_field as _field


@dataclasses.dataclass
class SentimentConfig:
    # === Data ===
    data: str = _field(
        "amazon_fine_food",
        "a dataset name (amazon_fine_food, imdb_reviews) or the path of a CSV/TSV file",
    )
    text_column: str = _field("text", "CSV/TSV column holding the text")
    label_column: str = _field("label", "CSV/TSV column holding the label")
    # Your own held-out files (same columns) instead of cuts of --data.
    validation_data: str = _field(
        None, "a CSV/TSV file to validate on (early stopping) instead of a tenth of --data "
        "cut by hash; all its rows, or those whose 'split' column says validation "
        "(default: none)",
    )
    test_data: str = _field(
        None, "a CSV/TSV file to test on instead of a tenth of --data cut by hash; all its "
        "rows, or those whose 'split' column says test; `rnnapps evaluate` scores it too "
        "(default: none)",
    )
    # === Preprocessing (SentimentPreprocessor: in tf.data and in the export) ===
    # The 8,000 most frequent words: about those seen twice or more in the
    # default training texts (TF-IDF baselines use min_df=2 for the same reason).
    # Rarer words share one OOV id, which keeps the model from memorising them.
    vocabulary_size: int = _field(8_000, "largest vocabulary, OOV and padding included")
    # Reviews have a median of ~50 words; 200 keeps 95% whole.
    sequence_length: int = _field(200, "tokens kept per text (longer texts are cut)")
    # === Pretrained encoder (ULMFiT) ===
    encoder: str = _field(
        "", "start the vocabulary, embedding and recurrent layers from a language model: a "
        "next_word preset (wordnet: trained once into ~/.cache/rnnapps) or the path of a "
        "next_word checkpoint; its sizes and cell replace the settings below "
        "(default: none, train from scratch)",
    )
    # 4 epochs lower the language model's perplexity on held-out review
    # sentences from 654 to 138 (2 epochs: 159).
    lm_epochs: int = _field(
        4, "with --encoder: epochs of fine-tuning the language model on the training texts first"
    )
    unfreeze: bool = _field(
        True, "with --encoder: discriminative learning rates (each lower layer learns 2.6x "
        "slower) and gradual unfreezing (one more layer group trains each epoch)",
    )
    # === Model ===
    cell: str = _field("lstm", "recurrent cell of the encoder", choices=("lstm", "gru", "irnn"))
    bidirectional: bool = _field(False, "read the text in both directions")
    reverse: bool = _field(False, "feed the words backwards (ReverseSequence)")
    pooling: str = _field(
        "last", "summary of the text: the encoder's last state, the max/mean over its steps, "
        "or all three concatenated (concat, as in ULMFiT)",
        choices=("last", "max", "mean", "concat"),
    )
    embedding_dim: int = _field(64, "word embedding size")
    units: int = _field(64, "recurrent units (per direction)")
    # 4,000 reviews overfit within two epochs; strong dropout holds that off.
    dropout: float = _field(0.5, "dropout on the embeddings and on the encoder output")
    # === Training ===
    epochs: int = _field(10, "most epochs; early stopping may end sooner")
    batch_size: int = _field(32, "examples per training step")
    learning_rate: float = _field(1e-3, "Adam learning rate")
    # Pascanu et al.: clip the global gradient norm; 1.0 rarely binds for LSTMs.
    clipnorm: float = _field(1.0, "ClippedOptimizer threshold on the global gradient norm")
    patience: int = _field(2, "epochs without validation improvement before stopping")
    seed: int = _field(0, "random seed (weights, shuffling)")
    # === Outputs ===
    export_dir: str = _field("saved_models", "exports go to EXPORT_DIR/sentiment/<version>/")
    checkpoint_dir: str = _field(
        None, "checkpoints (default: EXPORT_DIR/.checkpoints/sentiment/<run id>)"
    )
    tensorboard_dir: str = _field(None, "write TensorBoard logs here")


PRESETS = {
    "amazon_fine_food": SentimentConfig(),
    # ULMFiT from the WordNet language model, with the settings that did best
    # on it (docs/sentiment.md): not better than the default yet.
    "pretrained": SentimentConfig(
        encoder="wordnet", pooling="concat", learning_rate=3e-3, dropout=0.3, lm_epochs=4
    ),
    "imdb_reviews": SentimentConfig(
        data="imdb_reviews", sequence_length=300, bidirectional=True, epochs=5
    ),
}
