"""Scores a finished `rnnapps train captioning` run again under other decoding settings.

Loads the run's best checkpoint (from its export directory), fills the memory
of training captions as the run did, and prints the task's test report (the
model, the nearest training image, the redrawn emoji) for the test and the
validation split, with any captioning settings overridden. The same trained
model decoded several ways, side by side:

    rnnapps train captioning --seed 0 --export-dir runs/seed0
    python benchmarks/captioning_rescore.py runs/seed0 --seed 0 \\
        --set retrieval=0 --set retrieval=0.6 --set retrieval=0.9
    python benchmarks/captioning_rescore.py runs/seed0 --seed 0 --bootstrap 1000

Each `--set` is one decoding (comma-separated `field=value` of
`CaptioningConfig`); the run's own training settings must be given again
(`--seed`, and any other flag it was trained with, as `--train KEY=VALUE`):
they rebuild its data split and tokenizer. `--bootstrap N` adds the model's
lead over the nearest image with a 95 % paired bootstrap interval
(`captioning.bleu_margin`: the images drawn again N times): how far the
split's size lets one run's lead be read. On the emoji data it adds the
interval with whole families drawn instead (`groups`: the variants of one
emoji, which the split keeps together; `data.base_name`), and how many
families the split holds.
"""

import argparse
import dataclasses
import glob
import importlib
import json
import os
import sys


def parse_settings(text):
    from rnnapps.tasks.captioning.config import CaptioningConfig

    fields = {f.name for f in dataclasses.fields(CaptioningConfig)}
    settings = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"error: {key!r} is not a captioning setting")
        default = getattr(CaptioningConfig(), key)
        if isinstance(default, bool):
            settings[key] = value.lower() in ("1", "true", "yes")
        else:
            settings[key] = type(default)(value) if default is not None else value
    return settings


def scores(task, model, data, bootstrap=0, families=False):
    metrics = task.test_metrics(model, data)
    out = {
        "model": [metrics["bleu1"], metrics["bleu4"]],
        "nearest_neighbour": [metrics["nearest_neighbour"]["bleu1"],
                              metrics["nearest_neighbour"]["bleu4"]],
        "redrawn": [metrics["redrawn"]["model"]["bleu1"], metrics["redrawn"]["model"]["bleu4"]]
        if "redrawn" in metrics else None,
        "loss": metrics["loss"],
    }
    if bootstrap:  # the lead over the nearest image, with its paired bootstrap interval
        from rnnapps.tasks.captioning.task import bleu_margin

        # The report's own captions: the model's and the nearest image's.
        references = data.raw["test"].captions
        out["images"] = len(references)
        out["lead_over_nearest"] = {
            f"bleu{n}": bleu_margin(task._hypotheses, task._nearest, references,
                                    order=n, samples=bootstrap)
            for n in (1, 4)}
        if families:  # the split's own grouping: the variants of an emoji drawn together
            from rnnapps.tasks.captioning.data import base_name

            groups = [base_name(captions[0]) for captions in references]
            out["lead_over_nearest_by_family"] = {
                f"bleu{n}": bleu_margin(task._hypotheses, task._nearest, references,
                                        order=n, samples=bootstrap, groups=groups)
                for n in (1, 4)}
            out["families"] = len(set(groups))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the --export-dir of a `rnnapps train captioning` run")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--train", default="", help="the run's other flags, KEY=VALUE,...")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="also the model's BLEU-1 and BLEU-4 lead over the nearest image, "
                             "with a 95%% paired bootstrap interval over N draws of the images")
    parser.add_argument("--set", action="append", default=[], dest="decodings",
                        help="decoding settings to score, KEY=VALUE,... (repeatable)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from rnnapps.tasks.captioning.config import CaptioningConfig

    captioning = importlib.import_module("rnnapps.tasks.captioning.task")
    task = captioning.CaptioningTask()
    checkpoints = glob.glob(os.path.join(args.run, ".checkpoints", "captioning", "*",
                                         "model.keras"))
    if len(checkpoints) != 1:
        raise SystemExit(f"error: expected one checkpoint under {args.run}/.checkpoints/"
                         f"captioning/, found {len(checkpoints)}")
    config = CaptioningConfig(seed=args.seed, **parse_settings(args.train))
    decodings = [parse_settings(d) for d in args.decodings] or [{}]
    for settings in decodings:
        training = sorted(set(settings) - set(captioning._decoding(config)))
        if training:
            raise SystemExit(f"error: --set takes decoding settings; {training} are training "
                             f"settings (--train)")
    keras.utils.set_random_seed(args.seed)
    data = captioning.load_data(config)
    model = captioning.build_model(config, data)
    model.load_weights(checkpoints[0])
    task.after_fit(model, data)
    validation = dataclasses.replace(data, test=data.validation,
                                     raw={**data.raw, "test": data.raw["validation"]})
    for settings in decodings:
        decoding = dict(data.info["decoding"], **settings)
        row = {"run": args.run, "seed": args.seed, **settings}
        for name, split in (("test", data), ("validation", validation)):
            row[name] = scores(task, model, dataclasses.replace(
                split, info={**split.info, "decoding": decoding}), args.bootstrap,
                families=config.data == "emoji")
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
