"""Settings of the next-word task: a dataclass, presets, CLI flags override."""

import dataclasses

from rnnapps.task import config_field as _field


@dataclasses.dataclass
class NextWordConfig:
    # === Data ===
    data: str = _field(
        "wordnet",
        "wordnet (WordNet 3.0's glosses and examples, Debian wordnet-base), gcide (the GCIDE "
        "dictionary's definitions and quotations, Debian dict-gcide), english (both), or the "
        "path of a text file (one sentence or paragraph per line)",
    )
    max_sentences: int = _field(
        0, "use only the first N training sentences (0 = all; for quick runs)"
    )
    # === Tokenization (a TextVectorization layer inside the model) ===
    # 16,000 words cover 94.7% of WordNet's running words; the rest are [UNK].
    vocabulary_size: int = _field(
        16_000, "words in the vocabulary, padding, [UNK], <s> and </s> included"
    )
    max_length: int = _field(40, "words kept per sentence (99% of WordNet's have at most 24)")
    # === Model ===
    cell: str = _field("lstm", "recurrent cell", choices=("lstm", "gru", "irnn"))
    layers: int = _field(1, "stacked recurrent layers")
    # The output layer multiplies by the transposed embedding matrix (tied
    # embeddings), so its cost, the largest part of a step, grows with
    # embedding_dim: 128 trains 1.5x faster than 256 on 2 CPU cores.
    embedding_dim: int = _field(128, "word embedding size (also the output projection's)")
    units: int = _field(256, "recurrent units per layer")
    tie_embeddings: bool = _field(
        True, "one matrix for the input embedding and the output layer (Press & Wolf 2017)"
    )
    # Dropout as in AWD-LSTM (Merity et al. 2017), locked over time: the same
    # units are dropped at every step of a sentence.
    embedding_dropout: float = _field(0.1, "drop whole words from the input (embedding rows)")
    input_dropout: float = _field(0.2, "locked dropout on the embedded words")
    output_dropout: float = _field(0.3, "locked dropout on each recurrent layer's outputs")
    # Adaptive softmax: the same validation perplexity per epoch as the full
    # softmax (152 against 150 after one epoch), in a third of the time.
    softmax: str = _field(
        "adaptive", "how training scores the next word: full softmax, sampled softmax (Jean et al. "
        "2015) or adaptive softmax (Grave et al. 2017); predictions and the export always "
        "compute the full distribution", choices=("full", "sampled", "adaptive"),
    )
    softmax_samples: int = _field(1024, "words sampled per batch by --softmax sampled")
    # === Training ===
    epochs: int = _field(4, "most epochs; early stopping may end sooner")
    batch_size: int = _field(64, "sentences per training step")
    learning_rate: float = _field(2e-3, "Adam learning rate")
    clipnorm: float = _field(1.0, "ClippedOptimizer threshold on the global gradient norm")
    patience: int = _field(1, "epochs without validation improvement before stopping")
    seed: int = _field(0, "random seed (weights, shuffling)")
    # === Baseline and export ===
    # Order 5 is the strongest of orders 1-5 on WordNet (perplexity 622, 181,
    # 136, 128, 127 on a 10% held-out split; 115.6 on the task's test split)
    # and fits in seconds.
    ngram_order: int = _field(5, "order of the Kneser-Ney n-gram baseline (0 = none)")
    # Mikolov et al. 2011: the mixture of the two beats each (validation
    # perplexity and suggestions; docs/next_word.md).
    interpolate: bool = _field(
        True, "mix the n-gram's next-word distribution into the model's predictions and "
        "export, the weight chosen on the validation split's perplexity (needs --ngram-order "
        "2 or more)")
    continuation_length: int = _field(
        8, "most words of the export's greedy continuation"
    )
    # === Outputs ===
    export_dir: str = _field("saved_models", "exports go to EXPORT_DIR/next_word/<version>/")
    checkpoint_dir: str = _field(
        None, "checkpoints (default: EXPORT_DIR/.checkpoints/next_word/<run id>)"
    )
    tensorboard_dir: str = _field(None, "write TensorBoard logs here")


PRESETS = {
    "wordnet": NextWordConfig(),
    "gcide": NextWordConfig(data="gcide"),
    "english": NextWordConfig(data="english"),
}
