"""Settings of the captioning task: a dataclass, presets, CLI flags override."""

import dataclasses

from rnnapps.task import config_field as _field

BACKBONE_CHOICES = ("none", "mobilenet_v2", "resnet50", "efficientnet_b0", "densenet121")
DECODER_CHOICES = ("show_and_tell", "attention")


@dataclasses.dataclass
class CaptioningConfig:
    # === Data ===
    data: str = _field(
        "emoji",
        "emoji (emoji drawn from the Noto Color Emoji font, Debian fonts-noto-color-emoji, "
        "captioned with their CLDR names), coco_captions (tensorflow-datasets) or the path "
        "of a CSV file with a header line, an image path (relative to the CSV) and a caption "
        "per row, and optionally a split column (train, validation or test)",
    )
    # A CSV's own header names: `--image-column file_name --caption-column text`.
    image_column: str = _field("image", "CSV data: the column of image paths")
    caption_column: str = _field("caption", "CSV data: the column of captions")
    train_size: int = _field(0, "use only the first N training images (0 = all)")
    image_size: int = _field(64, "images are resized to SIZE x SIZE pixels")
    # === Captions (SentencePiece, fitted on the training captions, inside the export) ===
    vocabulary_size: int = _field(
        1_000, "SentencePiece pieces fitted on the training captions (ids 0-3 reserved)"
    )
    max_length: int = _field(
        24, "most tokens per caption: longer training captions are cut, captions stop there"
    )
    # === Model ===
    backbone: str = _field(
        "none", "image encoder: none (a small CNN trained from scratch) or a "
        "keras.applications network", choices=BACKBONE_CHOICES,
    )
    backbone_weights: str = _field(
        None, "weights for the backbone: imagenet (keras.applications downloads them once "
        "into ~/.keras/models) or the path of a weights file (e.g. a *_notop.h5 copied "
        "from a machine online); default: random initial weights"
    )
    fine_tune: bool = _field(False, "train the backbone's weights too (default: frozen)")
    filters: str = _field(
        "32,64,128,256", "the small CNN's convolution widths, one conv-BN-ReLU(-pool) block each"
    )
    decoder: str = _field(
        "attention", "show_and_tell (the image sets the decoder's initial state) or attention "
        "(Show, Attend and Tell: soft attention over the CNN's feature map at every word)",
        choices=DECODER_CHOICES,
    )
    feature_map: int = _field(
        0, "attention decoder: the side of the grid of image regions it attends over "
        "(image size / a power of two; 0: image size / 8, 8x8 regions of 64x64 images)"
    )
    # Chosen on validation (benchmarks/captioning_quality.py, seed 0): best
    # validation loss 3.039 without the penalty against 3.201 with weight 1.
    attention_penalty: float = _field(
        0.0, "attention decoder: weight of the doubly stochastic regularisation (0 = off)"
    )
    positions: bool = _field(
        False, "attention decoder: add a learned embedding of each region's place in the grid "
        "to the regions it attends over (where a region is, not only what it holds)"
    )
    cell: str = _field("lstm", "recurrent cell of the decoder", choices=("lstm", "gru", "irnn"))
    ensemble: int = _field(
        1, "captioners trained side by side from different initial weights, each on its own "
        "loss, captioning as one (the mean of their word probabilities; one export)"
    )
    units: int = _field(256, "recurrent units of the decoder")
    embedding_dim: int = _field(128, "word embedding size")
    # 3,096 training images: the decoder overfits within a few epochs
    # without strong regularization (benchmarks/captioning_quality.py:
    # validation BLEU-1 beam 41.1 -> 43.2 with these two).
    dropout: float = _field(0.5, "dropout on the image embedding, word embeddings and outputs")
    augment: float = _field(
        0.1, "while training, shift and zoom images at random by up to this fraction (0 = off)"
    )
    # Chosen on validation (benchmarks/captioning_quality.py, seed 0): best
    # validation loss 3.001 with half the emoji redrawn against 3.039 with all.
    # None: 0.5 on the emoji data, off on other data (which has no glyphs to
    # redraw); asking for it on a CSV is an error, not silently ignored.
    redraw: float = _field(
        None, "while training, the share of emoji drawn anew each epoch: at 50-100% of their "
        "size, anywhere on the canvas, on a random background colour (emoji data only; "
        "default: 0.5 on emoji, 0 = off)"
    )
    # === Training ===
    epochs: int = _field(24, "most epochs; early stopping may end sooner")
    batch_size: int = _field(32, "image-caption pairs per training step")
    learning_rate: float = _field(1e-3, "Adam learning rate")
    lr_schedule: str = _field(
        "constant", "constant, or cosine: the learning rate falls along a cosine to a tenth of "
        "itself over the epoch cap", choices=("constant", "cosine"),
    )
    clipnorm: float = _field(5.0, "ClippedOptimizer threshold on the global gradient norm")
    # 3 (was 5): on seeds 0-2 no validation loss improved after more than 2
    # epochs without one, so the same best epochs (12, 11, 13) two epochs sooner.
    patience: int = _field(3, "epochs without validation improvement before stopping")
    # 3: chosen on validation BLEU-4 over seeds 0-2 against 1, 4 and the
    # epochs around the best (docs/captioning.md).
    average_epochs: int = _field(
        3, "rnnapps train: early stopping restores the average of the weights of the best epoch "
        "(by validation loss) and of the N - 1 epochs before it (1 = the best epoch's alone)")
    seed: int = _field(0, "random seed (weights, shuffling)")
    # === Decoding (a setting of the export too) ===
    beam_size: int = _field(3, "beams kept while decoding; 1 = greedy")
    length_penalty: float = _field(
        0.6, "alpha of the GNMT length normalisation of beam scores (0 = none)"
    )
    # Chosen on validation (benchmarks/captioning_quality.py, 3 seeds,
    # standard and redrawn drawings): docs/captioning.md, "Consensus reranking".
    rerank: int = _field(
        3, "the beam's caption competes with the captions of the K nearest training images, "
        "by likelihood + consensus (0 = off; the export keeps the training captions)"
    )
    consensus: float = _field(
        32.0, "weight of the candidates' n-gram agreement with the K retrieved captions"
    )
    rerank_confidence: float = _field(
        0.95, "the agreement counts fully for an image whose nearest training image has cosine "
        "similarity 1, not at all below this (linear in between): images unlike the training "
        "images (an emoji drawn elsewhere, at another size) keep the generated caption"
    )
    # Chosen on validation (seeds 0-2): docs/captioning.md, "Decoding with the
    # retrieved captions".
    retrieval: float = _field(
        0.6, "beam search mixes the model's next-piece probabilities with the votes of the "
        "--rerank retrieved captions that go on from the caption so far, by this weight "
        "(times the --rerank-confidence fade; a kNN language model over them; 0 = off)"
    )
    rerank_beams: bool = _field(
        False, "every caption of the beam competes in the reranking, not only its best"
    )
    # === Outputs ===
    export_dir: str = _field("saved_models", "exports go to EXPORT_DIR/captioning/<version>/")
    checkpoint_dir: str = _field(
        None, "checkpoints (default: EXPORT_DIR/.checkpoints/captioning/<run id>)"
    )
    tensorboard_dir: str = _field(None, "write TensorBoard logs here")


PRESETS = {
    "emoji": CaptioningConfig(),
    # Show and Tell's setting on COCO, with a pretrained backbone from a
    # local weights file (--backbone-weights PATH).
    "coco_captions": CaptioningConfig(
        data="coco_captions", image_size=224, backbone="mobilenet_v2", vocabulary_size=8_000,
        units=512, embedding_dim=512, max_length=24, epochs=10, batch_size=64, patience=2,
        rerank=0,  # 118k remembered images would weigh 600 MB in the export
    ),
}
