"""`rnnapps serve`, started as a process and spoken to over HTTP on loopback."""

import base64
import concurrent.futures
import io
import json
import shutil
import signal
import socket
import threading
import time

import numpy as np
import pytest

from serving_support import copy_version, run_serve

pytestmark = pytest.mark.tensorflow_only


def png(color=(255, 200, 0), size=(24, 24)):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def window(server, scale=1.0):
    status, described = server.call("/rnnapps/models")
    info = next(m for m in described["models"] if m["name"] == "forecasting")["info"]
    return (np.array(info["recent"]) * scale).tolist()


# --- Every task round-trips ----------------------------------------------------


def test_sentiment_in_both_formats(server):
    status, body = server.call("/v1/models/sentiment:predict",
                               {"instances": ["Great coffee, will buy again", "Stale and bitter"]})
    assert status == 200
    assert [sorted(p) for p in body["predictions"]] == [["labels", "probabilities"]] * 2
    for prediction in body["predictions"]:
        assert prediction["labels"] in ("great", "other")
        assert sum(prediction["probabilities"]) == pytest.approx(1, abs=1e-5)
    status, columnar = server.call("/v1/models/sentiment:predict",
                                   {"inputs": {"text": ["Great coffee, will buy again"]}})
    assert status == 200
    assert columnar["outputs"]["labels"] == [body["predictions"][0]["labels"]]
    assert columnar["outputs"]["probabilities"][0] == pytest.approx(
        body["predictions"][0]["probabilities"], abs=1e-6)


def test_translation_returns_strings(server):
    status, body = server.call("/v1/models/translation/versions/1:predict",
                               {"signature_name": "serving_default",
                                "instances": ["Das Abendessen hat mir geschmeckt.", ""]})
    assert status == 200
    assert all(isinstance(p["translations"], str) for p in body["predictions"])
    assert all(isinstance(p["scores"], float) for p in body["predictions"])


def test_next_word_suggests_and_scores(server):
    status, body = server.call("/v1/models/next_word:predict", {"instances": [
        {"text": "I would like a cup of", "k": 3}, {"text": "", "k": 1}]})
    assert status == 200, body
    first, second = body["predictions"]
    assert len(first["words"]) == 3 and all(first["words"])
    assert second["words"][1:] == ["", ""] and second["probabilities"][1:] == [0.0, 0.0]
    assert first["probabilities"] == sorted(first["probabilities"], reverse=True)
    assert isinstance(first["continuation"], str)
    status, scored = server.call("/v1/models/next_word:predict",
                                 {"signature_name": "score", "inputs": ["a cup of tea", "tea"]})
    assert status == 200, scored
    assert scored["outputs"]["tokens"] == [5, 2] and all(lp < 0 for lp in scored["outputs"]["log_probability"])
    status, bad = server.call("/v1/models/next_word:predict", {"instances": [{"text": "a", "k": 0}]})
    assert status == 400 and "k must be at least 1" in bad["error"]


def test_captioning_takes_b64_image_bytes(server):
    status, body = server.call("/v1/models/captioning:predict",
                               {"instances": [{"b64": png()}, {"b64": png((0, 0, 255))}]})
    assert status == 200, body
    assert all(isinstance(p["captions"], str) for p in body["predictions"])


def test_forecasting_returns_the_horizon_and_quantiles(server):
    status, described = server.call("/rnnapps/models")
    model = next(m for m in described["models"] if m["name"] == "forecasting")
    horizon, quantiles = model["info"]["horizon"], model["info"]["quantiles"]
    status, body = server.call("/v1/models/forecasting:predict",
                               {"instances": [window(server), window(server, 1.01)]})
    assert status == 200
    prediction = body["predictions"][0]
    assert len(prediction["forecast"]) == horizon
    assert np.array(prediction["quantiles"]).shape == (horizon, len(quantiles))


def _rest_inputs(server, task):
    """A columnar REST request's `inputs` for `task`, several examples each."""
    if task == "sentiment":
        return {"text": ["Great coffee, will buy again", "Stale and bitter", ""]}
    if task == "translation":
        return {"text": ["Das Abendessen hat mir geschmeckt.", "Ich bin müde.", ""]}
    if task == "next_word":
        return {"text": ["I would like a cup of", "the", ""], "k": [3, 1, 2]}
    if task == "captioning":
        return {"images": [{"b64": png()}, {"b64": png((0, 0, 255), (40, 30))}]}
    return {"window": [window(server), window(server, 1.01), window(server, 0.5)]}


def _as_tensors(inputs, specs):
    """The REST request's `inputs` as the tensors the signature takes (b64
    objects decoded to bytes, as TF Serving does)."""
    import tensorflow as tf

    def decode(value):
        if isinstance(value, dict):
            return base64.b64decode(value["b64"])
        return value.encode() if isinstance(value, str) else value

    return {name: tf.constant([decode(v) for v in inputs[name]], specs[name].dtype)
            for name in specs}


@pytest.mark.parametrize("task", ["sentiment", "translation", "next_word", "captioning",
                                  "forecasting"])
def test_rest_answers_equal_the_savedmodel_called_directly(server, exports, task):
    """What `rnnapps serve` answers over HTTP is what the SavedModel itself
    gives, loaded in this process with TensorFlow alone: strings equal,
    numbers within float32 printing (TF Serving writes floats shortest-repr)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the SentencePiece ops of the text exports)

    inputs = _rest_inputs(server, task)
    status, body = server.call(f"/v1/models/{task}:predict", {"inputs": inputs})
    assert status == 200, body
    serve = tf.saved_model.load(str(exports / task / "1")).signatures["serving_default"]
    direct = serve(**_as_tensors(inputs, serve.structured_input_signature[1]))
    assert set(body["outputs"]) == set(direct)
    for name, tensor in direct.items():
        expected, got = tensor.numpy(), body["outputs"][name]
        if expected.dtype == object:
            assert np.vectorize(lambda b: b.decode("utf-8"))(expected).tolist() == got, name
        else:
            assert np.asarray(got).shape == expected.shape, name
            np.testing.assert_allclose(np.asarray(got, expected.dtype), expected,
                                       rtol=1e-6, atol=1e-6, err_msg=name)
    # And the row format answers the same, example by example.
    names = list(inputs)
    rows = [dict(zip(names, values)) if len(names) > 1 else values[0]
            for values in zip(*inputs.values())]
    status, by_row = server.call(f"/v1/models/{task}:predict", {"instances": rows})
    assert status == 200, by_row
    for i, prediction in enumerate(by_row["predictions"]):
        prediction = prediction if isinstance(prediction, dict) else {next(iter(direct)): prediction}
        for name in direct:
            assert prediction[name] == body["outputs"][name][i], (name, i)


def test_status_and_metadata_as_tf_serving_writes_them(server):
    status, body = server.call("/v1/models/sentiment")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert server.call("/v1/models/sentiment/versions/1")[1] == body
    status, metadata = server.call("/v1/models/sentiment/metadata")
    assert status == 200
    assert metadata["model_spec"] == {"name": "sentiment", "signature_name": "", "version": "1"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    text = signature["inputs"]["text"]
    assert text["dtype"] == "DT_STRING"
    assert text["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert text["name"].startswith("serving_default_text")
    assert set(signature["outputs"]) == {"labels", "probabilities"}
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"


def test_an_empty_batch_gets_empty_outputs(server):
    status, body = server.call("/v1/models/sentiment:predict", {"inputs": {"text": []}})
    assert status == 200
    assert body == {"outputs": {"labels": [], "probabilities": []}}
    status, body = server.call("/v1/models/forecasting:predict", {"inputs": []})
    assert status == 200 and body["outputs"]["forecast"] == []


# --- Bad requests: the right status, a message, and the server keeps serving ---------


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/sentiment:predict", b"{not json", 400, "JSON Parse error"),
    ("/v1/models/sentiment:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("/v1/models/sentiment:predict", {"inputs": {"review": ["x"]}}, 400,
     "Missing named input: text in 'inputs' object."),
    ("/v1/models/sentiment:predict", {"instances": [3.5]}, 400,
     "Type: Number is not of expected type: string"),
    ("/v1/models/sentiment:predict", {"instances": ["a"], "inputs": ["a"]}, 400,
     "expecting only one of 'inputs' or 'instances'"),
    ("/v1/models/sentiment:predict", {"signature_name": "nope", "instances": ["a"]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("/v1/models/forecasting:predict", {"instances": [[[1.0], [2.0]]]}, 400,
     "but the signature expects [?,"),
    ("/v1/models/captioning:predict", {"instances": [{"b64": base64.b64encode(b"not an image").decode()}]},
     400, "image"),
    ("/v1/models/nope:predict", {"instances": ["a"]}, 404, "Servable not found for request: Latest(nope)"),
    ("/v1/models/sentiment/versions/7:predict", {"instances": ["a"]}, 404,
     "Servable not found for request: Specific(sentiment, 7)"),
    ("/v1/models/sentiment/labels/stable:predict", {"instances": ["a"]}, 400,
     "Unrecognized servable version label: stable"),
    ("/v1/models/sentiment:classify", {"examples": [{"x": 1}]}, 400, "use :predict"),
    ("/v1/models/sentiment/versions/x:predict", {"instances": ["a"]}, 400, "Malformed request"),
])
def test_bad_requests(server, path, body, status, message):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, answer = server.call(path, raw=raw, method="POST")
    assert got == status, answer
    assert message in answer["error"]
    # ... and the server keeps serving.
    assert server.call("/v1/models/sentiment:predict", {"instances": ["fine"]})[0] == 200


def test_a_nan_window_is_refused_with_a_message(server):
    values = window(server)
    values[3][0] = float("nan")
    raw = json.dumps({"instances": [values]}, allow_nan=True).encode()  # NaN, as TF Serving allows
    status, answer = server.call("/v1/models/forecasting:predict", raw=raw, method="POST")
    assert status == 400 and "NaN" in answer["error"]
    assert "[[{{node" not in answer["error"]


def test_get_paths(server):
    assert server.call("/v1/models/nope") == (
        404, {"error": "Could not find any versions of model nope"})
    assert server.call("/v1/models/sentiment/versions/9")[0] == 404
    assert server.call("/v1/models")[1] == {"error": "Missing model name in request."}
    status, answer = server.call("/v1/models/sentiment:predict")  # GET on :predict
    assert status == 400 and answer["error"].startswith("Malformed request: GET")
    assert server.call("/nowhere")[0] == 404


def test_an_oversized_body_gets_413(server):
    # The module's server has the default limit (16 MiB).
    raw = b'{"instances": ["' + b"x" * (17 * 2**20) + b'"]}'
    status, answer = server.call("/v1/models/sentiment:predict", raw=raw, method="POST")
    assert status == 413 and "--max-body-bytes" in answer["error"]
    assert server.call("/v1/models/sentiment:predict", {"instances": ["ok"]})[0] == 200


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server):
    texts = [f"review number {i} was {'great' if i % 2 else 'bad'}" for i in range(48)]
    status, single = server.call("/v1/models/sentiment:predict", {"instances": texts})
    expected = {t: p for t, p in zip(texts, single["predictions"])}

    def one(text):
        return text, server.call("/v1/models/sentiment:predict", {"instances": [text]})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, texts))
    for text, (status, body) in results:
        assert status == 200
        assert body["predictions"][0]["labels"] == expected[text]["labels"]
        assert body["predictions"][0]["probabilities"] == pytest.approx(
            expected[text]["probabilities"], abs=1e-5)


# --- Versions: hot swap, unload ------------------------------------------------------


def test_a_new_version_is_swapped_in_and_a_deleted_one_unloaded_without_failing_requests(
        exports, tmp_path, start_server):
    base = tmp_path / "models"
    shutil.copytree(exports / "sentiment", base / "sentiment")
    server = start_server("--model-base-path", str(base), "--poll-seconds", "0.2")
    failures, answered, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            try:
                status, body = server.call("/v1/models/sentiment:predict",
                                           {"instances": ["so good"]}, timeout=30)
            except Exception as error:  # a hung or dropped request is a failure too
                status, body = None, repr(error)
            (answered if status == 200 else failures).append((status, body))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(answered) > 10)
        copy_version(base, "sentiment", 1, 2)
        wait_for(lambda: state(server, 2) == "AVAILABLE" and state(server, 1) == "END")
        mark = len(answered)
        wait_for(lambda: len(answered) > mark + 10)  # requests flow on version 2
        # Version 2 deleted: version 1, still on disk, is the newest again. It is
        # loaded before 2 is unloaded, so requests never find the model empty.
        shutil.rmtree(base / "sentiment" / "2")
        wait_for(lambda: state(server, 2) == "END" and state(server, 1) == "AVAILABLE")
        mark = len(answered)
        wait_for(lambda: len(answered) > mark + 10)  # ... and on version 1 again
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures[:1], failures[:1]
    # With every version deleted there is nothing left to serve.
    shutil.rmtree(base / "sentiment" / "1")
    wait_for(lambda: state(server, 1) == "END")
    status, body = server.call("/v1/models/sentiment:predict", {"instances": ["x"]})
    assert status == 404 and "Latest(sentiment)" in body["error"]
    copy_version_from(exports, base, 3)
    wait_for(lambda: state(server, 3) == "AVAILABLE")
    assert server.call("/v1/models/sentiment/versions/3:predict", {"instances": ["x"]})[0] == 200


def copy_version_from(exports, base, version):
    shutil.copytree(exports / "sentiment" / "1", base / "sentiment" / f".v{version}")
    (base / "sentiment" / f".v{version}").rename(base / "sentiment" / str(version))


def state(server, version):
    status, body = server.call(f"/v1/models/sentiment/versions/{version}")
    return body["model_version_status"][0]["state"] if status == 200 else None


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_several_versions_stay_loaded_with_num_versions(exports, tmp_path, start_server):
    base = tmp_path / "models"
    shutil.copytree(exports / "sentiment", base / "sentiment")
    copy_version(base, "sentiment", 1, 2)
    server = start_server("--model-base-path", str(base), "--num-versions", "2",
                          "--poll-seconds", "0")
    assert server.started["models"] == {"sentiment": [1, 2]}
    for version in (1, 2):
        assert server.call(f"/v1/models/sentiment/versions/{version}:predict",
                           {"instances": ["x"]})[0] == 200
    status, body = server.call("/v1/models/sentiment")
    assert [v["version"] for v in body["model_version_status"]] == ["2", "1"]


# --- Overload and shutdown ----------------------------------------------------------


def test_past_the_queue_requests_get_503_at_once(sleeper, start_server):
    server = start_server("--model", f"sleep={sleeper}", "--max-batch-size", "1",
                          "--max-enqueued-batches", "1", "--num-batch-threads", "1",
                          "--poll-seconds", "0")

    def one(i):
        start = time.monotonic()
        status, body = server.call("/v1/models/sleep:predict", {"instances": [0.6]})
        return status, body, time.monotonic() - start

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert served and refused and len(served) + len(refused) == 8, results
    assert all(body["predictions"][0] >= 0.6 for _, body, _ in served)
    assert refused[0][1] == {
        "error": "The batch scheduling queue to which this task was submitted is full"}
    # Refused at once, not after waiting in line.
    assert max(seconds for *_, seconds in refused) < 0.5
    assert server.call("/v1/models/sleep:predict", {"instances": [0.0]})[0] == 200


def test_sigterm_finishes_requests_in_flight_and_exits_0(sleeper, start_server):
    server = start_server("--model", f"sleep={sleeper}", "--max-batch-size", "1",
                          "--num-batch-threads", "2", "--poll-seconds", "0")
    host, port = server.url.split("//")[1].split(":")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(server.call, "/v1/models/sleep:predict", {"instances": [1.5]})
                   for _ in range(3)]
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        in_flight = sum(not f.done() for f in futures)
        # No new connections once SIGTERM has arrived ...
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=2).close()
        results = [f.result() for f in futures]
    # ... while the three requests (the last one still queued then) all finish.
    assert in_flight == 3
    assert [status for status, _ in results] == [200] * 3
    assert all(body["predictions"][0] >= 1.5 for _, body in results)
    assert server.process.wait(60) == 0, server.stderr()


# --- Command line ----------------------------------------------------------------------


def test_bad_command_lines_are_one_line_errors(tmp_path, exports):
    for args, message in [
        (["--model-base-path", str(tmp_path / "missing")], "is not a folder"),
        (["--model", "sentiment"], "--model takes NAME=PATH"),
        (["--model", f"../x={exports / 'sentiment'}"], "A model name is letters"),
        (["--model", f"s={tmp_path / 'nothing'}"], "is not a folder"),
    ]:
        proc = run_serve(*args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert message in proc.stderr.strip().splitlines()[-1]


def test_a_port_in_use_is_a_one_line_error(tmp_path, exports):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_serve("--model", f"sentiment={exports / 'sentiment'}", "--port", str(port),
                         cwd=tmp_path)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr.strip().splitlines()[-1]


# --- What is loaded, and what a URL can reach ---------------------------------------


def test_a_version_that_fails_to_load_is_reported_and_the_previous_one_keeps_serving(
        exports, tmp_path, start_server):
    base = tmp_path / "models"
    shutil.copytree(exports / "sentiment", base / "sentiment")
    server = start_server("--model-base-path", str(base), "--poll-seconds", "0.2")
    broken = base / "sentiment" / ".broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    broken.rename(base / "sentiment" / "2")
    wait_for(lambda: state(server, 2) == "END")
    status, body = server.call("/v1/models/sentiment/versions/2")
    assert body["model_version_status"][0]["status"]["error_code"] == "UNKNOWN"
    assert "Failed to load" in body["model_version_status"][0]["status"]["error_message"]
    assert state(server, 1) == "AVAILABLE"
    assert server.call("/v1/models/sentiment:predict", {"instances": ["x"]})[0] == 200


def test_only_savedmodels_are_loaded_and_urls_stay_inside_the_base_path(
        exports, tmp_path, start_server):
    import pickle

    base = tmp_path / "models"
    shutil.copytree(exports / "sentiment", base / "sentiment")
    # A version folder holding a pickle and a Keras file, but no SavedModel: never loaded.
    (base / "sentiment" / "5").mkdir()
    (base / "sentiment" / "5" / "model.pkl").write_bytes(pickle.dumps({"x": 1}))
    (base / "sentiment" / "5" / "model.keras").write_bytes(b"PK")
    # A SavedModel outside the base path, next to it.
    shutil.copytree(exports / "sentiment", tmp_path / "outside")
    server = start_server("--model-base-path", str(base), "--poll-seconds", "0")
    assert server.started["models"] == {"sentiment": [1]}
    for path in ["/v1/models/..:predict", "/v1/models/%2E%2E%2Foutside:predict",
                 "/v1/models/..%2Foutside:predict", "/v1/models/sentiment%2F..%2F..%2Foutside:predict",
                 "/v1/models/sentiment/versions/5:predict"]:
        status, body = server.call(path, {"instances": ["x"]})
        assert status in (400, 404), (path, status, body)
    assert server.call("/v1/models/outside")[0] == 404
