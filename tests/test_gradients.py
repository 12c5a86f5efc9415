"""Analytic gradients against central finite differences, for every activation × output × loss."""

import itertools
import zlib

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import flatnn

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OUTPUTS = ["sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax"]
LOSSES = ["cross_entropy", "squared_error"]
PAIRS = [
    (o, l)
    for o, l in itertools.product(OUTPUTS, LOSSES)
    if l == "squared_error" or o in ("softmax", "sigmoid")
]
ARCHS = [(4, 3), (4, 5, 3), (4, 5, 4, 3), (4, 3, 5, 4, 3), (4, 5, 3, 4, 5, 3)]  # 0..4 hidden


KINKED = ("relu", "leaky_relu")


def _preactivations(net, params, X):
    """Reference forward pass, layer by layer, written independently of flatnn."""
    zs, a = [], X
    names = (*net.hidden_activations, net.output)
    for theta, name in zip(net.unpack(params), names):
        z = a @ theta[:, 1:].T + theta[:, 0]
        zs.append((name, z))
        a = {
            "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "tanh": np.tanh,
            "relu": lambda z: np.maximum(z, 0),
            "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
            "identity": lambda z: z,
            "softmax": lambda z: z,
        }[name](z)
    return zs


def _away_from_kinks(net, params, X, margin=5e-3):
    """relu/leaky_relu have no derivative at 0: keep every such z clear of it."""
    return all(
        np.abs(z).min() > margin for name, z in _preactivations(net, params, X) if name in KINKED
    )


def _draw(net, m, rng, one_hot):
    """Parameters (non-zero biases, so no z sits exactly on a kink) and data."""
    for _ in range(500):
        params = net.init(rng=rng, scheme="normal")
        X = rng.normal(size=(m, net.sizes[0]))
        if _away_from_kinks(net, params, X):
            break
    else:
        raise AssertionError("no data away from relu kinks")
    k = net.sizes[-1]
    labels = rng.integers(0, k, m)
    y = np.eye(k)[labels] if one_hot else labels
    return params, X, y


@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_every_pair_matches_central_differences(hidden, output, loss, lam):
    rng = np.random.default_rng(zlib.crc32(f"{hidden}{output}{loss}{lam}".encode()))
    for sizes in ARCHS:
        net = flatnn.Network(sizes, hidden=hidden, output=output, loss=loss)
        for one_hot in (False, True):
            params, X, y = _draw(net, 6, rng, one_hot)
            result = flatnn.check_grad(net, params, X, y, lam)
            assert result.max_rel_error < 1e-6, (sizes, one_hot, result)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    hidden=st.lists(st.sampled_from(HIDDEN), min_size=3, max_size=3),
    pair=st.sampled_from(PAIRS),
    lam=st.sampled_from([0.0, 0.1, 3.0]),
    m=st.integers(1, 8),
    seed=st.integers(0, 2**31),
)
def test_random_architectures(sizes, hidden, pair, lam, m, seed):
    output, loss = pair
    if output == "softmax" and sizes[-1] == 1:
        sizes[-1] = 2
    net = flatnn.Network(sizes, hidden=hidden[: len(sizes) - 2], output=output, loss=loss)
    rng = np.random.default_rng(seed)
    params, X, y = _draw(net, m, rng, False)
    if sizes[-1] == 1:
        y = y.astype(float)
    assert flatnn.check_grad(net, params, X, y, lam).max_rel_error < 1e-6


def test_soft_targets_with_softmax():
    rng = np.random.default_rng(1)
    net = flatnn.Network((3, 4, 5))
    T = rng.dirichlet(np.ones(5), size=7)
    X = rng.normal(size=(7, 3))
    assert flatnn.check_grad(net, net.init(rng=2), X, T, 0.2).max_rel_error < 1e-6


def test_agrees_with_scipy_check_grad():
    rng = np.random.default_rng(2)
    net = flatnn.Network((5, 6, 3), hidden="tanh")
    X, y = rng.normal(size=(10, 5)), rng.integers(0, 3, 10)
    params = net.init(rng=3)
    err = scipy.optimize.check_grad(net.cost, net.grad, params, X, y, 0.5)
    assert err < 1e-5 * np.linalg.norm(net.grad(params, X, y, 0.5))


def test_subset_check_and_reproducible_coordinates():
    net = flatnn.Network((20, 30, 10), hidden="relu")
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(8, 20)), rng.integers(0, 10, 8)
    params = net.init(rng=5)
    a = flatnn.check_grad(net, params, X, y, 0.1, n_coords=40, rng=7)
    b = flatnn.check_grad(net, params, X, y, 0.1, n_coords=40, rng=7)
    assert a.indices.shape == (40,) and np.array_equal(a.indices, b.indices)
    assert a.max_rel_error < 1e-6
    assert a.worst_index in a.indices


def test_checker_catches_a_wrong_gradient():
    class Broken(flatnn.Network):
        def grad(self, params, X, y, lam=0.0):
            g = super().grad(params, X, y, lam)
            g[3] *= 1.001  # a 0.1 % error in one coordinate
            return g

    net = Broken((3, 4, 2))
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    result = flatnn.check_grad(net, net.init(rng=1, scheme="standard_normal"), X, y)
    assert result.max_rel_error > 1e-4
    assert result.worst_index == 3


def test_numerical_grad_on_a_known_function():
    def f(x, a):
        return float(np.sum(a * x**3))

    x = np.array([0.5, -1.0, 2.0])
    x_before = x.copy()
    g = flatnn.numerical_grad(f, x, 2.0)
    np.testing.assert_allclose(g, 6 * x**2, rtol=1e-8)
    assert np.array_equal(x, x_before)
    with pytest.raises(ValueError, match="eps"):
        flatnn.numerical_grad(f, x, 2.0, eps=0.0)
