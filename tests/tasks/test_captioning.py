"""The captioning task from raw data to a served SavedModel, on every backend.

The data and the Python API run on both test passes; what loads a
SavedModel in this process (evaluate, predict, the served graph) and the
minute-long quality test are `tensorflow_only` (the JAX run's export is
compared with the JAX model in `test_the_export_of_jax_weights_answers_as_the_jax_model`).
"""

import dataclasses
import io
import json
import pathlib

import numpy as np
import pytest

from cli_support import assert_one_line_error
from cli_support import assert_serves_empty_batch
from cli_support import last_json
from cli_support import run_cli_in_process
from rnnapps.task import TaskError
from rnnapps.tasks import captioning
from rnnapps.tasks.captioning import data as captioning_data
from rnnapps.tasks.captioning.task import _redraw

TINY = dict(
    train_size=300, image_size=24, feature_map=6, vocabulary_size=200, units=16,
    embedding_dim=8, epochs=1, batch_size=32, beam_size=2, max_length=12,
)


def encoded(color, size=(20, 30), kind="PNG"):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, kind)
    return buffer.getvalue()


def test_default_data_is_the_rendered_emoji_split_by_base_name(emoji_font):
    splits = captioning.load_examples("emoji")
    sizes = {name: len(split) for name, split in splits.items()}
    # Every fully-qualified emoji the `emoji` package lists (3,963 in 2.16), of
    # which the Debian font draws all but a few dozen; the bound follows the
    # installed package, whose newer releases add emoji.
    import emoji

    listed = sum(d.get("status") == emoji.STATUS["fully_qualified"] for d in emoji.EMOJI_DATA.values())
    assert 0.9 * listed <= sum(sizes.values()) <= listed
    assert 0.75 < sizes["train"] / sum(sizes.values()) < 0.85
    bases = {
        name: {captioning_data.base_name(c[0]) for c in split.captions}
        for name, split in splits.items()
    }
    assert not bases["train"] & bases["test"] and not bases["train"] & bases["validation"]
    assert not bases["validation"] & bases["test"]
    captions = {name: {c[0] for c in split.captions} for name, split in splits.items()}
    assert not captions["train"] & captions["test"]
    assert "Christmas tree" in set().union(*captions.values())
    # Real drawings: PNGs of 136x128 colour pixels, no blank one.
    from PIL import Image

    image = Image.open(io.BytesIO(splits["test"].images[0]))
    assert image.size == (136, 128) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    assert captioning.load_examples("emoji")["test"].captions == splits["test"].captions


def test_redrawn_emoji_are_the_same_glyphs_elsewhere(emoji_font):
    from PIL import Image

    test = captioning.load_examples("emoji")["test"]
    assert len(test.glyphs) == len(test.images)
    glyph = Image.open(io.BytesIO(test.glyphs[0]))
    assert glyph.mode == "RGBA" and glyph.getchannel("A").getextrema() == (0, 255)
    moved = captioning_data.redrawn(test)
    assert moved.captions == test.captions and len(moved.images) == len(test.images)
    # The same drawings for the same seed, others for another.
    assert captioning_data.redrawn(test).images == moved.images
    assert captioning_data.redrawn(test, seed=1).images != moved.images
    standard = [np.asarray(Image.open(io.BytesIO(png))) for png in test.images[:50]]
    redrawn = [np.asarray(Image.open(io.BytesIO(png))) for png in moved.images[:50]]
    assert all(image.shape == (128, 136, 3) for image in redrawn)
    corners = np.array([image[[0, 0, -1, -1], [0, -1, 0, -1]] for image in redrawn])
    # Mostly not on white, and the glyph smaller: more background than before.
    assert (corners.reshape(-1, 3) != 255).any(axis=1).mean() > 0.8

    def covered(image):  # the share of pixels that differ from the corner colour
        return (np.abs(image.astype(int) - image[0, 0]).sum(-1) > 30).mean()

    assert np.median([covered(i) for i in redrawn]) < 0.8 * np.median([covered(i) for i in standard])


def test_training_redraws_every_epoch_and_evaluation_does_not(emoji_font):
    import tensorflow as tf

    from rnnapps.tasks.captioning import pipeline
    from rnnapps.text import fit_sentencepiece

    splits = captioning.load_examples("emoji")
    train = splits["train"]
    train.captions, train.glyphs, train.images = train.captions[:40], train.glyphs[:40], None
    tokenizer = fit_sentencepiece([c[0] for c in train.captions], 60)
    redrawing = pipeline.make_dataset(train, tokenizer, 32, 24, 16, shuffle_seed=3, redraw=1.0)
    epoch = list(redrawing)
    # Every caption once an epoch, in batches of captions of about one length.
    assert sum(len(y) for _, y in epoch) == 40
    assert {x["caption_in"].shape[1] for x, _ in epoch} <= {8, 16, 24}
    images = np.concatenate([x["image"].numpy() for x, _ in epoch])
    assert images.shape == (40, 32, 32, 3) and 0 <= images.min() and images.max() <= 255
    one = dataclasses.replace(train, captions=train.captions[:1], glyphs=train.glyphs[:1])
    redrawing = pipeline.make_dataset(one, tokenizer, 32, 24, 16, shuffle_seed=3, redraw=1.0)
    first, second = (next(iter(redrawing))[0]["image"].numpy() for _ in range(2))
    assert not np.allclose(first, second)  # drawn anew each epoch
    # The same seed draws the same image; a glyph at scale 1 on white is the
    # standard drawing's size (placed anywhere it fits).
    glyph = tf.io.decode_png(splits["test"].glyphs[0], channels=4)
    seed = tf.constant([5, 6])
    np.testing.assert_array_equal(pipeline.redraw_image(glyph, seed, 32).numpy(),
                                  pipeline.redraw_image(glyph, seed, 32).numpy())
    same = pipeline.redraw_image(glyph, seed, 32, scales=(1.0, 1.0), white=1.0).numpy()
    standard = pipeline.decode_image(tf.constant(splits["test"].images[0]), 32).numpy()
    def ink(image):
        return (np.abs(image - 255.0).sum(-1) > 40).sum()

    assert 0.85 < ink(same) / ink(standard) < 1.15
    small = pipeline.redraw_image(glyph, seed, 32, scales=(0.5, 0.5), white=1.0).numpy()
    assert 0.15 < ink(small) / ink(standard) < 0.35
    validation = pipeline.make_dataset(splits["validation"], tokenizer, 32, 12, 40)
    a, b = (next(iter(validation))[0]["image"].numpy() for _ in range(2))
    np.testing.assert_array_equal(a, b)



def test_a_share_of_the_training_emoji_is_redrawn(emoji_font):
    from rnnapps.tasks.captioning import pipeline
    from rnnapps.text import fit_sentencepiece

    train = captioning.load_examples("emoji")["train"]
    train = dataclasses.replace(train, captions=[c[:1] for c in train.captions[:120]],
                                glyphs=train.glyphs[:120], images=train.images[:120])
    tokenizer = fit_sentencepiece([c[0] for c in train.captions], 100)
    standard = {
        caption[0]: image for caption, image in zip(
            train.captions, pipeline.image_dataset(train, 32).as_numpy_iterator())
    }
    tokens = {tuple(np.asarray(tokenizer(caption[0]))): caption[0] for caption in train.captions}

    def redrawn_share(dataset):
        kept = redrawn = 0
        for x, y in dataset:
            for image, target in zip(x["image"].numpy(), y.numpy()):
                caption = tokens[tuple(t for t in target if t not in (0, 3))]  # no padding, </s>
                same = np.array_equal(image, standard[caption])
                kept, redrawn = kept + same, redrawn + (not same)
        return redrawn / (kept + redrawn)

    half = pipeline.make_dataset(train, tokenizer, 32, 64, 16, shuffle_seed=3, redraw=0.5)
    shares = [redrawn_share(half) for _ in range(2)]
    assert all(0.3 < share < 0.7 for share in shares), shares
    assert redrawn_share(pipeline.make_dataset(
        train, tokenizer, 32, 64, 16, shuffle_seed=3, redraw=0.0)) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        pipeline.make_dataset(train, tokenizer, 32, 64, 16, shuffle_seed=3, redraw=1.5)

def test_caption_parts_on_the_emoji_split(emoji_font):
    splits = captioning.load_examples("emoji")
    parts = captioning.caption_parts(splits["test"].captions, splits["train"].captions)
    # No test caption occurs in training; most are made of training words,
    # the rest hold a word that none has (country names of flags, mostly).
    assert 0.3 < parts.count("composition") / len(parts) < 0.95
    words = {w for c in splits["train"].captions for w in c[0].lower().split()}
    rest = [c[0] for c, p in zip(splits["test"].captions, parts) if p == "rest"]
    assert "Denmark" in rest and all(set(c.lower().split()) - words for c in rest)


def test_skin_tone_variants_share_a_base_name():
    names = ["waving hand", "waving hand medium-dark skin tone", "waving hand light skin tone"]
    assert {captioning_data.base_name(n) for n in names} == {"waving hand"}
    assert captioning_data.base_name("man juggling") == captioning_data.base_name("woman juggling")


def test_missing_font_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNAPPS_CACHE", str(tmp_path))
    monkeypatch.delenv("RNNAPPS_EMOJI_FONT", raising=False)
    monkeypatch.setattr(captioning_data, "FONT_FILE", pathlib.PurePosixPath("nowhere/font.ttf"))
    with pytest.raises(TaskError, match="fonts-noto-color-emoji") as error:
        captioning.load_examples("emoji")
    assert "apt-get install fonts-noto-color-emoji" in str(error.value)


def test_coco_captions_loader_with_mock_data():
    import tensorflow as tf
    import tensorflow_datasets as tfds

    # tfds's automatic mock cannot build coco_captions' `objects` sequence
    # (its fields get different random lengths), so the examples are
    # given, in the dataset's own feature layout.
    def as_dataset(self, split, *args, **kwargs):
        count = {"train": 5, "restval": 3, "val": 2, "test": 2}
        size = sum(count[part] for part in str(split).replace("+", " ").split() if part in count)
        rng = np.random.default_rng(size)

        def examples():
            for i in range(size):
                yield {
                    "image": rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8),
                    "image/id": i,
                    "captions": {"text": [f"a photo number {i}", "two cats on a mat"],
                                 "id": [2 * i, 2 * i + 1]},
                }

        return tf.data.Dataset.from_generator(examples, output_signature={
            "image": tf.TensorSpec([None, None, 3], tf.uint8),
            "image/id": tf.TensorSpec([], tf.int64),
            "captions": {"text": tf.TensorSpec([None], tf.string),
                         "id": tf.TensorSpec([None], tf.int64)},
        })

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        splits = captioning.load_examples("coco_captions")
        assert {name: len(s) for name, s in splits.items()} == {
            "train": 8, "validation": 2, "test": 2,
        }
        assert splits["test"].captions[1] == ["a photo number 1", "two cats on a mat"]
        from rnnapps.tasks.captioning import pipeline

        pixels = list(pipeline.image_dataset(splits["test"], 24).as_numpy_iterator())
        assert [p.shape for p in pixels] == [(24, 24, 3)] * 2
        png = next(pipeline.encoded_images(splits["test"]))
        assert png.startswith(b"\x89PNG")


def write_folder(tmp_path, count=40, corrupt=("broken.png", "empty.jpg")):
    folder = tmp_path / "photos"
    folder.mkdir()
    rows = ["image,caption"]
    for i in range(count):
        name = f"img{i}.{'png' if i % 2 else 'jpg'}"
        color = (200, 30, 30) if i % 2 else (30, 30, 200)
        (folder / name).write_bytes(encoded(color, size=(30 + i, 20), kind="PNG" if i % 2 else "JPEG"))
        rows.append(f"{name},{'a red square' if i % 2 else 'a blue square'}")
        if i % 5 == 0:
            rows.append(f'{name},"a square, seen from above"')
    (folder / "broken.png").write_bytes(encoded((0, 0, 0))[:40])
    (folder / "empty.jpg").write_bytes(b"")
    rows += [f"{name},not an image" for name in corrupt]
    (folder / "captions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder / "captions.csv"


def test_folder_and_csv_with_corrupt_images_skipped_and_counted(tmp_path, capsys):
    csv_file = write_folder(tmp_path)
    splits = captioning.load_examples(str(csv_file))
    assert sum(len(s) for s in splits.values()) == 40
    assert sorted(splits["train"].skipped) == ["broken.png", "empty.jpg"]
    warnings = capsys.readouterr().err
    assert "skipping broken.png" in warnings and "skipping empty.jpg" in warnings
    by_name = {n: c for s in splits.values() for n, c in zip(s.names, s.captions)}
    assert by_name["img0.jpg"] == ["a blue square", "a square, seen from above"]
    assert by_name["img1.png"] == ["a red square"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such data file"),
        ("picture,text\na.png,x\n", "needs a header line naming the columns `image` and `caption`"),
        ("image,caption\na.png,\n", "line 2: empty caption"),
        ("image,caption\n", "has no image,caption rows"),
        ("image,caption\nmissing.png,a caption\n", "none of the 1 images in captions.csv could be read"),
    ],
)
def test_bad_csv_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "captions.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskError, match=message):
        captioning.load_examples(str(path))


def test_csv_with_its_own_column_names_and_a_split_column(tmp_path):
    csv_file = write_folder(tmp_path, corrupt=())
    rows = csv_file.read_text(encoding="utf-8").splitlines()
    own = tmp_path / "photos" / "own.csv"
    own.write_text("\n".join(["id,file_name,text"] + [f"{i},{row}" for i, row in enumerate(rows[1:])]),
                   encoding="utf-8")
    with pytest.raises(TaskError, match="has no column `image` and `caption` "
                                        r"\(name yours with --image-column / --caption-column\)"):
        captioning.load_examples(str(own))
    with pytest.raises(TaskError, match="no column `caption` .*--caption-column"):
        captioning.load_examples(str(own), image_column="file_name")
    splits = captioning.load_examples(str(own), image_column="file_name", caption_column="text")
    assert splits["train"].names == captioning.load_examples(str(csv_file))["train"].names
    assert sum(len(s) for s in splits.values()) == 40
    # `whole="test"` (what `rnnapps evaluate` reads) keeps every image for the test.
    whole = captioning.load_examples(str(own), "file_name", "text", whole="test")
    assert (len(whole["train"]), len(whole["validation"]), len(whole["test"])) == (0, 0, 40)

    # A split column decides, for training and for evaluation.
    chosen = tmp_path / "photos" / "chosen.csv"
    names = [row.split(",")[0] for row in rows[1:]]
    split_of = {name: ("test" if i < 5 else "validation" if i < 10 else "train")
                for i, name in enumerate(dict.fromkeys(names))}
    chosen.write_text("\n".join(["image,caption,split"] + [
        f"{row},{split_of[row.split(',')[0]]}" for row in rows[1:]]), encoding="utf-8")
    for whole in ("split", "test"):
        splits = captioning.load_examples(str(chosen), whole=whole)
        assert [len(splits[s]) for s in ("train", "validation", "test")] == [30, 5, 5]
        assert splits["test"].names == list(split_of)[:5]
    chosen.write_text("image,caption,split\nimg0.jpg,a blue square,holdout\n", encoding="utf-8")
    with pytest.raises(TaskError, match="line 2: the split column says 'holdout'"):
        captioning.load_examples(str(chosen))


def test_a_missing_or_corrupt_image_is_named(tmp_path):
    path = tmp_path / "captions.csv"
    (tmp_path / "bad.png").write_bytes(b"not an image")
    path.write_text("image,caption\nmissing.png,a caption\nbad.png,another\n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"none of the 2 images in captions.csv could be read "
                                        r"\(first: missing.png: cannot read the file"):
        captioning.load_examples(str(path))
    path.write_text("image,caption\nbad.png,another\n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"\(first: bad.png: not a decodable image"):
        captioning.load_examples(str(path))


def test_redraw_is_for_the_emoji_only_and_imagenet_weights_are_accepted(tmp_path, monkeypatch):
    import keras

    config = captioning.CaptioningConfig
    csv_file = str(write_folder(tmp_path, corrupt=()))
    assert _redraw(config()) == 0.5 and _redraw(config(data=csv_file)) == 0.0
    assert _redraw(config(data=csv_file, redraw=0.0)) == 0.0
    with pytest.raises(TaskError, match="--redraw applies only to the emoji data .* captions.csv"):
        captioning.load_data(config(data=csv_file, redraw=0.5))
    # `imagenet` passes the checks, and a download that fails is one clear error.
    data = captioning.load_data(config(data=csv_file, backbone="mobilenet_v2", image_size=32,
                                       backbone_weights="imagenet", vocabulary_size=20))

    def offline(**kwargs):
        assert kwargs["weights"] == "imagenet"
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    with pytest.raises(TaskError, match="--backbone-weights imagenet downloads .* the download "
                                        "failed .* pass the path of the \\*_notop.h5"):
        captioning.build_model(config(data=csv_file, backbone="mobilenet_v2", image_size=32,
                                      backbone_weights="imagenet"), data)


def test_the_cosine_schedule_falls_to_a_tenth_over_the_epoch_cap():
    config = captioning.CaptioningConfig(learning_rate=2e-3, epochs=4, batch_size=10)
    assert captioning.learning_rate(config, 95) == 2e-3
    schedule = captioning.learning_rate(
        dataclasses.replace(config, lr_schedule="cosine"), 95)  # 10 steps an epoch
    rates = [float(schedule(step)) for step in (0, 20, 40, 60)]
    np.testing.assert_allclose(rates, [2e-3, 1.1e-3, 2e-4, 2e-4], rtol=1e-5)


def test_scores_and_baselines():
    references = [["a big red apple on a table", "an apple"], ["a green car in the street"]]
    perfect = captioning.bleu_scores(["a big red apple on a table", "a green car in the street"], references)
    assert perfect == {"bleu1": 100.0, "bleu2": 100.0, "bleu3": 100.0, "bleu4": 100.0}
    partial = captioning.bleu_scores(["a red car on a table", "a green apple in the tree"], references)
    assert partial["bleu1"] > partial["bleu2"] > 0 and partial["bleu4"] < 50
    assert captioning.most_frequent_caption([["x y"], ["a dog"], ["a dog", "b"]]) == "a dog"
    # All unique: one made of common words, chosen by BLEU, never the odd one out.
    unique = [["a red dog"], ["a red cat"], ["zebra"], ["a big red dog"]]
    assert captioning.most_frequent_caption(unique) in {"a red dog", "a red cat", "a big red dog"}
    assert captioning.most_frequent_caption(unique, candidates=3) != "zebra"


def test_bleu_margin_is_the_difference_of_the_scores_with_a_bootstrap_interval():
    rng = np.random.default_rng(0)
    words = "a red blue green big small heart car tree dog cat on the table".split()
    references = [[" ".join(rng.choice(words, 6))] for _ in range(60)]
    # Ours: the reference with one word changed; theirs: with three changed.
    def noisy(caption, changes):
        tokens = caption.split()
        for i in rng.choice(len(tokens), changes, replace=False):
            tokens[i] = "zebra"
        return " ".join(tokens)

    ours = [noisy(r[0], 1) for r in references]
    theirs = [noisy(r[0], 3) for r in references]
    lead = captioning.bleu_margin(ours, theirs, references, samples=300)
    expected = (captioning.bleu_scores(ours, references)["bleu4"]
                - captioning.bleu_scores(theirs, references)["bleu4"])
    assert lead["margin"] == pytest.approx(expected, abs=0.02)
    assert 0 < lead["low"] < lead["margin"] < lead["high"]
    # A system against itself leads by nothing, on every draw.
    assert captioning.bleu_margin(ours, ours, references, samples=50) == {
        "margin": 0.0, "low": 0.0, "high": 0.0}
    # Fewer images, a wider interval.
    few = captioning.bleu_margin(ours[:15], theirs[:15], references[:15], samples=300)
    assert few["high"] - few["low"] > lead["high"] - lead["low"]
    with pytest.raises(ValueError, match="as many hypotheses"):
        captioning.bleu_margin(ours, theirs[:-1], references)


def test_bleu_margin_draws_whole_groups():
    # Ten families of six alike images: where we win a family we win all of
    # it, so the split holds ten samples, not sixty.
    references, ours, theirs, families = [], [], [], []
    for family in range(10):
        good, bad = f"the {family} red heart on a table", f"the {family} car"
        wins = family % 3 != 0
        for variant in range(6):
            references.append([good])
            ours.append(good if wins else bad)
            theirs.append(bad if wins else good)
            families.append(f"family {family}")
    by_image = captioning.bleu_margin(ours, theirs, references, order=1, samples=400)
    by_family = captioning.bleu_margin(ours, theirs, references, order=1, samples=400,
                                       groups=families)
    # The lead on the split is the same; only the interval changes.
    assert by_family["margin"] == by_image["margin"] > 0
    assert by_family["high"] - by_family["low"] > 1.5 * (by_image["high"] - by_image["low"])
    # One image a group: the images' own bootstrap, draw for draw.
    singletons = captioning.bleu_margin(ours, theirs, references, order=1, samples=400,
                                        groups=[f"image {i}" for i in range(len(ours))])
    assert singletons == by_image
    with pytest.raises(ValueError, match="one group per image"):
        captioning.bleu_margin(ours, theirs, references, groups=families[:-1])


@pytest.mark.tensorflow_only(reason=(
    "time budget: a minute of training: measured on JAX too (docs/captioning.md), run"
    " on TensorFlow"
))
def test_trained_captioner_beats_the_most_frequent_caption(emoji_font):
    # The default data (all 3,096 training emoji) with a small Show and Tell
    # at 16x16 pixels, 12 epochs (about a minute on 2 cores), beam search
    # alone: the default's reranking with the training captions lifts even an
    # untrained model to BLEU-1 31 (it copies the nearest images' captions),
    # so it would not show what training did.
    # Measured test BLEU-1: 36.0, 36.4, 34.4 (seeds 0-2) against the most
    # frequent caption's 26.6; the untrained model 0.1. A margin of 4 leaves
    # the trained model about as much room again for other CPUs.
    import keras

    config = captioning.CaptioningConfig(
        image_size=16, decoder="show_and_tell", filters="16,32,64", units=128, embedding_dim=64,
        vocabulary_size=300, max_length=12, dropout=0.2, augment=0.0, redraw=0.0,
        learning_rate=2e-3, epochs=12, beam_size=3, rerank=0,
    )
    keras.utils.set_random_seed(config.seed)  # before the data: it clears TensorFlow's caches
    data = captioning.load_data(config)
    model = captioning.build_model(config, data)
    model.fit(data.train, epochs=config.epochs, verbose=0)
    metrics = captioning.task.test_metrics(model, data)  # what `rnnapps train` reports
    baseline = metrics["most_frequent"]["bleu1"]
    assert 20 < baseline < 33  # 26.6: "handshake dark skin tone medium-dark skin tone"
    assert metrics["bleu1"] > baseline + 4


# Loads the SavedModel in this process (evaluate, predict).
@pytest.mark.tensorflow_only
def test_train_evaluate_predict_export_from_the_command_line(
    tmp_path, emoji_font, capsys, monkeypatch
):
    def here(*args):  # the commands run in this process: no TensorFlow start-up each
        return run_cli_in_process(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)

    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    result = last_json(here("train", "captioning", *flags))
    export = tmp_path / result["export_path"]
    assert export == tmp_path / "saved_models" / "captioning" / "1"
    metrics = result["metrics"]
    assert metrics["images"] == result["data"]["sizes"]["test"] > 300
    for scores in (metrics, metrics["nearest_neighbour"], metrics["most_frequent"]):
        assert all(0 <= scores[f"bleu{n}"] <= 100 for n in (1, 2, 3, 4))
    assert metrics["beam_size"] == 2
    # The constant baseline's BLEU is its caption's, scored here on the test
    # split's references (the quality of the model: the test above).
    references = captioning.load_examples("emoji")["test"].captions
    constant = metrics["most_frequent"]["caption"]
    expected = captioning.bleu_scores([constant] * len(references), references)
    assert {k: metrics["most_frequent"][k] for k in expected} == expected
    train_captions = captioning.load_examples("emoji")["train"].captions[:TINY["train_size"]]
    assert expected["bleu1"] > 15 and constant in {c for cs in train_captions for c in cs}
    assert result["data"]["sizes"]["skipped_images"] == 0
    # The two parts of the test split, and the test emoji redrawn, for the
    # model and both baselines.
    parts = metrics["parts"]
    assert parts["composition"]["images"] + parts["rest"]["images"] == metrics["images"]
    for report in (parts["composition"], parts["rest"], metrics["redrawn"]):
        assert {"model", "nearest_neighbour", "most_frequent"} <= set(report)
        assert all(0 <= report["model"][f"bleu{n}"] <= 100 for n in (1, 2, 3, 4))
    # Each part's baseline BLEU is the constant caption's on that part's images.
    part_of = captioning.caption_parts(references, train_captions)
    for part in ("composition", "rest"):
        chosen = [r for r, p in zip(references, part_of) if p == part]
        assert parts[part]["images"] == len(chosen)
        assert parts[part]["most_frequent"] == captioning.bleu_scores([constant] * len(chosen), chosen)
    assert metrics["redrawn"]["images"] == metrics["images"]

    # The export captions the test split, standard and redrawn, exactly as
    # the trained model did.
    evaluated = last_json(here("evaluate", "captioning", "--model", str(export)))
    assert {k: evaluated["metrics"][k] for k in ("bleu1", "bleu4")} == {
        k: metrics[k] for k in ("bleu1", "bleu4")
    }
    assert evaluated["metrics"]["redrawn"] == metrics["redrawn"]["model"]
    # The default reranks with the training captions: the run's checkpoint
    # (which `export --checkpoint` reads) remembers all 300 after training.
    assert (metrics["rerank"], metrics["consensus"], metrics["rerank_confidence"]) == (3, 32.0, 0.95)
    import keras

    from rnnapps.tasks.captioning import model as _  # noqa: F401 (registers the classes)

    kept = keras.saving.load_model(tmp_path / result["checkpoint"], compile=False)
    assert kept.memory_size == 300
    assert np.all(keras.ops.convert_to_numpy(kept.memory_tokens)[:, 0] > 0)

    (tmp_path / "a.png").write_bytes(encoded((250, 200, 0)))
    (tmp_path / "b.jpg").write_bytes(encoded((0, 90, 200), size=(300, 80), kind="JPEG"))
    predicted = last_json(here("predict", "captioning", "--model", str(export), "a.png", "b.jpg"))[
        "predictions"]
    assert [p["image"] for p in predicted] == ["a.png", "b.jpg"]
    assert all(isinstance(p["caption"], str) and p["score"] <= 0 for p in predicted)

    (tmp_path / "bad.png").write_bytes(b"this is not an image")
    proc = here("predict", "captioning", "--model", str(export), "a.png", "bad.png")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "bad.png: could not decode the image" in proc.stderr.strip().splitlines()[-1]

    # The attention figure of docs/captioning.md, from the run's checkpoint;
    # a wrong path is one line and writes nothing.
    import importlib.util

    script = pathlib.Path(__file__).resolve().parents[2] / "docs/figures/captioning_attention.py"
    spec = importlib.util.spec_from_file_location("captioning_attention", script)
    figure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figure)
    png = tmp_path / "attention.png"
    checkpoint_file = tmp_path / result["checkpoint"]
    assert figure.main(["--checkpoint", str(checkpoint_file), "--out", str(png), "--count", "2"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = tmp_path / "missing.png"
    assert figure.main(["--checkpoint", str(tmp_path / "nowhere.keras"), "--out", str(missing)]) == 2
    assert not missing.exists() and not list(tmp_path.glob(".missing.png*"))

    # Re-export the checkpoint with greedy decoding and no reranking: a new
    # version, the settings saved.
    checkpoint = tmp_path / pathlib.Path(result["checkpoint"]).parent
    exported = last_json(here(
        "export", "captioning", "--checkpoint", str(checkpoint), "--beam-size", "1",
        "--rerank", "0", "--export-dir", str(tmp_path / "saved_models"),
    ))
    greedy = pathlib.Path(exported["export_path"])
    assert greedy.name == "2"
    decoding = json.loads((greedy / "assets.extra" / "rnnapps.json").read_text())["data"][
        "decoding"]
    assert (decoding["beam_size"], decoding["rerank"]) == (1, 0)
    proc = here("export", "captioning", "--checkpoint", str(checkpoint), "--rerank", "-1",
                "--export-dir", str(tmp_path / "saved_models"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--rerank must be at least 0" in proc.stderr.strip().splitlines()[-1]
    proc = here("export", "captioning", "--checkpoint", str(checkpoint), "--retrieval", "2",
                "--export-dir", str(tmp_path / "saved_models"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--retrieval must be a weight between 0 and 1" in proc.stderr.strip().splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "saved_models" / "captioning").iterdir()) == [
        "1", "2"]

    # Image bytes in, strings out, in a fresh process without rnnapps and
    # without a GPU; a corrupt image fails the call with a clear error.
    script = f"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops the graph uses
serve = tf.saved_model.load({str(export)!r}).signatures["serving_default"]
images = [open(name, "rb").read() for name in ("a.png", "b.jpg")]
out = serve(images=tf.constant(images))
errors = []
for bad in (b"not an image", b"", images[0][:60]):
    try:
        serve(images=tf.constant([images[0], bad]))
    except tf.errors.InvalidArgumentError as error:
        errors.append(error.message)
print(json.dumps({{"c": [c.decode() for c in out["captions"].numpy()],
                  "s": out["scores"].numpy().tolist(),
                  "errors": errors, "alive": serve(images=tf.constant(images[:1]))["captions"].shape[0],
                  "rnnapps": any(m.startswith("rnnapps") for m in sys.modules)}}))
"""
    # An empty batch gives empty outputs on every CPU (the network never runs),
    # checked with oneDNN on and off in the same fresh processes as the script.
    served = assert_serves_empty_batch(export, tmp_path, {
        "captions": ([0], "string"), "scores": ([0], "float32"),
    }, script=script)
    assert served["rnnapps"] is False
    assert served["c"] == [p["caption"] for p in predicted]
    assert served["alive"] == 1
    assert len(served["errors"]) == 3
    assert all("could not decode the image" in e or "Invalid PNG data" in e for e in served["errors"])
    assert sum("could not decode the image" in e for e in served["errors"]) >= 2
    # An empty batch gives empty outputs, on every CPU (the network never runs:
    # TensorFlow's oneDNN batch normalization fails on a zero-size batch).


# Loads the SavedModel in this process (evaluate).
@pytest.mark.tensorflow_only
def test_training_on_a_folder_reports_the_skipped_images(tmp_path, capsys, monkeypatch):
    csv_file = write_folder(tmp_path, count=60)
    proc = run_cli_in_process(
        "train", "captioning", "--data", str(csv_file), "--image-size", "16", "--units", "8",
        "--embedding-dim", "4", "--epochs", "1", "--vocabulary-size", "20", "--beam-size", "1",
        "--export-dir", str(tmp_path / "out"), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch,
    )
    result = last_json(proc)
    assert result["data"]["sizes"]["skipped_images"] == 2
    assert result["data"]["sizes"]["train"] + 2 < 60
    assert result["data"]["name"] == "captions.csv"
    assert "skipping broken.png" in proc.stderr
    assert (tmp_path / "out" / "captioning" / "1" / "saved_model.pb").is_file()
    # `evaluate --data` scores the run's own file on its test split, another
    # file (without a split column) whole: every readable image.
    other = csv_file.with_name("other.csv")
    other.write_text(csv_file.read_text(encoding="utf-8"), encoding="utf-8")
    images = [last_json(run_cli_in_process(
        "evaluate", "captioning", "--model", str(tmp_path / "out" / "captioning" / "1"),
        "--data", str(path), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch,
    ))["metrics"]["images"] for path in (csv_file, other)]
    assert images == [result["metrics"]["images"], 60]  # 62 rows, 2 corrupt


@pytest.mark.tensorflow_only(reason=(
    "time budget: building MobileNetV2 costs most of a minute on JAX; the error is "
    "the same on both"
))
def test_a_weights_file_that_is_not_one_is_a_clear_error(tmp_path_factory, emoji_font, capsys,
                                                         monkeypatch):
    weights = tmp_path_factory.mktemp("weights") / "mobilenet.h5"
    weights.write_text("not an HDF5 file")
    cwd = tmp_path_factory.mktemp("run")
    proc = run_cli_in_process(
        "train", "captioning", "--backbone", "mobilenet_v2", "--image-size", "32",
        "--backbone-weights", str(weights), "--train-size", "50", cwd=cwd, capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert_one_line_error(proc, "cannot build the model", cwd)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "captioning", "--data", "missing.csv"], "no such data file: missing.csv"),
        (["train", "captioning", "--data", "imagenet"], "unknown data 'imagenet'"),
        (["train", "captioning", "--beam-size", "0"], "--beam-size must be at least 1"),
        (["train", "captioning", "--backbone-weights", "w.h5"], "--backbone-weights needs a --backbone"),
        (["train", "captioning", "--backbone", "mobilenet_v2", "--backbone-weights", "w.h5"],
         "no such file: w.h5"),
        (["predict", "captioning", "--model", "nowhere", "a.png"], "not an exported model"),
        (["train", "captioning", "--feature-map", "5"], "--feature-map must be --image-size"),
        (["train", "captioning", "--feature-map", "2"], "at most 2**4"),
        (["train", "captioning", "--filters", "32,x"], "--filters must be positive integers"),
        (["train", "captioning", "--redraw", "1.5"], "--redraw must be a share between 0 and 1"),
        (["train", "captioning", "--data", "missing.csv", "--redraw", "0.5"],
         "--redraw applies only to the emoji data"),
        (["train", "captioning", "--rerank", "-1"], "--rerank must be at least 0"),
        (["train", "captioning", "--rerank-confidence", "1"],
         "--rerank-confidence must be at least 0 and below 1"),
        (["train", "captioning", "--retrieval", "1.5"],
         "--retrieval must be a weight between 0 and 1"),
        (["train", "captioning", "--decoder", "show_and_tell", "--positions"],
         "--positions places the regions the attention decoder looks at"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message, capsys, monkeypatch):
    proc = run_cli_in_process(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(proc, message, tmp_path)


# === On the test pass's backend (TensorFlow or JAX) ===

# A model that trains in seconds on either backend.
TINY_API = dict(
    image_size=16, filters="8", decoder="show_and_tell", units=8, embedding_dim=4,
    vocabulary_size=20, max_length=8, beam_size=2, epochs=1, batch_size=8,
)


def squares(count=24):
    """Encoded images, half red and half blue, of several sizes, and their captions."""
    images = [encoded((200, 30, 30) if i % 2 else (30, 30, 200), size=(20 + i, 16),
                      kind="PNG" if i % 3 else "JPEG") for i in range(count)]
    captions = ["a red square" if i % 2 else "a blue square" for i in range(count)]
    return images, captions


def test_the_python_api_fits_predicts_evaluates_and_exports(tmp_path):
    import keras

    images, captions = squares()
    captioner = captioning.Captioner.from_data(images, captions, **TINY_API)
    assert captioner.config.units == 8 and captioner.preprocessor.image_size == 16
    assert captioner.model.memory_size == 24  # reranking remembers the training captions
    history = captioner.fit(images, captions, validation_data=(images[:6], captions[:6]),
                            verbose=0)
    assert set(history.history) == {"loss", "val_loss"}
    kept = keras.ops.convert_to_numpy(captioner.model.memory_tokens)
    assert np.all(kept[:, 0] > 0)
    # Paths, bytes and arrays of the same images are the same images (24 at a
    # time: one compiled beam search on JAX for all of them).
    paths = []
    for i, data in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        pathlib.Path(paths[-1]).write_bytes(data)
    written = captioner.predict(images)
    assert captioner.predict(paths) == written and all(isinstance(c, str) for c in written)
    from PIL import Image

    arrays = np.stack([np.asarray(Image.open(io.BytesIO(encoded(c, size=(16, 16)))))
                       for c in [(30, 30, 200), (200, 30, 30)] * 12])
    assert len(captioner.predict(arrays)) == 24
    # A partial batch is captioned as it is in a full one; on TensorFlow by
    # the same trace (one trace of the beam search serves every batch size).
    from rnnapps.tasks.captioning.task import _caption_all
    from rnnapps.tasks.captioning.task import _generator

    generate = _generator(captioner.model, captioner._decoding(), captioner.preprocessor)
    pixels = captioner.preprocessor.images(captioning_data.Split(
        captions=[[c] for c in captions], names=captions, images=images))
    assert _caption_all(generate, pixels, batch_size=10) == written
    if keras.backend.backend() == "tensorflow":
        assert generate.experimental_get_tracing_count() == 1
    scores = captioner.evaluate(images, [[c, "a square"] for c in captions])
    assert scores["images"] == 24 and 0 <= scores["bleu4"] <= scores["bleu1"] <= 100
    export = captioner.export(str(tmp_path / "saved_models"))
    assert (export / "saved_model.pb").is_file() and export.name == "1"
    saved = json.loads((export / "assets.extra" / "rnnapps.json").read_text())
    assert saved["data"]["preprocessor"] == {"image_size": 16, "max_length": 8}


@pytest.mark.parametrize("images, captions, message", [
    ([], [], "x is empty"),
    ([b"\x89PNG"], ["a", "b"], "one entry per image: 1 images, 2 captions"),
    ([b"\x89PNG"], [""], r"y\[0\] must be a non-empty caption"),
    ([b"\x89PNG", "a.png"], ["a", "b"], "one kind"),
    (["missing.png"], ["a"], "no such image file: missing.png"),
    (b"\x89PNG", ["a"], "not one bytes"),
    (np.zeros((2, 8, 8)), ["a", "b"], r"HxWx3 images: shape \(count, height, width, 3\)"),
])
def test_the_python_api_rejects_bad_input_in_one_message(images, captions, message):
    with pytest.raises(TaskError, match=message):
        captioning.Captioner.from_data(images, captions, **TINY_API)


@pytest.mark.parametrize("members", [1, 2], ids=["single", "ensemble"])
def test_the_command_line_trains_on_this_backend_and_exports(tmp_path, run_here, members):
    import keras

    from rnnapps.tasks.captioning.model import CaptionEnsemble

    csv_file = write_folder(tmp_path, count=30, corrupt=())
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_API.items()]
    result = last_json(run_here("train", "captioning", "--data", str(csv_file), *flags,
                                "--ensemble", str(members), "--rerank", "3",
                                "--export-dir", str(tmp_path / "out"), cwd=tmp_path))
    assert result["backend"] == keras.backend.backend()
    assert (tmp_path / "out" / "captioning" / "1" / "saved_model.pb").is_file()
    metrics = result["metrics"]
    assert metrics["images"] == result["data"]["sizes"]["test"]
    assert all(0 <= metrics[f"bleu{n}"] <= 100 for n in (1, 2, 3, 4))
    # The checkpoint holds the whole ensemble, its memory filled after training.
    model = keras.saving.load_model(result["checkpoint"], compile=False)
    assert isinstance(model, CaptionEnsemble) == (members == 2)
    assert len(getattr(model, "members", [model])) == members
    assert np.any(keras.ops.convert_to_numpy(model.memory_tokens))



def test_the_checkpoint_holds_the_averaged_weights_the_run_tested(tmp_path, run_here, monkeypatch):
    import keras

    from rnnapps.callbacks import EarlyStoppingFromStart

    restored = {}
    on_train_end = EarlyStoppingFromStart.on_train_end

    def keep(self, logs=None):  # what early stopping left in the model
        on_train_end(self, logs)
        restored.update(epochs=self.averaged_epochs, best=self.best_epoch,
                        weights=[keras.ops.convert_to_numpy(v) for v in self.model.trainable_weights])

    monkeypatch.setattr(EarlyStoppingFromStart, "on_train_end", keep)
    csv_file = write_folder(tmp_path, count=30, corrupt=())
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**TINY_API, "epochs": 3}.items()]
    result = last_json(run_here("train", "captioning", "--data", str(csv_file), *flags,
                                "--learning-rate", "0.01", "--average-epochs", "3",
                                "--export-dir", str(tmp_path / "out"), cwd=tmp_path))
    assert result["epochs_run"] == 3 and restored["best"] >= 0
    # The best epoch and the (up to) two before it.
    assert restored["epochs"] == list(range(max(0, restored["best"] - 2), restored["best"] + 1))
    assert len(restored["epochs"]) >= 2
    # `ModelCheckpoint` saved the best epoch's weights; the run saved them again
    # once averaged, so `rnnapps export --checkpoint` exports what was tested.
    kept = keras.saving.load_model(result["checkpoint"], compile=False)
    for saved, tested in zip(kept.trainable_weights, restored["weights"], strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), tested)


JAX_RUN = """
import io, json, sys
import numpy as np
from PIL import Image
from rnnapps.tasks.captioning import Captioner
from rnnapps.tasks.captioning.data import Split
from rnnapps.tasks.captioning.task import _generator

def encoded(color, size):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()

images = [encoded((200, 30, 30) if i % 2 else (30, 30, 200 - i), (20 + i, 16)) for i in range(24)]
captions = ["a red square" if i % 2 else "a blue square" for i in range(24)]
captioner = Captioner.from_data(images, captions, **json.loads(sys.argv[1]))
captioner.fit(images, captions, verbose=0)
# The model's own captions and scores (what `predict` writes, with the scores).
generate = _generator(captioner.model, captioner._decoding(), captioner.preprocessor)
split = Split(captions=[[c] for c in captions], names=captions, images=images)
pixels = next(captioner.preprocessor.images(split).batch(24).as_numpy_iterator())
texts, scores = generate(pixels)
export = captioner.export("saved_models")
print(json.dumps({"export": str(export), "captions": [t.decode() for t in texts.numpy()],
                  "scores": np.asarray(scores).tolist(), "images": [i.hex() for i in images]}))
"""


# Loads the SavedModel in this process; the JAX model runs in a subprocess.
@pytest.mark.tensorflow_only
@pytest.mark.parametrize("members", [1, 2], ids=["single", "ensemble"])
def test_the_export_of_jax_weights_answers_as_the_jax_model(tmp_path, members):
    import os
    import subprocess
    import sys

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops of the export)

    pytest.importorskip("jax")
    # Reranking on (the remembered captions travel into the export), beam 3.
    settings = {**TINY_API, "beam_size": 3, "rerank": 3, "rerank_confidence": 0.0,
                "ensemble": members}
    proc = subprocess.run(
        [sys.executable, "-c", JAX_RUN, json.dumps(settings)], capture_output=True, text=True,
        cwd=tmp_path, timeout=1200, env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ran = json.loads(proc.stdout.strip().splitlines()[-1])
    saved = json.loads((tmp_path / ran["export"] / "assets.extra" / "rnnapps.json").read_text())
    assert saved["config"]["rerank"] == 3
    serve = tf.saved_model.load(str(tmp_path / ran["export"])).signatures["serving_default"]
    out = serve(images=tf.constant([bytes.fromhex(i) for i in ran["images"]]))
    assert [c.decode() for c in out["captions"].numpy()] == ran["captions"]
    np.testing.assert_allclose(out["scores"].numpy(), ran["scores"], atol=1e-5, rtol=1e-5)


def test_the_training_images_are_encoded_once_while_the_weights_stay(monkeypatch):
    """Filling the memory and both nearest-image baselines share one
    encoding of the training images; other weights or another split
    encode again."""
    import importlib

    from rnnapps.tasks.captioning import pipeline
    from rnnapps.tasks.captioning.data import Split
    from rnnapps.tasks.captioning.model import ShowAndTell

    task = importlib.import_module("rnnapps.tasks.captioning.task")
    split = Split(captions=[["a"]] * 5, names=list("abcde"),
                  images=[encoded((40 * i, 200 - 30 * i, 90)) for i in range(5)])
    model = ShowAndTell(12, image_size=16, filters=(8, 16), units=16, embedding_dim=8,
                        memory_size=5, memory_length=4)
    model.build()
    calls = []
    real = pipeline.image_dataset
    monkeypatch.setattr(pipeline, "image_dataset", lambda *args: calls.append(args) or real(*args))
    first = task._embeddings(model, split, 16)
    assert task._embeddings(model, split, 16) is first and len(calls) == 1
    task._embeddings(model, dataclasses.replace(split), 16)  # equal, but another split
    assert len(calls) == 2
    kernel = model.encoder.weights[0]
    kernel.assign(kernel * 2.0)
    changed = task._embeddings(model, split, 16)
    assert len(calls) == 3 and not np.allclose(changed, first)
    # The memory's own weights do not count: filling it keeps the encoding.
    model.set_memory(changed, np.full((5, 4), 7))
    assert task._embeddings(model, split, 16) is changed and len(calls) == 3
