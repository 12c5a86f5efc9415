"""The estimators' ``device=``: the GPU path run on the CPU through the stand-in namespace.

``flatnn.sklearn.device.device_namespace`` (the hook that imports CuPy for
``device="cuda"``) is replaced by one that returns the stand-in namespace of
``tests/stand_in_xp.py``, whose arrays NumPy refuses: a fit that let device
data reach NumPy fails here. A counting ``matmul`` proves the work did run
there; the results must match ``device="cpu"`` to 1e-12 in float64, and every
fitted attribute and prediction must be NumPy.
"""

import pickle
import types
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import stand_in_xp  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from stand_in_xp import HostArray  # noqa: E402

from flatnn import gpu
from flatnn.base import namespace  # noqa: E402
from flatnn.sklearn import MLPClassifier, MLPRegressor
from flatnn.sklearn import device as devices  # noqa: E402


@pytest.fixture
def device(monkeypatch):
    """``device="cuda"`` computes on a counting stand-in namespace; yields the counts."""
    calls = {"matmul": 0, "asarray": 0}
    base = stand_in_xp.xp

    def matmul(*args, **kwargs):
        calls["matmul"] += 1
        return base.matmul(*args, **kwargs)

    def asarray(*args, **kwargs):
        calls["asarray"] += 1
        return base.asarray(*args, **kwargs)

    xp = types.SimpleNamespace(**{**vars(base), "matmul": matmul, "asarray": asarray})
    namespace.register(stand_in_xp.ROOT, xp)

    def fake(name, caller="flatnn.sklearn"):
        return xp if devices.check_device(name, caller) == "cuda" else None

    monkeypatch.setattr(devices, "device_namespace", fake)
    yield calls
    namespace.register(stand_in_xp.ROOT, None)


def data(m=120, n=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    return X, y


def only_numpy(est):
    """No array of another library is left in the fitted estimator."""
    arrays = [est.params_, est.result_.x, est.result_.jac]
    devices.map_arrays(est.optimizer_state_, arrays.append)
    for a in arrays:
        assert type(a) is np.ndarray, type(a)
    assert not any(isinstance(v, HostArray) for v in vars(est).values())


def fit_both(Est, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cpu = Est(**params).fit(X, y)
        cuda = Est(device="cuda", **params).fit(X, y)
    return cpu, cuda


def assert_same(cpu, cuda, X, rtol=1e-12):
    only_numpy(cuda)
    scale = np.abs(cpu.params_).max()
    assert np.abs(cuda.params_ - cpu.params_).max() <= rtol * scale
    assert cuda.n_iter_ == cpu.n_iter_
    np.testing.assert_allclose(cuda.loss_curve_, cpu.loss_curve_, rtol=rtol)
    pred = cuda.predict(X)
    assert type(pred) is np.ndarray
    np.testing.assert_array_equal(pred, cpu.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop", "lbfgs", "Newton-CG"])
def test_classifier_on_the_device_matches_the_cpu(device, solver):
    X, y = data()
    cpu, cuda = fit_both(
        MLPClassifier,
        X,
        y,
        hidden_layer_sizes=(7,),
        solver=solver,
        max_iter=15,
        random_state=0,
        learning_rate_init=0.05,
        batch_size=16,
    )
    assert device["matmul"] > 15  # the forward and backward passes ran on the device
    assert_same(cpu, cuda, X)
    proba = cuda.predict_proba(X)
    assert type(proba) is np.ndarray
    np.testing.assert_allclose(proba, cpu.predict_proba(X), rtol=1e-12)


def test_regressor_with_early_stopping_on_the_device(device):
    X, _ = data()
    y = np.column_stack([X[:, 0] * 2 - X[:, 1], np.sin(X[:, 2])])
    cpu, cuda = fit_both(
        MLPRegressor,
        X,
        y,
        hidden_layer_sizes=(6,),
        solver="adam",
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=40,
        learning_rate_init=0.02,
        random_state=1,
    )
    assert cuda.validation_scores_ == pytest.approx(cpu.validation_scores_, rel=1e-12)
    only_numpy(cuda)
    np.testing.assert_allclose(cuda.predict(X), cpu.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        cuda.params_, cpu.params_, rtol=0, atol=1e-12 * np.abs(cpu.params_).max()
    )


def test_partial_fit_carries_the_optimizer_state_through_the_host(device):
    X, y = data()
    cpu = MLPClassifier((6,), solver="adam", learning_rate_init=0.05, random_state=0)
    cuda = MLPClassifier(
        (6,), solver="adam", learning_rate_init=0.05, random_state=0, device="cuda"
    )
    for rows in (slice(0, 60), slice(60, 120), slice(0, 120)):
        cpu.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        cuda.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        only_numpy(cuda)
        assert cuda.optimizer_state_.count == cpu.optimizer_state_.count
    np.testing.assert_allclose(cuda.optimizer_state_.mu, cpu.optimizer_state_.mu, rtol=1e-12)
    assert_same(cpu, cuda, X)
    # a model fitted on the device predicts without one, and pickles as NumPy
    back = pickle.loads(pickle.dumps(cuda))
    back.set_params(device="cpu")
    np.testing.assert_array_equal(back.predict(X), cpu.predict(X))


def test_device_is_validated_at_fit_naming_the_choices():
    X, y = data()
    with pytest.raises(
        ValueError,
        match=r"The 'device' parameter of MLPClassifier must be a str among .*Got 'gpu' instead",
    ):
        MLPClassifier(device="gpu").fit(X, y)
    with pytest.raises(
        TypeError, match=r"The 'device' parameter of MLPRegressor must be .*Got 0 instead"
    ):
        MLPRegressor(device=0).fit(X, y.astype(float))
    with pytest.warns(ConvergenceWarning):
        est = MLPClassifier((4,), max_iter=3).fit(X, y)
    est.set_params(device="tpu")
    with pytest.raises(ValueError, match="The 'device' parameter of MLPClassifier must be"):
        est.predict(X)
    assert MLPClassifier().get_params()["device"] == "cpu"


def cupy_missing():
    try:
        import cupy  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.mark.skipif(not cupy_missing(), reason="CuPy is installed here")
def test_device_cuda_without_cupy_fails_before_the_data_is_read():
    class Unreadable:  # fit must stop at the device, before it looks at X
        def __array__(self, *args, **kwargs):
            raise AssertionError("X was read")

    for Est in (MLPClassifier, MLPRegressor):
        with pytest.raises(gpu.GPUUnavailable, match="CuPy is not installed"):
            Est(device="cuda").fit(Unreadable(), [0, 1])


def test_save_and_load_keep_the_device(tmp_path, device):
    X, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((5,), max_iter=5, random_state=0, device="cuda").fit(X, y)
    path = est.save(tmp_path / "model.npz")
    back = MLPClassifier.load(path)
    assert back.device == "cuda"
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
