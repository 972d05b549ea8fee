"""Captioning quality: Show and Tell vs the two baselines, side by side.

Trains each variant of the captioning task on the same data, tokenizer,
batches and seed (epoch cap, early stopping on the validation loss, best
weights restored), then scores on the validation and test splits, with
sacrebleu's corpus BLEU-1..4 against all references:

- the model with beam search (the task's default beam and length
  penalty; `beam_size=1` in a variant is greedy);
- `nearest`: the caption of the nearest training image in the trained
  encoder's embedding (cosine);
- `frequent`: the most frequent training caption (on emoji, where every
  caption is unique, the best-scoring of the 50 made of the most common
  words).

Each on the whole split, on its two parts (`captioning.caption_parts`:
captions composed of words seen in training, and the rest) and, for the
emoji, on the split redrawn at 50-100 % size, other places and background
colours (`data.redrawn`); and on the emoji of the split's largest family
(`data.base_name`: one emoji's gender and skin-tone variants, e.g. the 98
"kiss person person" test emoji) against all the others, since one family
can carry a corpus BLEU. Variants are config overrides, e.g.
`decoder=show_and_tell,dropout=0.5`. Choose settings on the validation
tables; the test tables are the report.

    python benchmarks/captioning_quality.py                       # the default
    python benchmarks/captioning_quality.py --variant attention= --variant tell=decoder=show_and_tell
    python benchmarks/captioning_quality.py --seeds 0,1,2 --json captioning.json
    python benchmarks/captioning_quality.py --report seed0.json seeds12.json   # tables only
    python benchmarks/captioning_quality.py --rescore seed0-default-seed0 --decoding greedy=beam_size=1
"""

import argparse
import dataclasses
import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_variant(text):
    name, _, overrides = text.partition("=")
    values = {}
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        values[key.replace("-", "_")] = value
    return name, values


def typed(config, values):
    fields = {f.name: f.type for f in dataclasses.fields(config)}
    converted = {}
    for key, value in values.items():
        if key not in fields:
            raise SystemExit(f"unknown setting {key!r}")
        kind = fields[key]
        converted[key] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    return dataclasses.replace(config, **converted)


def family_parts(references):
    """`"largest"` for the images of the most common `data.base_name` family
    of first references, `"others"` for the rest."""
    import collections

    from rnnapps.tasks.captioning.data import base_name

    families = [base_name(image[0]) for image in references]
    largest = collections.Counter(families).most_common(1)[0][0]
    return ["largest" if f == largest else "others" for f in families]


def run(config, verbose, decodings=(), save=None):
    import keras

    from rnnapps.callbacks import EarlyStoppingFromStart
    from rnnapps.tasks import captioning
    from rnnapps.tasks.captioning import pipeline
    from rnnapps.tasks.captioning.task import _caption_all, _compare, _generator

    keras.utils.set_random_seed(config.seed)
    data = captioning.load_data(config)
    model = captioning.build_model(config, data)
    start = time.perf_counter()
    history = model.fit(
        data.train, validation_data=data.validation, epochs=config.epochs, verbose=verbose,
        shuffle=False,  # the training dataset reshuffles itself every epoch
        # As `rnnapps train`: the best epoch's weights, averaged with the epochs before it.
        callbacks=[EarlyStoppingFromStart(
            data.validation, monitor="val_loss", patience=config.patience,
            restore_best_weights=True, average_epochs=config.average_epochs)],
    )
    seconds = time.perf_counter() - start
    decoding = data.info["decoding"]
    captioning.remember(model, data.raw["train"], decoding["max_length"])
    if save:  # as `rnnapps train` leaves its checkpoint (for docs/figures/)
        save.mkdir(parents=True, exist_ok=True)
        model.save(save / "model.keras")
        (save / "task.json").write_text(json.dumps(
            {"task": "captioning", "config": dataclasses.asdict(config), "data": data.info},
            indent=2, default=str))
    size = decoding["image_size"]
    train = data.raw["train"]
    row = {"epochs": len(history.history["loss"]), "seconds": round(seconds),
           "val_loss": round(min(history.history["val_loss"]), 3)}
    frequent = captioning.most_frequent_caption(train.captions)
    generate = _generator(model, decoding)
    for split in ("validation", "test"):
        references = data.raw[split].captions
        report_captions = _caption_all(
            generate, pipeline.image_dataset(data.raw[split], size))
        methods = {
            "model": report_captions,
            "nearest_neighbour": captioning.nearest_neighbour_captions(
                model, train, data.raw[split], size),
            "most_frequent": [frequent] * len(references),
        }
        report = _compare(
            methods, references, captioning.caption_parts(references, train.captions))
        report["families"] = _compare(methods, references, family_parts(references))
        row[split] = report
        # Other decoding settings of the same trained model (beam size, length penalty).
        for name, overrides in decodings:
            other = _generator(model, {**decoding, **{
                k: (int(v) if k in ("beam_size", "max_length", "rerank") else float(v))
                for k, v in overrides.items()}})
            report[f"decoding {name}"] = {"model": captioning.bleu_scores(
                _caption_all(other, pipeline.image_dataset(data.raw[split], size)),
                references)}
        row[split]["examples"] = [
            [data.raw[split].captions[i][0], report_captions[i]]
            for i in range(0, len(references), max(len(references) // 12, 1))
        ]
        if data.raw[split].glyphs is not None:
            row[split]["redrawn"] = captioning.redrawn_scores(
                model, decoding, train, data.raw[split], frequent)
    return row


def _cell(rows, split, part, method):
    values = []
    for row in rows:
        report = row[split]
        for key in filter(None, part.split("/")):
            report = report.get(key, {})
        if method in report:
            values.append((report[method]["bleu1"], report[method]["bleu4"]))
    if not values:
        return "-"
    b1 = [v[0] for v in values]
    b4 = [v[1] for v in values]
    text = f"{statistics.median(b1):.1f} / {statistics.median(b4):.1f}"
    if len(values) > 1:
        text += f" ({min(b4):.1f}-{max(b4):.1f})"
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=None,
                        help="NAME=key=value,key=value (default: the task's defaults)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--data", default="emoji")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--json", help="also write every run's numbers to this JSON file, "
                        "and each trained model beside it (JSON-VARIANT-seedN/model.keras)")
    parser.add_argument("--decoding", action="append", default=[],
                        help="NAME=beam_size=5,length_penalty=1.0: also score the trained model "
                             "decoded so (model column, whole split)")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="train nothing: print the tables of these --json files, merged")
    parser.add_argument("--rescore", nargs="+", metavar="RUN",
                        help="train nothing: score the models that --json kept (the folders "
                             "JSON-VARIANT-seedN) with each --decoding, on every part")
    args = parser.parse_args(argv)
    if args.report:
        return report(args.report)
    if args.rescore:
        if not args.decoding:
            parser.error("--rescore needs at least one --decoding")
        return rescore(args.rescore, [parse_variant(d) for d in args.decoding])

    from rnnapps.tasks.captioning import CaptioningConfig

    variants = [parse_variant(v) for v in (args.variant or ["default="])]
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name, overrides in variants:
        for seed in seeds:
            config = typed(CaptioningConfig(data=args.data, seed=seed), overrides)
            if args.epochs:
                config = dataclasses.replace(config, epochs=args.epochs)
            save = pathlib.Path(f"{args.json[:-5] if args.json.endswith('.json') else args.json}"
                                f"-{name}-seed{seed}") if args.json else None
            row = run(config, args.verbose, [parse_variant(d) for d in args.decoding], save)
            results.setdefault(name, []).append(row)
            print(f"# {name} seed {seed}: {json.dumps(row)}", file=sys.stderr, flush=True)
            if args.json:
                with open(args.json + ".tmp", "w") as file:
                    json.dump(results, file, indent=1)
                os.replace(args.json + ".tmp", args.json)

    print_tables(results)


def print_tables(results):
    """Markdown tables of `results` (`{variant: [row per seed]}`): per split,
    median BLEU-1 / BLEU-4 over the seeds on each part."""
    decodings = sorted({k for rows in results.values() for r in rows for k in r["test"]
                        if k.startswith("decoding ")})
    parts = [("", "all"), ("composition", "composition"), ("rest", "rest"),
             ("redrawn", "redrawn"), ("families/largest", "largest family"),
             ("families/others", "other families")] + [(d, "all, " + d[len("decoding "):]) for d in decodings]
    for split in ("validation", "test"):
        print(f"\n{split}: BLEU-1 / BLEU-4 (range of BLEU-4 over the seeds), median")
        print("| variant | seeds | epochs | val loss | part | model | nearest image | most frequent |")
        print("| --- " * 8 + "|")
        for name, rows in results.items():
            epochs = statistics.median(r["epochs"] for r in rows)
            loss = statistics.median(r["val_loss"] for r in rows)
            for part, label in parts:
                cells = [_cell(rows, split, part, m)
                         for m in ("model", "nearest_neighbour", "most_frequent")]
                if cells[0] == "-":
                    continue
                images = rows[0][split].get(part, {}) if part else rows[0][split]
                count = f" ({images['images']})" if "images" in images else ""
                print(f"| {name} | {len(rows)} | {epochs:g} | {loss:.3f} | {label}{count} | "
                      + " | ".join(cells) + " |")


def rescore(runs, decodings):
    """The model rows (whole split, its parts, redrawn) of saved runs decoded
    otherwise: a table per split, median over the runs."""
    import keras

    from rnnapps.task import config_from_dict
    from rnnapps.tasks import captioning
    from rnnapps.tasks.captioning import model as _model  # noqa: F401 (registers the classes)
    from rnnapps.tasks.captioning import pipeline
    from rnnapps.tasks.captioning.task import _caption_all, _compare, _generator
    from rnnapps.tasks.captioning.data import redrawn

    results = {}
    for folder in map(pathlib.Path, runs):
        saved = json.loads((folder / "task.json").read_text())
        config = config_from_dict(captioning.CaptioningConfig, saved["config"])
        data = captioning.load_data(config)
        model = keras.models.load_model(folder / "model.keras", compile=False)
        train = data.raw["train"]
        for name, overrides in decodings:
            decoding = {**data.info["decoding"], **{
                k: (int(v) if k in ("beam_size", "max_length", "rerank") else float(v))
                for k, v in overrides.items()}}
            generate = _generator(model, decoding)
            row = {}
            for split in ("validation", "test"):
                examples = data.raw[split]
                methods = {"model": _caption_all(
                    generate, pipeline.image_dataset(examples, decoding["image_size"]))}
                if name == decodings[0][0]:  # the baseline once a run, beside the first
                    methods["nearest_neighbour"] = captioning.nearest_neighbour_captions(
                        model, train, examples, decoding["image_size"])
                row[split] = _compare(
                    methods, examples.captions,
                    captioning.caption_parts(examples.captions, train.captions))
                row[split]["families"] = _compare(
                    methods, examples.captions, family_parts(examples.captions))
                if examples.glyphs is not None:
                    moved = redrawn(examples)
                    row[split]["redrawn"] = _compare({"model": _caption_all(
                        generate, pipeline.image_dataset(moved, decoding["image_size"]))},
                        moved.captions)
            print(f"# {folder} {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
            results.setdefault(name, []).append(row)
    for split in ("validation", "test"):
        print(f"\n{split}: BLEU-1 / BLEU-4 (range of BLEU-4 over the runs), median")
        print("| decoding | runs | all | composition | rest | redrawn | largest family "
              "| other families |")
        print("| --- " * 8 + "|")
        parts = ("", "composition", "rest", "redrawn", "families/largest", "families/others")
        for name, rows in results.items():
            for method, label in (("model", name), ("nearest_neighbour", "nearest image")):
                cells = [_cell(rows, split, part, method) for part in parts]
                if cells[0] != "-":
                    print(f"| {label} | {len(rows)} | " + " | ".join(cells) + " |")


def report(paths):
    """Merges the `--json` files of several runs (variants of one name are
    pooled) and prints their tables."""
    results = {}
    for path in paths:
        with open(path) as file:
            for name, rows in json.load(file).items():
                results.setdefault(name, []).extend(rows)
    print_tables(results)


if __name__ == "__main__":
    main()
