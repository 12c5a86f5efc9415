"""Curvature products: the exact ``net.hessp`` (R-operator) and ``net.gnvp`` (Gauss-Newton)."""

import itertools

import numpy as np
import pytest
import scipy.optimize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flatnn

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
PAIRS = (
    ("softmax", "cross_entropy"),
    ("sigmoid", "cross_entropy"),
    ("softmax", "squared_error"),
    ("sigmoid", "squared_error"),
    ("tanh", "squared_error"),
    ("relu", "squared_error"),
    ("leaky_relu", "squared_error"),
    ("identity", "squared_error"),
)
CASES = list(itertools.product(HIDDEN, PAIRS))

SETTINGS = settings(
    max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def make_problem(hidden, output, loss, layers, m, seed, labels):
    """A small network, a point, data and unit directions, all float64."""
    rng = np.random.default_rng(seed)
    k = layers[-1]
    if output == "softmax":
        k = max(k, 2)
    sizes = (*layers[:-1], k)
    net = flatnn.Network(sizes, hidden=hidden, output=output, loss=loss)
    params = net.init(rng, scheme="standard_normal") * 0.8
    X = rng.normal(size=(m, sizes[0]))
    y = rng.integers(0, k, size=m) if labels and k >= 2 else rng.uniform(0, 1, size=(m, k))
    u = rng.normal(size=net.n_params)
    v = rng.normal(size=net.n_params)
    return net, params, X, y, u / np.linalg.norm(u), v / np.linalg.norm(v)


problem_args = dict(
    layers=st.lists(st.integers(1, 4), min_size=3, max_size=4),
    m=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    labels=st.booleans(),
    lam=st.sampled_from([0.0, 0.7]),
)


def rel_err(a, b, floor=1e-7):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), floor)


@pytest.mark.parametrize("hidden,pair", CASES, ids=[f"{h}-{o}-{l}" for h, (o, l) in CASES])
@SETTINGS
@given(**problem_args)
def test_hessp_matches_central_differences_of_grad(hidden, pair, layers, m, seed, labels, lam):
    net, params, X, y, _, v = make_problem(hidden, *pair, layers, m, seed, labels)
    h = 1e-6
    numeric = (net.grad(params + h * v, X, y, lam) - net.grad(params - h * v, X, y, lam)) / (2 * h)
    exact = net.hessp(params, v, X, y, lam)
    assert exact.shape == (net.n_params,) and exact.dtype == np.float64
    assert rel_err(exact, numeric) < 1e-5


@pytest.mark.parametrize("hidden,pair", CASES, ids=[f"{h}-{o}-{l}" for h, (o, l) in CASES])
@SETTINGS
@given(**problem_args)
def test_hessp_is_symmetric(hidden, pair, layers, m, seed, labels, lam):
    net, params, X, y, u, v = make_problem(hidden, *pair, layers, m, seed, labels)
    uHv = u @ net.hessp(params, v, X, y, lam)
    vHu = v @ net.hessp(params, u, X, y, lam)
    scale = max(np.linalg.norm(net.hessp(params, v, X, y, lam)), 1e-12)
    assert abs(uHv - vHu) <= 1e-10 * scale


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{o}-{l}" for o, l in PAIRS])
@SETTINGS
@given(**problem_args)
def test_gnvp_is_positive_semidefinite(pair, layers, m, seed, labels, lam):
    # any hidden activation: tanh curves, so H itself is often indefinite here
    net, params, X, y, _, v = make_problem("tanh", *pair, layers, m, seed, labels)
    Gv = net.gnvp(params, v, X, y, lam)
    assert v @ Gv >= -1e-12 * max(np.linalg.norm(Gv), 1.0)


def test_hessian_is_indefinite_where_gauss_newton_is_not():
    # the GN test above is meaningful: at a random point of a tanh net, H has a
    # negative direction that G does not have
    net, params, X, y, _, _ = make_problem(
        "tanh", "softmax", "cross_entropy", [3, 4, 3], 5, 3, True
    )
    eye = np.eye(net.n_params)
    H = np.column_stack([net.hessp(params, e, X, y) for e in eye])
    G = np.column_stack([net.gnvp(params, e, X, y) for e in eye])
    assert np.linalg.eigvalsh((H + H.T) / 2).min() < -1e-3
    assert np.linalg.eigvalsh((G + G.T) / 2).min() > -1e-12


def jacobian(fun, params, h=1e-6):
    """Central-difference Jacobian of ``fun(params) -> (m, k)``: shape (m, k, n_params)."""
    cols = []
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = h
        cols.append((fun(params + e) - fun(params - e)) / (2 * h))
    return np.stack(cols, axis=-1)


def explicit_gauss_newton(net, params, X, y, lam):
    """``(1/m) Σ_i J_iᵀ H_i J_i + (lam/m) D`` built entry by entry."""
    m, k = X.shape[0], net.sizes[-1]
    T = np.eye(k)[y] if y.ndim == 1 else y
    if net.loss == "cross_entropy":
        # J of the logits: the same layout with an identity output gives them
        logits_net = flatnn.Network(
            net.sizes, hidden=net.hidden, output="identity", loss="squared_error"
        )
        J = jacobian(lambda p: logits_net.forward(p, X), params)
        a = net.forward(params, X)
        if net.output == "softmax":
            H = [t.sum() * (np.diag(p) - np.outer(p, p)) for p, t in zip(a, T)]
        else:
            H = [np.diag(p * (1 - p)) for p in a]
    else:
        J = jacobian(lambda p: net.forward(p, X), params)
        H = [np.eye(k)] * m
    G = sum(J[i].T @ H[i] @ J[i] for i in range(m)) / m
    penalty = np.concatenate(
        [np.pad(np.ones((r, c - 1)), ((0, 0), (1, 0))).ravel() for r, c in net.shapes]
    )
    return G + np.diag(lam / m * penalty)


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{o}-{l}" for o, l in PAIRS])
@pytest.mark.parametrize("labels,lam", [(True, 0.0), (False, 0.5)])
def test_gnvp_equals_explicit_jt_h_j(pair, labels, lam):
    net, params, X, y, _, v = make_problem("sigmoid", *pair, [3, 3, 3], 4, 11, labels)
    G = explicit_gauss_newton(net, params, X, y, lam)
    products = np.column_stack([net.gnvp(params, e, X, y, lam) for e in np.eye(net.n_params)])
    assert rel_err(products, G) < 1e-7
    assert rel_err(net.gnvp(params, v, X, y, lam), G @ v) < 1e-7


def test_gnvp_equals_hessp_for_a_single_linear_layer():
    # no hidden layer and a convex output loss: G is the exact Hessian
    net, params, X, y, _, v = make_problem("tanh", "softmax", "cross_entropy", [4, 3], 6, 5, True)
    np.testing.assert_allclose(
        net.gnvp(params, v, X, y, 0.3), net.hessp(params, v, X, y, 0.3), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("method", ["hessp", "gnvp"])
def test_products_are_linear_in_v(method):
    net, params, X, y, u, v = make_problem(
        "sigmoid", "softmax", "cross_entropy", [3, 5, 4], 7, 2, True
    )
    f = getattr(net, method)
    np.testing.assert_allclose(
        f(params, 2.0 * u - 3.0 * v, X, y, 0.4),
        2.0 * f(params, u, X, y, 0.4) - 3.0 * f(params, v, X, y, 0.4),
        rtol=1e-10,
        atol=1e-13,
    )


def test_lam_adds_lam_over_m_on_weights_only():
    net, params, X, y, _, v = make_problem(
        "tanh", "sigmoid", "cross_entropy", [2, 3, 1], 5, 8, False
    )
    diff = net.hessp(params, v, X, y, 2.0) - net.hessp(params, v, X, y, 0.0)
    expected = [np.pad(theta[:, 1:] * 2.0 / 5, ((0, 0), (1, 0))) for theta in net.unpack(v)]
    np.testing.assert_allclose(diff, np.concatenate([e.ravel() for e in expected]), atol=1e-14)


@pytest.mark.parametrize("method", ["hessp", "gnvp"])
def test_float32_in_float32_out_and_inputs_untouched(method):
    net, params, X, y, _, v = make_problem(
        "relu", "softmax", "cross_entropy", [4, 6, 3], 8, 4, True
    )
    p32, X32, v32 = params.astype(np.float32), X.astype(np.float32), v.astype(np.float32)
    copies = [a.copy() for a in (p32, X32, v32, y)]
    out = getattr(net, method)(p32, v32, X32, y, 0.1)
    assert out.dtype == np.float32
    for before, after in zip(copies, (p32, X32, v32, y)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(
        out, getattr(net, method)(params, v, X, y, 0.1), rtol=2e-3, atol=1e-4
    )


def test_bad_direction_is_a_clear_value_error():
    net, params, X, y, _, v = make_problem(
        "tanh", "softmax", "cross_entropy", [2, 3, 2], 3, 0, True
    )
    with pytest.raises(ValueError, match=r"v has 3 entries"):
        net.hessp(params, v[:3], X, y)


def test_integer_direction_is_accepted_as_scipy_trust_constr_probes_with_one():
    net, params, X, y, _, _ = make_problem(
        "tanh", "softmax", "cross_entropy", [3, 4, 2], 6, 1, True
    )
    e = np.zeros(net.n_params, dtype=np.int8)
    e[2] = 1
    np.testing.assert_array_equal(
        net.hessp(params, e, X, y, 0.2), net.hessp(params, e.astype(float), X, y, 0.2)
    )
    res = scipy.optimize.minimize(
        net.cost_grad, params, args=(X, y, 0.2), jac=True, hessp=net.hessp, method="trust-constr"
    )
    assert res.success
