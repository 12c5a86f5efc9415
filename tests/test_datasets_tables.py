"""Tables of your own: CSV, Parquet, NPZ, NPY pairs; task inference; splits; scaling."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from flatnn.datasets import scaling, splits, tables


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_classes_from_text_and_last_column(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    t = tables.read_table(path)
    assert t.task == "classify" and t.task_inferred
    assert t.class_names == ("cat", "dog")
    assert t.feature_names == ("a", "b") and t.target == "label"
    np.testing.assert_array_equal(t.X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(t.y, [0, 1, 0])
    assert len(t.sha256) == 64


def test_csv_integer_classes_keep_their_numbers(tmp_path):
    t = tables.read_table(write(tmp_path, "x,y\n0.5,7\n1.5,3\n2.5,7\n"))
    assert t.class_names == (3, 7)
    np.testing.assert_array_equal(t.y, [1, 0, 1])


def test_csv_float_target_is_regression_and_target_option(tmp_path):
    path = write(tmp_path, "price,x1,x2\n1.5,1,2\n2.25,3,4\n")
    t = tables.read_table(path, target="price")
    assert t.task == "regress" and t.class_names == ()
    assert t.feature_names == ("x1", "x2")
    np.testing.assert_array_equal(t.y, [1.5, 2.25])


def test_task_given_overrides_inference(tmp_path):
    path = write(tmp_path, "x,y\n1,1\n2,2\n3,1\n")
    t = tables.read_table(path, task="regress")
    assert t.task == "regress" and not t.task_inferred
    with pytest.raises(ValueError, match="regression needs numbers"):
        tables.read_table(write(tmp_path, "x,y\n1,a\n2,b\n", "t.csv"), task="regress")
    with pytest.raises(ValueError, match="task must be one of"):
        tables.read_table(path, task="cluster")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("a,b,c\n", "header row but no data rows"),
        ("a,b,c\n1,2,3\n4,5\n", r"line 3 has 2 fields; the header has 3 \(ragged"),
        ("a,b,c\n1,2,3\n4,5,6,7\n", "line 3 has 4 fields"),
        ("a,b,c\n1,2,3\nx,5,6\n", "column 'a' mixes numbers and text"),
        ("a,b,c\nred,2,0\nblue,5,1\n", "column 'a' holds text.*categorical"),
        ("a,b,c\n1,,0\n2,NA,1\n3,4,0\n", "column 'b' has 2 missing values in 3 rows"),
        ("a,b,c\n1,2,\n2,3,1\n", "column 'c' has 1 missing values"),
        ("a,b,c\n1,2,5\n2,3,5\n", r"one class \(5\) in 2 rows"),
        ("a,a,c\n1,2,3\n", "names column 'a' twice"),
        ("a,b,c\n1,inf,0\n2,3,1\n", "column 'b' holds 'inf' on line 2; a feature must be a finite"),
        ('"a","b c",c\r\n1,-Infinity,0\r\n2,3,1\r\n', "column 'b c' holds '-Infinity'"),
        ("a\n1\n", "at least one feature column"),
    ],
)
def test_csv_bad_input_is_one_clear_error(tmp_path, text, pattern):
    with pytest.raises(ValueError, match=pattern):
        tables.read_table(write(tmp_path, text))


def test_quotes_spaces_bom_and_crlf_are_read(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(b'\xef\xbb\xbf"a","b c",label\r\n1, 2 ,"x"\r\n3,4,y\r\n\r\n')
    t = tables.read_table(str(path))
    assert t.feature_names == ("a", "b c") and t.X.tolist() == [[1, 2], [3, 4]]
    assert t.class_names == ("x", "y")


def test_infinite_features_in_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "i.npz", X=np.array([[1, np.inf], [2, 3]]), y=np.array([1, 2]))
    with pytest.raises(ValueError, match="column 'x1' holds 1 infinite values"):
        tables.read_table(str(tmp_path / "i.npz"))


def test_unknown_target_names_the_columns(tmp_path):
    with pytest.raises(ValueError, match="no column 'z'; the columns are a, b, c"):
        tables.read_table(write(tmp_path, "a,b,c\n1,2,3\n"), target="z")


def test_wide_table_is_refused_from_the_header(tmp_path):
    header = ",".join(f"c{i}" for i in range(10**6))
    path = write(tmp_path, header + "\n")
    with pytest.raises(ValueError, match="1000000 columns; flatnn reads at most 100000"):
        tables.read_table(path)


def test_huge_file_is_refused_by_its_size_unread(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:  # a sparse 5 GB file: nothing is written to disk
        f.truncate(5 * 10**9)
    with pytest.raises(ValueError, match=r"5\.0 GB; flatnn reads tables of at most 1\.1 GB"):
        tables.read_table(str(path))
    with pytest.raises(ValueError, match="at most 4 bytes"):
        tables.read_table(write(tmp_path, "a,b\n1,2\n"), max_bytes=4)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown table format"):
        tables.read_table(write(tmp_path, "a,b\n", "data.txt"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        tables.read_table(str(tmp_path / "nope.csv"))


def test_npz_and_npy_pair(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 3, 20)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    t = tables.read_table(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(t.X, X)
    np.testing.assert_array_equal(np.array(t.class_names)[t.y], y)
    assert t.feature_names == ("x0", "x1", "x2")
    np.save(tmp_path / "train_X.npy", X)
    np.save(tmp_path / "train_y.npy", y.astype(np.float64) / 2)
    for name in ("train_X.npy", "train_y.npy"):
        t = tables.read_table(str(tmp_path / name))
        assert t.task == "regress"
        np.testing.assert_array_equal(t.y, y / 2)
    with pytest.raises(ValueError, match="holds arrays X and y"):
        np.savez(tmp_path / "e.npz", A=X)
        tables.read_table(str(tmp_path / "e.npz"))
    with pytest.raises(ValueError, match="a pair NAME_X.npy"):
        np.save(tmp_path / "alone.npy", X)
        tables.read_table(str(tmp_path / "alone.npy"))


def test_parquet_with_pyarrow(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": [1.0, 2.0, 3.0, 4.0], "b": [0, 1, 0, 1], "kind": ["x", "y", "x", "y"]})
    pq.write_table(table, tmp_path / "d.parquet")
    t = tables.read_table(str(tmp_path / "d.parquet"))
    assert t.class_names == ("x", "y") and t.feature_names == ("a", "b")
    np.testing.assert_array_equal(t.y, [0, 1, 0, 1])


def test_parquet_without_pyarrow_is_one_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="needs pyarrow"):
        tables.read_table(str(path))


def test_like_matches_features_and_classes(tmp_path):
    train = tables.read_table(write(tmp_path, "a,b,label\n1,2,cat\n3,4,dog\n"))
    test = tables.read_table(write(tmp_path, "b,a,label\n4,3,dog\n", "test.csv"), like=train)
    np.testing.assert_array_equal(test.X, [[3, 4]])
    np.testing.assert_array_equal(test.y, [1])
    rows = tables.read_table(
        write(tmp_path, "a,b\n9,8\n", "rows.csv"), like=train, need_target=False
    )
    assert rows.y.size == 0 and rows.X.shape == (1, 2)
    # rows to predict: a target column is skipped, even with a new class or a gap
    with_target = write(tmp_path, "a,b,label\n9,8,bird\n7,6,\n", "rows2.csv")
    rows = tables.read_table(with_target, like=train, need_target=False)
    assert rows.y.size == 0 and rows.X.tolist() == [[9, 8], [7, 6]]
    with pytest.raises(ValueError, match="class 'bird'"):
        tables.read_table(write(tmp_path, "a,b,label\n1,2,bird\n", "t2.csv"), like=train)
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        tables.read_table(write(tmp_path, "a,c,label\n1,2,cat\n", "t3.csv"), like=train)


def test_stratified_split_is_seeded_and_keeps_each_class():
    y = np.array([0] * 10 + [1] * 4 + [2] * 2)
    train, val = splits.stratified_split(y, 0.25, seed=3)
    again = splits.stratified_split(y, 0.25, seed=3)
    np.testing.assert_array_equal(val, again[1])
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(16))
    for c in range(3):
        assert (y[val] == c).any() and (y[train] == c).any()
    assert (y[val] == 0).sum() == 2  # round(0.25 * 10)


def test_stratified_split_refuses_a_class_with_one_row():
    with pytest.raises(ValueError, match="class 'b' has 1 row; a stratified"):
        splits.stratified_split(np.array([0, 0, 1]), 0.5, class_names=("a", "b"))
    with pytest.raises(ValueError, match="fraction"):
        splits.stratified_split(np.array([0, 1]), 1.5)


def test_random_split_for_regression():
    train, val = splits.stratified_split(np.arange(10.0), 0.3, seed=0, stratify=False)
    assert len(val) == 3 and len(train) == 7


@pytest.mark.parametrize("kind", scaling.SCALINGS)
def test_scaler_fits_training_rows_and_round_trips(kind):
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    s = scaling.fit_scaler(X, kind)
    Z = s.transform(X)
    if kind == "standard":
        np.testing.assert_allclose(Z[:, 0].mean(), 0, atol=1e-15)
        np.testing.assert_allclose(Z[:, 0].std(), 1)
        np.testing.assert_array_equal(Z[:, 1], 0)  # a constant column: 0, not NaN
    elif kind == "minmax":
        np.testing.assert_array_equal(Z[:, 0], [0, 0.5, 1])
    else:
        np.testing.assert_array_equal(Z, X)
    back = scaling.Scaler.from_dict(s.to_dict(), n_features=2)
    np.testing.assert_array_equal(back.transform(X), Z)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"kind": "log", "offset": [0], "scale": [1]}, "scaler.kind"),
        ({"kind": "standard", "offset": ["a"], "scale": [1]}, "scaler.offset"),
        ({"kind": "standard", "offset": [0], "scale": [0]}, "scaler.scale"),
        ({"kind": "standard", "offset": [0, 1], "scale": [1]}, "scaler.offset has 2"),
        ({"kind": "standard", "offset": [0, 1], "scale": [1, 1]}, "network takes 3"),
        ({"kind": "standard"}, "keys kind, offset, scale"),
    ],
)
def test_scaler_from_dict_names_the_bad_field(data, pattern):
    with pytest.raises(ValueError, match=pattern):
        scaling.Scaler.from_dict(data, n_features=3)


def test_sha256_is_the_file_digest(tmp_path):
    import hashlib

    path = write(tmp_path, "a,b\n1,x\n2,y\n")
    with open(path, "rb") as f:
        assert tables.read_table(path).sha256 == hashlib.sha256(f.read()).hexdigest()
    assert os.path.exists(path)
