"""Draws docs/images/captioning_attention.png: where the attention decoder looks.

For a few emoji of the test split (none of them, nor any variant of them,
seen in training), the caption the trained attention captioner writes with
beam search and, for each piece of it, the attention weights over the
image's regions (Xu et al. 2015's soft attention: an 8x8 grid on the
default 64x64 images), upsampled and laid over the image. The first row
of each emoji is the standard drawing, the second the same emoji redrawn
smaller, elsewhere, on another background (`data.redrawn`, as the
robustness check draws them).

    rnnapps train captioning          # writes the checkpoint the figure reads
    python docs/figures/captioning_attention.py \\
        --checkpoint saved_models/.checkpoints/captioning/<run>/model.keras \\
        [--out docs/images/captioning_attention.png] [--count 4]

The image is written whole or not at all (`rnnapps.figures.save_figure`).
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = pathlib.Path(__file__).resolve().parents[1] / "images" / "captioning_attention.png"


def attention_rows(model, images, decoding):
    """Per image: `(pieces, maps)`: the caption's SentencePiece pieces as
    written (end token left out) and one `(rows, columns)` map per piece."""
    import numpy as np
    from keras import ops

    from rnnapps.text import END_ID

    tokens, _ = model.generate(
        images, beam_size=decoding["beam_size"], max_length=decoding["max_length"],
        length_penalty=decoding["length_penalty"],
    )
    maps = ops.convert_to_numpy(model.attention_maps(images, tokens))
    tokens = ops.convert_to_numpy(tokens)
    rows = []
    for ids, weights in zip(tokens, maps):
        length = int(np.argmax(ids == END_ID)) if (ids == END_ID).any() else len(ids)
        pieces = [str(model.tokenizer.id_to_token(int(i))).replace("\u2581", "") or "_"
                  for i in ids[:length]]
        rows.append((pieces, weights[:length]))
    return rows


def draw(model, split, decoding, indices, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from rnnapps.figures import save_figure
    from rnnapps.tasks.captioning import data as captioning_data
    from rnnapps.tasks.captioning import pipeline

    size = decoding["image_size"]
    moved = captioning_data.redrawn(split)
    drawings = []
    for i in indices:
        for source in (split, moved):
            drawings.append((i, pipeline.decode_image(tf.constant(source.images[i]), size).numpy()))
    rows = attention_rows(model, np.stack([d for _, d in drawings]), decoding)
    columns = 1 + max(len(pieces) for pieces, _ in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(1.3 * columns, 1.45 * len(rows)), squeeze=False
    )
    for row, ((index, image), (pieces, maps)) in enumerate(zip(drawings, rows)):
        image = image.astype("uint8")
        axes[row, 0].imshow(image)
        axes[row, 0].set_title(split.captions[index][0][:28], fontsize=6)
        for column, (piece, weights) in enumerate(zip(pieces, maps), start=1):
            ax = axes[row, column]
            ax.imshow(image)
            ax.imshow(weights / max(weights.max(), 1e-9), cmap="gray", alpha=0.6,
                      extent=(-0.5, size - 0.5, size - 0.5, -0.5), interpolation="bilinear")
            ax.set_title(piece, fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    figure.suptitle("Soft attention of each written piece (left: the image and its reference)",
                    fontsize=8)
    figure.tight_layout()
    return save_figure(figure, out, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True,
                        help="model.keras of a `rnnapps train captioning` run (attention decoder)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--count", type=int, default=4, help="test emoji to draw")
    args = parser.parse_args(argv)

    import json

    from rnnapps.task import TaskError
    from rnnapps.tasks import captioning
    from rnnapps.tasks.captioning.model import ShowAttendAndTell

    checkpoint = pathlib.Path(args.checkpoint)
    try:
        if not checkpoint.is_file():
            raise TaskError(f"no such checkpoint: {checkpoint}")
        model = captioning.task.load_checkpoint(str(checkpoint))
        if not isinstance(model, ShowAttendAndTell):
            raise TaskError(f"{checkpoint} is not an attention captioner (--decoder attention)")
        run = json.loads((checkpoint.parent / "task.json").read_text())
        decoding = run["data"]["decoding"]
        split = captioning.load_examples(run["config"]["data"])["test"]
        if split.glyphs is None:
            raise TaskError("the figure draws the emoji data (it redraws them)")
        # Evenly spread over the split: not chosen by how well they come out.
        step = max(len(split) // max(args.count, 1), 1)
        path = draw(model, split, decoding, list(range(0, len(split), step))[:args.count],
                    args.out)
    except (TaskError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
