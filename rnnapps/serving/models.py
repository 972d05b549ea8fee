"""The models a server serves: SavedModel versions found on disk, loaded and unloaded.

TF Serving's layout: a model is a folder of numbered version folders
(`saved_models/sentiment/1/`, `.../2/`), each a SavedModel. `ModelRegistry`
finds the models under a base path (or takes them by name), loads the newest
versions, and on every `poll()` loads versions that appeared and unloads
versions that were deleted or superseded. A new version is swapped in only
once it has loaded, so requests never see a model without a version; a
request keeps the `Servable` it resolved until it is answered, so unloading a
version never fails a request in flight.

Only SavedModels are loaded (`tf.saved_model.load`): no pickles, no Keras
objects, so no `Lambda` layer's code is deserialized.
"""

import inspect
import json
import logging
import os
import pathlib
import re
import threading

from rnnapps.serving.rest import RestError, TensorSpec

__all__ = ["Servable", "Model", "ModelRegistry", "MODEL_NAME"]

log = logging.getLogger("rnnapps.serving")

# A model name is a plain folder name: it can never name a path outside the base path.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _is_saved_model(path):
    return (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()


def _signature_defs(path):
    """The SavedModel's signature defs as TF Serving's metadata JSON writes them."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    file = path / "saved_model.pb"
    if file.is_file():
        proto.ParseFromString(file.read_bytes())
    else:
        from google.protobuf import text_format

        text_format.Parse((path / "saved_model.pbtxt").read_text(), proto)
    # Print default values ("unknown_rank": false, "name": ""), as TF Serving does;
    # protobuf renamed the option in 5.26.
    parameters = inspect.signature(json_format.MessageToDict).parameters
    if "always_print_fields_with_no_presence" in parameters:
        options = {"always_print_fields_with_no_presence": True}
    else:  # pragma: no cover - protobuf < 5.26
        options = {"including_default_value_fields": True}
    defs = {}
    for graph in proto.meta_graphs[:1]:
        for name, signature in graph.signature_def.items():
            defs[name] = json_format.MessageToDict(
                signature, preserving_proto_field_name=True, **options
            )
    return defs


def _spec(name, spec):
    dtype = spec.dtype.name
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorSpec(name, dtype, shape)


class Signature:
    """One callable signature of a loaded SavedModel."""

    def __init__(self, name, function):
        self.name = name
        self.function = function
        _, kwargs = function.structured_input_signature
        self.inputs = {key: _spec(key, spec) for key, spec in kwargs.items()}
        self._dtypes = {key: spec.dtype for key, spec in kwargs.items()}
        outputs = function.structured_outputs
        self.outputs = {key: _spec(key, spec) for key, spec in outputs.items()} if isinstance(
            outputs, dict) else {}
        # Requests can be merged when every input and output has a batch dimension.
        specs = [*self.inputs.values(), *self.outputs.values()]
        self.batchable = bool(self.inputs) and all(
            s.shape is not None and len(s.shape) >= 1 and s.shape[0] is None for s in specs
        )

    def __call__(self, arrays):
        """Runs the signature on NumPy inputs; returns NumPy outputs."""
        import tensorflow as tf

        tensors = {name: tf.constant(array, dtype=self._dtypes[name]) for name, array in arrays.items()}
        outputs = self.function(**tensors)
        return {name: value.numpy() for name, value in outputs.items()}


class Servable:
    """One loaded version of a model."""

    def __init__(self, name, version, path):
        import tensorflow as tf

        try:  # TensorFlow Text's ops (SentencePiece), which the text exports use
            import tensorflow_text  # noqa: F401
        except ImportError:  # pragma: no cover - installed with keras-hub
            pass
        self.name = name
        self.version = version
        self.path = pathlib.Path(path)
        self.loaded = tf.saved_model.load(str(self.path))
        self.signatures = {
            key: Signature(key, function) for key, function in self.loaded.signatures.items()
        }
        self.signature_defs = _signature_defs(self.path)
        file = self.path / "assets.extra" / "rnnapps.json"
        try:
            self.rnnapps = json.loads(file.read_text()) if file.is_file() else {}
        except (OSError, ValueError):
            self.rnnapps = {}
        self.batchers = {}

    def warm_up(self):
        """Runs each signature once on an empty batch, so the first request
        does not pay for the graph's one-time set-up."""
        import numpy as np

        for signature in self.signatures.values():
            if not signature.batchable:
                continue
            arrays = {
                name: np.zeros([0] + [d or 0 for d in spec.shape[1:]],
                               dtype=object if spec.dtype == "string" else spec.dtype)
                for name, spec in signature.inputs.items()
            }
            try:
                signature(arrays)
            except Exception as error:  # a model that refuses an empty batch still serves
                log.debug("warm-up of %s/%s: %s", self.name, self.version, error)

    def signature(self, name):
        if name not in self.signatures:
            raise RestError(f'Serving signature name: "{name}" not found in signature def')
        return self.signatures[name]


class Model:
    """A model name, the folder of its versions, and the state of each version."""

    def __init__(self, name, base_path, fixed_version=None):
        self.name = name
        self.base_path = pathlib.Path(base_path)
        self.fixed_version = fixed_version  # a single version folder, not polled
        self.servables = {}  # version -> Servable (AVAILABLE)
        self.states = {}  # version -> (state, error_code, error_message)
        self.failed = {}  # version -> mtime of the folder whose load failed

    # The event loop reads `servables` and `states` while a loader thread
    # updates them: updates replace the dicts (copy on write), never mutate them.
    def set_state(self, version, state, error_code="OK", error_message=""):
        self.states = {**self.states, version: (state, error_code, error_message)}

    def versions_on_disk(self):
        if self.fixed_version is not None:
            return {self.fixed_version: self.base_path}
        try:
            entries = list(self.base_path.iterdir())
        except OSError:
            return {}
        return {
            int(p.name): p for p in entries
            if p.name.isdigit() and p.is_dir() and _is_saved_model(p)
        }

    def latest(self):
        servables = self.servables
        return servables[max(servables)] if servables else None

    def resolve(self, version=None):
        """The servable for a request (`RestError` 404 if none)."""
        if version is None:
            servable = self.latest()
            if servable is None:
                raise RestError(f"Servable not found for request: Latest({self.name})", 404)
            return servable
        servable = self.servables.get(version)
        if servable is None:
            raise RestError(f"Servable not found for request: Specific({self.name}, {version})", 404)
        return servable

    def status(self, version=None):
        """TF Serving's GetModelStatusResponse as JSON."""
        states = self.states
        if version is not None:
            if version not in states:
                raise RestError(f"Could not find version {version} of model {self.name}", 404)
            versions = [version]
        else:
            if not states:
                raise RestError(f"Could not find any versions of model {self.name}", 404)
            versions = sorted(states, reverse=True)
        return {"model_version_status": [
            {"version": str(v), "state": states[v][0],
             "status": {"error_code": states[v][1], "error_message": states[v][2]}}
            for v in versions
        ]}


class ModelRegistry:
    """Every served model, kept in step with the folders on disk.

    Args:
        base_path: A folder whose subfolders are models (or `None`).
        models: A dict of name -> path; a path is a model's folder of
            numbered versions, or one version folder (served as is).
        num_versions: How many of each model's newest versions to keep
            loaded (0 = all). TF Serving's default policy keeps 1.
    """

    def __init__(self, base_path=None, models=None, num_versions=1):
        self.base_path = None if base_path is None else pathlib.Path(base_path)
        self.explicit = {}
        for name, path in (models or {}).items():
            if not MODEL_NAME.match(name):
                raise ValueError(
                    f"A model name is letters, digits, '_', '.' and '-'. Received: {name!r}"
                )
            path = pathlib.Path(path)
            if not path.is_dir():
                raise ValueError(f"Model {name!r}: {path} is not a folder")
            if _is_saved_model(path):
                version = int(path.name) if path.name.isdigit() else 1
                self.explicit[name] = Model(name, path, fixed_version=version)
            else:
                self.explicit[name] = Model(name, path)
        if self.base_path is not None and not self.base_path.is_dir():
            raise ValueError(
                f"The model base path {self.base_path} is not a folder (train a task first, "
                "e.g. `rnnapps train sentiment`, or name the folder with --model-base-path)"
            )
        self.num_versions = num_versions
        self.models = dict(self.explicit)
        self._lock = threading.Lock()  # one poll at a time

    def get(self, name):
        model = self.models.get(name)
        if model is None:
            raise RestError(f"Servable not found for request: Latest({name})", 404)
        return model

    def _discover(self):
        if self.base_path is None:
            return
        try:
            entries = sorted(self.base_path.iterdir())
        except OSError:
            return
        for path in entries:
            name = path.name
            if name in self.models or not MODEL_NAME.match(name) or not path.is_dir():
                continue
            model = Model(name, path)
            if model.versions_on_disk():
                self.models = {**self.models, name: model}

    def poll(self, on_unload=None):
        """Loads new versions and unloads gone or superseded ones (blocking).

        Returns a list of `(name, version, event)` for what changed, event
        one of "loaded", "failed", "unloaded".
        """
        with self._lock:
            self._discover()
            events = []
            for model in list(self.models.values()):
                events.extend(self._poll_model(model, on_unload))
            return events

    def _poll_model(self, model, on_unload):
        events = []
        on_disk = model.versions_on_disk()
        wanted = sorted(on_disk, reverse=True)
        if self.num_versions:
            wanted = wanted[: self.num_versions]
        # Load first, so a model is never without a version while a new one loads.
        for version in sorted(wanted):
            if version in model.servables:
                continue
            path = on_disk[version]
            stamp = _stamp(path)
            if model.failed.get(version) == stamp:
                continue  # failed before and unchanged since
            model.set_state(version, "LOADING")
            try:
                servable = Servable(model.name, version, path)
                servable.warm_up()
            except Exception as error:  # noqa: BLE001 - any load failure is reported, not fatal
                message = f"{type(error).__name__}: {error}".splitlines()[0]
                model.set_state(version, "END", "UNKNOWN", f"Failed to load {path}: {message}")
                model.failed[version] = stamp
                events.append((model.name, version, "failed"))
                log.error("model %s version %s failed to load: %s", model.name, version, message)
                continue
            model.failed.pop(version, None)
            model.servables = {**model.servables, version: servable}
            model.set_state(version, "AVAILABLE")
            events.append((model.name, version, "loaded"))
        # Unload what was deleted, and what a newer available version supersedes
        # (a version whose successor failed to load keeps serving).
        newer_available = set(wanted) & set(model.servables)
        for version in sorted(model.servables):
            gone = version not in on_disk
            if gone or (version not in wanted and newer_available):
                model.set_state(version, "UNLOADING")
                servable = model.servables[version]
                model.servables = {v: s for v, s in model.servables.items() if v != version}
                if on_unload is not None:
                    on_unload(servable)
                model.set_state(version, "END")
                events.append((model.name, version, "unloaded"))
        for version in list(model.failed):
            if version not in on_disk:
                model.failed.pop(version)
        return events


def _stamp(path):
    try:
        return os.stat(path / "saved_model.pb").st_mtime_ns
    except OSError:
        return None
