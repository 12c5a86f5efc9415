"""Per-sample weights through flatnn.sgd and flatnn.minimize: integer weights are repeated
rows, zero weights are removed rows, weights of one are no weights."""

import inspect

import numpy as np
import pytest

import flatnn

pytestmark = pytest.mark.skipif(
    "sample_weight" not in inspect.signature(flatnn.Network.cost).parameters,
    reason="the core's sample weights (Network.cost(..., sample_weight=)) are not merged yet",
)

NET = flatnn.Network((4, 6, 3), hidden="tanh")
RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4))
Y = RNG.integers(0, 3, 30)
W = RNG.integers(0, 4, 30).astype(float)
REPEAT = np.repeat(np.arange(30), W.astype(int))
P0 = NET.init(0)


def test_minimize_with_integer_weights_is_minimize_on_repeated_rows():
    a = flatnn.minimize(NET, P0, X, Y, 0.1, sample_weight=W, options={"maxiter": 30})
    b = flatnn.minimize(NET, P0, X[REPEAT], Y[REPEAT], 0.1, options={"maxiter": 30})
    np.testing.assert_allclose(a.x, b.x, rtol=0, atol=1e-9)
    assert a.fun == pytest.approx(b.fun, rel=1e-12)


def test_minimize_with_zero_weights_is_minimize_without_those_rows():
    keep = W > 0
    a = flatnn.minimize(NET, P0, X, Y, 0.1, sample_weight=keep * 1.0, options={"maxiter": 30})
    b = flatnn.minimize(NET, P0, X[keep], Y[keep], 0.1, options={"maxiter": 30})
    np.testing.assert_allclose(a.x, b.x, rtol=0, atol=1e-9)


def test_full_batch_sgd_with_integer_weights_is_sgd_on_repeated_rows():
    kw = dict(epochs=5, learning_rate=0.5, shuffle=False)
    a = flatnn.sgd(NET, P0, X, Y, 0.1, sample_weight=W, batch_size=30, **kw)
    b = flatnn.sgd(NET, P0, X[REPEAT], Y[REPEAT], 0.1, batch_size=len(REPEAT), **kw)
    np.testing.assert_allclose(a.x, b.x, rtol=0, atol=1e-12)
    assert a.fun == pytest.approx(b.fun, rel=1e-12)
    assert [h["fun"] for h in a.history] == pytest.approx([h["fun"] for h in b.history])


def test_full_batch_sgd_with_zero_weights_is_sgd_without_those_rows():
    keep = W > 0
    kw = dict(epochs=5, learning_rate=0.5, rng=0)
    a = flatnn.sgd(NET, P0, X, Y, 0.1, sample_weight=keep * 1.0, batch_size=30, **kw)
    b = flatnn.sgd(NET, P0, X[keep], Y[keep], 0.1, batch_size=int(keep.sum()), **kw)
    np.testing.assert_allclose(a.x, b.x, rtol=0, atol=1e-12)


def test_weights_of_one_are_the_unweighted_run_and_zero_weight_batches_are_skipped():
    kw = dict(epochs=3, batch_size=7, learning_rate=0.5, rng=0)
    plain = flatnn.sgd(NET, P0, X, Y, 0.1, **kw)
    ones = flatnn.sgd(NET, P0, X, Y, 0.1, sample_weight=np.ones(30), **kw)
    np.testing.assert_array_equal(plain.x, ones.x)
    w = np.ones(30)
    w[:7] = 0.0  # the first batch in order weighs nothing
    res = flatnn.sgd(NET, P0, X, Y, 0.1, sample_weight=w, shuffle=False, **kw)
    assert res.success and res.history[-1]["nfev"] == 3 * 4  # 5 batches, one skipped


def test_weights_with_an_objective_belong_to_the_objective():
    obj = flatnn.Objective(NET, X, Y, 0.1)
    with pytest.raises(TypeError, match="sample_weight"):
        flatnn.sgd(obj, P0, sample_weight=W, epochs=1, batch_size=5, learning_rate=0.1)
    with pytest.raises(TypeError, match="sample_weight"):
        flatnn.minimize(obj, P0, sample_weight=W)
