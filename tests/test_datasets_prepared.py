"""A table from start to finish in the library: read, split, scale, train, save, predict."""

from __future__ import annotations

import numpy as np
import pytest

import flatnn
from flatnn.datasets import prepared


@pytest.fixture
def iris_csv(tmp_path):
    """scikit-learn's bundled iris table (nothing downloaded), species as text."""
    datasets = pytest.importorskip("sklearn.datasets")
    iris = datasets.load_iris()
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for x, t in zip(iris.data, iris.target):
        lines.append(",".join(map(str, x)) + "," + iris.target_names[t])
    path = tmp_path / "iris.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_iris_from_start_to_finish(tmp_path, iris_csv):
    data = prepared.load_table_data(iris_csv, val_split=0.2, seed=1)
    assert data.class_names == ("setosa", "versicolor", "virginica")
    assert data.X_train.shape == (120, 4) and data.X_val.shape == (30, 4)
    assert np.bincount(data.y_val).tolist() == [10, 10, 10]  # stratified
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)  # fitted on train
    assert "inferred" in data.describe() and "classify 3 classes" in data.describe()
    net = flatnn.Network((4, 8, data.n_outputs), **data.network_options())
    res = flatnn.minimize(net, net.init(0), data.X_train, data.y_train, 1.0, method="L-BFGS-B")
    assert net.accuracy(res.x, data.X_val, data.y_val) > 0.9
    flatnn.save(tmp_path / "m.npz", net, res.x, **data.model_metadata())
    net2, params, meta = flatnn.load(tmp_path / "m.npz")
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "petal_width,petal_length,sepal_width,sepal_length\n0.2,1.4,3.5,5.1\n2.3,6.0,3.0,6.5\n"
    )
    X, y, _ = prepared.rows_for_model(rows, meta)
    assert y is None
    names = [meta["class_names"][i] for i in net2.predict(params, X)]
    assert names == ["setosa", "virginica"]


def test_regression_table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X @ [1.0, 2.0, -1.0] + 0.5
    np.savez(tmp_path / "r.npz", X=X, y=y)
    data = prepared.load_table_data(tmp_path / "r.npz", val_split=0.25, scale="minmax")
    assert data.train.task == "regress" and data.n_outputs == 1
    assert data.y_train.shape == (60, 1) and data.network_options()["loss"] == "squared_error"
    assert "class_names" not in data.model_metadata()
    assert data.X_train.min() == 0 and data.X_train.max() == 1


def test_validation_and_test_files_and_bad_combinations(tmp_path, iris_csv):
    text = iris_csv.read_text().splitlines()
    (tmp_path / "val.csv").write_text("\n".join(text[:1] + text[1:150:10]) + "\n")
    data = prepared.load_table_data(iris_csv, val=tmp_path / "val.csv", test=tmp_path / "val.csv")
    assert len(data.y_val) == len(data.y_test) == 15
    with pytest.raises(ValueError, match="not both"):
        prepared.load_table_data(iris_csv, val_split=0.1, val=tmp_path / "val.csv")
    with pytest.raises(ValueError, match="was not trained on a table"):
        prepared.rows_for_model(iris_csv, {"dataset": "mnist"})
