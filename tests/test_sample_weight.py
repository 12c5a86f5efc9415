"""Per-sample weights: ``J = Σ w_i loss_i / Σ w_i + lam / (2 Σ w_i) · Σ‖θ[:, 1:]‖²``."""

import zlib

import numpy as np
import pytest

import flatnn
from flatnn.training.step import BatchStep

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
PAIRS = [
    ("softmax", "cross_entropy"),
    ("sigmoid", "cross_entropy"),
    ("softmax", "squared_error"),
    ("sigmoid", "squared_error"),
    ("tanh", "squared_error"),
    ("relu", "squared_error"),
    ("leaky_relu", "squared_error"),
    ("identity", "squared_error"),
    ("exp", "poisson"),
]


def _problem(hidden, output, loss, seed, m=7, sizes=(4, 5, 3)):
    rng = np.random.default_rng(seed)
    net = flatnn.Network(sizes, hidden=hidden, output=output, loss=loss)
    params = net.init(rng, scheme="normal")
    X = rng.normal(size=(m, sizes[0]))
    k = sizes[-1]
    if loss == "poisson":
        y = rng.poisson(1.5, size=(m, k)).astype(float)
    elif output == "softmax":
        y = rng.integers(0, k, m)
    else:
        y = rng.uniform(0, 1, size=(m, k))
    w = rng.uniform(0, 3, m)
    w[1] = 0.0  # a zero weight is allowed
    return net, params, X, y, w


def _fd_hessp(net, params, v, X, y, lam, w, eps=1e-5):
    g = lambda p: net.grad(p, X, y, lam, sample_weight=w)  # noqa: E731
    return (g(params + eps * v) - g(params - eps * v)) / (2 * eps)


@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_weighted_gradient_matches_central_differences(hidden, output, loss, lam):
    seed = zlib.crc32(f"{hidden}{output}{loss}{lam}".encode())
    net, params, X, y, w = _problem(hidden, output, loss, seed)
    result = flatnn.check_grad(net, params, X, y, lam, sample_weight=w)
    assert result.max_rel_error < 1e-6, result


@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "identity"])
@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_weighted_hessp_matches_differences_of_the_gradient(hidden, output, loss, lam):
    seed = zlib.crc32(f"h{hidden}{output}{loss}{lam}".encode())
    net, params, X, y, w = _problem(hidden, output, loss, seed)
    v = np.random.default_rng(seed).normal(size=net.n_params)
    exact = net.hessp(params, v, X, y, lam, sample_weight=w)
    approx = _fd_hessp(net, params, v, X, y, lam, w)
    np.testing.assert_allclose(exact, approx, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("output,loss", PAIRS)
def test_integer_weights_equal_repeated_rows(output, loss):
    net, params, X, y, _ = _problem("tanh", output, loss, 3, m=6)
    w = np.array([1, 0, 3, 2, 1, 0])
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w, axis=0)
    v = np.random.default_rng(0).normal(size=net.n_params)
    lam = 0.4
    assert np.isclose(net.cost(params, X, y, lam, sample_weight=w), net.cost(params, Xr, yr, lam))
    for name, args in [("grad", ()), ("hessp", (v,)), ("gnvp", (v,))]:
        weighted = getattr(net, name)(params, *args, X, y, lam, sample_weight=w)
        repeated = getattr(net, name)(params, *args, Xr, yr, lam)
        np.testing.assert_allclose(weighted, repeated, rtol=1e-10, atol=1e-13)


def test_zero_weights_equal_removed_rows():
    net, params, X, y, _ = _problem("relu", "softmax", "cross_entropy", 4, m=8)
    w = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    keep = w > 0
    c, g = net.cost_grad(params, X, y, 0.3, sample_weight=w)
    c2, g2 = net.cost_grad(params, X[keep], y[keep], 0.3)
    assert np.isclose(c, c2)
    np.testing.assert_allclose(g, g2, rtol=1e-12, atol=1e-15)
    acc = net.accuracy(params, X, y, sample_weight=w)
    assert acc == net.accuracy(params, X[keep], y[keep])


def test_unit_weights_and_scaled_weights_give_the_unweighted_objective():
    net, params, X, y, _ = _problem("sigmoid", "softmax", "cross_entropy", 5, m=9)
    for scale in (1.0, 2.5):
        # the L2 term is lam / (2 Σw): scaling every weight by s is lam / s unweighted
        c, g = net.cost_grad(params, X, y, 0.5 / scale)
        cw, gw = net.cost_grad(params, X, y, 0.5, sample_weight=np.full(9, scale))
        assert np.isclose(cw, c, rtol=1e-13)
        np.testing.assert_allclose(gw, g, rtol=1e-12, atol=1e-15)


def test_objective_carries_the_weights():
    net, params, X, y, w = _problem("tanh", "softmax", "cross_entropy", 6)
    obj = flatnn.Objective(net, X, y, 0.2, sample_weight=w)
    v = np.linspace(-1, 1, net.n_params)
    assert obj.cost(params) == net.cost(params, X, y, 0.2, sample_weight=w)
    np.testing.assert_array_equal(obj.grad(params), net.grad(params, X, y, 0.2, sample_weight=w))
    np.testing.assert_array_equal(
        obj.hessp(params, v), net.hessp(params, v, X, y, 0.2, sample_weight=w)
    )
    np.testing.assert_array_equal(
        obj.gnvp(params, v), net.gnvp(params, v, X, y, 0.2, sample_weight=w)
    )
    assert obj.accuracy(params) == net.accuracy(params, X, y, sample_weight=w)
    assert "sample_weight" in repr(obj)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_batch_step_is_the_networks_batch_objective_bit_for_bit(dtype):
    net, params, X, y, w = _problem("relu", "softmax", "cross_entropy", 7, m=40)
    params, X, w = params.astype(dtype), X.astype(dtype), w.astype(dtype)
    W = float(w.sum(dtype=np.float64)) * 3  # the batch is a third of the data's weight
    step = BatchStep(net, 0.6, 120, total_weight=W)
    grad, scratch = np.empty_like(params), np.empty_like(params)
    target = net.check_data(X, y).values
    cost = step(net.unpack(params), X, target, net.unpack(grad), net.unpack(scratch), weights=w)
    share = float(w.sum(dtype=np.float64))
    c, g = net.cost_grad(params, X, y, 0.6 * share / W, sample_weight=w)
    assert cost == c
    np.testing.assert_array_equal(grad, g)


@pytest.mark.parametrize(
    "w,match",
    [
        (np.ones(5), r"shape \(7,\)"),
        (np.ones((7, 1)), r"shape \(7,\)"),
        (np.r_[np.ones(6), -1.0], ">= 0"),
        (np.r_[np.ones(6), np.nan], "finite"),
        (np.zeros(7), "positive"),
        (np.array(["a"] * 7), "numeric"),
    ],
)
def test_bad_weights_are_refused_with_what_was_expected(w, match):
    net, params, X, y, _ = _problem("tanh", "softmax", "cross_entropy", 8)
    with pytest.raises(ValueError, match=match):
        net.cost(params, X, y, sample_weight=w)
    with pytest.raises(ValueError, match=match):
        flatnn.Objective(net, X, y, sample_weight=w)


def test_weights_are_not_modified():
    net, params, X, y, w = _problem("tanh", "softmax", "cross_entropy", 9)
    before = w.copy()
    net.cost_grad(params, X, y, 0.1, sample_weight=w)
    net.hessp(params, params, X, y, 0.1, sample_weight=w)
    np.testing.assert_array_equal(w, before)


@pytest.fixture
def device_xp():
    """The stand-in device namespace of ``tests/stand_in_xp.py`` (CuPy's code path, on the CPU)."""
    import stand_in_xp

    from flatnn.base import namespace

    namespace.register(stand_in_xp.ROOT, stand_in_xp.xp)
    yield stand_in_xp.xp
    namespace.register(stand_in_xp.ROOT, None)


@pytest.mark.parametrize("output,loss", [("softmax", "cross_entropy"), ("exp", "poisson")])
def test_weighted_gpu_objective_matches_the_host(device_xp, output, loss):
    net, params, X, y, w = _problem("tanh", output, loss, 11, m=30)
    obj = flatnn.gpu.GPUObjective(net, X, y, 0.3, xp=device_xp, sample_weight=w)
    ref = flatnn.Objective(net, X, y, 0.3, sample_weight=w)
    v = np.linspace(-1, 1, net.n_params)
    f, g = obj.cost_grad(params)
    f_ref, g_ref = ref.cost_grad(params)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(obj.hessp(params, v), ref.hessp(params, v), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(obj.gnvp(params, v), ref.gnvp(params, v), rtol=1e-11, atol=1e-14)
    assert obj.accuracy(params) == pytest.approx(ref.accuracy(params), rel=1e-12)


def test_weighted_batch_step_on_a_device_matches_the_host(device_xp):
    net, params, X, y, w = _problem("relu", "softmax", "cross_entropy", 12, m=20)
    target = net.check_data(X, y).values
    results = []
    for xp in (np, device_xp):
        p, Xd, t, wd = (xp.asarray(a) for a in (params, X, target, w))
        grad, scratch = xp.zeros(net.n_params), xp.zeros(net.n_params)
        step = BatchStep(net, 0.5, 60, xp, total_weight=3 * float(w.sum()))
        cost = step(net.unpack(p), Xd, t, net.unpack(grad), net.unpack(scratch), weights=wd)
        results.append((cost, grad if xp is np else grad.get()))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-11, atol=1e-14)


def test_gpu_objective_refuses_sparse_x_with_what_to_use(device_xp):
    import scipy.sparse

    net, params, X, y, _ = _problem("tanh", "softmax", "cross_entropy", 13)
    with pytest.raises(TypeError, match="flatnn.Objective"):
        flatnn.gpu.GPUObjective(net, scipy.sparse.csr_matrix(X), y, xp=device_xp)
