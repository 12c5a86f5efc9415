"""Estimator files: every fitted estimator saves, and load checks the whole stored state."""

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import flatnn  # noqa: E402
from flatnn import gpu  # noqa: E402
from flatnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from flatnn.sklearn import device as devices  # noqa: E402

KEY = "flatnn.sklearn"


def _iris():
    X, y = load_iris(return_X_y=True)
    return X, y


def _fitted(Est=MLPClassifier, **params):
    X, y = _iris()
    if Est is MLPRegressor:
        y = y.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Est(hidden_layer_sizes=(4,), max_iter=3, random_state=0, **params).fit(X, y)


def test_a_run_with_an_infinite_loss_is_saved_and_read_back(tmp_path):
    X, y = _iris()
    est = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X * 1e150, y * 1e150)
    assert not np.isfinite(est.loss_curve_).all()
    back = MLPRegressor.load(est.save(tmp_path / "big.npz"))
    assert [str(v) for v in back.loss_curve_] == [str(v) for v in est.loss_curve_]
    assert back.loss_ == est.loss_
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def test_a_diverged_sgd_run_keeps_finite_weights_and_saves(tmp_path):
    X, y = _iris()
    est = MLPClassifier(solver="sgd", learning_rate_init=1e300, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning, match="stopped"):
        est.fit(X, y)
    assert np.isfinite(est.params_).all() and not est.result_.success
    assert est.n_iter_ == 5 and np.isnan(est.loss_curve_[-1])  # as scikit-learn records it
    back = MLPClassifier.load(est.save(tmp_path / "diverged.npz"))
    assert np.isnan(back.loss_) and len(back.loss_curve_) == 5
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def _tampered(tmp_path, est, change):
    path = est.save(tmp_path / "good.npz")
    net, params, metadata = flatnn.load(path)
    change(metadata[KEY])
    return flatnn.save(tmp_path / "tampered.npz", net, params, **metadata)


def _set(field, value):
    def change(state):
        state[field] = value

    return change


def _set_param(field, value):
    def change(state):
        state["params"][field] = value

    return change


def _drop(field):
    def change(state):
        del state[field]

    return change


@pytest.mark.parametrize(
    "Est,change,field",
    [
        (MLPClassifier, _set("loss_curve", ["a", "b", "c"]), "loss_curve"),
        (MLPClassifier, _set("n_iter", "x"), "n_iter"),
        (MLPClassifier, _set("n_iter", -1), "n_iter"),
        (MLPClassifier, _set("t", 1.5), "t"),
        (MLPClassifier, _set("loss", None), "loss"),
        (MLPClassifier, _set_param("hidden_layer_sizes", [7]), "hidden_layer_sizes"),
        (MLPClassifier, _set_param("activation", "tanh"), "activation"),
        (MLPClassifier, _set_param("activation", "softmax"), "params"),
        (MLPClassifier, _set_param("alpha", -1), "params"),
        (MLPClassifier, _set_param("no_such_parameter", 1), "params"),
        (MLPClassifier, _drop("n_features_in"), "n_features_in"),
        (MLPClassifier, _set("n_features_in", 3), "n_features_in"),
        (MLPClassifier, _set("n_outputs", 1), "n_outputs"),
        (MLPClassifier, _set("classes", [0, 1]), "classes"),
        (MLPClassifier, _set("classes", [0, 0, 1]), "classes"),
        (MLPClassifier, _set("classes_dtype", "not a dtype"), "classes_dtype"),
        (MLPClassifier, _set("y_type", "continuous"), "y_type"),
        (MLPClassifier, _drop("params"), "params"),
        (MLPClassifier, _set("feature_names_in", ["a"]), "feature_names_in"),
        (MLPRegressor, _set("n_outputs", 2), "n_outputs"),
        (MLPRegressor, _set("loss_curve", "high"), "loss_curve"),
    ],
)
def test_tampered_state_is_one_value_error_naming_file_and_field(tmp_path, Est, change, field):
    est = _fitted(Est)
    path = _tampered(tmp_path, est, change)
    with pytest.raises(ValueError, match=field) as info:
        Est.load(path)
    assert "tampered.npz" in str(info.value)


def test_a_classifier_file_with_another_output_is_refused(tmp_path):
    est = _fitted(MLPRegressor)
    path = est.save(tmp_path / "regressor.npz")
    net, params, metadata = flatnn.load(path)
    metadata[KEY]["class"] = "MLPClassifier"
    del metadata[KEY]["params"]["loss"]
    metadata[KEY].update(classes=[0.0, 1.0], y_type="binary", classes_dtype="<f8")
    path = flatnn.save(tmp_path / "relabelled.npz", net, params, **metadata)
    with pytest.raises(ValueError, match="relabelled.npz.*output 'identity'"):
        MLPClassifier.load(path)


def test_save_refuses_a_read_only_file(tmp_path):
    est = _fitted()
    path = est.save(tmp_path / "model.npz")
    before = Path(path).read_bytes()
    os.chmod(path, stat.S_IRUSR)
    try:
        with pytest.raises(PermissionError, match="read-only"):
            est.save(path)
    finally:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    assert Path(path).read_bytes() == before


def test_a_model_saved_on_cuda_predicts_on_the_cpu_without_a_gpu(tmp_path, monkeypatch):
    X, y = _iris()
    est = _fitted()
    expected = est.predict(X)
    est.set_params(device="cuda")  # as fitted on a GPU: the file keeps device="cuda"
    path = est.save(tmp_path / "cuda.npz")

    def no_gpu(device, caller="flatnn.sklearn"):
        if devices.check_device(device, caller) == "cpu":
            return None
        raise gpu.GPUUnavailable("CuPy is not installed (test)")

    monkeypatch.setattr(devices, "device_namespace", no_gpu)
    with pytest.warns(UserWarning, match=r"set_params\(device='cuda'\)"):
        back = MLPClassifier.load(path)
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.predict(X), expected)
