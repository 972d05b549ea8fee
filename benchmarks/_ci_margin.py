"""What the CI quality benchmarks share: a tiny configuration trained per seed,
and the same configuration with `epochs=0` (`train` then exports the freshly
built model, which a quality test must reject)."""

import json
import time


def trained_and_untrained(task, make_config, epochs, seeds, keys, baseline):
    """One row per seed: `{"seed", "baseline", "trained": {...}, "untrained": {...}}`,
    each side holding the test metrics named in `keys` and its seconds.

    `make_config(seed, epochs)` builds the task's config; each row is printed
    as JSON as soon as it is measured."""
    from rnnapps.task import train

    rows = []
    for seed in seeds:
        row = {"seed": seed, "baseline": baseline}
        for name, run_epochs in (("trained", epochs), ("untrained", 0)):
            start = time.perf_counter()
            metrics = train(task, make_config(seed, run_epochs), verbose=0,
                            log=lambda *a: None)["metrics"]
            row[name] = {**{k: metrics[k] for k in keys},
                         "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows
