"""Files in and out of `rnnapps predict TASK --input FILE --output FILE`.

Inputs come from one column of a CSV or TSV file (quoted texts may span
lines), one key of a JSON Lines file, or the lines of a plain text file;
predictions go to a JSON Lines or CSV file, written whole or not at all.

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "reviews.csv").write_text('id,review\\n1,"Great tea.\\nWill buy again."\\n2,Stale\\n')
>>> read_column(folder / "reviews.csv", "review")
['Great tea.\\nWill buy again.', 'Stale']
>>> write_predictions(folder / "out.csv", [{"text": "Stale", "label": "other",
...                                         "probability": 0.9}])
>>> print((folder / "out.csv").read_text().strip())
text,label,probability
Stale,other,0.9
"""

import csv
import io
import json
import os
import pathlib
import tempfile

from rnnapps.errors import TaskError

__all__ = ["read_column", "check_input", "check_output", "write_predictions"]

# The column `read_column` takes when none is named and the file has several.
DEFAULT_COLUMNS = ("text", "sentence", "source", "image", "input")
OUTPUT_FORMATS = (".jsonl", ".csv")


def check_input(path):
    """`path` as a string, or a `TaskError` if it is not a readable file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise TaskError(f"--input {path}: no such file")
    return str(path)


def check_output(path):
    """`path` (a `pathlib.Path`) if predictions can be written there."""
    path = pathlib.Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise TaskError(f"--output {path}: give a .jsonl or .csv file name "
                        f"(the extension picks the format)")
    if not path.parent.is_dir():
        raise TaskError(f"--output {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise TaskError(f"--output {path} is a folder")
    return path


def read_column(path, column=None, paths=False):
    """The inputs in `column` of the file at `path`, as a list of strings.

    Args:
        path: a `.csv`, `.tsv`, `.jsonl` file, or any other text file
            (one input per line, `column` not allowed).
        column: the column or JSON key; by default the file's only column,
            else the first of `DEFAULT_COLUMNS` it has.
        paths: the inputs are file paths (images): relative ones are read
            from the file's folder.

    Raises:
        TaskError: a missing or empty file, a missing column, an empty or
            missing value (naming its row), text that is not UTF-8.
    """
    path = pathlib.Path(check_input(path))
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise TaskError(f"--input {path} is not UTF-8 text")
    if suffix in (".csv", ".tsv"):
        rows = list(csv.DictReader(io.StringIO(text, newline=""),
                                   delimiter="\t" if suffix == ".tsv" else ","))
        header = list(rows[0]) if rows else []
        first_row = 2  # after the header line
    elif suffix in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise TaskError(f"--input {path}, line {number}: not JSON ({error.msg})")
            if not isinstance(row, dict):
                raise TaskError(f"--input {path}, line {number}: expected a JSON object")
            rows.append(row)
        header = list(dict.fromkeys(k for row in rows for k in row))
        first_row = 1
    else:
        if column is not None:
            raise TaskError(f"--column needs a CSV, TSV or JSON Lines --input; {path} is read "
                            f"as plain text, one input per line")
        rows = [{"": line} for line in text.splitlines() if line.strip()]
        header, column, first_row = [""], "", 1
    if not rows:
        raise TaskError(f"--input {path} has no rows to predict")
    if column is None:
        if len(header) == 1:
            column = header[0]
        else:
            column = next((name for name in DEFAULT_COLUMNS if name in header), None)
            if column is None:
                raise TaskError(f"--input {path} has columns {', '.join(map(repr, header))}: "
                                f"name the one to predict with --column")
    elif column not in header:
        raise TaskError(f"--input {path} has no column {column!r} "
                        f"(it has {', '.join(map(repr, header))})")
    inputs = []
    for number, row in enumerate(rows, first_row):
        value = row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise TaskError(f"--input {path}, row {number}: column {column!r} is empty")
        value = value if isinstance(value, str) else json.dumps(value)
        if paths and not pathlib.Path(value).is_absolute():
            value = str(path.parent / value)
        inputs.append(value)
    return inputs


def _cell(value):
    return value if isinstance(value, str) else json.dumps(value)


def write_predictions(path, predictions):
    """Writes `predictions` (a list of dicts) to `path`, a `.jsonl` or `.csv`
    file (lists and dicts are JSON in a CSV cell); atomically: a failure
    leaves no file behind."""
    path = check_output(path)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".partial", delete=False, encoding="utf-8",
                                         newline="")
    try:
        with handle:
            if path.suffix.lower() == ".jsonl":
                for prediction in predictions:
                    handle.write(json.dumps(prediction, ensure_ascii=False) + "\n")
            else:
                fields = list(dict.fromkeys(k for p in predictions for k in p))
                writer = csv.DictWriter(handle, fields, lineterminator="\n")
                writer.writeheader()
                for prediction in predictions:
                    writer.writerow({k: _cell(v) for k, v in prediction.items()})
        os.replace(handle.name, path)
    except BaseException:
        pathlib.Path(handle.name).unlink(missing_ok=True)
        raise
