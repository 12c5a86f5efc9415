"""Model files cross over: ``flatnn train`` models load as estimators, estimator
files are read by ``flatnn predict`` and ``flatnn evaluate`` with their classes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import flatnn
from flatnn.cli import main
from flatnn.sklearn import MLPClassifier, MLPRegressor

XOR = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def _table(path, X, y, header):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row, label in zip(X, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")


def _rows(seed=0, m=40):
    X = np.random.default_rng(seed).normal(size=(m, 3))
    return X


def _train(tmp_path, *args):
    out = str(tmp_path / "m.npz")
    assert main(["train", *args, "--out", out, "--quiet"]) == 0
    return out


def test_xor_model_loads_as_classifier(tmp_path):
    path = _train(tmp_path, "--dataset", "xor")
    net, params, meta = flatnn.load(path)
    clf = MLPClassifier.load(path)
    names = np.asarray(meta["class_names"])
    assert clf.predict(XOR).tolist() == names[net.predict(params, XOR)].tolist()
    np.testing.assert_array_equal(clf.predict_proba(XOR), net.forward(params, XOR))
    assert clf.score(XOR, names[[0, 1, 1, 0]]) == net.accuracy(params, XOR, np.array([0, 1, 1, 0]))
    assert clf.n_features_in_ == 2
    assert clf.hidden_layer_sizes == tuple(net.sizes[1:-1])
    assert clf.activation == "tanh"
    assert clf.solver == MLPClassifier().solver


def test_table_classifier_keeps_class_names(tmp_path):
    X = _rows()
    y = np.where(X[:, 0] > 0, "dog", "cat")
    _table(tmp_path / "t.csv", X, y, ["a", "b", "c", "label"])
    path = _train(tmp_path, "--data", str(tmp_path / "t.csv"), "--scale", "none")
    net, params, _ = flatnn.load(path)
    clf = MLPClassifier.load(path)
    assert clf.classes_.tolist() == ["cat", "dog"]
    X = X.astype(params.dtype)  # the rows as the network takes them
    expected = np.array(["cat", "dog"])[net.predict(params, X)]
    assert clf.predict(X).tolist() == expected.tolist()
    np.testing.assert_array_equal(clf.predict_proba(X), net.forward(params, X))
    # saved again, it is an estimator file that loads the same
    again = MLPClassifier.load(clf.save(tmp_path / "again.npz"))
    assert again.predict(X).tolist() == expected.tolist()


def test_table_regressor_loads(tmp_path):
    X = _rows()
    _table(tmp_path / "r.csv", X, 2 * X[:, 0] + 0.5, ["a", "b", "c", "value"])
    # unscaled features: a smaller step than the MNIST recipe's 0.2
    path = _train(
        tmp_path, "--data", str(tmp_path / "r.csv"), "--scale", "none", "--learning-rate", "0.01"
    )
    net, params, _ = flatnn.load(path)
    reg = MLPRegressor.load(path)
    Xd = X.astype(params.dtype)
    np.testing.assert_allclose(reg.predict(Xd), net.forward(params, Xd)[:, 0])
    assert reg.n_outputs_ == 1
    with pytest.raises(ValueError, match="MLPRegressor"):
        MLPClassifier.load(path)


def test_scaled_model_is_refused(tmp_path):
    X = _rows()
    _table(tmp_path / "t.csv", X, np.where(X[:, 1] > 0, 1, 2), ["a", "b", "c", "label"])
    path = _train(tmp_path, "--data", str(tmp_path / "t.csv"))
    with pytest.raises(ValueError, match="scaling"):
        MLPClassifier.load(path)


def test_mixed_hidden_activations_refused(tmp_path):
    net = flatnn.Network((2, 3, 3, 2), hidden=("tanh", "relu"))
    path = flatnn.save(tmp_path / "mixed.npz", net, net.init(0))
    with pytest.raises(ValueError, match="mixes hidden activations"):
        MLPClassifier.load(path)


def test_unsorted_class_names_are_reordered(tmp_path):
    net = flatnn.Network((2, 4, 3), hidden="tanh")
    params = net.init(1)
    path = flatnn.save(tmp_path / "m.npz", net, params, class_names=["z", "a", "m"])
    clf = MLPClassifier.load(path)
    X = np.random.default_rng(2).normal(size=(50, 2))
    assert clf.classes_.tolist() == ["a", "m", "z"]
    names = np.array(["z", "a", "m"])
    assert clf.predict(X).tolist() == names[net.predict(params, X)].tolist()


def test_estimator_file_predicts_and_evaluates_in_cli(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    X = _rows(3, 30)
    y = np.where(X[:, 0] > 0, 3, 7)
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=200, random_state=0).fit(frame, y)
    path = clf.save(tmp_path / "s.npz")
    _table(tmp_path / "rows.csv", X, y, ["x0", "x1", "x2", "y"])
    capsys.readouterr()
    assert main(["predict", path, str(tmp_path / "rows.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    printed = [line.rsplit(",", 1)[1] for line in lines]
    assert printed == [str(v) for v in clf.predict(frame)]
    assert set(printed) <= {"3", "7"}
    assert main(["evaluate", path, "--data", str(tmp_path / "rows.csv"), "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out
