"""The network functions on a real GPU (CuPy) against the CPU, float64 to 1e-10 relative.

Skipped, as a module, where CuPy is not installed or sees no GPU (CI): the same
code path is exercised on the CPU by ``tests/test_namespace.py`` through a
stand-in namespace. Run on a machine with an NVIDIA GPU after
``pip install -e '.[dev,gpu]'``::

    python -m pytest tests/gpu -v
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

import flatnn
from flatnn import gpu
from flatnn.cli import app as cli

try:
    cp = gpu.require_cuda()
except gpu.GPUUnavailable as exc:
    pytest.skip(f"no GPU: {exc}", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
RTOL = 1e-10
HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUTS = (
    ("softmax", "cross_entropy", "labels"),
    ("softmax", "cross_entropy", "targets"),
    ("sigmoid", "cross_entropy", "targets"),
    ("softmax", "squared_error", "labels"),
    ("sigmoid", "squared_error", "targets"),
    ("tanh", "squared_error", "targets"),
    ("relu", "squared_error", "targets"),
    ("leaky_relu", "squared_error", "targets"),
    ("identity", "squared_error", "targets"),
)


def close(host, device, rtol=RTOL):
    """``device`` (a CuPy array) equals ``host`` to ``rtol`` of the largest entry of ``host``."""
    assert isinstance(device, cp.ndarray), type(device)
    d = cp.asnumpy(device)
    assert d.dtype == host.dtype and d.shape == host.shape
    scale = max(np.abs(host).max(), 1e-300)
    assert np.abs(d - host).max() <= rtol * scale, np.abs(d - host).max() / scale


def problem(hidden, output, loss, kind, m=300, seed=0, sizes=(20, 32, 16, 5)):
    rng = np.random.default_rng(seed)
    net = flatnn.Network(sizes, hidden=hidden, output=output, loss=loss)
    params = net.init(seed) + 0.05 * rng.normal(size=net.n_params)
    X = rng.normal(size=(m, sizes[0]))
    k = sizes[-1]
    if kind == "labels":
        y = rng.integers(0, k, m)
    elif loss == "cross_entropy" and output == "softmax":
        y = rng.dirichlet(np.ones(k), m)
    else:
        y = rng.uniform(size=(m, k))
    return net, params, X, y, rng.normal(size=net.n_params)


@pytest.mark.parametrize("lam", [0.0, 0.7])
@pytest.mark.parametrize("output,loss,kind", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_function_matches_the_cpu(hidden, output, loss, kind, lam):
    net, params, X, y, v = problem(hidden, output, loss, kind)
    Xd, yd, pd, vd = (cp.asarray(a) for a in (X, y, params, v))
    cost, grad = net.cost_grad(params, X, y, lam)
    cost_d, grad_d = net.cost_grad(pd, Xd, yd, lam)
    assert isinstance(cost_d, float) and abs(cost_d - cost) <= RTOL * abs(cost)
    close(grad, grad_d)
    assert abs(net.cost(pd, Xd, yd, lam) - cost) <= RTOL * abs(cost)
    close(net.hessp(params, v, X, y, lam), net.hessp(pd, vd, Xd, yd, lam))
    close(net.gnvp(params, v, X, y, lam), net.gnvp(pd, vd, Xd, yd, lam))
    close(net.forward(params, X), net.forward(pd, Xd))
    pred = net.predict(pd, Xd)
    assert isinstance(pred, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(pred), net.predict(params, X))
    assert net.accuracy(pd, Xd, yd) == net.accuracy(params, X, y)


def test_mnist_sized_batch_matches_the_threaded_cpu():
    net, params, X, y, v = problem(
        "sigmoid", "softmax", "cross_entropy", "labels", m=12000, sizes=(784, 100, 10)
    )
    Xd, yd = cp.asarray(X), cp.asarray(y)
    cost, grad = net.cost_grad(params, X, y, 1.0)
    cost_d, grad_d = net.cost_grad(params, Xd, yd, 1.0)
    assert abs(cost_d - cost) <= RTOL * cost
    close(grad, grad_d)
    close(net.hessp(params, v, X, y, 1.0), net.hessp(params, v, Xd, yd, 1.0))


def test_float32_stays_float32_on_the_gpu():
    net, params, X, y, v = problem("relu", "softmax", "cross_entropy", "labels")
    p32, X32 = params.astype(np.float32), X.astype(np.float32)
    _, g = net.cost_grad(cp.asarray(p32), cp.asarray(X32), cp.asarray(y))
    assert g.dtype == np.float32
    close(net.cost_grad(p32, X32, y)[1], g, rtol=1e-4)


def test_gpu_objective_under_scipy_newton_cg():
    net, params, X, y, _ = problem("tanh", "softmax", "cross_entropy", "labels")
    obj = gpu.GPUObjective(net, X, y, 0.1)
    ref = flatnn.Objective(net, X, y, 0.1)
    got = scipy.optimize.minimize(
        obj.cost_grad,
        params,
        jac=True,
        hessp=obj.hessp,
        method="Newton-CG",
        options={"maxiter": 10},
    )
    want = scipy.optimize.minimize(
        ref.cost_grad,
        params,
        jac=True,
        hessp=ref.hessp,
        method="Newton-CG",
        options={"maxiter": 10},
    )
    assert got.nit == want.nit
    assert got.fun == pytest.approx(want.fun, rel=1e-9)
    np.testing.assert_allclose(got.x, want.x, rtol=0, atol=1e-7)


def test_flatnn_minimize_over_the_gpu_objective():
    net, params, X, y, _ = problem("sigmoid", "softmax", "cross_entropy", "labels")
    a = flatnn.minimize(
        gpu.GPUObjective(net, X, y, 0.1), params, method="L-BFGS-B", options={"maxiter": 30}
    )
    b = flatnn.minimize(
        flatnn.Objective(net, X, y, 0.1), params, method="L-BFGS-B", options={"maxiter": 30}
    )
    assert a.fun == pytest.approx(b.fun, rel=1e-8)
    assert a.fun < net.cost(params, X, y, 0.1)


def test_cli_trains_on_the_gpu(tmp_path):
    path = tmp_path / "xor.npz"
    code = cli.run(
        [
            "train",
            "--dataset",
            "xor",
            "--method",
            "L-BFGS-B",
            "--device",
            "cuda",
            "--out",
            str(path),
            "--quiet",
        ]
    )
    assert code == 0 and path.is_file()


def test_bench_gpu_runs(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "bench_gpu.py"),
            "--data",
            "random",
            "--m",
            "2000",
            "--repeat",
            "2",
            "--maxiter",
            "5",
            "--newton-maxiter",
            "3",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert len(result["cost_grad"]) == 4 and result["training"][0]["nit"] == 5


@pytest.mark.parametrize(
    "output,loss,kind", [("softmax", "cross_entropy", "labels"), ("exp", "poisson", "counts")]
)
def test_sample_weights_and_poisson_on_the_gpu(output, loss, kind):
    rng = np.random.default_rng(5)
    net = flatnn.Network((20, 16, 3), hidden="tanh", output=output, loss=loss)
    params = net.init(5)
    X = rng.normal(size=(300, 20))
    y = rng.integers(0, 3, 300) if kind == "labels" else rng.poisson(2.0, (300, 3)).astype(float)
    w = rng.uniform(0, 2, 300)
    v = rng.normal(size=net.n_params)
    Xd, yd, wd, pd, vd = (cp.asarray(a) for a in (X, y, w, params, v))
    c, g = net.cost_grad(params, X, y, 0.2, sample_weight=w)
    cd, gd = net.cost_grad(pd, Xd, yd, 0.2, sample_weight=wd)
    assert abs(cd - c) <= RTOL * abs(c)
    close(g, gd)
    close(
        net.hessp(params, v, X, y, 0.2, sample_weight=w),
        net.hessp(pd, vd, Xd, yd, 0.2, sample_weight=wd),
    )
    obj = gpu.GPUObjective(net, X, y, 0.2, sample_weight=w)
    np.testing.assert_allclose(obj.grad(params), g, rtol=RTOL, atol=RTOL * np.abs(g).max())
