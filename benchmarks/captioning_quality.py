"""Captioning quality: Show and Tell vs the two baselines, side by side.

Trains each variant of the captioning task on the same data, tokenizer,
batches and seed (epoch cap, early stopping on the validation loss, best
weights restored), then scores on the validation and test splits, with
sacrebleu's corpus BLEU-1..4 against all references:

- the model, greedy and with beam search (the task's default beam and
  length penalty);
- `nearest`: the caption of the nearest training image in the trained
  encoder's embedding (cosine);
- `frequent`: the most frequent training caption (on emoji, where every
  caption is unique, the best-scoring of the 50 made of the most common
  words).

Variants are config overrides, e.g. `dropout=0.5,augment=0.1`. Choose
settings on the validation columns; the test columns are the report.

    python benchmarks/captioning_quality.py                       # the default
    python benchmarks/captioning_quality.py --variant default= --variant aug=augment=0.1
    python benchmarks/captioning_quality.py --seeds 0,1,2 --epochs 60
"""

import argparse
import dataclasses
import os
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


def run(config, verbose):
    import keras

    from rnnapps.tasks import captioning
    from rnnapps.tasks.captioning import pipeline

    keras.utils.set_random_seed(config.seed)
    data = captioning.load_data(config)
    model = captioning.build_model(config, data)
    start = time.perf_counter()
    history = model.fit(
        data.train, validation_data=data.validation, epochs=config.epochs, verbose=verbose,
        shuffle=False,  # the training dataset reshuffles itself every epoch
        callbacks=[keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True)],
    )
    seconds = time.perf_counter() - start
    decoding = data.info["decoding"]
    size = decoding["image_size"]
    row = {"epochs": len(history.history["loss"]), "seconds": round(seconds),
           "val_loss": round(min(history.history["val_loss"]), 3)}
    frequent = captioning.most_frequent_caption(data.raw["train"].captions)
    for split in ("validation", "test"):
        images = pipeline.image_dataset(data.raw[split], size)
        references = data.raw[split].captions
        for name, beam in (("greedy", 1), ("beam", decoding["beam_size"])):
            generate = captioning._generator(model, {**decoding, "beam_size": beam})
            row[(split, name)] = captioning.bleu_scores(
                captioning._caption_all(generate, images), references)
        row[(split, "nearest")] = captioning.bleu_scores(
            captioning.nearest_neighbour_captions(model, data.raw["train"], data.raw[split], size),
            references)
        row[(split, "frequent")] = captioning.bleu_scores([frequent] * len(references), references)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=None,
                        help="NAME=key=value,key=value (default: the task's defaults)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--data", default="emoji")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    from rnnapps.tasks.captioning import CaptioningConfig

    variants = [parse_variant(v) for v in (args.variant or ["default="])]
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name, overrides in variants:
        for seed in seeds:
            config = typed(CaptioningConfig(data=args.data, seed=seed), overrides)
            if args.epochs:
                config = dataclasses.replace(config, epochs=args.epochs)
            row = run(config, args.verbose)
            results.setdefault(name, []).append(row)
            print(f"# {name} seed {seed}: {row}", file=sys.stderr, flush=True)

    columns = [("greedy", "model, greedy"), ("beam", "model, beam"),
               ("nearest", "nearest image"), ("frequent", "most frequent")]
    for split in ("validation", "test"):
        print(f"\n{split}: BLEU-1 / BLEU-4, median over seeds {args.seeds}")
        print("| variant | epochs | val loss | " + " | ".join(c for _, c in columns) + " |")
        print("| --- " * (3 + len(columns)) + "|")
        for name, rows in results.items():
            cells = []
            for key, _ in columns:
                b1 = statistics.median(r[(split, key)]["bleu1"] for r in rows)
                b4 = statistics.median(r[(split, key)]["bleu4"] for r in rows)
                cells.append(f"{b1:.1f} / {b4:.1f}")
            epochs = statistics.median(r["epochs"] for r in rows)
            loss = statistics.median(r["val_loss"] for r in rows)
            print(f"| {name} | {epochs:g} | {loss:.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
