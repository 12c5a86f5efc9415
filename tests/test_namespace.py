"""The array-namespace code path (the one CuPy data takes), run on the CPU.

The data here are ``HostArray``s (``tests/stand_in_xp.py``): NumPy refuses them,
so a NumPy-only call anywhere on the path fails these tests with a TypeError.
Every result must equal the NumPy path's to 1e-12 relative in float64, and come
back as an array of the data's namespace.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import stand_in_xp
from conftest import shared_data
from stand_in_xp import HostArray

import flatnn
from flatnn import cli, gpu, threads
from flatnn.backends import gpu_objective
from flatnn.base import namespace

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture
def xp():
    namespace.register(stand_in_xp.ROOT, stand_in_xp.xp)
    yield stand_in_xp.xp
    namespace.register(stand_in_xp.ROOT, None)


def close(host, device, rtol=1e-12):
    """``device`` (a HostArray) equals the NumPy result ``host`` to ``rtol`` of its largest."""
    assert isinstance(device, HostArray), type(device)
    d = device.get()
    assert d.dtype == host.dtype and d.shape == host.shape
    scale = max(np.abs(host).max(), 1e-300)
    assert np.abs(d - host).max() <= rtol * scale, np.abs(d - host).max() / scale


def problem(hidden, output, loss, kind, m=40, seed=0, sizes=(6, 8, 5, 4)):
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


def test_the_stand_in_refuses_numpy(xp):
    a = xp.asarray(np.arange(3.0))
    with pytest.raises(TypeError):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.exp(a)
    with pytest.raises(TypeError):
        np.matmul(a, a)
    with pytest.raises(TypeError):
        a + np.ones(3)


@pytest.mark.parametrize("lam", [0.0, 0.7])
@pytest.mark.parametrize("output,loss,kind", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_function_matches_numpy(xp, hidden, output, loss, kind, lam):
    net, params, X, y, v = problem(hidden, output, loss, kind)
    Xd, yd, pd, vd = (xp.asarray(a) for a in (X, y, params, v))
    cost, grad = net.cost_grad(params, X, y, lam)
    cost_d, grad_d = net.cost_grad(pd, Xd, yd, lam)
    assert isinstance(cost_d, float)
    assert abs(cost_d - cost) <= 1e-12 * abs(cost)
    close(grad, grad_d)
    assert abs(net.cost(pd, Xd, yd, lam) - net.cost(params, X, y, lam)) <= 1e-12 * abs(cost)
    close(net.grad(params, X, y, lam), net.grad(pd, Xd, yd, lam))
    close(net.hessp(params, v, X, y, lam), net.hessp(pd, vd, Xd, yd, lam))
    close(net.gnvp(params, v, X, y, lam), net.gnvp(pd, vd, Xd, yd, lam))
    close(net.forward(params, X), net.forward(pd, Xd))
    pred = net.predict(pd, Xd)
    assert isinstance(pred, HostArray)
    np.testing.assert_array_equal(pred.get(), net.predict(params, X))
    assert net.accuracy(pd, Xd, yd) == net.accuracy(params, X, y)


def test_numpy_in_numpy_out(xp):
    net, params, X, y, v = problem("relu", "softmax", "cross_entropy", "labels")
    _, grad = net.cost_grad(params, X, y)
    assert type(grad) is np.ndarray
    assert type(net.hessp(params, v, X, y)) is np.ndarray


def test_more_rows_than_a_block_and_a_thread(xp):
    # The NumPy path splits these rows into cache blocks and over two threads;
    # the namespace path runs them as one block. Same numbers to 1e-12.
    rows = threads.MIN_ROWS_PER_THREAD * 2 + 100
    net, params, X, y, v = problem(
        "sigmoid", "softmax", "cross_entropy", "labels", m=rows, sizes=(20, 64, 10)
    )
    Xd, yd = xp.asarray(X), xp.asarray(y)
    with threads.using(2):
        cost, grad = net.cost_grad(params, X, y, 0.5)
        hv = net.hessp(params, v, X, y, 0.5)
        out = net.forward(params, X)
    cost_d, grad_d = net.cost_grad(params, Xd, yd, 0.5)
    assert abs(cost_d - cost) <= 1e-12 * cost
    close(grad, grad_d)
    close(hv, net.hessp(params, v, Xd, yd, 0.5))
    close(out, net.forward(params, Xd))


def test_float32_stays_float32(xp):
    net, params, X, y, v = problem("tanh", "softmax", "cross_entropy", "labels")
    p32, X32 = params.astype(np.float32), X.astype(np.float32)
    _, g = net.cost_grad(xp.asarray(p32), xp.asarray(X32), xp.asarray(y))
    assert g.dtype == np.float32
    _, g_host = net.cost_grad(p32, X32, y)
    close(g_host, g, rtol=1e-5)
    assert net.hessp(p32, v.astype(np.float32), xp.asarray(X32), y).dtype == np.float32


def test_host_vectors_move_to_the_data_but_device_vectors_never_move_back(xp):
    net, params, X, y, v = problem("relu", "softmax", "cross_entropy", "labels")
    _, g = net.cost_grad(params, xp.asarray(X), y)  # NumPy params and y, device X
    assert isinstance(g, HostArray)
    with pytest.raises(TypeError, match="params is a stand_in_xp array but X is a NumPy"):
        net.cost_grad(xp.asarray(params), X, y)
    with pytest.raises(TypeError, match="v is a stand_in_xp array"):
        net.hessp(params, xp.asarray(v), X, y)


def test_bad_input_is_reported_on_the_namespace_path(xp):
    net, params, X, y, v = problem("relu", "softmax", "cross_entropy", "labels")
    Xd = xp.asarray(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or inf .1 rows, first at row 3"):
        net.cost_grad(params, xp.asarray(bad), y)
    with pytest.raises(ValueError, match="label 7 is out of range"):
        net.cost(params, Xd, xp.asarray(np.where(np.arange(40) == 5, 7, y)))
    with pytest.raises(ValueError, match="labels y .m,. must be integers"):
        net.cost(params, Xd, xp.asarray(y + 0.5))
    assert net.cost(params, Xd, xp.asarray(y.astype(float))) == net.cost(params, X, y)
    v_bad = v.copy()
    v_bad[2] = np.inf
    with pytest.raises(ValueError, match="v contains NaN or inf .1 entries, first at index 2"):
        net.hessp(params, xp.asarray(v_bad), Xd, y)
    with pytest.raises(ValueError, match="overflows float64"):
        net.cost(params * 1e300, Xd, y)


def test_unpack_and_pack_keep_the_namespace(xp):
    net, params, *_ = problem("relu", "softmax", "cross_entropy", "labels")
    thetas = net.unpack(xp.asarray(params))
    assert all(isinstance(t, HostArray) for t in thetas)
    packed = net.pack(thetas)
    assert isinstance(packed, HostArray)
    np.testing.assert_array_equal(packed.get(), params)


def test_namespace_of():
    assert namespace.namespace_of(np.zeros(2), 1.0, [1, 2], None) is np
    assert namespace.namespace_of() is np
    assert namespace.to_numpy(np.zeros(2)).shape == (2,)


def test_two_device_libraries_in_one_call_are_refused(xp):
    class Other:  # an array type of another (registered) library
        pass

    Other.__module__ = "other_lib.core"
    namespace.register("other_lib", stand_in_xp.xp)
    try:
        with pytest.raises(TypeError, match="two libraries"):
            namespace.namespace_of(xp.asarray([1.0]), Other())
    finally:
        namespace.register("other_lib", None)


def test_numpy_data_never_imports_cupy():
    code = (
        "import sys, numpy as np, flatnn\n"
        "net = flatnn.Network((3, 4, 2))\n"
        "p = net.init(0); X = np.ones((5, 3)); y = np.array([0, 1, 0, 1, 1])\n"
        "net.cost_grad(p, X, y); net.hessp(p, p, X, y); net.predict(p, X)\n"
        "print('cupy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------- GPUObjective
def test_gpu_objective_speaks_numpy_and_matches_objective(xp):
    net, params, X, y, v = problem("tanh", "softmax", "cross_entropy", "labels")
    obj = gpu.GPUObjective(net, X, y, 0.3, xp=xp)
    ref = flatnn.Objective(net, X, y, 0.3)
    assert isinstance(obj.X_device, HostArray) and obj.m == 40 and obj.n_params == net.n_params
    f, g = obj.cost_grad(params)
    f_ref, g_ref = ref.cost_grad(params)
    assert isinstance(f, float) and type(g) is np.ndarray
    assert abs(f - f_ref) <= 1e-12 * f_ref
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-12 * np.abs(g_ref).max())
    for got, want in (
        (obj.hessp(params, v), ref.hessp(params, v)),
        (obj.gnvp(params, v), ref.gnvp(params, v)),
        (obj.grad(params), g_ref),
    ):
        assert type(got) is np.ndarray
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    assert obj.cost(params) == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_array_equal(obj.predict(params), ref.predict(params))
    assert obj.accuracy(params) == ref.accuracy(params)


def test_gpu_objective_under_scipy_and_flatnn_minimize(xp):
    net, params, X, y, _ = problem("sigmoid", "softmax", "cross_entropy", "labels", m=60)
    obj = gpu.GPUObjective(net, X, y, 0.1, xp=xp)
    ref = flatnn.Objective(net, X, y, 0.1)
    opts = {"maxiter": 15}
    got = scipy.optimize.minimize(
        obj.cost_grad, params, jac=True, hessp=obj.hessp, method="Newton-CG", options=opts
    )
    want = scipy.optimize.minimize(
        ref.cost_grad, params, jac=True, hessp=ref.hessp, method="Newton-CG", options=opts
    )
    assert got.nit == want.nit and got.nfev == want.nfev
    np.testing.assert_allclose(got.x, want.x, rtol=0, atol=1e-9)
    assert got.fun < ref.cost(params)
    for method in ("L-BFGS-B", "trust-ncg"):
        a = flatnn.minimize(obj, params, method=method, options={"maxiter": 20})
        b = flatnn.minimize(ref, params, method=method, options={"maxiter": 20})
        assert a.nfev == b.nfev and a.fun == pytest.approx(b.fun, rel=1e-10)
        np.testing.assert_allclose(a.x, b.x, rtol=0, atol=1e-9)


def test_gpu_objective_float32_data_computes_in_float32(xp):
    net, params, X, y, _ = problem("relu", "softmax", "cross_entropy", "labels")
    obj = gpu.GPUObjective(net, X.astype(np.float32), y, xp=xp)
    assert obj.dtype == np.float32
    _, g = obj.cost_grad(params)  # a float64 vector from scipy: cast, never the data
    assert g.dtype == np.float32
    pixels = gpu.GPUObjective(net, (np.abs(X) * 50).astype(np.uint8), y, xp=xp)
    assert pixels.dtype == np.float32


def test_gpu_objective_refuses_bad_input(xp):
    net, params, X, y, _ = problem("relu", "softmax", "cross_entropy", "labels")
    with pytest.raises(ValueError, match="X has 5 features per row"):
        gpu.GPUObjective(net, X[:, :5], y, xp=xp)
    with pytest.raises(ValueError, match="y has 39 rows; X has 40"):
        gpu.GPUObjective(net, X, y[:39], xp=xp)
    with pytest.raises(TypeError, match="net must be a flatnn.Network"):
        gpu.GPUObjective("net", X, y, xp=xp)
    obj = gpu.GPUObjective(net, X, y, xp=xp)
    with pytest.raises(ValueError, match=f"flat vector of {net.n_params} entries"):
        obj.cost_grad(params[:-1])
    with pytest.raises(TypeError, match="must be a NumPy array"):
        obj.cost_grad(xp.asarray(params))
    with pytest.raises(TypeError, match="use flatnn.minimize for it"):
        flatnn.sgd(obj, params, epochs=1, batch_size=10, learning_rate=0.1)


# ------------------------------------------------------------- no GPU here
def cupy_missing():
    try:
        import cupy  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.mark.skipif(not cupy_missing(), reason="CuPy is installed here")
def test_without_cupy_the_gpu_parts_say_what_is_missing(capsys):
    with pytest.raises(gpu.GPUUnavailable, match="CuPy is not installed.*flatnn.gpu"):
        gpu.require_cuda()
    net = flatnn.Network((2, 3, 2))
    with pytest.raises(gpu.GPUUnavailable):
        gpu.GPUObjective(net, np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    code = cli.main(
        ["train", "--dataset", "xor", "--method", "L-BFGS-B", "--device", "cuda", "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("flatnn: error: --device cuda: CuPy is not installed")


@pytest.mark.skipif(not cupy_missing(), reason="CuPy is installed here")
def test_device_cuda_with_an_sgd_rule_says_what_is_missing(capsys, tmp_path):
    path = tmp_path / "never.npz"
    code = cli.main(
        ["train", "--dataset", "xor", "--method", "adam", "--device", "cuda", "--out", str(path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and not path.exists()
    assert err.startswith("flatnn: error: --device cuda: CuPy is not installed")


@pytest.mark.parametrize(
    "argv",
    [
        [
            "--method",
            "adam",
            "--dropout",
            "0.2",
            "--input-dropout",
            "0.1",
            "--max-norm",
            "2",
            "--augment",
            "2",
        ],
        ["--method", "momentum", "--dtype", "float32"],
        ["--method", "L-BFGS-B", "--maxiter", "8"],
    ],
    ids=["adam-dropout-augment", "momentum-float32", "lbfgs"],
)
def test_cli_device_cuda_trains_on_the_device_namespace(xp, monkeypatch, tmp_path, argv):
    # --device cuda with the stand-in as "CuPy": the SGD rules run flatnn.sgd on
    # device data, a scipy method a GPUObjective; the model equals the CPU's.
    calls, products = [], []
    monkeypatch.setattr(gpu_objective, "require_cuda", lambda: calls.append(1) or xp)
    matmul = xp.matmul
    monkeypatch.setattr(xp, "matmul", lambda *a, **k: products.append(1) or matmul(*a, **k))
    common = [
        "train",
        "--dataset",
        "mnist",
        "--limit",
        "300",
        "--epochs",
        "2",
        "--sizes",
        "784-12-10",
        "--quiet",
        "--data-dir",
        str(shared_data()),
        "--no-download",
        *argv,
    ]
    paths = {}
    for device in ("cpu", "cuda"):
        paths[device] = tmp_path / f"{device}.npz"
        assert cli.main([*common, "--device", device, "--out", str(paths[device])]) == 0
    assert calls == [1]
    assert len(products) >= 8  # the backward passes of the cuda run ran on the device
    _, want, meta_cpu = flatnn.load(paths["cpu"])
    _, got, meta_gpu = flatnn.load(paths["cuda"])
    assert got.dtype == want.dtype
    rtol = 1e-5 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * np.abs(want).max())
    assert meta_gpu["test_accuracy"] == pytest.approx(meta_cpu["test_accuracy"], abs=0.01)


@pytest.mark.skipif(not cupy_missing(), reason="CuPy is installed here")
def test_bench_gpu_exits_with_a_message_without_a_gpu():
    out = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "bench_gpu.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "bench_gpu: no GPU: CuPy is not installed" in out.stderr
    assert "Traceback" not in out.stderr


def test_bench_gpu_runs_through_the_stand_in(tmp_path):
    # Everything but PyTorch and the CuPy calls themselves: the script's own code.
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "bench_gpu.py"),
            "--stand-in",
            "--data",
            "random",
            "--m",
            "300",
            "--repeat",
            "1",
            "--maxiter",
            "4",
            "--newton-maxiter",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert [r["net"] for r in result["cost_grad"]][:2] == [
        "784-100-10 sigmoid",
        "784-256-128-64-10 relu",
    ]
    by = {(r["device"], r["method"]): r for r in result["training"]}
    for method in ("L-BFGS-B", "Newton-CG"):  # the namespace path follows the CPU's iterates
        assert by["gpu", method]["nfev"] == by["cpu", method]["nfev"]
        assert by["gpu", method]["fun"] == pytest.approx(by["cpu", method]["fun"], rel=1e-5)
    assert by["gpu", "L-BFGS-B"]["nit"] == 4
    assert "| flatnn.sgd, CPU |" in (tmp_path / "bench_gpu.md").read_text()
    sgd_rows = {r["what"]: r for r in result["sgd_epoch"]}
    assert sgd_rows["flatnn.sgd, GPU"]["fun"] == pytest.approx(
        sgd_rows["flatnn.sgd, CPU"]["fun"], rel=1e-5
    )  # the device run follows the CPU's
    assert sgd_rows["flatnn.sgd, GPU"]["seconds"] > 0
