"""Captioning data: images, each with one or more reference captions.

Sources:

- `emoji` (default, offline): every fully-qualified emoji of the `emoji`
  package drawn with Pillow from the Noto Color Emoji font (Debian package
  `fonts-noto-color-emoji`, at its bitmap size 109 on a white 136x128
  canvas) and captioned with its CLDR name from the `emoji` package
  ("woman rowing boat medium skin tone", "Christmas tree"): 3,963 emoji, 33
  of which the installed font cannot draw (blank, left out), so 3,930
  pairs. The images are rendered once (about 10 s) and kept as PNG files
  in one archive in the cache (`~/.cache/rnnapps/captioning/`), with each
  emoji's glyph on a transparent background (`Split.glyphs`), from which
  training redraws it at other sizes, places and background colours, and
  `redrawn` makes the robustness check's images.
- `coco_captions` through tensorflow-datasets (downloads on first use;
  Karpathy's splits: train + restval / val / test, five captions per image).
- a CSV file of image and caption rows (a header naming the columns,
  `image` and `caption` unless told otherwise; image paths relative to the
  CSV's folder; several rows per image give it several captions; an
  optional `split` column of train/validation/test). Images that cannot be
  read or decoded are reported by name and left out (`Split.skipped`),
  never a crash.

Splits are deterministic and never share a caption. For emoji, captions are
grouped by their *base name* (skin tones removed, man/woman/men/women ->
person/people, lower case), and each group goes to train, validation or
test (80/10/10) by the MD5 hash of the base name, so the variants of one
emoji never straddle splits (they differ only by a skin colour, and would
otherwise let a test caption be read off its training twin). A CSV's images
are split by the MD5 of their path, all captions of an image together,
unless the file has a `split` column.
"""

import csv
import dataclasses
import hashlib
import io
import os
import pathlib
import re
import sys

from rnnapps.task import TaskError

__all__ = [
    "FONT_PACKAGE", "Split", "base_name", "emoji_caption", "font_path", "load_examples",
    "read_csv", "redraw", "redrawn", "render_emoji",
]

FONT_PACKAGE = "fonts-noto-color-emoji"
FONT_FILE = pathlib.PurePosixPath("usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# The font's bitmap strikes are 136x128 pixels at size 109.
FONT_SIZE = 109
CANVAS = (136, 128)
TFDS_NAMES = ("coco_captions",)
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Split:
    """The images of one split and their reference captions.

    Attributes:
        captions: per image, a list of one or more caption strings.
        names: per image, a name for messages (file name, emoji, COCO id).
        images: per image, the encoded image (PNG/JPEG bytes), or its path
            when `files` is true; `None` when `dataset` holds the images.
        files: whether `images` holds file paths.
        dataset: a `tf.data.Dataset` of decoded `uint8` images in the same
            order (tensorflow-datasets sources), instead of `images`.
        skipped: names of images left out because they could not be read
            or decoded.
        glyphs: per image, its subject alone as an RGBA PNG cropped to it
            (transparent around it), for redrawing it elsewhere (emoji);
            `None` for other sources.
    """

    captions: list
    names: list
    images: list = None
    files: bool = False
    dataset: object = None
    skipped: list = dataclasses.field(default_factory=list)
    glyphs: list = None

    def __len__(self):
        return len(self.captions)


# === The emoji data ===


def font_path():
    """The Noto Color Emoji font: `RNNAPPS_EMOJI_FONT`, the system, or the cache.

    Raises:
        TaskError: naming the Debian package when it is not installed.
    """
    from rnnapps.datasets import debian

    candidates = []
    if os.environ.get("RNNAPPS_EMOJI_FONT"):
        candidates.append(pathlib.Path(os.environ["RNNAPPS_EMOJI_FONT"]))
    candidates += [pathlib.Path("/") / FONT_FILE, debian.package_root(FONT_PACKAGE) / FONT_FILE]
    for path in candidates:
        if path.is_file():
            return path
    raise TaskError(
        f"the default captioning data is drawn with the Noto Color Emoji font from the Debian "
        f"package {FONT_PACKAGE}, which is not installed: run `sudo apt-get install "
        f"{FONT_PACKAGE}`, or without root `python -m rnnapps.datasets.debian {FONT_PACKAGE}` "
        f"(unpacks it into {debian.cache_dir()}), or set RNNAPPS_EMOJI_FONT to the font file"
    )


def emoji_caption(name):
    """The caption of an emoji from its `emoji` package name.

    >>> emoji_caption(":woman_rowing_boat_medium_skin_tone:")
    'woman rowing boat medium skin tone'
    >>> emoji_caption(":Christmas_tree:")
    'Christmas tree'
    """
    return " ".join(name.strip(":").replace("_", " ").split())


_SKIN_TONE = re.compile(r"\b(?:medium-light|medium-dark|light|medium|dark) skin tone\b")
_PERSON = {"man": "person", "woman": "person", "men": "people", "women": "people"}


def base_name(caption):
    """What the variants of one emoji share: the split's grouping key.

    >>> base_name("woman rowing boat medium skin tone")
    'person rowing boat'
    >>> base_name("kiss woman, man: dark skin tone, light skin tone")
    'kiss person person'
    """
    text = _SKIN_TONE.sub(" ", caption.lower())
    words = re.sub(r"[,:]", " ", text).split()
    return " ".join(_PERSON.get(w, w) for w in words)


def _cache_file(font):
    import emoji

    from rnnapps.datasets import debian

    digest = hashlib.md5(f"{font.stat().st_size}-{font.stat().st_mtime_ns}".encode()).hexdigest()
    name = f"emoji-v2-{emoji.__version__}-{digest[:8]}.npz"  # v2: with the glyphs
    return debian.cache_dir().parent / "captioning" / name


def _pack(blobs):
    import numpy as np

    return np.frombuffer(b"".join(blobs), np.uint8), np.cumsum([0] + [len(b) for b in blobs])


def _unpack(archive, key):
    blob, offsets = archive[key].tobytes(), archive[f"{key}_offsets"]
    return [blob[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def render_emoji(font=None):
    """`(emoji, caption, png_bytes, glyph_png_bytes)` for every fully-qualified
    emoji the font draws: the standard drawing (RGB, white canvas) and the
    glyph alone (RGBA, cropped to it).

    Rendered once and cached (an `.npz` archive written atomically into the
    rnnapps cache folder); emoji the font cannot draw are left out.
    """
    import numpy as np

    font = pathlib.Path(font) if font else font_path()
    cache = _cache_file(font)
    if cache.is_file():
        with np.load(cache) as archive:
            columns = archive["emoji"].tolist(), archive["captions"].tolist()
            columns += (_unpack(archive, "png"), _unpack(archive, "glyph"))
        return list(zip(*columns))
    rendered = _render(font)
    cache.parent.mkdir(parents=True, exist_ok=True)
    png, png_offsets = _pack([r[2] for r in rendered])
    glyph, glyph_offsets = _pack([r[3] for r in rendered])
    partial = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as file:
        np.savez(
            file, png=png, png_offsets=png_offsets, glyph=glyph, glyph_offsets=glyph_offsets,
            emoji=np.array([r[0] for r in rendered]),
            captions=np.array([r[1] for r in rendered]),
        )
    os.replace(partial, cache)
    return rendered


def _render(font):
    import emoji
    from PIL import Image
    from PIL import ImageDraw
    from PIL import ImageFont

    try:
        face = ImageFont.truetype(str(font), FONT_SIZE)
    except OSError as error:
        raise TaskError(f"cannot read the emoji font {font}: {error}")
    rendered = []
    for character, data in emoji.EMOJI_DATA.items():
        if data.get("status") != emoji.STATUS["fully_qualified"]:
            continue
        layer = Image.new("RGBA", CANVAS, (255, 255, 255, 0))
        ImageDraw.Draw(layer).text((0, 0), character, font=face, embedded_color=True)
        if layer.getbbox() is None:  # the font has no glyph for it
            continue
        image = Image.new("RGB", CANVAS, (255, 255, 255))
        image.paste(layer, mask=layer.getchannel("A"))
        rendered.append((
            character, emoji_caption(data["en"]), _png(image), _png(layer.crop(layer.getbbox()))
        ))
    return rendered


def _png(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# Users' drawings: the emoji at 50-100 % of the standard size, anywhere on
# the canvas, on a background of any colour.
REDRAW_SCALES = (0.5, 1.0)


def redraw(glyph, rng, scales=REDRAW_SCALES, canvas=CANVAS):
    """An RGB PNG of `glyph` (RGBA PNG bytes) redrawn on a `canvas`: scaled
    by a factor drawn from `scales`, at a random place where it fits
    whole, on a background of a random colour (`rng`: a numpy Generator).
    Pillow's Lanczos resampling, not the training pipeline's resizing."""
    from PIL import Image

    layer = Image.open(io.BytesIO(glyph)).convert("RGBA")
    scale = rng.uniform(*scales)
    fit = min(canvas[0] / layer.width, canvas[1] / layer.height, 1.0)
    size = (max(1, round(layer.width * fit * scale)), max(1, round(layer.height * fit * scale)))
    layer = layer.resize(size, Image.LANCZOS)
    position = (int(rng.integers(0, canvas[0] - size[0] + 1)),
                int(rng.integers(0, canvas[1] - size[1] + 1)))
    image = Image.new("RGB", canvas, tuple(int(v) for v in rng.integers(0, 256, 3)))
    image.paste(layer, position, mask=layer.getchannel("A"))
    return _png(image)


def redrawn(split, seed=0):
    """A copy of an emoji `split` with every image redrawn (`redraw`): the
    same captions, at other sizes, places and background colours; the same
    drawings for the same `seed` on every machine."""
    import numpy as np

    if split.glyphs is None:
        raise ValueError("only the emoji data has glyphs to redraw")
    rng = np.random.default_rng(seed)
    return dataclasses.replace(split, images=[redraw(g, rng) for g in split.glyphs])


def _bucket(key, buckets=10):
    return int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % buckets


def _split_of(key):
    """80/10/10 by the MD5 of `key`."""
    bucket = _bucket(key)
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def _emoji_splits():
    splits = {name: Split(captions=[], names=[], images=[], glyphs=[]) for name in SPLITS}
    for character, caption, png, glyph in render_emoji():
        split = splits[_split_of(base_name(caption))]
        split.captions.append([caption])
        split.names.append(character)
        split.images.append(png)
        split.glyphs.append(glyph)
    return splits


# === A CSV of image,caption rows ===


def read_csv(path, image_column="image", caption_column="caption", whole="split"):
    """`Split`s from a CSV of image and caption rows (see the module docstring).

    Args:
        path: the CSV file; a header line names its columns.
        image_column, caption_column: the header names of the image paths
            (relative to the CSV's folder) and of the captions.
        whole: where the images go when the file has no `split` column:
            "split" cuts them 80/10/10 by the MD5 of their path; "test"
            puts all of them in the test split (what `rnnapps evaluate`
            scores). A `split` column (train, validation or test on every
            row) always decides.

    Raises:
        TaskError: a missing file, a missing column, an empty image or
            caption cell or an unknown split (naming the line), or no
            readable image at all (naming the first problem).
    """
    import tensorflow as tf

    path = pathlib.Path(path)
    if not path.is_file():
        raise TaskError(f"no such data file: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except (UnicodeDecodeError, csv.Error) as error:
        raise TaskError(f"{path.name} is not a readable UTF-8 CSV file: {error}")
    if not rows:
        raise TaskError(f"{path.name} is empty; expected a header line naming the columns "
                        f"`{image_column}` and `{caption_column}`, then rows")
    header = [h.strip().lower() for h in rows[0]]
    missing = [(flag, name) for flag, name in (("--image-column", image_column),
                                               ("--caption-column", caption_column))
               if name.strip().lower() not in header]
    if missing:
        named = " and ".join(f"`{name}`" for _, name in missing)
        flags = " / ".join(flag for flag, _ in missing)
        raise TaskError(
            f"{path.name} needs a header line naming the columns `{image_column}` and "
            f"`{caption_column}`; it has no column {named} (name yours with {flags}). "
            f"Received: {','.join(rows[0])}"
        )
    image_index = header.index(image_column.strip().lower())
    caption_index = header.index(caption_column.strip().lower())
    split_index = header.index("split") if "split" in header else None
    captions, chosen = {}, {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(image_index, caption_index):
            raise TaskError(f"{path.name} line {line}: expected an image and a caption")
        image, caption = row[image_index].strip(), " ".join(row[caption_index].split())
        if not image or not caption:
            raise TaskError(f"{path.name} line {line}: empty {'image' if not image else 'caption'}")
        if split_index is not None:
            split = row[split_index].strip().lower() if len(row) > split_index else ""
            if split not in SPLITS:
                raise TaskError(f"{path.name} line {line}: the split column says {split!r}; "
                                f"expected one of {', '.join(SPLITS)}")
            if chosen.setdefault(image, split) != split:
                raise TaskError(f"{path.name} line {line}: {image} is in the {chosen[image]} "
                                f"split on an earlier line and in {split} here")
        captions.setdefault(image, []).append(caption)
    if not captions:
        raise TaskError(f"{path.name} has no {image_column},{caption_column} rows")

    splits = {name: Split(captions=[], names=[], images=[], files=True) for name in SPLITS}
    skipped, problems = [], []
    for image, image_captions in captions.items():
        file = path.parent / image
        problem = _unreadable(file, tf)
        if problem:
            print(f"warning: skipping {image}: {problem}", file=sys.stderr)
            skipped.append(image)
            problems.append(f"{image}: {problem}")
            continue
        if image in chosen:
            split = splits[chosen[image]]
        else:
            split = splits["test" if whole == "test" else _split_of(image)]
        split.captions.append(image_captions)
        split.names.append(image)
        split.images.append(str(file))
    if not any(len(s) for s in splits.values()):
        raise TaskError(f"none of the {len(captions)} images in {path.name} could be read "
                        f"(first: {problems[0]})")
    splits["train"].skipped = skipped
    return splits


def _unreadable(file, tf):
    """Why `file` cannot be used as an image, or `None` if it can."""
    try:
        data = file.read_bytes()
    except OSError as error:
        return f"cannot read the file ({error.strerror or error})"
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        return f"not a decodable image ({error.message.splitlines()[0][:120]})"
    return None


# === tensorflow-datasets ===


def _tfds(name):
    import tensorflow_datasets as tfds

    parts = {"train": "train+restval", "validation": "val", "test": "test"}
    splits = {}
    for split, tfds_split in parts.items():
        try:
            captions_only = tfds.load(
                name, split=tfds_split, shuffle_files=False,
                decoders={"image": tfds.decode.SkipDecoding()},
            )
        except Exception as error:  # DatasetNotFoundError, network errors...
            raise TaskError(f"cannot load {name} ({tfds_split}) with tensorflow-datasets: {error}")
        captions, names = [], []
        for example in captions_only.as_numpy_iterator():
            captions.append([t.decode("utf-8") for t in example["captions"]["text"]])
            names.append(str(example["image/id"]))
        images = tfds.load(name, split=tfds_split, shuffle_files=False).map(
            lambda example: example["image"]
        )
        splits[split] = Split(captions=captions, names=names, dataset=images)
    return splits


def load_examples(data, image_column="image", caption_column="caption", whole="split"):
    """The `Split`s (`train`, `validation`, `test`) of `data`: `emoji`, `coco_captions`
    (or another tfds name with its features) or the path of a CSV file
    (`read_csv`, with the other arguments).

    Raises:
        TaskError: the data cannot be found or read.
    """
    if data == "emoji":
        return _emoji_splits()
    if data.split("/")[0].split(":")[0] in TFDS_NAMES:
        return _tfds(data)
    if data.lower().endswith(".csv") or pathlib.Path(data).exists():
        return read_csv(data, image_column, caption_column, whole)
    raise TaskError(
        f"unknown data {data!r}: use emoji, coco_captions or the path of a CSV file of "
        "image,caption rows"
    )
