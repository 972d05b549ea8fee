"""TF Serving's JSON formats, against request/response pairs from TF Serving's
own tests (tensorflow/serving: util/json_tensor_test.cc,
model_servers/http_rest_api_handler_test.cc) and its REST API documentation."""

import json
import math

import numpy as np
import pytest

from rnnapps.serving.rest import (
    RestError, TensorSpec, dumps, parse_json, request_tensors, response_json, signature_name,
)

INT = {"default": TensorSpec("default", "int32", None)}
FLOAT = {"x": TensorSpec("x", "float32", (None,))}
STRING = {"default": TensorSpec("default", "string", None)}


def tensors(body, specs):
    return request_tensors(parse_json(body), specs)


def error_of(body, specs):
    with pytest.raises(RestError) as caught:
        tensors(body, specs)
    return caught.value


def test_row_format_from_tf_serving_tests():
    arrays, row = tensors('{"instances": [[1,2],[3,4],[5,6]]}', INT)
    assert row and arrays["default"].shape == (3, 2) and arrays["default"].dtype == np.int32
    assert arrays["default"].ravel().tolist() == [1, 2, 3, 4, 5, 6]
    arrays, _ = tensors('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', FLOAT)
    np.testing.assert_allclose(arrays["x"], [1, 2, 3, 4, 5.003, 0.007, 0], rtol=1e-6)


def test_b64_strings_decode_at_any_depth():
    arrays, _ = tensors('{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}', STRING)
    assert arrays["default"].tolist() == [b"hello", b"world"]
    arrays, _ = tensors('{"instances": [[{"b64":"aGVsbG8="}], [{"b64":"d29ybGQ="}]]}', STRING)
    assert arrays["default"].shape == (2, 1)
    # Padding is optional, as in TF Serving (absl::Base64Unescape).
    arrays, _ = tensors('{"instances": [{"b64": "aGVsbG8"}]}', STRING)
    assert arrays["default"].tolist() == [b"hello"]
    assert "Unable to base64 decode" in error_of('{"instances": [{"b64": "!!"}]}', STRING).message


def test_multiple_named_inputs_with_nan_and_infinity():
    specs = {
        "int_tensor": TensorSpec("int_tensor", "int32", None),
        "str_tensor": TensorSpec("str_tensor", "string", None),
        "float_tensor": TensorSpec("float_tensor", "float32", None),
        "dbl_tensor": TensorSpec("dbl_tensor", "float64", None),
    }
    body = """{"instances":[
      {"int_tensor":[[1,2],[3,4],[5,6]],"str_tensor":["foo","bar"],"float_tensor":[1.0,NaN],"dbl_tensor":[NaN]},
      {"int_tensor":[[7,8],[9,0],[1,2]],"str_tensor":["baz","bat"],"float_tensor":[2.0,Infinity],"dbl_tensor":[2.0]}]}"""
    arrays, row = tensors(body, specs)
    assert row
    assert arrays["int_tensor"].shape == (2, 3, 2)
    assert arrays["str_tensor"].tolist() == [[b"foo", b"bar"], [b"baz", b"bat"]]
    floats = arrays["float_tensor"]
    assert floats.shape == (2, 2) and math.isnan(floats[0, 1]) and math.isinf(floats[1, 1])
    assert arrays["dbl_tensor"].dtype == np.float64 and arrays["dbl_tensor"].shape == (2, 1)


def test_columnar_format():
    arrays, row = tensors('{"inputs":{"int_tensor":[[[1,2],[3,4],[5,6]]]}}',
                          {"int_tensor": TensorSpec("int_tensor", "int32", None)})
    assert not row and arrays["int_tensor"].shape == (1, 3, 2)
    arrays, row = tensors('{"inputs":[[[1,2],[3,4],[5,6]]]}', INT)
    assert not row and arrays["default"].shape == (1, 3, 2)
    # A b64 object is a value: a scalar string tensor.
    arrays, _ = tensors('{"inputs": {"b64": "aGVsbG8="}}', STRING)
    assert arrays["default"].shape == () and arrays["default"].item() == b"hello"
    # Extra named inputs are ignored (TF Serving); a missing one is an error.
    arrays, _ = tensors('{"inputs": {"x": [1.0], "other": 3}}', FLOAT)
    assert list(arrays) == ["x"]
    assert error_of('{"inputs": {"y": [1.0]}}', FLOAT).message == (
        "Missing named input: x in 'inputs' object.")


@pytest.mark.parametrize("body, message", [
    ('', "JSON Parse error: The document is empty"),
    ('instances = [1, 2]', "JSON Parse error"),
    ('[1, 2]', "Is not object"),
    ('{"instances": [1], "inputs": [1]}', "expecting only one of 'inputs' or 'instances'"),
    ('{"signature_name": "serving_default"}', "Missing 'inputs' or 'instances' key"),
    ('{"instances": 1}', "Expecting 'instances' to be an list/array"),
    ('{"instances": []}', "No values in 'instances' array"),
    ('{"instances": [[1,2],[3,4],[5,6,7]]}', "Expecting tensor size"),
    ('{"instances": [[1,2],[3,4],[[5,6]]]}', "Expecting shape"),
    ('{"instances": [1, [1]]}', "Expecting shape"),
    ('{"instances": [[1,2],["a","b"]]}', "not of expected type"),
    ('{"instances": [1.5]}', "Type: Number is not of expected type: int32"),
    ('{"instances": [true]}', "Type: True is not of expected type: int32"),
    ('{"inputs": [[1, 2], [3]]}', "Encountered list at unexpected size"),
])
def test_malformed_requests_get_tf_servings_messages(body, message):
    try:
        document = parse_json(body)
        request_tensors(document, INT)
    except RestError as error:
        assert message in error.message and error.status == 400
    else:
        pytest.fail(f"no error for {body!r}")


def test_strings_are_rejected_for_float_inputs_with_the_value_named():
    error = error_of('{"instances": ["x", "y"]}', FLOAT)
    assert error.message == (
        "Failed to process element: 0 of 'instances' list. Error: "
        'JSON Value: "x" Type: String is not of expected type: float'
    )


def test_signature_name():
    assert signature_name({}) == "serving_default"
    assert signature_name({"signature_name": ""}) == "serving_default"
    assert signature_name({"signature_name": "other"}) == "other"
    with pytest.raises(RestError, match="'signature_name' key must be a string value."):
        signature_name({"signature_name": 100})


def test_row_objects_must_name_every_input_and_nothing_else():
    specs = {"a": TensorSpec("a", "int32", (None,)), "b": TensorSpec("b", "string", (None,))}
    assert "Expecting object but got list at item 1" in error_of(
        '{"instances": [{"a": 1, "b": "x"}, [1, 20, 30]]}', specs).message
    assert "keys must be equal to: a,b" in error_of(
        '{"instances": [{"a": 1}]}', specs).message
    assert "expecting list of objects" in error_of('{"instances": [1, 2]}', specs).message
    single = {"text": TensorSpec("text", "string", (None,))}
    arrays, _ = tensors('{"instances": [{"text": "hello"}]}', single)  # named, single input
    assert arrays["text"].tolist() == [b"hello"]
    assert "Expecting value/list but got object at item 1" in error_of(
        '{"instances": ["baz", {"text": "bar"}]}', single).message


def test_shapes_are_checked_against_the_signature():
    window = {"window": TensorSpec("window", "float32", (None, 3, 1))}
    arrays, _ = tensors('{"instances": [[[1], [2], [3]]]}', window)
    assert arrays["window"].shape == (1, 3, 1)
    error = error_of('{"instances": [[[1], [2]]]}', window)
    assert error.message == (
        "Input 'window' has shape [1,2,1], but the signature expects [?,3,1] "
        "(? is any size; the first dimension is the batch)")
    # An empty batch takes the signature's inner shape, which JSON cannot spell.
    arrays, _ = tensors('{"inputs": []}', window)
    assert arrays["window"].shape == (0, 3, 1)


def test_responses_in_both_formats():
    ints = {"out": np.arange(1, 13, dtype=np.int32).reshape(2, 3, 2) % 10}
    expected = [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]
    assert response_json(ints, row_format=True) == {"predictions": expected}
    assert response_json(ints, row_format=False) == {"outputs": expected}
    several = {
        "double_scalar_tensor": np.array([8.0, 9.0]),
        "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], dtype=object),
        "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object),
    }
    assert response_json(several, row_format=True) == {"predictions": [
        {"double_scalar_tensor": 8.0, "str_tensor": ["foo", "bar"],
         "str_tensor_bytes": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]},
        {"double_scalar_tensor": 9.0, "str_tensor": ["baz", "bat"],
         "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]},
    ]}
    assert response_json(several, row_format=False)["outputs"]["str_tensor"] == [
        ["foo", "bar"], ["baz", "bat"]]
    assert response_json({"y": np.zeros([0, 2], np.float32)}, True) == {"predictions": []}
    with pytest.raises(RestError, match="inconsistent batch size"):
        response_json({"a": np.zeros([2, 3]), "b": np.zeros([1, 3])}, True)


def test_floats_are_written_as_tf_serving_writes_them():
    values = np.array([[np.nan, np.inf], [3.0, -np.inf]], np.float32)
    assert dumps(response_json({"y": values}, True)) == (
        b'{"predictions": [[NaN, Infinity], [3.0, -Infinity]]}')
    # float32 as its shortest decimal, not the double nearest to it.
    assert json.loads(dumps(response_json({"p": np.array([0.3], np.float32)}, True))) == {
        "predictions": [0.3]}


def test_half_plus_two_example_from_the_documentation():
    """api_rest.md's example, with y = 0.5 x + 2 computed here."""
    arrays, row = tensors('{"instances": [1.0, 2.0, 5.0]}', FLOAT)
    outputs = {"y": 0.5 * arrays["x"] + 2}
    assert json.loads(dumps(response_json(outputs, row))) == {"predictions": [2.5, 3.0, 4.5]}
    arrays, row = tensors('{"signature_name": "serving_default", "inputs": [3.0, 4.0]}', FLOAT)
    assert json.loads(dumps(response_json({"y": 0.5 * arrays["x"] + 2}, row))) == {
        "outputs": [3.5, 4.0]}
