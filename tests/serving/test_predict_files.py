"""`rnnapps predict TASK --input FILE --column NAME --output FILE.jsonl|csv` for
every task, on the tiny exports the serving tests share (`exports`)."""

import csv
import io
import json

import pytest
from PIL import Image

pytestmark = pytest.mark.tensorflow_only

TEXTS = {
    "sentiment": ["Great coffee.\nWill buy again, it is great!", "Stale, bitter and old", "ok"],
    "translation": ["Das Abendessen hat mir geschmeckt.", "Ich bin müde,\nsehr müde.", "Hallo"],
    "next_word": ["I would like a cup of", "the man\nwho", "a"],
}


def predict(capsys, monkeypatch, cwd, *args):
    """`rnnapps predict ARGS` in this process: (exit status, stdout, stderr)."""
    from rnnapps.cli import main

    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        code = main(["predict", *args])
    except SystemExit as exit:  # argparse errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.mark.parametrize("task", sorted(TEXTS))
@pytest.mark.parametrize("extension", [".jsonl", ".csv"])
def test_a_text_column_predicts_like_the_arguments(exports, tmp_path, capsys, monkeypatch,
                                                   task, extension):
    model = str(exports / task / "1")
    texts = TEXTS[task]
    # A user's CSV: several columns, quoted texts that span lines.
    write_csv(tmp_path / "in.csv", ["id", "body", "note"],
              [[i, text, "x"] for i, text in enumerate(texts)])
    code, out, err = predict(capsys, monkeypatch, tmp_path, task, "--model", model,
                             "--input", "in.csv", "--column", "body", "--output", "out" + extension)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["count"] == len(texts) and summary["output"] == "out" + extension
    written = (tmp_path / ("out" + extension)).read_text(encoding="utf-8")
    if extension == ".jsonl":
        got = [json.loads(line) for line in written.splitlines()]
    else:
        got = [{k: _parse_cell(v) for k, v in row.items()}
               for row in csv.DictReader(io.StringIO(written, newline=""))]
    # The same texts given as arguments: the same predictions, in order.
    code, out, err = predict(capsys, monkeypatch, tmp_path, task, "--model", model, *texts)
    assert code == 0, err
    expected = json.loads(out.strip().splitlines()[-1])["predictions"]
    assert got == expected
    assert len(got) == len(texts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out" + extension]


def _parse_cell(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def test_json_lines_and_plain_text_inputs(exports, tmp_path, capsys, monkeypatch):
    model = str(exports / "sentiment" / "1")
    texts = TEXTS["sentiment"]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t, "n": 1}) + "\n" for t in texts))
    code, out, err = predict(capsys, monkeypatch, tmp_path, "sentiment", "--model", model,
                             "--input", "in.jsonl")  # the column named text, by default
    assert code == 0, err
    by_key = json.loads(out.strip().splitlines()[-1])["predictions"]
    assert [p["text"] for p in by_key] == texts
    (tmp_path / "in.txt").write_text("Stale, bitter and old\n\nok\n")
    code, out, err = predict(capsys, monkeypatch, tmp_path, "sentiment", "--model", model,
                             "--input", "in.txt")
    assert code == 0, err
    by_line = json.loads(out.strip().splitlines()[-1])["predictions"]
    assert by_line == by_key[1:]  # the blank line is skipped


def test_images_named_in_a_column_are_read_from_the_files_folder(exports, tmp_path, capsys,
                                                                 monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, color in (("a.png", (255, 200, 0)), ("b.png", (0, 0, 255))):
        Image.new("RGB", (32, 32), color).save(folder / name)
    write_csv(folder / "list.csv", ["file", "caption"], [["a.png", "?"], ["b.png", "?"]])
    model = str(exports / "captioning" / "1")
    code, out, err = predict(capsys, monkeypatch, tmp_path, "captioning", "--model", model,
                             "--input", "photos/list.csv", "--column", "file",
                             "--output", "captions.jsonl")
    assert code == 0, err
    got = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text().splitlines()]
    code, out, err = predict(capsys, monkeypatch, tmp_path, "captioning", "--model", model,
                             "photos/a.png", "photos/b.png")
    assert code == 0, err
    expected = json.loads(out.strip().splitlines()[-1])["predictions"]
    assert [(p["caption"], p["score"]) for p in got] == [(p["caption"], p["score"]) for p in expected]
    assert [p["image"] for p in got] == ["photos/a.png", "photos/b.png"]  # the CSV's folder


def test_a_forecast_from_a_history_file_to_csv(exports, tmp_path, capsys, monkeypatch):
    from rnnapps.export import read_metadata

    export = exports / "forecasting" / "1"
    info = read_metadata(export)["data"]
    column = info["columns"][0]
    history = "\n".join([column] + [repr(float(v[0])) for v in info["recent"]]) + "\n"
    (tmp_path / "history.csv").write_text(history)
    code, out, err = predict(capsys, monkeypatch, tmp_path, "forecasting", "--model", str(export),
                             "--input", "history.csv", "--output", "forecast.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "forecast.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, info["horizon"] + 1))
    code, out, err = predict(capsys, monkeypatch, tmp_path, "forecasting", "--model", str(export),
                             "history.csv")
    expected = json.loads(out.strip().splitlines()[-1])["predictions"]
    assert [float(r["forecast"]) for r in rows] == [p["forecast"] for p in expected]


@pytest.mark.parametrize("args, message", [
    (["--input", "missing.csv"], "--input missing.csv: no such file"),
    (["--input", "in.csv", "--column", "review"], "has no column 'review' (it has 'id', 'body')"),
    (["--input", "in.csv"], "name the one to predict with --column"),
    (["--input", "in.csv", "--column", "body", "--output", "out.txt"], "give a .jsonl or .csv"),
    (["--input", "in.csv", "--column", "body", "--output", "nowhere/out.csv"],
     "folder nowhere does not exist"),
    (["--input", "blank.csv", "--column", "body"], "row 3: column 'body' is empty"),
    (["--input", "empty.csv"], "has no rows to predict"),
    (["--input", "in.csv", "some text"], "either INPUT arguments or --input FILE"),
    ([], "nothing to predict"),
])
def test_bad_files_are_one_line_errors_and_write_nothing(exports, tmp_path, capsys, monkeypatch,
                                                         args, message):
    write_csv(tmp_path / "in.csv", ["id", "body"], [[1, "fine"]])
    write_csv(tmp_path / "blank.csv", ["id", "body"], [[1, "fine"], [2, " "]])
    (tmp_path / "empty.csv").write_text("body\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = predict(capsys, monkeypatch, tmp_path, "sentiment", "--model",
                             str(exports / "sentiment" / "1"), *args)
    assert code == 2
    assert "Traceback" not in err and message in err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
