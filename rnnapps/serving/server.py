"""`rnnapps serve`: SavedModels over TensorFlow Serving's REST API, and a web page.

An ASGI application (Starlette) run by uvicorn. Starlette and uvicorn are
the production ASGI stack that FastAPI itself is built on; routing here is a
handful of regular expressions (TF Serving's own), so FastAPI's request
models and OpenAPI generation would add nothing but start-up time.

Endpoints (TF Serving's, https://www.tensorflow.org/tfx/serving/api_rest):

    GET  /v1/models/{name}[/versions/{v}]             version status
    GET  /v1/models/{name}[/versions/{v}]/metadata    signature defs
    POST /v1/models/{name}[/versions/{v}]:predict     instances -> predictions,
                                                      inputs -> outputs
and rnnapps's own:

    GET  /                                            the web page, one tab per model
    GET  /rnnapps/models                              what the page needs to know

Example:

    rnnapps train sentiment && rnnapps serve
    curl -d '{"instances": ["Great coffee, would buy again"]}' \\
        http://127.0.0.1:8501/v1/models/sentiment:predict
"""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib.resources
import logging
import re
import signal
import socket
import sys
import time

from rnnapps.serving import rest
from rnnapps.serving.batching import Batcher, QueueFull
from rnnapps.serving.models import ModelRegistry

__all__ = ["ServerConfig", "build_app", "serve"]

log = logging.getLogger("rnnapps.serving")

# TF Serving's URL patterns (model_servers/http_rest_api_handler.cc).
_POST = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_GET = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
# TensorFlow's error codes, by number (tensorflow/core/protobuf/error_codes.proto).
_CODE_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)
_INPUT_ERRORS = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"}


@dataclasses.dataclass
class ServerConfig:
    """How `rnnapps serve` serves (its flags)."""

    # A folder of models, each a folder of numbered SavedModel versions (TF
    # Serving's layout, what `rnnapps train` writes). None: only `models`.
    model_base_path: str | None = "saved_models"
    # name -> a model's folder of versions, or one version folder.
    models: dict = dataclasses.field(default_factory=dict)
    # Loopback only unless told otherwise: the API has no authentication.
    host: str = "127.0.0.1"
    # TF Serving's REST port; 0 picks a free one (printed at start).
    port: int = 8501
    # How often to look for new and deleted versions (0: never).
    poll_seconds: float = 1.0
    # How many of each model's newest versions stay loaded (0: all).
    num_versions: int = 1
    batching: bool = True
    max_batch_size: int = 64
    # How long a batch waits for more requests under concurrent load (a lone
    # client's request never waits); 0: only while every batch thread is busy.
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 16
    num_batch_threads: int = 2
    # Requests larger than this get 413 (a 1000x1000 PNG in base64 is about 4 MB).
    max_body_bytes: int = 16 * 2**20
    # How long SIGTERM waits for requests in flight.
    graceful_seconds: float = 30.0


def _error_code(error):
    code = getattr(error, "error_code", None)
    if isinstance(code, int) and 0 <= code < len(_CODE_NAMES):
        return _CODE_NAMES[code]
    return "UNKNOWN"


def _error_message(error):
    """A TensorFlow error's message without the graph's node names and traceback."""
    message = (getattr(error, "message", None) or str(error)).split("\n\t [[")[0]
    lines = [
        line.strip() for line in message.splitlines()
        if line.strip() and not line.startswith((" ", "\t"))
        and not line.startswith(("Graph execution error", "Detected at node", "<stack traces"))
    ]
    message = " ".join(lines) or type(error).__name__
    # tf.debugging.Assert's "assertion failed: [the message]" -> "the message".
    return re.sub(r"^assertion failed: \[(.*)\]$", r"\1", message)


def _is_input_error(error):
    return _error_code(error) in _INPUT_ERRORS


class _App:
    """The server's state: registry, batchers, executors."""

    def __init__(self, config, registry):
        self.config = config
        self.registry = registry
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.num_batch_threads, thread_name_prefix="rnnapps-batch")
        self.loader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rnnapps-load")
        self.poller = None
        self.closing = set()  # batchers of unloaded versions, finishing their requests
        self.loop = None
        self.page = None

    # --- Lifecycle ------------------------------------------------------

    async def start(self):
        self.loop = asyncio.get_running_loop()
        if self.config.poll_seconds > 0:
            self.poller = self.loop.create_task(self._poll())

    async def stop(self):
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        for model in self.registry.models.values():
            for servable in model.servables.values():
                for batcher in servable.batchers.values():
                    await batcher.close()
        self.loader.shutdown(wait=False, cancel_futures=True)
        self.executor.shutdown(wait=True)

    async def _poll(self):
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            try:
                events = await self.loop.run_in_executor(
                    self.loader, self.registry.poll, self._unloaded)
            except Exception:  # noqa: BLE001 - keep polling; the log says why
                log.exception("polling the model folders failed")
                continue
            for name, version, event in events:
                print(f"rnnapps serve: {name} version {version} {event}", file=sys.stderr, flush=True)

    def _unloaded(self, servable):
        """Called from the loader thread: let the unloaded version's batchers
        finish what they hold."""
        def close(batcher):
            task = self.loop.create_task(batcher.close())
            self.closing.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self.closing.discard)

        for batcher in list(servable.batchers.values()):
            self.loop.call_soon_threadsafe(close, batcher)

    # --- Inference ------------------------------------------------------

    def _batcher(self, servable, signature):
        batcher = servable.batchers.get(signature.name)
        if batcher is None:
            config = self.config
            batched = config.batching and signature.batchable
            batcher = Batcher(
                signature, self.executor,
                max_batch_size=config.max_batch_size if batched else 1,
                batch_timeout_micros=config.batch_timeout_micros if batched else 0,
                max_enqueued_batches=(
                    config.max_enqueued_batches if batched
                    else config.max_enqueued_batches * config.max_batch_size),
                num_batch_threads=config.num_batch_threads,
                is_input_error=_is_input_error,
            )
            servable.batchers = {**servable.batchers, signature.name: batcher}
        return batcher

    async def predict(self, body, name, version, label):
        document = rest.parse_json(body)
        signature_name = rest.signature_name(document)
        servable = self._resolve(name, version, label)
        signature = servable.signature(signature_name)
        arrays, row_format = rest.request_tensors(document, signature.inputs)
        try:
            outputs = await self._batcher(servable, signature).submit(arrays)
        except QueueFull as error:
            raise rest.RestError(str(error), 503)
        except Exception as error:  # noqa: BLE001 - TensorFlow's errors, by code
            code = _error_code(error)
            if code == "UNKNOWN":
                log.exception("prediction failed")
            raise rest.RestError(_error_message(error), rest.STATUS_OF_CODE.get(code, 500))
        return rest.response_json(outputs, row_format)

    def _resolve(self, name, version, label):
        model = self.registry.get(name)
        if label is not None:
            raise rest.RestError(f"Unrecognized servable version label: {label}")
        return model.resolve(version)

    def metadata(self, name, version, label):
        servable = self._resolve(name, version, label)
        return {
            "model_spec": {"name": servable.name, "signature_name": "",
                           "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": servable.signature_defs}},
        }

    def status(self, name, version, label):
        model = self.registry.models.get(name)
        if model is None:
            raise rest.RestError(f"Could not find any versions of model {name}", 404)
        if label is not None:
            raise rest.RestError(f"Unrecognized servable version label: {label}")
        return model.status(version)

    def page_models(self):
        """What the web page shows: each model's task, versions and inputs."""
        described = []
        for name, model in sorted(self.registry.models.items()):
            servable = model.latest()
            if servable is None:
                continue
            info = servable.rnnapps.get("data", {}) if isinstance(servable.rnnapps, dict) else {}
            signature = servable.signatures.get("serving_default")
            described.append({
                "name": name,
                "version": servable.version,
                "versions": sorted(model.servables),
                "task": servable.rnnapps.get("task"),
                "inputs": {} if signature is None else {
                    k: {"dtype": s.dtype, "shape": s.shape} for k, s in signature.inputs.items()},
                "outputs": {} if signature is None else {
                    k: {"dtype": s.dtype, "shape": s.shape} for k, s in signature.outputs.items()},
                "info": {k: info[k] for k in _PAGE_INFO if k in info},
            })
        return {"models": described}


# What the page may show of an export's data facts (assets.extra/rnnapps.json).
_PAGE_INFO = (
    "name", "label_names", "lookback", "horizon", "quantiles", "columns", "step", "last_time",
    "recent", "recent_future", "future_columns", "season",
)


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


async def _read_body(scope, receive, limit):
    """The request body (`RestError` 413 past `limit` bytes).

    A body past the limit is read to its end but not kept (up to 8 times the
    limit), so that a client which sends it all before reading the answer
    gets the 413 instead of a reset connection.
    """
    too_large = rest.RestError(
        f"The request body is larger than the server's limit of {limit} bytes "
        "(--max-body-bytes)", 413)
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > 8 * limit:
            raise too_large
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body") or size > 8 * limit:
            break
    if size > limit:
        raise too_large
    return b"".join(chunks)


def build_app(config, registry):
    """The ASGI application serving `registry`'s models.

    The REST API (`/v1/...`) is plain ASGI: it is the hot path, and Starlette's
    request, routing and middleware layers cost as much event-loop time per
    request as everything else together (measured with py-spy under
    `benchmarks/serving_load.py`). Starlette serves the rest: the page, its
    static files, `/rnnapps/models`, and the lifespan.
    """
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    state = _App(config, registry)

    async def v1(method, path, scope, receive):
        """(status, JSON document) of a TF Serving API request."""
        try:
            if method == "POST" and (match := _POST.fullmatch(path)):
                name, version, label, verb = match.groups()
                body = await _read_body(scope, receive, config.max_body_bytes)
                if verb != "predict":
                    if verb.lower() in ("classify", "regress"):
                        raise rest.RestError(
                            f"{verb} needs a signature of method tensorflow/serving/{verb} "
                            "(tf.Example input); rnnapps exports have predict signatures only: "
                            "use :predict", 400)
                    raise rest.RestError(f"Malformed request: {method} {path}")
                return 200, await state.predict(body, name, _version(version), label)
            if method == "GET" and (match := _GET.fullmatch(path)):
                name, version, label, sub = match.groups()
                if name is None:
                    raise rest.RestError("Missing model name in request.")
                if sub == "metadata":
                    return 200, state.metadata(name, _version(version), label)
                return 200, state.status(name, _version(version), label)
            raise rest.RestError(f"Malformed request: {method} {path}")
        except rest.RestError as error:
            return error.status, {"error": error.message}
        except Exception as error:  # noqa: BLE001 - a bug here must not look like a crash
            log.exception("%s %s failed", method, path)
            return 500, {"error": f"Internal: {type(error).__name__}: {error}"}

    def json_response(document, status=200):
        return Response(rest.dumps(document), status_code=status, media_type="application/json")

    async def models(request):
        return json_response(state.page_models())

    static = importlib.resources.files("rnnapps.serving") / "static"

    async def page(request):
        if state.page is None:
            state.page = (static / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(state.page)

    async def not_found(request, exc):
        status = getattr(exc, "status_code", 404)
        return json_response({"error": f"Not found: {request.method} {request.url.path}"}, status)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await state.start()
        yield
        await state.stop()

    site = Starlette(
        routes=[
            Route("/", page),
            Route("/rnnapps/models", models),
            Mount("/static", StaticFiles(directory=str(static)), name="static"),
        ],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )

    async def app(scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await site(scope, receive, send)
        try:
            status, document = await v1(scope["method"], scope["path"], scope, receive)
        except _Disconnected:
            return
        body = rest.dumps(document)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})

    app.server = state
    return app


def _version(text):
    if text is None:
        return None
    version = int(text)
    if version >= 2**63:
        raise rest.RestError(f"Failed to convert version: {text} to numeric.")
    return version


def _bind(host, port):
    """A listening socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(config, ready=None):
    """Loads the models, then serves until SIGTERM or SIGINT (blocking).

    Args:
        config: A `ServerConfig`.
        ready: Called with `(url, loaded)` once the models are loaded and
            the socket listens; `loaded` maps each model to its loaded versions.

    Raises:
        ValueError: a model path that is not there, no model to serve.
        OSError: the port cannot be bound.
    """
    import uvicorn

    registry = ModelRegistry(config.model_base_path, config.models, config.num_versions)
    started = time.monotonic()
    events = registry.poll()
    for name, version, event in events:
        if event == "failed":
            state = registry.models[name].states[version]
            print(f"rnnapps serve: {name} version {version}: {state[2]}", file=sys.stderr)
    if not any(model.servables for model in registry.models.values()) and config.poll_seconds <= 0:
        raise ValueError(
            f"no SavedModel to serve under {config.model_base_path} (train one with "
            "`rnnapps train TASK`, or name one with --model NAME=PATH)"
        )
    sock = _bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    app = build_app(config, registry)
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on",
        timeout_graceful_shutdown=config.graceful_seconds,
        timeout_keep_alive=30,
    ))
    loaded = {
        name: sorted(model.servables) for name, model in sorted(registry.models.items())
    }
    if not any(loaded.values()):
        print(f"rnnapps serve: no model yet under {config.model_base_path}; looking every "
              f"{config.poll_seconds:g} s", file=sys.stderr)
    print(f"rnnapps serve: {', '.join(f'{n} {v}' for n, v in loaded.items()) or 'no models'} "
          f"loaded in {time.monotonic() - started:.1f} s; serving at {url}", file=sys.stderr,
          flush=True)
    if ready is not None:
        ready(url, loaded)
    # uvicorn re-raises the signal that stopped it once it has shut down
    # gracefully; with these handlers that re-raise does nothing, and the
    # command exits 0 after finishing the requests in flight.
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
    return 0


def main_options(args):
    """A `ServerConfig` from the parsed `rnnapps serve` flags."""
    models = {}
    for item in args.model or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model takes NAME=PATH. Received: {item!r}")
        models[name] = path
    base = args.model_base_path
    if base is None and not models:
        base = "saved_models"
    return ServerConfig(
        model_base_path=base, models=models, host=args.host, port=args.port,
        poll_seconds=args.poll_seconds, num_versions=args.num_versions,
        batching=args.batching, max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        max_enqueued_batches=args.max_enqueued_batches,
        num_batch_threads=args.num_batch_threads, max_body_bytes=args.max_body_bytes,
    )

