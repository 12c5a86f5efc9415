"""flatnn.sgd on the array-namespace code path (the one CuPy data takes), run on the CPU.

The data are ``HostArray``s (``tests/stand_in_xp.py``): NumPy refuses them, so
any NumPy call on the training data, the parameters, the rule's state, a batch
or a dropout mask fails these tests with a TypeError. Every run must match the
same run on NumPy arrays to 1e-12 relative in float64, and return ``x`` and
``jac`` in the data's namespace.
"""

import numpy as np
import pytest
import stand_in_xp
from stand_in_xp import HostArray

import flatnn
from flatnn import optimizers
from flatnn.base import namespace

RULES = ("sgd", "momentum", "nesterov", "adam", "rmsprop")


@pytest.fixture
def xp():
    namespace.register(stand_in_xp.ROOT, stand_in_xp.xp)
    yield stand_in_xp.xp
    namespace.register(stand_in_xp.ROOT, None)


def problem(
    m=97,
    seed=0,
    sizes=(6, 8, 5, 4),
    hidden="tanh",
    output="softmax",
    loss="cross_entropy",
    targets=False,
):
    rng = np.random.default_rng(seed)
    net = flatnn.Network(sizes, hidden=hidden, output=output, loss=loss)
    k = sizes[-1]
    X, X_val = rng.normal(size=(m, sizes[0])), rng.normal(size=(31, sizes[0]))
    if targets:
        y, y_val = rng.uniform(size=(m, k)), rng.uniform(size=(31, k))
    else:
        y, y_val = rng.integers(0, k, m), rng.integers(0, k, 31)
    return net, net.init(seed), X, y, X_val, y_val


def host(a):
    assert isinstance(a, HostArray), type(a)
    return a.get()


def same(host_result, device_result, rtol=1e-12):
    """The device run equals the NumPy run: x, jac, fun, status and every history entry."""
    x = host(device_result.x)
    scale = np.abs(host_result.x).max()
    assert x.dtype == host_result.x.dtype
    assert np.abs(x - host_result.x).max() <= rtol * scale
    jac = host(device_result.jac)
    assert np.abs(jac - host_result.jac).max() <= rtol * max(np.abs(host_result.jac).max(), 1e-300)
    assert device_result.fun == pytest.approx(host_result.fun, rel=rtol)
    for key in ("status", "nit", "nfev", "success"):
        assert device_result[key] == host_result[key], key
    assert len(device_result.history) == len(host_result.history)
    for d, h in zip(device_result.history, host_result.history):
        assert set(d) == set(h)
        for key, value in h.items():
            if key != "seconds":
                assert d[key] == pytest.approx(value, rel=rtol, abs=1e-300), key


@pytest.mark.parametrize("method", RULES)
def test_every_rule_with_validation_early_stopping_dropout_and_max_norm(xp, method):
    net, p0, X, y, X_val, y_val = problem()
    kw = dict(
        epochs=6,
        batch_size=10,
        learning_rate=0.05,
        method=method,
        rng=3,
        early_stopping=2,
        dropout=(0.1, 0.2, 0.3),
        max_norm=1.5,
    )
    want = flatnn.sgd(net, p0, X, y, 0.3, validation=(X_val, y_val), **kw)
    got = flatnn.sgd(
        net,
        p0,
        xp.asarray(X),
        xp.asarray(y),
        0.3,
        validation=(xp.asarray(X_val), xp.asarray(y_val)),
        **kw,
    )
    same(want, got)
    assert "val_cost" in got.history[0] and got.fun < net.cost(p0, X, y, 0.3)


@pytest.mark.parametrize("method", RULES)
def test_every_rule_without_extras_matches_numpy(xp, method):
    # The plain path (no dropout: the batch kernel of Network.cost_grad), float
    # targets, the L2 term and a batch that does not divide m.
    net, p0, X, y, *_ = problem(targets=True, hidden="relu", output="sigmoid")
    kw = dict(epochs=3, batch_size=16, learning_rate=0.1, method=method, rng=1)
    same(
        flatnn.sgd(net, p0, X, y, 0.5, **kw),
        flatnn.sgd(net, xp.asarray(p0), xp.asarray(X), xp.asarray(y), 0.5, **kw),
    )


def test_early_stopping_triggers_on_both_and_returns_the_same_best(xp):
    net, p0, X, y, X_val, y_val = problem()
    kw = dict(epochs=40, batch_size=8, learning_rate=0.5, method="adam", rng=0, early_stopping=1)
    want = flatnn.sgd(net, p0, X, y, validation=(X_val, y_val), **kw)
    got = flatnn.sgd(net, p0, xp.asarray(X), xp.asarray(y), validation=(X_val, y_val), **kw)
    assert want.status == flatnn.training.STATUS_EARLY_STOPPED and want.nit < 40
    same(want, got)


def test_host_validation_data_moves_to_the_device_once(xp):
    net, p0, X, y, X_val, y_val = problem()
    kw = dict(epochs=2, batch_size=20, learning_rate=0.1, rng=0)
    same(
        flatnn.sgd(net, p0, X, y, validation=(X_val, y_val), **kw),
        flatnn.sgd(net, p0, xp.asarray(X), y, validation=(X_val, y_val), **kw),
    )
    with pytest.raises(
        TypeError, match="validation X_val is a stand_in_xp array but the training X is a NumPy"
    ):
        flatnn.sgd(net, p0, X, y, validation=(xp.asarray(X_val), y_val), **kw)


def test_no_shuffle_a_full_batch_and_a_transform(xp):
    net, p0, X, y, *_ = problem()

    def noise(X_batch, rng):  # written against the batch's namespace
        own = namespace.namespace_of(X_batch)
        return X_batch + namespace.asarray(0.1 * rng.standard_normal(X_batch.shape), own, "noise")

    for kw in (
        dict(batch_size=10, shuffle=False),
        dict(batch_size=97),
        dict(batch_size=12, transform=noise),
        dict(batch_size=12, shuffle=False, transform=noise),
    ):
        kw.update(epochs=2, learning_rate=0.1, method="momentum", rng=5)
        same(
            flatnn.sgd(net, p0, X, y, 0.1, **kw),
            flatnn.sgd(net, p0, xp.asarray(X), xp.asarray(y), 0.1, **kw),
        )


def test_float32_stays_float32(xp):
    net, p0, X, y, X_val, y_val = problem()
    p32, X32 = p0.astype(np.float32), X.astype(np.float32)
    kw = dict(
        epochs=2,
        batch_size=10,
        learning_rate=0.1,
        method="adam",
        rng=0,
        validation=(X_val, y_val),
        dropout=(0.1, 0.1, 0.0),
        max_norm=2.0,
    )
    got = flatnn.sgd(net, p32, xp.asarray(X32), xp.asarray(y), **kw)
    want = flatnn.sgd(net, p32, X32, y, **kw)
    assert host(got.x).dtype == np.float32 and host(got.jac).dtype == np.float32
    np.testing.assert_allclose(host(got.x), want.x, rtol=0, atol=1e-5)
    # float64 parameters with float32 data compute in float64, as on NumPy
    assert (
        host(
            flatnn.sgd(net, p0, xp.asarray(X32), y, epochs=1, batch_size=10, learning_rate=0.1).x
        ).dtype
        == np.float64
    )


class HalfMomentum:
    """A custom pure rule written with array methods and operators only."""

    def init(self, params):
        return params * 0.0

    def update(self, grad, state, params, learning_rate):
        velocity = state * 0.5 - grad * learning_rate
        return velocity, velocity


def test_a_custom_rule_written_with_array_methods_runs_on_the_device(xp):
    net, p0, X, y, *_ = problem()
    kw = dict(epochs=3, batch_size=10, learning_rate=0.1, method=HalfMomentum(), rng=2)
    want = flatnn.sgd(net, p0, X, y, 0.2, **kw)
    got = flatnn.sgd(net, p0, xp.asarray(X), xp.asarray(y), 0.2, **kw)
    same(want, got)
    assert want.fun < net.cost(p0, X, y, 0.2)


def test_a_rule_that_returns_a_host_step_for_device_data_is_named(xp):
    class HostStep:
        def init(self, params):
            return ()

        def update(self, grad, state, params, learning_rate):
            return np.zeros(grad.shape), state

    net, p0, X, y, *_ = problem()
    with pytest.raises(
        TypeError,
        match="HostStep.update returned a step of type "
        "numpy.ndarray; the parameters are stand_in_xp",
    ):
        flatnn.sgd(
            net, p0, xp.asarray(X), y, epochs=1, batch_size=10, learning_rate=0.1, method=HostStep()
        )


def test_the_pure_rules_match_their_inplace_form_on_the_device(xp):
    rng = np.random.default_rng(0)
    params, grads = rng.normal(size=50), rng.normal(size=(3, 50))
    for name in RULES:
        rule = optimizers.get(name)
        p_pure, p_fast = xp.asarray(params), xp.asarray(params)
        s_pure, s_fast = rule.init(p_pure), rule.inplace_init(p_fast)
        scratch = xp.empty_like(p_fast)
        for g in grads:
            step, s_pure = rule.update(xp.asarray(g), s_pure, p_pure, 0.1)
            assert isinstance(step, HostArray)
            p_pure = p_pure + step
            s_fast = rule.inplace_update(xp.asarray(g), s_fast, p_fast, 0.1, scratch)
        np.testing.assert_array_equal(host(p_pure), host(p_fast))
        host_p = params.copy()
        state = rule.inplace_init(host_p)
        for g in grads:
            state = rule.inplace_update(g.copy(), state, host_p, 0.1, np.empty(50))
        np.testing.assert_array_equal(host(p_fast), host_p)


def test_callbacks_get_device_arrays_and_stop_the_run(xp):
    net, p0, X, y, *_ = problem()
    seen = {"epoch": [], "batch": []}

    def on_epoch(intermediate_result):
        seen["epoch"].append(type(intermediate_result.x))

    def on_batch(intermediate_result):
        seen["batch"].append(type(intermediate_result.x))
        if intermediate_result.epoch == 1 and intermediate_result.batch == 3:
            raise StopIteration

    kw = dict(epochs=3, batch_size=10, learning_rate=0.1, rng=0)
    got = flatnn.sgd(
        net, p0, xp.asarray(X), xp.asarray(y), callback=on_epoch, batch_callback=on_batch, **kw
    )
    assert seen["epoch"] == [HostArray] and set(seen["batch"]) == {HostArray}
    assert len(seen["batch"]) == 14
    want = flatnn.sgd(net, p0, X, y, callback=on_epoch, batch_callback=on_batch, **kw)
    assert seen["batch"][14:] == [np.ndarray] * 14
    assert got.status == want.status == flatnn.training.STATUS_STOPPED
    same(want, got)

    def legacy(xk):  # callback(xk) gets the device copy too
        assert isinstance(xk, HostArray)
        raise StopIteration

    stopped = flatnn.sgd(net, p0, xp.asarray(X), y, callback=legacy, **kw)
    assert stopped.status == flatnn.training.STATUS_STOPPED and stopped.nit == 1


def test_divergence_and_overflow_end_the_run_as_on_numpy(xp):
    net, p0, X, y, *_ = problem(output="identity", loss="squared_error", targets=True)
    kw = dict(epochs=5, batch_size=10, rng=0)
    for lr, status in (
        (3.0, flatnn.training.STATUS_DIVERGED),
        (1e200, flatnn.training.STATUS_NOT_FINITE),
    ):
        want = flatnn.sgd(net, p0, X * 10, y, learning_rate=lr, **kw)
        got = flatnn.sgd(net, p0, xp.asarray(X * 10), xp.asarray(y), learning_rate=lr, **kw)
        assert want.status == status, want.message
        assert got.status == status and got.message == want.message
        same(want, got)


def test_objective_and_minimize_with_device_data(xp):
    net, p0, X, y, *_ = problem()
    kw = dict(epochs=2, batch_size=10, learning_rate=0.1, rng=0)
    want = flatnn.sgd(net, p0, X, y, 0.4, **kw)
    obj = flatnn.Objective(net, xp.asarray(X), y, 0.4)
    assert isinstance(obj.targets.values, HostArray)
    same(want, flatnn.sgd(obj, p0, **kw))
    via_minimize = flatnn.minimize(
        net, p0, xp.asarray(X), xp.asarray(y), 0.4, method="sgd", options=kw
    )
    same(want, via_minimize)


def test_params0_on_the_device_is_never_modified_and_never_moves_back(xp):
    net, p0, X, y, *_ = problem()
    pd = xp.asarray(p0)
    res = flatnn.sgd(net, pd, xp.asarray(X), y, epochs=1, batch_size=10, learning_rate=0.1)
    np.testing.assert_array_equal(host(pd), p0)
    assert not np.array_equal(host(res.x), p0)
    with pytest.raises(TypeError, match="params0 is a stand_in_xp array but X is a NumPy"):
        flatnn.sgd(net, pd, X, y, epochs=1, batch_size=10, learning_rate=0.1)


def test_bad_device_data_is_reported(xp):
    net, p0, X, y, *_ = problem()
    bad = X.copy()
    bad[5, 2] = np.inf
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(1 rows, first at row 5\)"):
        flatnn.sgd(net, p0, xp.asarray(bad), y, epochs=1, batch_size=10, learning_rate=0.1)
    with pytest.raises(ValueError, match="label 9 is out of range"):
        flatnn.sgd(
            net,
            p0,
            xp.asarray(X),
            xp.asarray(np.where(np.arange(97) == 4, 9, y)),
            epochs=1,
            batch_size=10,
            learning_rate=0.1,
        )
    bad_val = X[:31].copy()
    bad_val[2, 0] = np.nan
    with pytest.raises(ValueError, match="validation X_val contains NaN or inf"):
        flatnn.sgd(
            net,
            p0,
            xp.asarray(X),
            y,
            epochs=1,
            batch_size=10,
            learning_rate=0.1,
            validation=(xp.asarray(bad_val), y[:31]),
        )
