"""Update rules and learning-rate schedules (flatnn.optimizers), used directly."""

import math

import numpy as np
import pytest
import scipy.optimize

import flatnn
from flatnn import optimizers

RULE_NAMES = list(optimizers.RULES)


def quadratic_problem():
    """A convex problem: one softmax layer on separable-ish blobs, with L2."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=2.0, size=(3, 4))
    y = rng.integers(0, 3, size=60)
    X = centres[y] + rng.normal(size=(60, 4))
    net = flatnn.Network((4, 3))
    return flatnn.Objective(net, X, y, lam=0.5), net.init(1)


def run(rule, obj, params, learning_rate, steps):
    state = rule.init(params)
    costs = [obj.cost(params)]
    for _ in range(steps):
        step, state = rule.update(obj.grad(params), state, params, learning_rate)
        params = params + step
        costs.append(obj.cost(params))
    return params, costs


@pytest.mark.parametrize("name", RULE_NAMES)
def test_each_rule_decreases_a_convex_cost(name):
    obj, p0 = quadratic_problem()
    lr = 0.01 if name in ("adam", "rmsprop") else 0.1
    _, costs = run(optimizers.get(name), obj, p0, lr, 300)
    best = scipy.optimize.minimize(
        obj.cost_grad, p0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10}
    ).fun
    # within 2 % of the initial gap to the optimum, and no step ever far uphill
    assert costs[-1] - best < 0.02 * (costs[0] - best)
    assert np.max(np.diff(costs)) < 0.01 * (costs[0] - best)


def arrays_in(state):
    if isinstance(state, np.ndarray):
        return [state]
    return [s for s in state if isinstance(s, np.ndarray)]


@pytest.mark.parametrize("name", RULE_NAMES)
def test_update_is_pure_and_keeps_float32(name):
    rule = optimizers.get(name)
    rng = np.random.default_rng(3)
    params = rng.normal(size=50).astype(np.float32)
    grad = rng.normal(size=50).astype(np.float32)
    state = rule.init(params)
    step, state = rule.update(grad, state, params, 0.1)  # a non-trivial state
    frozen = [a.copy() for a in (params, grad)]
    state_copies = [s.copy() for s in arrays_in(state)]
    step2, state2 = rule.update(grad, state, params, 0.1)
    np.testing.assert_array_equal(frozen[0], params)
    np.testing.assert_array_equal(frozen[1], grad)
    for before, after in zip(state_copies, arrays_in(state)):
        np.testing.assert_array_equal(before, after)
    assert step2.dtype == np.float32 and step2.shape == params.shape
    assert all(s.dtype == np.float32 for s in arrays_in(state2))
    assert len(arrays_in(state2)) == len(state_copies)
    # a descent direction: the step points against the gradient
    assert step2 @ grad < 0


def test_sgd_step_is_minus_learning_rate_times_grad():
    g = np.array([1.0, -2.0, 0.5])
    step, state = optimizers.sgd().update(g, (), np.zeros(3), 0.3)
    np.testing.assert_array_equal(step, -0.3 * g)
    assert state == ()


def test_momentum_and_nesterov_by_hand():
    g1, g2 = np.array([1.0, 2.0]), np.array([-1.0, 0.5])
    p = np.zeros(2)
    rule = optimizers.momentum(0.5)
    s1, v = rule.update(g1, rule.init(p), p, 0.1)
    s2, v = rule.update(g2, v, p, 0.1)
    np.testing.assert_allclose(s1, -0.1 * g1)
    np.testing.assert_allclose(s2, 0.5 * (-0.1 * g1) - 0.1 * g2)
    rule = optimizers.nesterov(0.5)
    s1, v = rule.update(g1, rule.init(p), p, 0.1)
    np.testing.assert_allclose(v, -0.1 * g1)
    np.testing.assert_allclose(s1, 0.5 * v - 0.1 * g1)
    s2, v2 = rule.update(g2, v, p, 0.1)
    np.testing.assert_allclose(v2, 0.5 * v - 0.1 * g2)
    np.testing.assert_allclose(s2, 0.5 * v2 - 0.1 * g2)


def test_adam_by_hand():
    g1, g2 = np.array([1e-3, -4.0]), np.array([2e-3, 1.0])
    p = np.zeros(2)
    rule = optimizers.adam(beta1=0.8, beta2=0.9, eps=1e-8)
    s1, state = rule.update(g1, rule.init(p), p, 0.01)
    # first step: bias correction makes it lr * sign(g), whatever |g|
    np.testing.assert_allclose(s1, -0.01 * np.sign(g1), rtol=1e-4)
    s2, state = rule.update(g2, state, p, 0.01)
    mu = 0.8 * 0.2 * g1 + 0.2 * g2
    nu = 0.9 * 0.1 * g1**2 + 0.1 * g2**2
    expected = -0.01 * (mu / (1 - 0.8**2)) / (np.sqrt(nu / (1 - 0.9**2)) + 1e-8)
    np.testing.assert_allclose(s2, expected, rtol=1e-12)
    assert state.count == 2


def test_rmsprop_by_hand():
    g = np.array([3.0, -0.2])
    rule = optimizers.rmsprop(decay=0.75, eps=1e-8)
    s1, ms = rule.update(g, rule.init(g), g, 0.1)
    np.testing.assert_allclose(ms, 0.25 * g**2)
    np.testing.assert_allclose(s1, -0.1 * g / (np.sqrt(0.25) * np.abs(g) + 1e-8))


def test_get_builds_rules_by_name_and_passes_rule_objects():
    assert optimizers.get("momentum") == optimizers.momentum(0.9)
    assert optimizers.get("NESTEROV") == optimizers.nesterov()
    assert optimizers.get("adam") == optimizers.adam()
    custom = optimizers.rmsprop(decay=0.5)
    assert optimizers.get(custom) is custom
    # the constructors live in flatnn.optimizers only, beside the loop flatnn.sgd
    assert not hasattr(flatnn, "adam") and not hasattr(flatnn, "momentum")
    assert flatnn.optimizers.adam is optimizers.adam


RULE_OBJECTS = [
    optimizers.sgd(),
    optimizers.momentum(0.8),
    optimizers.nesterov(0.7),
    optimizers.adam(0.85, 0.99, 1e-7),
    optimizers.rmsprop(0.8, 1e-6),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", RULE_OBJECTS, ids=lambda r: type(r).__name__)
def test_inplace_form_is_bit_identical_to_the_pure_update(rule, dtype):
    rng = np.random.default_rng(5)
    params = rng.normal(size=257).astype(dtype)
    pure_params, pure_state = params.copy(), rule.init(params)
    live, state = params.copy(), rule.inplace_init(params)
    scratch = np.empty_like(params)
    for t in range(7):
        grad = (rng.normal(size=257) * 10.0 ** rng.integers(-3, 3)).astype(dtype)
        lr = [0.1, 0.003, 1.7][t % 3]
        grad_before = grad.copy()
        step, pure_state = rule.update(grad, pure_state, pure_params, lr)
        np.testing.assert_array_equal(grad, grad_before)  # the pure form never writes
        pure_params = pure_params + step
        state = rule.inplace_update(grad, state, live, lr, scratch)
        assert live.dtype == dtype and pure_params.dtype == dtype
        assert live.tobytes() == pure_params.tobytes(), t


def test_bad_rules_and_hyperparameters():
    with pytest.raises(ValueError, match="unknown update rule 'adagrad'"):
        optimizers.get("adagrad")
    with pytest.raises(TypeError, match="init"):
        optimizers.get(object())
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\], got 1.01"):
        optimizers.momentum(1.01)
    assert optimizers.momentum(1.0).beta == optimizers.nesterov(1.0).beta == 1.0  # scikit-learn's
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\), got 1.0"):
        optimizers.rmsprop(1.0)
    with pytest.raises(ValueError, match="beta2"):
        optimizers.adam(beta2=-0.1)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        optimizers.adam(eps=0)
    with pytest.raises(TypeError):
        optimizers.rmsprop(decay="0.9")


def test_schedules():
    assert [optimizers.constant(0.2)(e) for e in range(3)] == [0.2, 0.2, 0.2]
    assert [optimizers.step_decay(0.1, 0.5, 2)(e) for e in range(5)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025]
    )
    assert [optimizers.exponential_decay(1.0, 0.9)(e) for e in range(3)] == pytest.approx(
        [1.0, 0.9, 0.81]
    )
    sched = optimizers.as_schedule(0.3)
    assert sched(10) == 0.3
    fn = lambda epoch: 1.0 / (1 + epoch)  # noqa: E731
    assert optimizers.as_schedule(fn) is fn
    assert optimizers.learning_rate_at(fn, 3) == 0.25


def test_bad_schedules():
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        optimizers.as_schedule(0.0)
    with pytest.raises(TypeError, match="learning_rate must be a number or a callable"):
        optimizers.as_schedule("fast")
    with pytest.raises(ValueError, match="drop must lie in"):
        optimizers.step_decay(0.1, 2.0, 3)
    with pytest.raises(ValueError, match="every must be"):
        optimizers.step_decay(0.1, 0.5, 0)
    with pytest.raises(ValueError, match="rate must lie in"):
        optimizers.exponential_decay(0.1, 0.0)
    with pytest.raises(ValueError, match=r"gave -1 at epoch 2"):
        optimizers.learning_rate_at(lambda e: -1, 2)
    with pytest.raises(TypeError, match="expected a number"):
        optimizers.learning_rate_at(lambda e: "x", 0)


# ------------------------------------------- three steps worked out by hand
GRADS = [np.array([0.5, -2.0]), np.array([-1.0, 0.25]), np.array([3.0, 1.0])]
RATES = [0.1, 0.2, 0.05]


def by_hand(name):
    """The rules' formulas, one scalar at a time, with non-default settings."""
    out = []
    for i in range(2):
        p, v, m, s = 1.0, 0.0, 0.0, 0.0
        for t, (g, lr) in enumerate(zip((G[i] for G in GRADS), RATES), start=1):
            if name == "sgd":
                p += -lr * g
            elif name == "momentum":  # beta 0.5
                v = 0.5 * v - lr * g
                p += v
            elif name == "nesterov":  # beta 0.5
                v = 0.5 * v - lr * g
                p += 0.5 * v - lr * g
            elif name == "adam":  # beta1 0.5, beta2 0.75, eps 0.1
                m = 0.5 * m + 0.5 * g
                s = 0.75 * s + 0.25 * g * g
                p += -lr * (m / (1 - 0.5**t)) / (math.sqrt(s / (1 - 0.75**t)) + 0.1)
            else:  # rmsprop: decay 0.5, eps 0.1
                s = 0.5 * s + 0.5 * g * g
                p += -lr * g / (math.sqrt(s) + 0.1)
        out.append(p)
    return np.array(out)


CONFIGURED = {
    "sgd": lambda: optimizers.sgd(),
    "momentum": lambda: optimizers.momentum(0.5),
    "nesterov": lambda: optimizers.nesterov(0.5),
    "adam": lambda: optimizers.adam(beta1=0.5, beta2=0.75, eps=0.1),
    "rmsprop": lambda: optimizers.rmsprop(decay=0.5, eps=0.1),
}


@pytest.mark.parametrize("name", list(CONFIGURED))
def test_three_steps_with_non_default_settings_match_the_hand_worked_values(name):
    rule = CONFIGURED[name]()
    pure, state = np.ones(2), rule.init(np.ones(2))
    live = np.ones(2)
    live_state = rule.inplace_init(live)
    for g, lr in zip(GRADS, RATES):
        step, state = rule.update(g.copy(), state, pure, lr)
        pure = pure + step
        live_state = rule.inplace_update(g.copy(), live_state, live, lr, np.empty(2))
    want = by_hand(name)
    np.testing.assert_allclose(pure, want, rtol=1e-13, atol=0)
    np.testing.assert_allclose(live, want, rtol=1e-13, atol=0)
