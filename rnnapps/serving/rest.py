"""TensorFlow Serving's REST formats: JSON in, NumPy arrays out, and back.

This module is pure Python and NumPy (no TensorFlow), so the formats can be
tested on their own. It follows TF Serving's `json_tensor.cc` and its REST
API documentation (https://www.tensorflow.org/tfx/serving/api_rest):

- a predict request holds `instances` (row format: one entry per example,
  an object of named inputs when the signature has several) or `inputs`
  (columnar format: one tensor, or an object of named tensors), never both;
- binary strings travel as `{"b64": "..."}`; `NaN`, `Infinity` and
  `-Infinity` are accepted as numbers;
- the response is `{"predictions": [...]}` for the row format (one entry per
  example, an object of named outputs when there are several) and
  `{"outputs": ...}` for the columnar format; string outputs whose name ends
  in `_bytes` are returned as `{"b64": "..."}`;
- errors are `{"error": "<message>"}` with TF Serving's status codes and, where
  it has one, its message.
"""

import base64
import binascii
import dataclasses
import json

import numpy as np

__all__ = [
    "RestError", "TensorSpec", "parse_json", "signature_name", "request_tensors",
    "response_json", "dumps", "STATUS_OF_CODE",
]

# TF Serving's `ToHTTPStatusCode` (model_servers/http_server.cc): error code -> HTTP status.
STATUS_OF_CODE = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}

_INTEGER_RANGES = {
    "int8": (-2**7, 2**7 - 1), "int16": (-2**15, 2**15 - 1), "int32": (-2**31, 2**31 - 1),
    "int64": (-2**63, 2**63 - 1), "uint8": (0, 2**8 - 1), "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1),
}
_FLOATS = ("float16", "float32", "float64", "bfloat16")


class RestError(Exception):
    """A request the server answers with `{"error": message}` and `status`."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A signature's input or output: its name, dtype name and shape.

    `dtype` is TensorFlow's name for it (`"string"`, `"float32"`, `"int64"`,
    `"bool"`, ...); `shape` is a tuple with `None` for unknown dimensions, or
    `None` when even the rank is unknown.
    """

    name: str
    dtype: str
    shape: tuple | None

    def describe(self):
        if self.shape is None:
            return "[...]"
        return "[" + ",".join("?" if d is None else str(d) for d in self.shape) + "]"


def parse_json(body):
    """The request body as a JSON object (`RestError` 400 if it is not one)."""
    if not body.strip():
        raise RestError("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except UnicodeDecodeError as error:
        raise RestError(f"JSON Parse error: the body is not UTF-8 ({error.reason} at offset: {error.start})")
    except json.JSONDecodeError as error:
        raise RestError(f"JSON Parse error: {error.msg}. at offset: {error.pos}")
    if not isinstance(document, dict):
        raise RestError(f"JSON Value: {_short(document)} Is not object")
    return document


def signature_name(document):
    """The request's `signature_name` (`serving_default` when absent or empty)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise RestError(
            f"JSON Value: {_short(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name or "serving_default"


def _short(value, limit=200):
    text = json.dumps(value, allow_nan=True)
    return text if len(text) <= limit else text[:limit] + "..."


def _json_type(value):
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _type_error(value, dtype):
    return RestError(
        f"JSON Value: {_short(value)} Type: {_json_type(value)} is not of expected type: {dtype}"
    )


def _scalar(value, dtype):
    """One JSON leaf converted to `dtype` (raises `RestError` on a mismatch)."""
    if dtype == "string":
        if isinstance(value, str):
            return value.encode("utf-8")
        if _is_b64(value) and isinstance(value["b64"], str):
            text = "".join(value["b64"].split())
            try:  # padding optional, as in TF Serving (absl::Base64Unescape)
                return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise RestError(f"Unable to base64 decode: {_short(value)}")
        if isinstance(value, dict):
            raise RestError(f"JSON Value: {_short(value)} not formatted correctly for base64 data")
        raise _type_error(value, dtype)
    if dtype in _FLOATS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(value, "float" if dtype == "float32" else dtype)
    if dtype in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[dtype]
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise _type_error(value, dtype)
    if dtype == "bool":
        if isinstance(value, bool):
            return value
        raise _type_error(value, dtype)
    raise RestError(f"Conversion of JSON Value: {_short(value)} to type: {dtype}", status=501)


def _numpy_dtype(dtype):
    if dtype == "string":
        return object
    if dtype == "bfloat16":
        return np.float32
    return np.dtype(dtype)


def _tensor(value, dtype):
    """A nested JSON list (or a leaf) as a NumPy array of `dtype`.

    The shape is read by following the first element at each level, then
    every element is checked against it, as TF Serving does.
    """
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    rank = len(shape)
    flat = []

    def visit(node, level):
        if level == rank:
            if isinstance(node, list):
                raise RestError(f"Encountered list at unexpected level: {level} expected < {rank}")
            flat.append(_scalar(node, dtype))
            return
        if not isinstance(node, list):
            raise RestError(
                f"JSON Value: {_short(node)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if len(node) != shape[level]:
            raise RestError(
                f"Encountered list at unexpected size: {len(node)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for child in node:
            visit(child, level + 1)

    visit(value, 0)
    array = np.empty(len(flat), dtype=_numpy_dtype(dtype))
    if flat:
        array[:] = flat
    return array.reshape(shape)


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def _check_shape(array, spec):
    """`array`, checked against the signature's shape (an empty batch takes
    the signature's inner shape, which JSON cannot spell)."""
    if spec.shape is None:
        return array
    if array.size == 0 and array.ndim >= 1 and array.shape[0] == 0 and len(spec.shape) > 1:
        array = array.reshape([0] + [d or 0 for d in spec.shape[1:]])
    fits = array.ndim == len(spec.shape) and all(
        d is None or d == actual for d, actual in zip(spec.shape, array.shape)
    )
    if not fits:
        raise RestError(
            f"Input {spec.name!r} has shape {_shape_text(array.shape)}, but the signature "
            f"expects {spec.describe()} (? is any size; the first dimension is the batch)"
        )
    return array


def request_tensors(document, specs):
    """The input arrays of a predict request, and whether it used the row format.

    Args:
        document: The request, parsed (`parse_json`).
        specs: The signature's inputs, a dict of name -> `TensorSpec`.

    Returns:
        `(arrays, row_format)`: a dict of name -> NumPy array (strings as
        object arrays of bytes), and `True` for `instances`, `False` for
        `inputs`.

    Raises:
        RestError: the request does not fit the format or the signature.

    Example:

    >>> specs = {"text": TensorSpec("text", "string", (None,))}
    >>> arrays, row_format = request_tensors({"instances": ["Gut", {"b64": "U2NobGVjaHQ="}]}, specs)
    >>> arrays["text"].tolist(), row_format
    ([b'Gut', b'Schlecht'], True)
    >>> request_tensors({"instances": [1.5]}, specs)
    Traceback (most recent call last):
    ...
    rnnapps.serving.rest.RestError: Failed to process element: 0 of 'instances' list. Error: JSON Value: 1.5 Type: Number is not of expected type: string
    """
    if "instances" in document and "inputs" in document:
        raise RestError(
            f"JSON Value: {_short(document)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if "instances" in document:
        arrays = _rows(document, specs)
        row_format = True
    elif "inputs" in document:
        arrays = _columns(document["inputs"], specs)
        row_format = False
    else:
        raise RestError("Missing 'inputs' or 'instances' key")
    return {name: _check_shape(arrays[name], specs[name]) for name in specs}, row_format


def _rows(document, specs):
    instances = document["instances"]
    if not isinstance(instances, list):
        raise RestError(f"JSON Value: {_short(document)} Expecting 'instances' to be an list/array")
    if not instances:
        raise RestError(f"JSON Value: {_short(document)} No values in 'instances' array")
    names = sorted(specs)
    named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not named and len(specs) > 1:
        raise RestError(
            "instances is a plain list, but expecting list of objects as multiple input "
            f"tensors required as per tensorinfo_map (inputs: {', '.join(names)})"
        )
    if not named and specs[names[0]].shape is not None and len(specs[names[0]].shape) == 1:
        # One scalar input (text, image bytes): one leaf per instance, no nesting to follow.
        dtype = specs[names[0]].dtype
        array = np.empty(len(instances), dtype=_numpy_dtype(dtype))
        try:
            array[:] = [_scalar(value, dtype) for value in instances]
        except RestError:
            pass  # the general path below names the element at fault
        else:
            return {names[0]: array}
    columns = {name: [] for name in names}
    for index, instance in enumerate(instances):
        is_named = isinstance(instance, dict) and not _is_b64(instance)
        if named and not is_named:
            raise RestError(f"Expecting object but got list at item {index} of input list")
        if not named and is_named:
            raise RestError(f"Expecting value/list but got object at item {index} of input list")
        if named:
            if sorted(instance) != names:
                raise RestError(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_short(instance)} keys must be equal to: {','.join(names)}"
                )
            items = instance.items()
        else:
            items = [(names[0], instance)]
        for name, value in items:
            try:
                array = _tensor(value, specs[name].dtype)
            except RestError as error:
                where = f"{index} key: {name}" if named else f"{index}"
                raise RestError(
                    f"Failed to process element: {where} of 'instances' list. "
                    f"Error: {error.message}", error.status,
                )
            if columns[name] and array.shape != columns[name][0].shape:
                first = columns[name][0]
                if array.size != first.size:
                    message = f"Expecting tensor size: {first.size} but got: {array.size}"
                else:
                    message = f"Expecting shape {_shape_text(first.shape)} but got: {_shape_text(array.shape)}"
                raise RestError(
                    f"Failed to process element: {index} of 'instances' list. Error: {message}"
                )
            columns[name].append(array)
    return {name: np.stack(arrays) for name, arrays in columns.items()}


def _columns(inputs, specs):
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) != 1:
            raise RestError(
                "inputs is a plain value/list, but expecting an object as multiple input "
                f"tensors required as per tensorinfo_map (inputs: {', '.join(sorted(specs))})"
            )
        (name, spec), = specs.items()
        return {name: _tensor(inputs, spec.dtype)}
    arrays = {}
    for name in sorted(specs):
        if name not in inputs:
            raise RestError(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _tensor(inputs[name], specs[name].dtype)
    return arrays


# --- Responses ----------------------------------------------------------------------


def _leaves(array, name):
    """`array` as nested Python lists of JSON values."""
    if array.dtype == object or array.dtype.kind in "SU":
        def encode(item):
            if isinstance(item, str):
                item = item.encode("utf-8")
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(item).decode("ascii")}
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:  # not text: the only lossless JSON form
                return {"b64": base64.b64encode(item).decode("ascii")}

        flat = [encode(item) for item in array.ravel().tolist()]
        return _nest(flat, array.shape)
    if array.dtype.kind == "f":
        if array.dtype.itemsize <= 4:
            # float32 as its shortest decimal (0.3, not 0.30000001192092896),
            # as TF Serving writes it.
            flat = [float(str(v)) for v in array.astype(np.float32).ravel()]
            return _nest(flat, array.shape)
        return array.tolist()
    return array.tolist()


def _nest(flat, shape):
    """The flat list `flat` nested as an array of `shape` (as `tolist` would)."""
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape).tolist()


def response_json(outputs, row_format):
    """The JSON object answering a predict request.

    Args:
        outputs: A dict of output name -> NumPy array (leading dimension the
            batch for the row format).
        row_format: Whether the request used `instances`.

    Example:

    >>> outputs = {"labels": np.array([b"great"], dtype=object),
    ...            "probabilities": np.array([[0.9, 0.1]], dtype=np.float32)}
    >>> response_json(outputs, row_format=True)
    {'predictions': [{'labels': 'great', 'probabilities': [0.9, 0.1]}]}
    >>> response_json(outputs, row_format=False)
    {'outputs': {'labels': ['great'], 'probabilities': [[0.9, 0.1]]}}
    """
    if not outputs:
        raise RestError("Cannot convert empty tensor map to JSON", status=500)
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _leaves(outputs[names[0]], names[0])}
        return {"outputs": {name: _leaves(outputs[name], name) for name in names}}
    batch = None
    for name in names:
        if outputs[name].ndim == 0:
            raise RestError(f"Tensor name: {name} has no shape information ", status=500)
        if batch is None:
            batch = outputs[name].shape[0]
        elif outputs[name].shape[0] != batch:
            raise RestError(
                f"Tensor name: {name} has inconsistent batch size: "
                f"{outputs[name].shape[0]} expecting: {batch}", status=500,
            )
    columns = {name: _leaves(outputs[name], name) for name in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(batch)]}


def dumps(document):
    """JSON text of `document`; NaN and infinities as TF Serving writes them."""
    return json.dumps(document, allow_nan=True, ensure_ascii=False).encode("utf-8")

