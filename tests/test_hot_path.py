"""The tuned forward/backward pass against a plain reference, on data of several row blocks."""

import itertools
import warnings
import zlib

import numpy as np
import pytest
from scipy.special import expit

import flatnn

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
PAIRS = [
    ("softmax", "cross_entropy"),
    ("sigmoid", "cross_entropy"),
    ("softmax", "squared_error"),
    ("tanh", "squared_error"),
    ("relu", "squared_error"),
]
ACT = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "identity": lambda z: z,
}
DERIV = {
    "sigmoid": lambda z: ACT["sigmoid"](z) * (1 - ACT["sigmoid"](z)),
    "tanh": lambda z: 1 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0) * 1.0,
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
    "identity": np.ones_like,
}
# Rows enough for several blocks (and a ragged last one) even for the widest layer here.
M = 70001


def reference_cost_grad(net, params, X, y, lam):
    """Textbook backpropagation in float64 on whole arrays, written apart from flatnn."""
    thetas = net.unpack(params.astype(np.float64))
    X = X.astype(np.float64)
    m, k = X.shape[0], net.sizes[-1]
    T = np.eye(k)[y] if y.ndim == 1 else y.astype(np.float64)
    zs, acts, a = [], [X], X
    for l, theta in enumerate(thetas):
        z = a @ theta[:, 1:].T + theta[:, 0]
        zs.append(z)
        if l < len(thetas) - 1:
            a = ACT[net.hidden_activations[l]](z)
            acts.append(a)
    z = zs[-1]
    if net.output == "softmax":
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
    else:
        p = ACT[net.output](z)
    if net.loss == "cross_entropy":
        if net.output == "softmax":
            loss = -(T * np.log(p)).sum()
        else:
            loss = -(T * np.log(p) + (1 - T) * np.log(1 - p)).sum()
        delta = p - T
    else:
        loss = 0.5 * ((p - T) ** 2).sum()
        r = p - T
        if net.output == "softmax":
            delta = p * (r - (p * r).sum(axis=1, keepdims=True))
        else:
            delta = r * DERIV[net.output](z)
    delta /= m
    grads = []
    for l in range(len(thetas) - 1, -1, -1):
        W = thetas[l][:, 1:]
        grads.append(np.hstack([delta.sum(axis=0)[:, None], delta.T @ acts[l] + lam / m * W]))
        if l:
            delta = (delta @ W) * DERIV[net.hidden_activations[l - 1]](zs[l - 1])
    cost = loss / m + lam / (2 * m) * sum((t[:, 1:] ** 2).sum() for t in thetas)
    return cost, np.concatenate([g.ravel() for g in grads[::-1]])


def data(net, rng, m=M, dtype=np.float64):
    X = rng.normal(size=(m, net.sizes[0])).astype(dtype)
    k = net.sizes[-1]
    y = rng.integers(0, k, m) if net.output == "softmax" else rng.random((m, k))
    if net.loss == "cross_entropy" and net.output == "softmax" and rng.random() < 0.5:
        y = np.eye(k)[y]
    return X, y


@pytest.mark.parametrize("hidden,pair", list(itertools.product(HIDDEN, PAIRS)))
def test_cost_grad_matches_reference_across_blocks(hidden, pair):
    rng = np.random.default_rng(zlib.crc32(f"{hidden}{pair}".encode()))
    net = flatnn.Network((3, 6, 5, 4), hidden=hidden, output=pair[0], loss=pair[1])
    params = net.init(rng, scheme="normal")
    X, y = data(net, rng)
    lam = 0.3
    cost, grad = net.cost_grad(params, X, y, lam)
    ref_cost, ref_grad = reference_cost_grad(net, params, X, y, lam)
    assert cost == pytest.approx(ref_cost, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-13)
    assert flatnn.check_grad(net, params, X[:7], y[:7], lam).max_rel_error < 1e-5


@pytest.mark.parametrize("hidden", ["sigmoid", "relu"])
def test_float32_stays_float32_and_agrees_with_float64(hidden):
    rng = np.random.default_rng(1)
    net = flatnn.Network((20, 30, 10), hidden=hidden)
    params = net.init(rng)
    X, y = data(net, rng)
    cost64, grad64 = net.cost_grad(params, X, y, 0.1)
    cost32, grad32 = net.cost_grad(params.astype(np.float32), X.astype(np.float32), y, 0.1)
    assert grad32.dtype == np.float32
    assert cost32 == pytest.approx(cost64, rel=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-3, atol=1e-5 * np.abs(grad64).max())


def test_inputs_are_not_modified():
    rng = np.random.default_rng(2)
    net = flatnn.Network((4, 8, 8, 3), hidden="relu")
    params = net.init(rng)
    X, y = data(net, rng)
    copies = [params.copy(), X.copy(), y.copy()]
    net.cost_grad(params, X, y, 1.0)
    net.forward(params, X)
    for before, after in zip(copies, (params, X, y)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_in_the_last_block_is_caught(bad):
    rng = np.random.default_rng(3)
    net = flatnn.Network((4, 5, 3), hidden="sigmoid")  # sigmoid(inf) = 1 would hide inf
    params = net.init(rng)
    X, y = data(net, rng)
    X[-1, 2] = bad
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        net.cost_grad(params, X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_sigmoid_units_are_exact_and_silent(dtype):
    net = flatnn.Network((1, 1, 2), hidden="sigmoid")
    params = np.array([0, 1, 0, 0, 0, 1], dtype=dtype)  # hidden a = sigmoid(x); logits (0, a)
    X = np.array([[-1e4], [-50.0], [0.0], [50.0], [1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = net.forward(params, X)
        _, grad = net.cost_grad(params, X, np.array([0, 1, 0, 1, 0]))
    a = expit(X[:, 0].astype(np.float64))
    expected = np.exp(a) / (1 + np.exp(a))
    np.testing.assert_allclose(p[:, 1], expected, rtol=1e-6)
    assert np.isfinite(grad).all()
