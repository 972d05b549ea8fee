"""Does reversing the source help? Translation with and without reversal, side by side.

Sutskever, Vinyals & Le (2014) reversed the source sentence of an LSTM
encoder-decoder and saw test BLEU go from 25.9 to 30.6 and perplexity from
5.8 to 4.7 (WMT'14 en->fr): the first source words end up next to the first
target words, which shortens the paths gradients take between them.

This script trains the translation task's model several ways on the same data,
seed and budget (the same epoch cap and early stopping):

- `gloss_copy` (the task's default): the source followed by its word-by-word
  Ding dictionary gloss, Luong attention, a decoder that may copy source
  tokens; `gloss_copy_reversed`: the same with the source fed backwards;
- `reversed`: the sentences alone, no attention, source fed backwards;
- `forward`: the same model with the source in reading order (`--no-reverse`);
- `attention`: Luong attention, source in reading order;
- `concat`: Luong attention, the sentences plus 15,000 of the dictionary's word
  and phrase pairs each epoch as training pairs (plain concatenation);
- `gloss_copy_untied`: the default without tied embeddings and label smoothing;
  `gloss_copy_untied_pairs`: that plus the 15,000 pairs each epoch (`concat` and
  these two as the validation ablation in docs/translation.md ran).

and prints, for each, test BLEU and chrF (sacrebleu, detokenized, all
references) with beam search and greedy decoding, test perplexity, and the
epochs run; then the differences reversed - forward, and the word-by-word
dictionary lookup on the same test references (German -> English data). Run with several seeds
for a spread (`--seeds 0,1,2`: median and range); seeds run in separate processes at
once are summarized together with `--rows-from LOG ...`.

Usage:

    python benchmarks/translation_reversal.py                # Ding de->en, task defaults
    python benchmarks/translation_reversal.py --epochs 3 --train-size 2000   # quick look

On a machine without TensorFlow (a GPU box with JAX only), tokenize here and
train there: `--save-ids DIR` writes the tokenized splits (fixed length
`--max-length`), the SentencePiece model and the test references;
`KERAS_BACKEND=jax python benchmarks/translation_reversal.py --from-ids DIR`
trains the same three variants on them with `model.fit`, decodes with the
model's own beam search and detokenizes with the `sentencepiece` package.
"""

import argparse
import dataclasses
import json
import statistics
import sys
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="ding")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument(
        "--split", default="test", choices=("validation", "test"),
        help="where to score (choose settings on validation; report on test)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="epoch cap (default: the task's)")
    parser.add_argument("--train-size", type=int, default=0, help="first N training pairs (0 = all)")
    parser.add_argument("--units", type=int, default=None)
    parser.add_argument("--cell", default=None, choices=("lstm", "gru", "irnn"))
    parser.add_argument("--variants", default="gloss_copy,gloss_copy_reversed,reversed,forward,attention")
    parser.add_argument("--save-ids", metavar="DIR", help="tokenize and save, then stop")
    parser.add_argument("--from-ids", metavar="DIR", help="train on ids saved by --save-ids")
    parser.add_argument("--vocabulary-size", type=int, default=None)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--embedding-dim", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument(
        "--rows-from", nargs="+", metavar="LOG",
        help="summarize the result rows printed by earlier runs (e.g. one per seed, run in "
             "parallel) and stop",
    )
    args = parser.parse_args(argv)
    if args.rows_from:
        return summarize_logs(args.rows_from)
    if args.from_ids:
        return from_ids(args)

    import keras
    import tensorflow as tf

    from rnnapps.tasks import translation

    base = translation.TranslationConfig(data=args.data, train_size=args.train_size)
    for name in ("epochs", "units", "cell", "vocabulary_size", "layers", "embedding_dim",
                 "batch_size", "max_length"):
        if getattr(args, name) is not None:
            base = dataclasses.replace(base, **{name: getattr(args, name)})
    if args.save_ids:
        return save_ids(base, args.save_ids)
    chosen = args.variants.split(",")
    results = {name: [] for name in chosen}
    for seed in [int(s) for s in args.seeds.split(",")]:
        config = dataclasses.replace(base, seed=seed)
        for name in chosen:
            variant = dataclasses.replace(config, **VARIANTS[name])
            # Seed, then load: every variant gets the same tokenizer, batch
            # order and (same shapes) initial weights. (Seeding after loading
            # would delete the tokenizer's TensorFlow resource.)
            keras.utils.set_random_seed(seed)
            data = translation.load_data(variant)
            model = translation.build_model(variant, data)
            start = time.perf_counter()
            history = model.fit(
                data.train, validation_data=data.validation, epochs=variant.epochs,
                callbacks=[keras.callbacks.EarlyStopping(
                    patience=variant.patience, restore_best_weights=True)],
                verbose=2,
            )
            seconds = time.perf_counter() - start
            row = {
                "variant": name, "seed": seed, "split": args.split,
                "epochs_run": len(history.history["loss"]),
                "train_seconds": round(seconds, 1), "test_perplexity": round(translation.perplexity(model, getattr(data, args.split)), 3),
            }
            pairs = data.raw[args.split]
            references = [r for _, r in pairs]
            for beam in (variant.beam_size, 1):
                decoding = dict(data.info["decoding"], beam_size=beam)
                translate = translation.translator(model, decoding)
                hypotheses = []
                for i in range(0, len(pairs), 128):
                    strings, _ = translate([s for s, _ in pairs[i:i + 128]])
                    hypotheses += [t.decode("utf-8") for t in strings.numpy()]
                scores = translation.corpus_scores(hypotheses, references)
                label = "beam" if beam > 1 else "greedy"
                row[f"bleu_{label}"] = scores["bleu"]
                row[f"chrf_{label}"] = scores["chrf"]
            row["example"] = {"source": pairs[0][0], "output": hypotheses[0], "reference": references[0][0]}
            print(json.dumps(row), flush=True)
            results[name].append(row)

    print(f"\n{args.data}: {data.info['sizes']}, beam {base.beam_size}, units {base.units}, "
          f"cell {base.cell}, seeds {args.seeds}")
    summarize(results)
    # The baseline every variant has to beat, on the same test references.
    lookup = translation.dictionary_lookup(data.info["name"], data.raw)
    if lookup is not None:
        pairs = data.raw[args.split]
        scores = translation.corpus_scores([lookup.translate(s) for s, _ in pairs], [r for _, r in pairs])
        print(f"{'lookup':<10} {scores['bleu']:>9.2f} {'':>11} {scores['chrf']:>9.2f}   "
              f"(the Ding dictionary word by word, {len(lookup):,} entries)")
    return 0


_UNTIED = dict(tie_embeddings=False, label_smoothing=0.0)
VARIANTS = {
    # The sentences alone (the task's model before the dictionary gloss).
    "reversed": dict(attention="none", reverse=True, copy=False, dictionary="none", dictionary_pairs=0),
    "forward": dict(attention="none", reverse=False, copy=False, dictionary="none", dictionary_pairs=0),
    "attention": dict(attention="luong", reverse=False, copy=False, dictionary="none", dictionary_pairs=0),
    # The default: source + its Ding gloss, Luong attention, copying (tied
    # embeddings, label smoothing: the task's defaults).
    "gloss_copy": dict(attention="luong", reverse=False, copy=True, dictionary="gloss"),
    "gloss_copy_reversed": dict(attention="luong", reverse=True, copy=True, dictionary="gloss"),
    # The validation ablation, without tying and smoothing as it was run:
    # the dictionary's word and phrase pairs appended to the sentences as
    # training pairs (a fresh 15,000 each epoch), nothing else ...
    "concat": dict(attention="luong", reverse=False, copy=False, dictionary="none",
                   dictionary_pairs=15_000, **_UNTIED),
    # ... the default before tying and smoothing, and that with the pairs.
    "gloss_copy_untied": dict(attention="luong", reverse=False, copy=True, dictionary="gloss",
                              **_UNTIED),
    "gloss_copy_untied_pairs": dict(attention="luong", reverse=False, copy=True,
                                    dictionary="gloss", dictionary_pairs=15_000, **_UNTIED),
}


def summarize(results):
    """Median over seeds, and the range (min-max) where there are several."""
    print(f"{'variant':<20} {'BLEU beam':>17} {'BLEU greedy':>11} {'chrF beam':>17} "
          f"{'perplexity':>10} {'epochs':>6} {'train s':>7}")

    def spread(rows, key, digits=2):
        values = [r[key] for r in rows]
        text = f"{statistics.median(values):.{digits}f}"
        if len(values) > 1:
            text += f" ({min(values):.{digits}f}-{max(values):.{digits}f})"
        return text

    for name, rows in results.items():
        def med(key):
            return statistics.median(r[key] for r in rows)
        print(f"{name:<20} {spread(rows, 'bleu_beam'):>17} {med('bleu_greedy'):>11.2f} "
              f"{spread(rows, 'chrf_beam'):>17} {med('test_perplexity'):>10.3f} "
              f"{med('epochs_run'):>6.0f} {med('train_seconds'):>7.0f}")
    for reversed_name, forward_name in (("reversed", "forward"), ("gloss_copy_reversed", "gloss_copy")):
        if reversed_name not in results or forward_name not in results:
            continue
        pairs = list(zip(results[reversed_name], results[forward_name]))
        gain = [r["bleu_beam"] - f["bleu_beam"] for r, f in pairs]
        chrf = [r["chrf_beam"] - f["chrf_beam"] for r, f in pairs]
        ppl = [r["test_perplexity"] / f["test_perplexity"] for r, f in pairs]
        print(f"reversal ({reversed_name} - {forward_name}): BLEU {statistics.median(gain):+.2f} "
              f"(per seed {', '.join(f'{g:+.2f}' for g in gain)}), chrF "
              f"{statistics.median(chrf):+.2f}, perplexity x{statistics.median(ppl):.3f} "
              f"(median over seeds; the paper: +4.7 BLEU, 5.8 -> 4.7)")


def summarize_logs(paths):
    """`summarize` over the JSON rows of earlier runs' output, in seed order."""
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as file:
            rows += [json.loads(line) for line in file if line.startswith('{"variant"')]
    results = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        results.setdefault(row["variant"], []).append(row)
    summarize(results)
    return 0


def save_ids(config, folder):
    """Tokenized splits at a fixed length, the SentencePiece model, references."""
    import pathlib

    import keras
    import numpy as np

    from rnnapps.tasks import translation

    keras.utils.set_random_seed(config.seed)
    data = translation.load_data(config)
    tokenizer = data.raw["tokenizer"]
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    length = config.max_length
    source_length = data.info["decoding"]["source_max_length"]  # twice as long with a gloss

    def fixed(ids, length=length):
        ids = ids.numpy()[:, :length]
        return np.pad(ids, [[0, 0], [0, length - ids.shape[1]]])

    arrays = {}
    for split, dataset in (("train", data.train), ("validation", data.validation), ("test", data.test)):
        parts = {"source": [], "target_in": [], "target_out": []}
        for x, y in dataset:
            parts["source"].append(fixed(x["source"], source_length))
            parts["target_in"].append(fixed(x["target_in"]))
            parts["target_out"].append(fixed(y))
        for key, values in parts.items():
            arrays[f"{split}_{key}"] = np.concatenate(values).astype("int32")
    # The preprocessor glosses and tokenizes, as in the datasets.
    test_sources = [s for s, _ in data.raw["test"]]
    arrays["test_source"] = fixed(data.raw["preprocessor"].encode_source(test_sources), source_length)
    np.savez_compressed(folder / "ids.npz", **arrays)
    (folder / "spm.model").write_bytes(tokenizer.proto)
    (folder / "info.json").write_text(json.dumps({
        "config": dataclasses.asdict(config), "info": data.info,
        "test": [[s, r] for s, r in data.raw["test"]],
    }))
    print(json.dumps({k: list(v.shape) for k, v in arrays.items()}))
    return 0


def from_ids(args):
    """Trains and scores the variants on saved ids, without TensorFlow."""
    import pathlib

    import keras
    import numpy as np
    import sentencepiece

    from rnnapps.optimizers import ClippedOptimizer
    from rnnapps.tasks import translation
    from rnnapps.tasks.translation.model import Seq2Seq
    from rnnapps.tasks.translation.model import SmoothedCrossentropy

    folder = pathlib.Path(args.from_ids)
    arrays = np.load(folder / "ids.npz")
    saved = json.loads((folder / "info.json").read_text())
    config = translation.TranslationConfig(**saved["config"])
    for name in ("epochs", "units", "cell", "layers", "embedding_dim", "batch_size"):
        if getattr(args, name) is not None:
            config = dataclasses.replace(config, **{name: getattr(args, name)})
    processor = sentencepiece.SentencePieceProcessor(model_proto=(folder / "spm.model").read_bytes())
    vocabulary = saved["info"]["vocabulary_size"]
    references = [r for _, r in saved["test"]]
    results = {name: [] for name in args.variants.split(",")}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in results:
            variant = dataclasses.replace(config, seed=seed, **VARIANTS[name])
            keras.utils.set_random_seed(seed)
            model = Seq2Seq(
                vocabulary, vocabulary, embedding_dim=variant.embedding_dim, units=variant.units,
                layers=variant.layers, cell=variant.cell,
                attention=None if variant.attention == "none" else variant.attention,
                reverse=variant.reversed_source, dropout=variant.dropout, copy=variant.copies,
                tie_embeddings=variant.tie_embeddings,
            )
            model.build()
            model.compile(
                ClippedOptimizer(keras.optimizers.Adam(variant.learning_rate), clipnorm=variant.clipnorm),
                SmoothedCrossentropy(variant.label_smoothing, ignore_class=0),
            )

            def split(name_):
                return ({"source": arrays[f"{name_}_source"], "target_in": arrays[f"{name_}_target_in"]},
                        arrays[f"{name_}_target_out"])

            start = time.perf_counter()
            history = model.fit(
                *split("train"), validation_data=split("validation"), epochs=variant.epochs,
                batch_size=variant.batch_size, shuffle=True,
                callbacks=[keras.callbacks.EarlyStopping(patience=variant.patience, restore_best_weights=True)],
                verbose=2,
            )
            seconds = time.perf_counter() - start
            # Without the label smoothing the training loss has.
            model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
            loss = float(model.evaluate(*split("test"), batch_size=256, verbose=0))
            row = {"variant": name, "seed": seed, "epochs_run": len(history.history["loss"]),
                   "train_seconds": round(seconds, 1), "test_perplexity": round(float(np.exp(loss)), 3),
                   "backend": keras.backend.backend()}
            sources = arrays["test_source"]
            for beam in (variant.beam_size, 1):
                translate = _compiled_translate(model, beam, variant)
                hypotheses = []
                for i in range(0, len(sources), 256):
                    batch = sources[i:i + 256]
                    padded = np.pad(batch, [[0, 256 - len(batch)], [0, 0]])
                    tokens, _ = translate(padded)
                    for ids in keras.ops.convert_to_numpy(tokens)[: len(batch)].tolist():
                        ids = ids[: ids.index(3)] if 3 in ids else ids
                        hypotheses.append(processor.decode([t for t in ids if t > 3]))
                scores = translation.corpus_scores(hypotheses, references)
                label = "beam" if beam > 1 else "greedy"
                row[f"bleu_{label}"], row[f"chrf_{label}"] = scores["bleu"], scores["chrf"]
            row["example"] = {"source": saved["test"][0][0], "output": hypotheses[0],
                              "reference": references[0][0]}
            print(json.dumps(row), flush=True)
            results[name].append(row)
    print(f"\n{config.data}: {saved['info']['sizes']}, beam {config.beam_size}, units {config.units}, "
          f"layers {config.layers}, cell {config.cell}, vocabulary {vocabulary}, seeds {args.seeds}, "
          f"{keras.backend.backend()}")
    summarize(results)
    return 0


def _compiled_translate(model, beam, config):
    """`model.translate` compiled once per beam size where the backend can."""
    import keras

    def translate(source):
        return model.translate(
            source, beam_size=beam, max_length=config.max_length,
            length_penalty=config.length_penalty,
        )

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(translate)
    return translate


if __name__ == "__main__":
    sys.exit(main())
