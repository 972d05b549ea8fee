"""Helpers of the serving tests: tiny exports and `rnnapps serve` as a process.

(pytest puts this folder on `sys.path` when it collects the tests beside it.)
"""

import fcntl
import json
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

# Each task at its smallest: the server's behaviour, not the model's quality, is tested.
TINY = {
    "sentiment": dict(vocabulary_size=300, sequence_length=24, embedding_dim=8, units=8,
                      epochs=1, batch_size=64),
    "forecasting": dict(units=8, epochs=1, batch_size=16, quantiles="0.1,0.5,0.9"),
    "translation": dict(train_size=300, vocabulary_size=300, units=16, embedding_dim=8,
                        epochs=1, batch_size=32, beam_size=2, max_length=16),
    "captioning": dict(train_size=200, image_size=24, feature_map=6, vocabulary_size=200, units=16,
                       embedding_dim=8, epochs=1, batch_size=32, beam_size=2, max_length=12),
    "next_word": dict(max_sentences=1500, vocabulary_size=400, embedding_dim=8, units=8,
                      epochs=1, batch_size=64, ngram_order=0),
}


def tiny_export(name, base, **overrides):
    """A one-epoch model of task `name` (its `TINY` settings, then
    `overrides`), exported to `base/name/<version>` (no test-split
    evaluation: only the export matters here)."""
    import keras

    from rnnapps.export import export_serving_model
    from rnnapps.task import export_metadata
    from rnnapps.tasks import get_task

    task = get_task(name)
    config = task.config_class(**{**TINY[name], **overrides})
    keras.utils.set_random_seed(0)
    data = task.load_data(config)
    model = task.build_model(config, data)
    model.fit(data.train.take(3), epochs=1, verbose=0)
    serve_fn, signature = task.serving_signature(model, data.info)
    return export_serving_model(model, serve_fn, signature, base, task.name,
                                metadata=export_metadata(task, config, data.info),
                                signatures=task.other_signatures(model, data.info))


class Server:
    """`rnnapps serve ARGS` in a subprocess, on a free loopback port."""

    def __init__(self, *args, cwd):
        self.log = open(pathlib.Path(cwd) / f"serve-{time.monotonic_ns()}.log", "w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rnnapps.cli", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=cwd,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.process.stdout], daemon=True).start()
        try:
            self.started = json.loads(lines.get(timeout=180))
        except queue.Empty:
            self.stop()
            raise AssertionError(f"the server did not start: {self.stderr()}")
        self.url = self.started["url"].rstrip("/")

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def call(self, path, body=None, method=None, raw=None, timeout=60):
        """(status, parsed JSON body) of one request."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def copy_version(base, name, source, target):
    """Copies version `source` of model `name` to version `target`, written
    into a hidden folder and renamed into place, as `rnnapps export` does."""
    staging = base / name / f".copy-{target}"
    shutil.copytree(base / name / str(source), staging)
    os.rename(staging, base / name / str(target))


def run_serve(*args, cwd, timeout=120):
    """`rnnapps serve ARGS` expected to fail at once; the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "rnnapps.cli", "serve", "--port", "0", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")


def install_chromium():
    """Debian's `chromium` and `chromium-driver`, installed with apt-get when
    missing (the test set-up runs as root on CI machines)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            "the page tests need Debian's chromium and chromium-driver: "
            "sudo apt-get install chromium chromium-driver")
    command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # One installer at a time across the test worker processes (pytest-xdist).
    with open(os.path.join(tempfile.gettempdir(), "rnnapps-tests-apt.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CHROMIUM.exists() and CHROMEDRIVER.exists():
            return
        if subprocess.run(command, capture_output=True, env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=True)
            proc = subprocess.run(command, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"apt-get could not install chromium: {proc.stderr[-500:]}")


def browser(profile):
    """A headless Chromium under Selenium, with no network of its own."""
    install_chromium()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--window-size=1100,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def sleep_model(base):
    """A SavedModel (not made by rnnapps) that takes `seconds` per example
    and busy-waits for the longest of them: requests of a known duration,
    for the overload and shutdown tests. Written to `base/sleep/1`."""
    import tensorflow as tf

    class Sleep(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="seconds")])
        def serve(self, seconds):
            start = tf.timestamp()
            wait = tf.cast(tf.reduce_max(tf.concat([seconds, [0.0]], 0)), tf.float64)
            end = tf.while_loop(lambda now: now - start < wait, lambda now: [tf.timestamp()],
                                [tf.timestamp()])
            slept = tf.cast(end - start, tf.float32)
            return {"slept": tf.fill(tf.shape(seconds), tf.reshape(slept, []))}

    module = Sleep()
    path = pathlib.Path(base) / "sleep" / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path.parent
