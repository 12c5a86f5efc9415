"""Exports: ONNX run in onnxruntime, safetensors read by safetensors and by flatnn;
scikit-learn MLPs converted with identical predictions."""

from __future__ import annotations

import numpy as np
import pytest

import flatnn
from flatnn.datasets import fit_scaler
from flatnn.io import export

NETS = [
    flatnn.Network((6, 8, 4)),
    flatnn.Network((6, 8, 5, 3), hidden=("relu", "tanh")),
    flatnn.Network((6, 7, 1)),
    flatnn.Network((6, 7, 2), hidden="leaky_relu", output="sigmoid"),
    flatnn.Network((6, 9, 2), hidden="identity", output="identity", loss="squared_error"),
]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}


def rows(dtype, m=1000):
    return np.random.default_rng(1).normal(scale=2.0, size=(m, 6)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("net", NETS, ids=repr)
def test_onnx_runs_in_onnxruntime_like_flatnn(tmp_path, net, dtype):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    params = net.init(3, dtype=dtype)
    path = tmp_path / "m.onnx"
    export.to_onnx(net, params, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    X = rows(dtype)
    output, label = session.run(["output", "label"], {"X": X})
    assert output.dtype == dtype and label.dtype == np.int64 and label.shape == (1000,)
    np.testing.assert_allclose(output, net.forward(params, X), rtol=0, atol=TOLERANCE[dtype])
    np.testing.assert_array_equal(label, net.predict(params, X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_onnx_with_the_scaler_takes_raw_rows(tmp_path, dtype):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = NETS[0]
    params = net.init(0, dtype=dtype)
    X = rows(np.float64) * 50 + 10
    scaler = fit_scaler(X)
    model = export.to_onnx(net, params, scaler=scaler.to_dict())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    output, label = session.run(None, {"X": X.astype(dtype)})
    Z = scaler.transform(X.astype(dtype))
    np.testing.assert_allclose(output, net.forward(params, Z), rtol=0, atol=TOLERANCE[dtype])
    np.testing.assert_array_equal(label, net.predict(params, Z))


def test_safetensors_layout_and_round_trip(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    net = NETS[1]
    params = net.init(0)
    path = export.to_safetensors(
        net, params, tmp_path / "m.safetensors", class_names=["a", "b", "c"]
    )
    tensors = st.load_file(path)
    assert sorted(tensors) == [f"layer{l}.{k}" for l in range(3) for k in ("bias", "weight")]
    for l, theta in enumerate(net.unpack(params)):
        np.testing.assert_array_equal(tensors[f"layer{l}.weight"], theta[:, 1:])
        np.testing.assert_array_equal(tensors[f"layer{l}.bias"], theta[:, 0])
    back, back_params, meta = export.read_safetensors(path)
    assert back == net and meta == {"class_names": ["a", "b", "c"]}
    np.testing.assert_array_equal(back_params, params)


def test_safetensors_from_elsewhere_needs_the_spec(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    net = flatnn.Network((3, 2))
    st.save_file(
        {"layer0.weight": np.ones((2, 3)), "layer0.bias": np.zeros(2)}, str(tmp_path / "t.st")
    )
    with pytest.raises(ValueError, match="names no network spec"):
        export.read_safetensors(tmp_path / "t.st")
    back, params, _ = export.read_safetensors(tmp_path / "t.st", net=net)
    np.testing.assert_array_equal(params, [0, 1, 1, 1, 0, 1, 1, 1])
    with pytest.raises(ValueError, match=r"layer0 needs weight \(4, 3\)"):
        export.read_safetensors(tmp_path / "t.st", net=flatnn.Network((3, 4)))


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_sklearn_classifier_converts_with_identical_predictions(n_classes, activation):
    nn = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = np.array([3, 7, 9])[:n_classes][(X[:, 0] + X[:, 1] > 0) + (X[:, 2] > 1) * (n_classes - 2)]
    est = nn.MLPClassifier(
        hidden_layer_sizes=(8,), activation=activation, max_iter=50, random_state=0
    )
    with pytest.warns(Warning):
        est.fit(X, y)
    net, params = export.from_sklearn(est)
    np.testing.assert_array_equal(est.classes_[net.predict(params, X)], est.predict(X))
    proba = net.forward(params, X)
    if net.sizes[-1] == 1:
        proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
    np.testing.assert_allclose(proba, est.predict_proba(X), rtol=1e-12, atol=1e-14)


def test_sklearn_regressor_converts_with_identical_predictions():
    nn = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + 0.1 * rng.normal(size=200)
    est = nn.MLPRegressor(hidden_layer_sizes=(5, 3), max_iter=2000, random_state=0).fit(X, y)
    net, params = export.from_sklearn(est)
    np.testing.assert_allclose(net.forward(params, X)[:, 0], est.predict(X), rtol=1e-12, atol=1e-12)


def test_from_sklearn_refuses_what_is_not_a_fitted_mlp():
    nn = pytest.importorskip("sklearn.neural_network")
    with pytest.raises(TypeError, match="fitted sklearn.neural_network MLPClassifier"):
        export.from_sklearn(nn.MLPClassifier())
