"""The command line on tables of your own: train --data, predict, evaluate, info, export, plot."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import flatnn
from flatnn import cli


@pytest.fixture
def iris_csv(tmp_path, monkeypatch):
    """scikit-learn's bundled iris table (nothing downloaded), species as text."""
    datasets = pytest.importorskip("sklearn.datasets")
    iris = datasets.load_iris()
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for x, t in zip(iris.data, iris.target):
        lines.append(",".join(map(str, x)) + "," + iris.target_names[t])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "iris.csv").write_text("\n".join(lines) + "\n")
    return "iris.csv"


TRAIN = ["--sizes", "4-8-3", "--epochs", "15", "--learning-rate", "0.5", "--quiet"]


@pytest.fixture
def model(iris_csv):
    args = ["train", "--data", iris_csv, "--val-split", "0.2", "--out", "m.npz", *TRAIN]
    assert cli.main([*args, "--history", "run.csv"]) == 0
    return "m.npz"


def test_train_on_a_csv_records_the_table_and_the_run(model, capsys):
    net, params, meta = flatnn.load(model)
    assert meta["class_names"] == ["setosa", "versicolor", "virginica"]
    assert meta["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert meta["task"] == "classify" and meta["scaler"]["kind"] == "standard"
    assert len(meta["data_sha256"]) == 64 and meta["seed"] == 0
    assert len(meta["history"]) == 15 and set(meta["versions"]) == {"flatnn", "numpy", "scipy"}
    assert meta["settings"]["data"] == "iris.csv" and meta["settings"]["val_split"] == 0.2
    assert meta["val_accuracy"] > 0.8 and meta["test_accuracy"] is None  # no --test file
    rows = Path("run.csv").read_text().splitlines()
    assert rows[0].startswith("nit,epoch,fun") and len(rows) == 16


def test_validation_and_test_files(iris_csv, capsys):
    args = ["train", "--data", iris_csv, "--val", iris_csv, "--test", iris_csv, "--out", "t.npz"]
    assert cli.main([*args, *TRAIN]) == 0
    assert capsys.readouterr().out.startswith("test accuracy")
    meta = flatnn.load("t.npz")[2]
    assert meta["test_accuracy"] > 0.8 and "val_accuracy" not in meta


def test_the_same_run_gives_the_same_model_bit_for_bit(model, iris_csv):
    args = ["train", "--data", iris_csv, "--val-split", "0.2", "--out", "again.npz", *TRAIN]
    assert cli.main(args) == 0
    assert np.array_equal(flatnn.load(model)[1], flatnn.load("again.npz")[1])


def test_predict_prints_class_names_and_writes_csv(model, capsys):
    Path("rows.csv").write_text(
        "petal_width,petal_length,sepal_width,sepal_length\n0.2,1.4,3.5,5.1\n2.3,6,3,6.5\n"
    )
    capsys.readouterr()
    assert cli.main(["predict", model, "rows.csv", "--proba", "--top-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "file,row,prediction,p(setosa),p(versicolor),p(virginica),top 2"
    assert out[1].startswith("rows.csv,1,setosa,") and out[2].startswith("rows.csv,2,virginica,")
    assert cli.main(["predict", model, "rows.csv", "--out", "preds.csv"]) == 0
    preds = Path("preds.csv").read_text().splitlines()
    assert preds[1:] == ["rows.csv,1,setosa", "rows.csv,2,virginica"]


def test_integer_labels_are_printed_as_labels_not_indices(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    lines = ["a,b,digit"] + [f"{x0},{x1},{7 if x0 > 0 else 3}" for x0, x1 in X]
    Path("d.csv").write_text("\n".join(lines) + "\n")
    assert cli.main(["train", "--data", "d.csv", "--out", "m.npz", "--epochs", "5", "--quiet"]) == 0
    Path("r.csv").write_text("a,b\n2,0\n-2,0\n")
    capsys.readouterr()
    assert cli.main(["predict", "m.npz", "r.csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["r.csv,1,7", "r.csv,2,3"]


def test_evaluate_a_table_in_words_and_json(model, iris_csv, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", model, "--data", iris_csv]) == 0
    text = capsys.readouterr().out
    assert "precision" in text and "confusion matrix" in text and "virginica" in text
    assert cli.main(["evaluate", model, "--data", iris_csv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["m"] == 150 and [c["class"] for c in doc["classes"]] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert sum(map(sum, doc["confusion"])) == 150


def test_regression_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    np.savez("r.npz", X=X, y=X @ [1.0, -2.0, 0.5] + 0.25)
    args = ["train", "--data", "r.npz", "--val-split", "0.2", "--out", "m.npz"]
    assert cli.main([*args, "--method", "adam", "--learning-rate", "0.01", "--quiet"]) == 0
    assert "R²" in capsys.readouterr().out
    net, _, meta = flatnn.load("m.npz")
    assert net.output == "identity" and meta["task"] == "regress" and "val_r2" in meta
    assert cli.main(["evaluate", "m.npz", "--data", "r.npz", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"r2", "mae", "rmse"}


@pytest.mark.parametrize(
    ("text", "extra", "pattern"),
    [
        ("a,b,c\n1,2,3\n4,5\n", [], "line 3 has 2 fields"),
        ("a,b,c\n1,x,0\n2,3,1\n", [], "column 'b' holds text"),
        ("a,b,c\n1,,0\n2,3,1\n", [], "column 'b' has 1 missing values in 2 rows"),
        ("", [], "is empty"),
        ("a,b,c\n", [], "no data rows"),
        ("a,b,c\n1,2,0\n3,4,1\n", ["--target", "z"], "no column 'z'"),
        ("a,b,c\n1,2,0\n3,4,0\n", [], "one class"),
        ("a,b,c\n1,2,0\n3,4,1\n5,6,1\n", ["--val-split", "0.5"], "has 1 row; a stratified"),
        ("a,b,c\n1,2,0\n3,4,1\n", ["--sizes", "3-4-2"], "do not fit"),
    ],
)
def test_bad_tables_are_one_line_exit_2_and_nothing_written(
    tmp_path, monkeypatch, capsys, text, extra, pattern
):
    monkeypatch.chdir(tmp_path)
    Path("d.csv").write_text(text)
    code = cli.main(["train", "--data", "d.csv", "--out", "m.npz", "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("flatnn: error: ")
    assert pattern.split(".*")[0] in err or pattern in err
    assert sorted(os.listdir()) == ["d.csv"]


def test_wide_and_huge_files_are_refused_by_their_size(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("wide.csv").write_text(",".join(f"c{i}" for i in range(10**6)) + "\n")
    with open("huge.csv", "wb") as f:  # sparse: nothing is written to disk
        f.truncate(5 * 10**9)
    assert cli.main(["train", "--data", "wide.csv", "--quiet"]) == 2
    assert "1000000 columns" in capsys.readouterr().err
    assert cli.main(["train", "--data", "huge.csv", "--quiet"]) == 2
    assert "the file is 5.0 GB" in capsys.readouterr().err
    assert sorted(os.listdir()) == ["huge.csv", "wide.csv"]


def test_limit_and_table_options_without_data(iris_csv, capsys):
    args = ["train", "--data", iris_csv, "--limit", "60", "--out", "m.npz", *TRAIN]
    assert cli.main(args) == 0
    assert cli.main(["train", "--dataset", "xor", "--target", "y", "--quiet"]) == 2
    assert "--target applies to --data FILE" in capsys.readouterr().err


def test_history_must_not_be_the_model_or_the_data(iris_csv, capsys):
    for flag in ("--out", "--data"):
        path = "m.npz" if flag == "--out" else iris_csv
        args = ["train", "--data", iris_csv, "--out", "m.npz", "--history", path, *TRAIN]
        assert cli.main(args) == 2
        assert f"is also {flag}" in capsys.readouterr().err
    assert not os.path.exists("m.npz")


def test_parquet_without_pyarrow_is_one_line(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.chdir(tmp_path)
    Path("d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert cli.main(["train", "--data", "d.parquet", "--quiet"]) == 2
    assert "needs pyarrow" in capsys.readouterr().err


def test_info_config_reruns_the_model_bit_for_bit(model, capsys):
    capsys.readouterr()
    assert cli.main(["info", model, "--config"]) == 0
    Path("run.toml").write_text(capsys.readouterr().out)
    assert cli.main(["train", "--config", "run.toml", "--out", "rerun.npz", "--quiet"]) == 0
    assert np.array_equal(flatnn.load(model)[1], flatnn.load("rerun.npz")[1])
    assert flatnn.load("rerun.npz")[2]["settings"] == flatnn.load(model)[2]["settings"]


def test_info_shows_the_record_and_config_reads_back(model, capsys):
    tomllib = pytest.importorskip("tomllib")
    capsys.readouterr()
    assert cli.main(["info", model]) == 0
    text = capsys.readouterr().out
    assert "iris.csv (SHA-256" in text and "classes    3: setosa" in text and "versions" in text
    assert cli.main(["info", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"]["target"] == "species"
    assert cli.main(["info", model, "--config"]) == 0
    config = tomllib.loads(capsys.readouterr().out)
    assert config["data"] == "iris.csv" and config["sizes"] == [4, 8, 3]


def test_export_onnx_and_safetensors(model, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("safetensors")
    assert cli.main(["export", model, "--to", "onnx"]) == 0
    assert cli.main(["export", model, "--to", "safetensors"]) == 0
    net, params, meta = flatnn.load(model)
    raw = np.array([[5.1, 3.5, 1.4, 0.2], [6.5, 3.0, 6.0, 2.3]], dtype=params.dtype)
    session = ort.InferenceSession("m.onnx", providers=["CPUExecutionProvider"])
    _, label = session.run(None, {"X": raw})  # the scaler is part of the graph
    assert [meta["class_names"][i] for i in label] == ["setosa", "virginica"]
    from flatnn.io import export

    back, back_params, back_meta = export.read_safetensors("m.safetensors")
    assert back == net and np.array_equal(back_params, params)
    assert back_meta["class_names"] == meta["class_names"]
    capsys.readouterr()
    assert cli.main(["export", model, "--to", "onnx"]) == 2  # exists, --out did not name it
    assert "m.onnx exists" in capsys.readouterr().err


def test_plot_from_the_model_and_from_the_history(model, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["plot", model]) == 0 and os.path.getsize("m.png") > 0
    assert cli.main(["plot", "run.csv", "--out", "curves.png"]) == 0
    assert os.path.getsize("curves.png") > 0
    capsys.readouterr()
    assert cli.main(["plot", model]) == 2 and "m.png exists" in capsys.readouterr().err


def test_evaluate_json_on_a_built_in_data_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--dataset", "xor", "--out", "xor.npz", "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "xor.npz", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["data"] == "xor test" and doc["accuracy"] == 1.0
    meta = flatnn.load("xor.npz")[2]
    X, y = flatnn.datasets.xor()
    X = X.astype(meta["settings"]["dtype"])
    expected = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    assert meta["data_sha256"] == expected and meta["settings"]["dataset"] == "xor"
    assert [c["class"] for c in doc["classes"]] == ["0", "1"]
    assert doc["confusion"] == [[2, 0], [0, 2]]


def test_data_and_dataset_together_are_refused(iris_csv, capsys):
    args = ["train", "--data", iris_csv, "--dataset", "mnist", "--out", "m.npz", *TRAIN]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "--data iris.csv and --dataset mnist name two training sets" in err
    assert "Traceback" not in err
    assert not Path("m.npz").exists()
