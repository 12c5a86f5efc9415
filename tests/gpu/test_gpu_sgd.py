"""flatnn.sgd, the estimators' device="cuda" and `flatnn train --device cuda` with an SGD
rule on a real GPU (CuPy), against the CPU: float64 to 1e-10 relative.

Skipped, as a module, where CuPy is not installed or sees no GPU (CI): the same
code path is exercised on the CPU by ``tests/test_sgd_namespace.py`` and
``tests/test_sklearn_device.py`` through a stand-in namespace. Run on a
machine with an NVIDIA GPU after ``pip install -e '.[dev,gpu]'``::

    python -m pytest tests/gpu -v
"""

import numpy as np
import pytest

import flatnn
from flatnn import gpu
from flatnn.cli import app as cli

try:
    cp = gpu.require_cuda()
except gpu.GPUUnavailable as exc:
    pytest.skip(f"no GPU: {exc}", allow_module_level=True)

RTOL = 1e-10
RULES = ("sgd", "momentum", "nesterov", "adam", "rmsprop")


def problem(m=500, seed=0, sizes=(20, 32, 16, 5)):
    rng = np.random.default_rng(seed)
    net = flatnn.Network(sizes, hidden="tanh")
    X, X_val = rng.normal(size=(m, sizes[0])), rng.normal(size=(100, sizes[0]))
    y, y_val = rng.integers(0, sizes[-1], m), rng.integers(0, sizes[-1], 100)
    return net, net.init(seed), X, y, X_val, y_val


def close(host, device, rtol=RTOL):
    assert isinstance(device, cp.ndarray), type(device)
    d = cp.asnumpy(device)
    assert d.dtype == host.dtype and d.shape == host.shape
    assert np.abs(d - host).max() <= rtol * np.abs(host).max(), (
        np.abs(d - host).max() / np.abs(host).max()
    )


@pytest.mark.parametrize("method", RULES)
def test_every_rule_matches_the_cpu(method):
    net, p0, X, y, X_val, y_val = problem()
    kw = dict(
        epochs=4,
        batch_size=32,
        learning_rate=0.02,
        method=method,
        rng=1,
        early_stopping=2,
        dropout=(0.1, 0.2, 0.2),
        max_norm=3.0,
    )
    want = flatnn.sgd(net, p0, X, y, 0.5, validation=(X_val, y_val), **kw)
    got = flatnn.sgd(
        net,
        p0,
        cp.asarray(X),
        cp.asarray(y),
        0.5,
        validation=(cp.asarray(X_val), cp.asarray(y_val)),
        **kw,
    )
    assert got.status == want.status and got.nit == want.nit
    close(want.x, got.x)
    close(want.jac, got.jac)
    assert got.fun == pytest.approx(want.fun, rel=RTOL)
    for g, w in zip(got.history, want.history):
        assert g["val_cost"] == pytest.approx(w["val_cost"], rel=RTOL)


def test_plain_sgd_many_batches_matches_the_cpu():
    net, p0, X, y, *_ = problem(m=4000, sizes=(784, 100, 10))
    X = np.abs(X) / 4
    want = flatnn.sgd(net, p0, X, y, epochs=2, batch_size=64, learning_rate=0.1, rng=0)
    got = flatnn.sgd(
        net, p0, cp.asarray(X), cp.asarray(y), epochs=2, batch_size=64, learning_rate=0.1, rng=0
    )
    close(want.x, got.x)


def test_float32_stays_float32_on_the_gpu():
    net, p0, X, y, *_ = problem()
    X32, p32 = X.astype(np.float32), p0.astype(np.float32)
    got = flatnn.sgd(
        net,
        p32,
        cp.asarray(X32),
        cp.asarray(y),
        epochs=2,
        batch_size=32,
        learning_rate=0.05,
        method="adam",
        rng=0,
    )
    want = flatnn.sgd(
        net, p32, X32, y, epochs=2, batch_size=32, learning_rate=0.05, method="adam", rng=0
    )
    assert got.x.dtype == np.float32
    close(want.x, got.x, rtol=1e-4)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_the_estimators_fit_on_the_gpu(solver):
    fsk = pytest.importorskip("flatnn.sklearn")
    net, p0, X, y, *_ = problem()
    params = dict(
        hidden_layer_sizes=(16,),
        solver=solver,
        max_iter=20,
        random_state=0,
        learning_rate_init=0.01,
    )
    cpu = fsk.MLPClassifier(**params).fit(X, y)
    cuda = fsk.MLPClassifier(device="cuda", **params).fit(X, y)
    assert type(cuda.params_) is np.ndarray
    # 20 iterations of a line search or of Adam amplify rounding: 1e-7, not 1e-10
    assert np.abs(cuda.params_ - cpu.params_).max() <= 1e-7 * np.abs(cpu.params_).max()
    np.testing.assert_array_equal(cuda.predict(X), cpu.predict(X))


def test_cli_trains_with_an_sgd_rule_on_the_gpu(tmp_path):
    path = tmp_path / "xor.npz"
    code = cli.run(
        [
            "train",
            "--dataset",
            "xor",
            "--method",
            "adam",
            "--device",
            "cuda",
            "--out",
            str(path),
            "--quiet",
        ]
    )
    assert code == 0 and path.is_file()
