"""How long destroying a tf.data iterator takes, with and without autotuning.

An autotuned tf.data iterator runs a thread that re-optimises the pipeline at
growing intervals; destroying the iterator waits for that thread's current
interval to run out. Keras drops the validation iterator at every epoch's
evaluation and the training iterator at every epoch's start, so `fit` stalled
for seconds at about every other epoch (captioning: 6-40 s an epoch of 15 s).
`rnnapps.task.without_autotune_thread` turns the thread off for the datasets
`rnnapps train` fits on. This script measures the teardown both ways, side by
side, for iterators read for several lengths of time: the wait depends on where
the thread is in its interval when the iterator goes (2 CPU cores, TensorFlow
2.21: read for 8 s, 2.5 s twice; for 12 s, 8.7 s once and 0.3 s once; for 20 s,
0.3-0.8 s; without the thread 0.3 s every time):

    python benchmarks/iterator_teardown.py            # --lives 4,8,12,16 --repeats 2
"""

import argparse
import gc
import json
import statistics
import time


def teardown_seconds(autotune, live):
    """Seconds to destroy an iterator of a parallel map that was read for `live` s."""
    import tensorflow as tf

    from rnnapps.task import without_autotune_thread

    dataset = tf.data.Dataset.range(10 ** 9).map(
        lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE).batch(4).prefetch(tf.data.AUTOTUNE)
    if not autotune:
        dataset = without_autotune_thread(dataset)
    iterator = iter(dataset)
    start = time.perf_counter()
    while time.perf_counter() - start < live:
        next(iterator)
    start = time.perf_counter()
    del iterator
    gc.collect()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lives", default="4,8,12,16", type=lambda s: [float(x) for x in s.split(",")],
                        help="seconds each iterator is read before it is destroyed")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print("| iterator read for | teardown, autotuned (median) | without the thread (median) |")
    print("| --- | --- | --- |")
    for live in args.lives:
        times = {True: [], False: []}
        for _ in range(args.repeats):
            for autotune in (True, False):  # side by side
                times[autotune].append(teardown_seconds(autotune, live))
        print(f"| {live:g} s | {statistics.median(times[True]):.2f} s | "
              f"{statistics.median(times[False]):.2f} s |", flush=True)
        print(json.dumps({"live_s": live, "autotuned_s": [round(t, 2) for t in times[True]],
                          "without_thread_s": [round(t, 2) for t in times[False]]}))


if __name__ == "__main__":
    main()
