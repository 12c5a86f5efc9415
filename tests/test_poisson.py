"""The Poisson loss with its log link: ``Network(..., loss="poisson")``, output ``exp``."""

import numpy as np
import pytest
from scipy.special import xlogy

import flatnn


def poisson_loss(y, pred, sample_weight=None):
    """scikit-learn's ``poisson_loss`` (sklearn/neural_network/_base.py), written out."""
    return np.average(xlogy(y, y / pred) - y + pred, weights=sample_weight, axis=0).sum()


HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]


def _problem(hidden="tanh", sizes=(4, 5, 2), m=9, seed=0):
    rng = np.random.default_rng(seed)
    net = flatnn.Network(sizes, hidden=hidden, loss="poisson")
    params = net.init(rng, scheme="normal") * 0.5
    X = rng.normal(size=(m, sizes[0]))
    y = rng.poisson(2.0, size=(m, sizes[-1])).astype(float)
    return net, params, X, y, rng


def test_the_output_defaults_to_exp():
    net = flatnn.Network((3, 2), loss="poisson")
    assert net.output == "exp"
    assert net == flatnn.Network((3, 2), output="exp", loss="poisson")
    assert flatnn.Network.from_dict(net.to_dict()) == net


def test_cost_is_half_the_poisson_deviance_as_scikit_learn_defines_it():
    net, params, X, y, rng = _problem()
    y[0] = 0.0  # 0 log 0 = 0
    pred = net.forward(params, X)
    np.testing.assert_allclose(pred, np.exp(np.log(pred)))
    assert np.isclose(net.cost(params, X, y), poisson_loss(y, pred), rtol=1e-13)
    w = rng.uniform(0.5, 2, X.shape[0])
    assert np.isclose(
        net.cost(params, X, y, sample_weight=w), poisson_loss(y, pred, sample_weight=w), rtol=1e-13
    )


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("lam", [0.0, 0.6])
def test_gradient_matches_central_differences(hidden, lam):
    net, params, X, y, _ = _problem(hidden, seed=len(hidden))
    assert flatnn.check_grad(net, params, X, y, lam).max_rel_error < 1e-6


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("lam", [0.0, 0.6])
def test_hessp_is_the_exact_hessian(hidden, lam):
    net, params, X, y, rng = _problem(hidden, seed=len(hidden) + 1)
    v = rng.normal(size=net.n_params)
    eps = 1e-5
    fd = (net.grad(params + eps * v, X, y, lam) - net.grad(params - eps * v, X, y, lam)) / (2 * eps)
    np.testing.assert_allclose(net.hessp(params, v, X, y, lam), fd, rtol=1e-5, atol=1e-7)


def test_gauss_newton_equals_the_hessian_without_hidden_layers():
    # z is linear in params and the loss is convex in z: G = H exactly
    net, params, X, y, rng = _problem(sizes=(4, 3))
    v = rng.normal(size=net.n_params)
    np.testing.assert_allclose(
        net.gnvp(params, v, X, y, 0.2), net.hessp(params, v, X, y, 0.2), rtol=1e-12
    )


def test_one_output_takes_targets_of_shape_m():
    net, params, X, y, _ = _problem(sizes=(4, 3, 1))
    assert net.cost(params, X, y[:, 0]) == net.cost(params, X, y)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"output": "softmax", "loss": "poisson"}, "output 'exp'"),
        ({"output": "exp", "loss": "squared_error"}, "loss 'poisson'"),
        ({"output": "exp", "loss": "cross_entropy"}, "loss 'poisson'"),
    ],
)
def test_exp_and_poisson_go_together(kwargs, match):
    with pytest.raises(ValueError, match=match):
        flatnn.Network((3, 2), **kwargs)


def test_negative_targets_are_refused():
    net, params, X, y, _ = _problem()
    y[2, 1] = -1.0
    with pytest.raises(ValueError, match=">= 0"):
        net.cost(params, X, y)
