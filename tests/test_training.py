"""Training paths: flatnn.sgd, flatnn.minimize, and their one result/callback contract."""

import math

import numpy as np
import pytest
import scipy.optimize
from scipy.optimize import OptimizeResult

import flatnn
from flatnn import optimizers
from flatnn.training import HESSP_METHODS, SCIPY_METHODS

RULE_NAMES = list(optimizers.RULES)
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0, 1, 1, 0])
XOR_NET = flatnn.Network((2, 4, 1), hidden="tanh")


def blobs(m=90, n=5, k=3, seed=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(k, n))
    y = rng.integers(0, k, size=m)
    return centres[y] + rng.normal(size=(m, n)), y


class Counting:
    """An objective (the protocol of flatnn.Objective) that counts the evaluations made."""

    def __init__(self, obj):
        self.obj, self.net, self.lam, self.n_params = obj, obj.net, obj.lam, obj.n_params
        self.cost_grads = self.hessps = 0

    def cost_grad(self, params):
        self.cost_grads += 1
        return self.obj.cost_grad(params)

    def hessp(self, params, v):
        self.hessps += 1
        return self.obj.hessp(params, v)


# ------------------------------------------------------------------ SGD
@pytest.mark.parametrize("name", RULE_NAMES)
def test_each_rule_trains_xor_to_100_percent(name):
    lr = 0.05 if name in ("adam", "rmsprop") else 0.5
    res = flatnn.sgd(
        XOR_NET,
        XOR_NET.init(0),
        XOR_X,
        XOR_Y,
        epochs=1500,
        batch_size=2,
        learning_rate=lr,
        method=name,
        rng=0,
    )
    assert isinstance(res, OptimizeResult)
    assert res.success and res.status == 0 and res.nit == 1500
    assert XOR_NET.accuracy(res.x, XOR_X, XOR_Y) == 1.0
    assert res.fun < 0.05
    assert res.history[-1]["fun"] < res.history[0]["fun"]


def test_a_custom_rule_object_plugs_in():
    class SignDescent:  # a rule of the user's own: fixed-size steps against the gradient
        def init(self, params):
            return 0

        def update(self, grad, state, params, learning_rate):
            return -learning_rate * np.sign(grad), state + 1

    X, y = blobs()
    net = flatnn.Network((5, 3))
    p0 = net.init(0)
    res = flatnn.sgd(
        net,
        p0,
        X,
        y,
        0.1,
        epochs=30,
        batch_size=30,
        learning_rate=optimizers.exponential_decay(0.05, 0.9),
        method=SignDescent(),
        rng=1,
    )
    assert res.fun < 0.5 * net.cost(p0, X, y, 0.1)
    assert [h["learning_rate"] for h in res.history[:3]] == pytest.approx([0.05, 0.045, 0.0405])


def test_a_rule_returning_the_wrong_dtype_is_named():
    class Upcast:
        def init(self, params):
            return ()

        def update(self, grad, state, params, learning_rate):
            return (-learning_rate * grad).astype(np.float64), state

    X, y = blobs()
    net = flatnn.Network((5, 3))
    with pytest.raises(
        ValueError, match="Upcast.update returned .* float64; expected \\(18,\\) float32"
    ):
        flatnn.sgd(
            net,
            net.init(0, dtype=np.float32),
            X.astype(np.float32),
            y,
            epochs=1,
            batch_size=10,
            learning_rate=0.1,
            method=Upcast(),
        )


@pytest.mark.parametrize("m,batch_size", [(12, 4), (10, 4), (10, 10), (7, 1)])
def test_batch_gradients_weighted_by_size_are_the_full_gradient(m, batch_size):
    # A rule that records the gradients it is given and never moves: one epoch
    # then sees every batch at the same params, and Σ (b/m) g_b must be ∇J.
    class Record:
        def __init__(self):
            self.grads = []

        def init(self, params):
            return ()

        def update(self, grad, state, params, learning_rate):
            self.grads.append(grad.copy())
            return np.zeros_like(params), state

    X, y = blobs(m=m)
    net = flatnn.Network((5, 4, 3), hidden="sigmoid")
    params, lam = net.init(3), 2.5
    rule = Record()
    flatnn.sgd(
        net,
        params,
        X,
        y,
        lam,
        epochs=1,
        batch_size=batch_size,
        learning_rate=1.0,
        method=rule,
        rng=0,
    )
    sizes = [min(batch_size, m - lo) for lo in range(0, m, batch_size)]
    assert len(rule.grads) == len(sizes)
    weighted = sum(b / m * g for b, g in zip(sizes, rule.grads))
    full = net.grad(params, X, y, lam)
    np.testing.assert_allclose(weighted, full, rtol=1e-11, atol=1e-14)
    if m % batch_size == 0:  # equal batches: the plain mean over the epoch
        np.testing.assert_allclose(np.mean(rule.grads, axis=0), full, rtol=1e-11, atol=1e-14)


def test_same_seed_is_bit_identical_and_inputs_are_untouched():
    X, y = blobs()
    net = flatnn.Network((5, 6, 3), hidden="relu")
    p0 = net.init(4)
    copies = [a.copy() for a in (X, y, p0)]
    kw = dict(
        epochs=3, batch_size=16, learning_rate=0.1, method="momentum", validation=(X[:20], y[:20])
    )
    a = flatnn.sgd(net, p0, X, y, 0.1, rng=7, **kw)
    b = flatnn.sgd(net, p0, X, y, 0.1, rng=np.random.default_rng(7), **kw)
    c = flatnn.sgd(net, p0, X, y, 0.1, rng=8, **kw)
    assert a.x.tobytes() == b.x.tobytes()
    assert [h["fun"] for h in a.history] == [h["fun"] for h in b.history]
    assert a.x.tobytes() != c.x.tobytes()
    for before, after in zip(copies, (X, y, p0)):
        np.testing.assert_array_equal(before, after)


def test_float32_end_to_end():
    X, y = blobs()
    net = flatnn.Network((5, 6, 3), hidden="tanh")
    p0 = net.init(0, dtype=np.float32)
    for method in RULE_NAMES:
        res = flatnn.sgd(
            net,
            p0,
            X.astype(np.float32),
            y,
            0.1,
            epochs=2,
            batch_size=32,
            learning_rate=0.01,
            method=method,
            rng=0,
        )
        assert res.x.dtype == np.float32 and res.jac.dtype == np.float32, method
    # float64 data promotes the work to float64
    res = flatnn.sgd(net, p0, X, y, epochs=1, batch_size=32, learning_rate=0.1)
    assert res.x.dtype == np.float64


def test_result_fields_and_history():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    res = flatnn.sgd(
        net,
        net.init(0),
        X,
        y,
        0.2,
        epochs=4,
        batch_size=25,
        learning_rate=optimizers.step_decay(0.4, 0.5, 2),
        validation=(X[:30], y[:30]),
        rng=0,
    )
    for key in (
        "x",
        "fun",
        "jac",
        "nit",
        "nfev",
        "njev",
        "success",
        "status",
        "message",
        "history",
    ):
        assert key in res
    assert res.nit == 4 and len(res.history) == 4
    assert res.fun == net.cost(res.x, X, y, 0.2)
    np.testing.assert_array_equal(res.jac, net.grad(res.x, X, y, 0.2))
    assert [h["epoch"] for h in res.history] == [0, 1, 2, 3]
    assert [h["learning_rate"] for h in res.history] == pytest.approx([0.4, 0.4, 0.2, 0.2])
    assert [h["nfev"] for h in res.history] == [4, 8, 12, 16]  # 90 rows: batches 25, 25, 25, 15
    assert res.nfev == 17  # and one full pass for fun and jac
    seconds = [h["seconds"] for h in res.history]
    assert seconds == sorted(seconds) and seconds[0] > 0
    for h in res.history:
        assert 0.0 <= h["val_accuracy"] <= 1.0 and h["val_cost"] > 0
    assert res.history[-1]["val_cost"] == pytest.approx(net.cost(res.x, X[:30], y[:30]))


def test_sgd_nfev_counts_the_passes_made_and_not_validation():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3))
    batches = []
    res = flatnn.sgd(
        net,
        net.init(0),
        X,
        y,
        epochs=3,
        batch_size=40,
        learning_rate=0.1,
        validation=(X[:7], y[:7]),
        rng=0,
        batch_callback=lambda intermediate_result: batches.append(intermediate_result.nfev),
    )
    # 3 batches (40, 40, 10 rows) per epoch, then the final full pass; validation not counted
    assert batches == list(range(1, 10))
    assert res.nfev == len(batches) + 1 == 3 * 3 + 1
    assert len(res.history) == 3 and all("val_cost" in h for h in res.history)


def test_early_stopping_returns_the_best_parameters():
    # validation labels are the training labels shifted: the more the net
    # learns, the worse it does there, so the validation cost turns up early.
    X, y = blobs(m=120)
    net = flatnn.Network((5, 8, 3), hidden="tanh")
    seen = []
    res = flatnn.sgd(
        net,
        net.init(1),
        X,
        y,
        epochs=60,
        batch_size=20,
        learning_rate=0.3,
        method=optimizers.momentum(0.5),
        validation=(X, (y + 1) % 3),
        early_stopping=3,
        rng=0,
        callback=lambda intermediate_result: seen.append(intermediate_result.x),
    )
    val = [h["val_cost"] for h in res.history]
    best = int(np.argmin(val))
    assert res.status == 1 and res.success
    assert res.nit == best + 3 + 1 < 60
    np.testing.assert_array_equal(res.x, seen[best])
    assert not np.array_equal(res.x, seen[-1])
    assert res.fun == net.cost(res.x, X, y)
    assert str(best) in res.message


def test_early_stopping_that_never_triggers_still_returns_the_best():
    X, y = blobs(m=120)
    net = flatnn.Network((5, 8, 3), hidden="tanh")
    seen = []
    res = flatnn.sgd(
        net,
        net.init(1),
        X,
        y,
        epochs=12,
        batch_size=20,
        learning_rate=0.3,
        method=optimizers.momentum(0.5),
        validation=(X, (y + 1) % 3),
        early_stopping=100,
        rng=0,
        callback=lambda intermediate_result: seen.append(intermediate_result.x),
    )
    best = int(np.argmin([h["val_cost"] for h in res.history]))
    assert res.status == 0 and res.nit == 12 and best < 11
    np.testing.assert_array_equal(res.x, seen[best])


def test_stop_iteration_stops_sgd_with_the_best_so_far():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x, intermediate_result.fun))
        assert intermediate_result.nit == intermediate_result.epoch + 1
        assert intermediate_result.history[-1]["fun"] == intermediate_result.fun
        if intermediate_result.nit == 5:
            raise StopIteration

    # a too-large learning rate: the training cost goes up and down
    res = flatnn.sgd(
        net,
        net.init(0),
        X,
        y,
        epochs=50,
        batch_size=10,
        learning_rate=3.0,
        rng=0,
        callback=callback,
    )
    assert res.status == 99 and not res.success and res.nit == 5 and len(seen) == 5
    best = min(range(5), key=lambda i: seen[i][1])
    np.testing.assert_array_equal(res.x, seen[best][0])


def test_legacy_callback_gets_a_copy_of_x():
    X, y = blobs()
    net = flatnn.Network((5, 3))
    got = []

    def callback(xk):
        got.append(xk)
        xk[:] = np.nan  # a careless callback must not corrupt training

    res = flatnn.sgd(
        net, net.init(0), X, y, epochs=3, batch_size=30, learning_rate=0.1, callback=callback
    )
    assert len(got) == 3 and got[0].shape == (net.n_params,)
    assert np.isfinite(res.x).all() and res.status == 0


@pytest.mark.filterwarnings("error")  # no RuntimeWarning may reach the user
def test_a_blown_up_cost_is_divergence_not_success():
    X, y = blobs()
    net = flatnn.Network((5, 8, 3), hidden="relu", output="identity", loss="squared_error")
    p0 = net.init(0)
    res = flatnn.sgd(
        net, p0, X * 100, np.eye(3)[y], epochs=20, batch_size=10, learning_rate=1e3, rng=0
    )
    assert res.status == 3 and not res.success
    assert "diverged in epoch 0" in res.message and "try 100 or less" in res.message
    assert res.nit == 0 and res.history == []
    np.testing.assert_array_equal(res.x, p0)  # no epoch finished: the start


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("learning_rate", [1e6, 1e30, 1e300])
def test_huge_learning_rates_never_succeed_and_never_warn(learning_rate):
    X, y = blobs()
    net = flatnn.Network((5, 16, 3), hidden="relu")
    res = flatnn.sgd(
        net,
        net.init(0),
        X,
        y,
        0.1,
        epochs=3,
        batch_size=10,
        learning_rate=learning_rate,
        method="momentum",
        rng=0,
        validation=(X[:20], y[:20]),
    )
    assert res.status in (2, 3) and not res.success, res.message
    assert np.isfinite(res.x).all() and math.isfinite(res.fun)


@pytest.mark.filterwarnings("error")
def test_a_non_finite_cost_stops_with_status_2():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="sigmoid")

    class Explode:  # a rule whose second step is NaN: the next batch's cost is NaN
        def init(self, params):
            return 0

        def update(self, grad, state, params, learning_rate):
            step = -learning_rate * grad
            if state == 1:
                step[:] = np.nan
            return step, state + 1

    res = flatnn.sgd(
        net, net.init(0), X, y, epochs=2, batch_size=30, learning_rate=0.1, method=Explode(), rng=0
    )
    assert res.status == 2 and not res.success and "became nan in epoch 0, batch 2" in res.message
    assert np.isfinite(res.x).all()


def test_a_step_that_overflows_at_the_end_of_an_epoch_is_caught():
    X, y = blobs()
    net = flatnn.Network((5, 3))

    class LastStepInf:
        def init(self, params):
            return 0

        def update(self, grad, state, params, learning_rate):
            step = -learning_rate * grad
            if state == 2:  # the last batch of epoch 0 (90 rows, batch 30)
                step[0] = np.inf
            return step, state + 1

    res = flatnn.sgd(
        net, net.init(0), X, y, epochs=3, batch_size=30, learning_rate=0.1, method=LastStepInf()
    )
    assert res.status == 2 and res.nit == 0 and np.isfinite(res.x).all()


def test_sgd_accepts_an_objective_but_not_remote_data():
    X, y = blobs()
    net = flatnn.Network((5, 3))
    obj = flatnn.Objective(net, X, y, lam=0.3)
    a = flatnn.sgd(obj, net.init(0), epochs=2, batch_size=30, learning_rate=0.1, rng=0)
    b = flatnn.sgd(net, net.init(0), X, y, 0.3, epochs=2, batch_size=30, learning_rate=0.1, rng=0)
    np.testing.assert_array_equal(a.x, b.x)

    class Remote:  # the objective protocol without local data
        n_params = net.n_params

        def cost_grad(self, params):
            return obj.cost_grad(params)

    with pytest.raises(TypeError, match="flatnn.minimize"):
        flatnn.sgd(Remote(), net.init(0), epochs=1, batch_size=10, learning_rate=0.1)
    with pytest.raises(TypeError, match="omit X and y"):
        flatnn.sgd(obj, net.init(0), X, y, epochs=1, batch_size=10, learning_rate=0.1)
    with pytest.raises(ValueError, match="own lam"):
        flatnn.sgd(obj, net.init(0), lam=1.0, epochs=1, batch_size=10, learning_rate=0.1)


def test_learning_rate_takes_a_schedule_and_the_old_keywords_are_gone():
    X, y = blobs()
    net = flatnn.Network((5, 3))
    res = flatnn.sgd(
        net,
        net.init(0),
        X,
        y,
        epochs=3,
        batch_size=30,
        learning_rate=lambda epoch: 0.1 / (1 + epoch),
    )
    assert [h["learning_rate"] for h in res.history] == pytest.approx([0.1, 0.05, 0.1 / 3])
    for old in (dict(schedule=lambda e: 0.1), dict(momentum=0.5)):
        with pytest.raises(TypeError, match="unexpected keyword"):
            flatnn.sgd(net, net.init(0), X, y, epochs=1, batch_size=30, learning_rate=0.1, **old)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(batch_size=0), "batch_size must be an integer in \\[1, 90\\], got 0"),
        (dict(batch_size=91), "batch_size must be an integer in \\[1, 90\\], got 91"),
        (dict(epochs=0), "epochs must be an integer >= 1"),
        (dict(lam=-1.0), "lam must be a finite number >= 0"),
        (dict(method="adagrad"), "unknown update rule 'adagrad'"),
        (dict(early_stopping=2), "early_stopping needs validation"),
        (dict(early_stopping=0, validation=(np.zeros((2, 5)), [0, 1])), "early_stopping must be"),
        (dict(params0=np.zeros(7)), "params0 has 7 entries; the network needs 18"),
        (dict(params0=np.zeros((3, 6))), "flat vector"),
        (dict(learning_rate=-0.1), "learning_rate must be a finite number > 0"),
        (dict(validation=(np.zeros((2, 5)),)), "validation must be a pair"),
    ],
)
def test_sgd_bad_arguments(kwargs, match):
    X, y = blobs()
    net = flatnn.Network((5, 3))
    args = dict(params0=net.init(0), lam=0.0, epochs=1, batch_size=10, learning_rate=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        flatnn.sgd(net, args.pop("params0"), X, y, args.pop("lam"), **args)


# -------------------------------------------------------------- scipy bridge
@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_every_scipy_method_trains_xor(method):
    res = flatnn.minimize(XOR_NET, XOR_NET.init(1), XOR_X, XOR_Y, method=method)
    assert isinstance(res, OptimizeResult) and res.success, res.message
    assert XOR_NET.accuracy(res.x, XOR_X, XOR_Y) == 1.0
    assert res.fun < 1e-3
    assert res.fun == XOR_NET.cost(res.x, XOR_X, XOR_Y)
    assert len(res.history) == res.nit > 0


@pytest.fixture(scope="module")
def convex_problem():
    """Softmax regression with L2: convex, so every method must reach one optimal cost."""
    X, y = blobs()
    net = flatnn.Network((5, 3))
    obj = flatnn.Objective(net, X, y, lam=0.5)
    reference = scipy.optimize.minimize(
        obj.cost_grad,
        net.init(0),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-12, "maxiter": 10000},
    )
    return obj, reference.fun


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_every_scipy_method_reaches_the_optimal_cost(method, convex_problem):
    obj, optimum = convex_problem
    obj = Counting(obj)
    options = {
        "SLSQP": {"ftol": 1e-12},
        "TNC": {"ftol": 1e-12},
        "trust-constr": {"gtol": 1e-10},
        "CG": {"gtol": 1e-8},
        "BFGS": {"gtol": 1e-8},
        "Newton-CG": {"xtol": 1e-10},
        "L-BFGS-B": {"ftol": 1e-14, "gtol": 1e-10},
    }.get(method)
    res = flatnn.minimize(obj, obj.net.init(3), method=method, options=options)
    assert res.fun == pytest.approx(optimum, rel=1e-7, abs=1e-9)
    # one forward pass per function evaluation; the curvature products on top
    assert res.nfev == res.njev == obj.cost_grads > 0
    assert res.nhev == obj.hessps
    assert (res.nhev > 0) == (method in HESSP_METHODS)


@pytest.mark.parametrize("method", HESSP_METHODS)
def test_a_zero_vector_costs_no_hessian_product(method):
    # trust-constr probes every Hessian operator it builds with H @ 0 (scipy's
    # LinearOperator infers its dtype so): answered as zeros, neither evaluated nor counted
    X, y = blobs()
    obj = Counting(flatnn.Objective(flatnn.Network((5, 4, 3)), X, y, lam=0.1))
    zeros = []
    hessp = obj.hessp
    obj.hessp = lambda params, v: (zeros.append(not np.any(v)), hessp(params, v))[1]
    res = flatnn.minimize(obj, obj.net.init(0), method=method, options={"maxiter": 5})
    assert res.nhev == obj.hessps == len(zeros) > 0
    assert not any(zeros)


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_nfev_matches_scipy_and_excludes_validation(method):
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="sigmoid")
    p0 = net.init(0)
    calls = []

    def fused(params):
        calls.append(1)
        return net.cost_grad(params, X, y, 0.1)

    hessp = {"hessp": lambda p, v: net.hessp(p, v, X, y, 0.1)} if method in HESSP_METHODS else {}
    direct = scipy.optimize.minimize(
        fused,
        p0,
        jac=True,
        method=method,
        **hessp,
        options={"maxiter": 20} if method != "TNC" else {"maxfun": 20},
    )
    obj = Counting(flatnn.Objective(net, X, y, 0.1))
    res = flatnn.minimize(
        obj,
        p0,
        method=method,
        validation=(X[:11], y[:11]),
        options={"maxiter": 20} if method != "TNC" else {"maxfun": 20},
    )
    assert res.nfev == len(calls)  # the same work as calling scipy by hand
    assert res.nfev == obj.cost_grads  # the validation passes are not evaluations of J
    np.testing.assert_allclose(res.x, direct.x, rtol=1e-12, atol=1e-12)
    assert all("val_cost" in h and "val_accuracy" in h for h in res.history)


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_stop_iteration_stops_every_scipy_method(method):
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x.copy(), intermediate_result.fun))
        assert intermediate_result.nit == len(seen)
        if len(seen) == 3:
            raise StopIteration

    res = flatnn.minimize(net, net.init(0), X, y, method=method, callback=callback)
    assert res.status == 99 and not res.success and res.nit == 3 and len(res.history) == 3
    best = min(range(3), key=lambda i: seen[i][1])
    np.testing.assert_array_equal(res.x, seen[best][0])
    assert res.fun == net.cost(res.x, X, y)
    np.testing.assert_allclose(res.jac, net.grad(res.x, X, y))


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_history_fun_is_the_objective_at_each_iterate(method):
    # the entry's fun is scipy's reported value where it passes one, else an evaluation
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    seen = []
    res = flatnn.minimize(
        net,
        net.init(0),
        X,
        y,
        0.1,
        method=method,
        callback=lambda xk: seen.append(xk.copy()),
        options={"maxiter": 8} if method != "TNC" else {"maxfun": 8},
    )
    assert len(seen) == len(res.history) > 0
    for x, entry in zip(seen, res.history):
        assert entry["fun"] == pytest.approx(net.cost(x, X, y, 0.1), rel=1e-12, abs=1e-15)


def test_a_custom_methods_reported_fun_is_not_taken_for_the_history():
    # this method reports the value before its step: the history has J at the reported x
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")

    def stale(fun, x0, args=(), jac=None, hessp=None, callback=None, **options):
        x = np.array(x0)
        for _ in range(3):
            f, g = fun(x), jac(x)
            x = x - 0.5 * g
            callback(scipy.optimize.OptimizeResult(x=x, fun=f))
        return scipy.optimize.OptimizeResult(x=x, fun=fun(x), success=True, nit=3)

    seen = []
    res = flatnn.minimize(
        net, net.init(0), X, y, method=stale, callback=lambda xk: seen.append(xk.copy())
    )
    for x, entry in zip(seen, res.history, strict=True):
        assert entry["fun"] == net.cost(x, X, y)


@pytest.mark.parametrize("method", SCIPY_METHODS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_points_minimize_keeps_are_never_changed_after_their_evaluation(method, dtype):
    # minimize keeps the points scipy's own methods hand its fun without copying them
    # (scipy passes a copy): each one must still hold the values it was evaluated at
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    seen = []

    class Keeping(Counting):
        def cost_grad(self, params):
            seen.append((params, params.copy()))
            return super().cost_grad(params)

    obj = Keeping(flatnn.Objective(net, X.astype(dtype), y, 0.1))
    options = {"maxiter": 10} if method != "TNC" else {"maxfun": 10}
    res = flatnn.minimize(obj, net.init(0).astype(dtype), method=method, options=options)
    assert len(seen) == res.nfev > 1
    for kept, values in seen:
        np.testing.assert_array_equal(kept, values)


def test_scipy_gets_the_gradient_read_only_and_never_a_cached_array_it_could_change():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    p0 = net.init(0)
    got = {}

    def peek(fun, x0, args=(), jac=None, hessp=None, callback=None, **options):
        f, g = fun(x0), jac(x0)  # scipy splits the fused (J, ∇J) for a custom method
        got.update(f=f, g=g)
        with pytest.raises(ValueError, match="read-only"):
            g[0] = 1.0
        return scipy.optimize.OptimizeResult(x=x0, fun=f, jac=g, success=True, nit=0)

    res = flatnn.minimize(net, p0, X, y, 0.1, method=peek)
    np.testing.assert_array_equal(got["g"], net.grad(p0, X, y, 0.1))
    np.testing.assert_array_equal(res.jac, net.grad(p0, X, y, 0.1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lbfgsb_runs_exactly_as_on_a_float64_wrapper_that_casts(dtype):
    # L-BFGS-B gets params0 in the objective's dtype (its own update is float64 anyway):
    # the run must be the one of the plain formulation, cast in, evaluated, cast out
    X, y = blobs()
    net = flatnn.Network((5, 6, 3), hidden="tanh")
    obj = flatnn.Objective(net, X.astype(dtype), y, 0.1)
    p0 = net.init(0, dtype=dtype)
    got = []

    class Recording(Counting):
        def cost_grad(self, params):
            got.append(params.dtype)
            return super().cost_grad(params)

    def plain(x):
        f, g = obj.cost_grad(x.astype(dtype))
        return f, g.astype(np.float64)

    options = {"maxiter": 25}
    want = scipy.optimize.minimize(
        plain, p0.astype(np.float64), jac=True, method="L-BFGS-B", options=options
    )
    res = flatnn.minimize(Recording(obj), p0, method="L-BFGS-B", options=options)
    assert set(got) == {np.dtype(dtype)}  # each point in the objective's dtype, as scipy cast it
    np.testing.assert_array_equal(res.x, want.x.astype(dtype))
    assert (res.nit, res.nfev, res.fun) == (want.nit, want.nfev, want.fun)


@pytest.mark.parametrize(
    "method, native",
    [("L-BFGS-B", True), ("CG", False), ("BFGS", False), ("Newton-CG", False), ("TNC", False)],
)
def test_only_lbfgsb_sees_a_float32_objectives_own_dtype(monkeypatch, method, native):
    # L-BFGS-B's update is float64 whatever x0 is; the others compute in x0's dtype
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    obj = flatnn.Objective(net, X.astype(np.float32), y, 0.1)
    seen = []
    real = scipy.optimize.minimize

    def spy(fun, x0, jac=None, **kwargs):
        seen.append((x0.dtype, jac(x0.copy()).dtype, type(fun(x0.copy()))))
        return real(fun, x0, jac=jac, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", spy)
    res = flatnn.minimize(
        obj,
        net.init(0, dtype=np.float32),
        method=method,
        options={"maxiter": 3} if method != "TNC" else {"maxfun": 3},
    )
    want = np.dtype(np.float32 if native else np.float64)
    assert seen == [(want, want, float)] and res.x.dtype == np.float32


def test_a_custom_method_sees_float64_points_and_gradients_of_a_float32_objective():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    obj = flatnn.Objective(net, X.astype(np.float32), y, 0.1)
    seen = []

    def peek(fun, x0, args=(), jac=None, hessp=None, callback=None, **options):
        seen.append((x0.dtype, jac(x0).dtype))
        return scipy.optimize.OptimizeResult(x=x0, fun=fun(x0), success=True, nit=0)

    res = flatnn.minimize(obj, net.init(0, dtype=np.float32), method=peek)
    assert seen == [(np.dtype(np.float64), np.dtype(np.float64))]
    assert res.x.dtype == np.float32


@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC", "trust-constr"])
def test_legacy_callback_on_scipy_paths(method):
    got = []
    res = flatnn.minimize(
        XOR_NET, XOR_NET.init(1), XOR_X, XOR_Y, method=method, callback=lambda xk: got.append(xk)
    )
    assert len(got) == res.nit and all(x.shape == (XOR_NET.n_params,) for x in got)


def test_stop_iteration_with_validation_keeps_the_best_validation_iterate():
    X, y = blobs()
    net = flatnn.Network((5, 8, 3), hidden="tanh")
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x, intermediate_result.val_cost))
        if len(seen) == 40:
            raise StopIteration

    res = flatnn.minimize(net, net.init(0), X, y, callback=callback, validation=(X, (y + 1) % 3))
    best = min(range(40), key=lambda i: seen[i][1])
    assert best < 39  # the validation cost did turn up
    np.testing.assert_array_equal(res.x, seen[best][0])


def test_minimize_float32_and_objective_first_argument():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3))
    obj = flatnn.Objective(net, X.astype(np.float32), y, lam=0.1)
    res = flatnn.minimize(obj, net.init(0, dtype=np.float32), method="L-BFGS-B")
    assert res.success and res.x.dtype == np.float32 and res.jac.dtype == np.float32
    assert res.fun == pytest.approx(float(obj.cost(res.x)))


def test_minimize_dispatches_to_sgd():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3))
    options = dict(epochs=3, batch_size=20, learning_rate=0.01, rng=3)
    a = flatnn.minimize(net, net.init(0), X, y, 0.1, method="adam", options=options)
    b = flatnn.sgd(net, net.init(0), X, y, 0.1, method="adam", **options)
    np.testing.assert_array_equal(a.x, b.x)
    assert [h["fun"] for h in a.history] == [h["fun"] for h in b.history]
    assert len(a.history) == 3 and a.nfev == b.nfev == 3 * 5 + 1
    c = flatnn.minimize(net, net.init(0), X, y, 0.1, method=optimizers.adam(), options=options)
    np.testing.assert_array_equal(c.x, b.x)


def test_minimize_custom_scipy_method():
    def gradient_descent(
        fun, x0, args=(), jac=None, callback=None, maxiter=200, rate=0.5, **unused
    ):
        x = np.copy(x0)
        for _ in range(maxiter):
            g = jac(x)  # scipy memoizes the fused cost_grad: one pass
            x = x - rate * g
            if callback is not None:
                callback(np.copy(x))
        return OptimizeResult(x=x, fun=fun(x), nit=maxiter, nfev=0, success=True, message="done")

    X, y = blobs()
    net = flatnn.Network((5, 3))
    p0 = net.init(0)
    ticks = []
    res = flatnn.minimize(
        net,
        p0,
        X,
        y,
        0.1,
        method=gradient_descent,
        options={"maxiter": 50},
        callback=lambda intermediate_result: ticks.append(intermediate_result.nit),
    )
    assert res.fun < 0.5 * net.cost(p0, X, y, 0.1)
    assert ticks == list(range(1, 51)) and res.nit == 50
    # x0, then each new iterate once: the callback's evaluation is reused by the next step
    assert res.nfev == 51


@pytest.mark.parametrize(
    "call,error,match",
    [
        (dict(method="Nelder-Mead"), ValueError, "unknown method 'Nelder-Mead'"),
        (
            dict(method="adam"),
            ValueError,
            "needs options \\['epochs', 'batch_size', 'learning_rate'\\]",
        ),
        (
            dict(method="sgd", options=dict(epochs=1, batch_size=5, learning_rate=0.1, gtol=1)),
            ValueError,
            "unknown options \\['gtol'\\]",
        ),
        (dict(lam=-0.5), ValueError, "lam must be a finite number >= 0"),
        (dict(params0=np.zeros(19)), ValueError, "params0 has 19 entries; the network needs 18"),
        (dict(params0=np.zeros(18, dtype=int)), ValueError, "float32 or float64"),
        (dict(method=3), TypeError, "method must be"),
        (dict(callback=5), TypeError, "callback must be callable"),
    ],
)
def test_minimize_bad_arguments(call, error, match):
    X, y = blobs()
    net = flatnn.Network((5, 3))
    params0 = call.pop("params0", net.init(0))
    with pytest.raises(error, match=match):
        flatnn.minimize(net, params0, X, y, **call)


def test_minimize_objective_argument_errors():
    X, y = blobs()
    net = flatnn.Network((5, 3))
    obj = flatnn.Objective(net, X, y)
    with pytest.raises(TypeError, match="needs X and y"):
        flatnn.minimize(net, net.init(0))
    with pytest.raises(TypeError, match="omit X and y"):
        flatnn.minimize(obj, net.init(0), X, y)
    with pytest.raises(TypeError, match="a flatnn.Network or an objective"):
        flatnn.minimize(object(), net.init(0))
    assert math.isfinite(flatnn.minimize(obj, net.init(0)).fun)


def test_bad_validation_data_fails_before_training():
    X, y = blobs()
    net = flatnn.Network((5, 3))
    calls = []
    with pytest.raises(ValueError, match="label 7 is out of range"):
        flatnn.sgd(
            net,
            net.init(0),
            X,
            y,
            epochs=1,
            batch_size=10,
            learning_rate=0.1,
            validation=(X[:2], np.array([0, 7])),
            callback=calls.append,
        )
    with pytest.raises(ValueError, match="X has 4 features per row"):
        flatnn.minimize(net, net.init(0), X, y, validation=(X[:2, :4], y[:2]))
    assert calls == []


def test_full_batch_gradient_descent_uses_X_in_place():
    # batch_size == m: shuffling cannot change the gradient, so X is never permuted
    # (copied). Measured through memory: a copy of X would be 6.4 MB; the whole run,
    # activations and gradients included, stays far below that.
    import tracemalloc

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20000, 40)), rng.integers(0, 2, 20000)
    net = flatnn.Network((40, 2, 2))
    flatnn.sgd(net, net.init(0), X, y, epochs=1, batch_size=20000, learning_rate=0.5, rng=0)
    tracemalloc.start()
    try:
        res = flatnn.sgd(
            net, net.init(0), X, y, epochs=2, batch_size=20000, learning_rate=0.5, rng=0
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.nit == 2
    assert peak < X.nbytes / 3, (peak, X.nbytes)


# ------------------------------------------------------- the training engine
def test_sgd_equals_a_reference_loop_on_the_pure_functions_bit_for_bit():
    """The loop's buffers, gathers and in-place rules change nothing in the maths."""
    X, y = blobs(m=100)
    net = flatnn.Network((5, 7, 3), hidden="tanh")
    p0, lam = net.init(2), 0.7
    for method, rule in [("adam", optimizers.adam()), ("nesterov", optimizers.nesterov())]:
        res = flatnn.sgd(
            net, p0, X, y, lam, epochs=2, batch_size=32, learning_rate=0.05, method=method, rng=3
        )
        gen, params, state = np.random.default_rng(3), p0.copy(), rule.init(p0)
        for _ in range(2):
            order = gen.permutation(100)
            for lo in range(0, 100, 32):
                rows = order[lo : lo + 32]
                _, g = net.cost_grad(params, X[rows], y[rows], lam * len(rows) / 100)
                step, state = rule.update(g, state, params, 0.05)
                params = params + step
        assert res.x.tobytes() == params.tobytes(), method


def test_params0_is_safe_even_from_a_rule_that_writes_into_params():
    X, y = blobs()
    net = flatnn.Network((5, 4, 3))
    p0 = net.init(0)
    before = p0.copy()

    class Careless:
        def init(self, params):
            params[:] = 0.0  # writes into the loop's vector: must not reach params0
            return ()

        def update(self, grad, state, params, learning_rate):
            params *= 1.0
            return -learning_rate * grad, state

    flatnn.sgd(net, p0, X, y, epochs=1, batch_size=30, learning_rate=0.1, method=Careless())
    flatnn.sgd(net, p0, X, y, epochs=1, batch_size=30, learning_rate=0.1, method="adam")
    np.testing.assert_array_equal(p0, before)


def test_batch_callback_sees_every_batch_and_can_stop():
    X, y = blobs()  # 90 rows, batch 25: 4 batches per epoch
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    seen = []

    def on_batch(intermediate_result):
        r = intermediate_result
        seen.append((r.epoch, r.batch, r.fun, r.nfev, r.learning_rate, r.x.copy()))
        assert not r.x.flags.writeable
        if r.epoch == 1 and r.batch == 2:
            raise StopIteration

    res = flatnn.sgd(
        net,
        net.init(0),
        X,
        y,
        epochs=5,
        batch_size=25,
        learning_rate=0.2,
        rng=0,
        batch_callback=on_batch,
        validation=(X[:30], y[:30]),
    )
    assert [(e, b) for e, b, *_ in seen] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2)]
    assert [n for *_, n, _, _ in seen] == list(range(1, 8))
    assert res.status == 99 and not res.success and "batch_callback" in res.message
    assert res.nit == 1 and res.nfev == 7 + 1
    # the result is the better (by validation cost) of epoch 0's iterate and the current one
    candidates = [res.history[0]["val_cost"], net.cost(seen[-1][-1], X[:30], y[:30])]
    np.testing.assert_array_equal(res.x, [seen[3][-1], seen[-1][-1]][int(np.argmin(candidates))])
    # the batch costs of the first epoch average to its history entry
    sizes = np.array([25, 25, 25, 15])
    assert res.history[0]["fun"] == pytest.approx(
        float(np.dot(sizes, [c for _, _, c, *_ in seen[:4]])) / 90
    )


def test_batch_callback_in_the_legacy_form_gets_x():
    X, y = blobs()
    net = flatnn.Network((5, 3))
    got = []
    flatnn.sgd(
        net,
        net.init(0),
        X,
        y,
        epochs=1,
        batch_size=45,
        learning_rate=0.1,
        batch_callback=lambda xk: got.append(np.array(xk)),
    )
    assert len(got) == 2 and got[0].shape == (net.n_params,)
    with pytest.raises(TypeError, match="batch_callback must be callable"):
        flatnn.sgd(
            net, net.init(0), X, y, epochs=1, batch_size=45, learning_rate=0.1, batch_callback=3
        )


def test_data_is_validated_once_up_front():
    X, y = blobs()
    net = flatnn.Network((5, 3))
    bad = X.copy()
    bad[57, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or inf \\(1 rows, first at row 57\\)"):
        flatnn.sgd(net, net.init(0), bad, y, epochs=1, batch_size=10, learning_rate=0.1)
    with pytest.raises(ValueError, match="validation X_val contains NaN"):
        flatnn.sgd(
            net, net.init(0), X, y, epochs=1, batch_size=10, learning_rate=0.1, validation=(bad, y)
        )
    # integer pixels are converted once, and train like their float copy
    Xi = np.round(X * 10).astype(np.int16)
    a = flatnn.sgd(net, net.init(0), Xi, y, epochs=2, batch_size=10, learning_rate=0.01, rng=0)
    b = flatnn.sgd(
        net,
        net.init(0),
        Xi.astype(np.float64),
        y,
        epochs=2,
        batch_size=10,
        learning_rate=0.01,
        rng=0,
    )
    assert a.x.tobytes() == b.x.tobytes()


@pytest.mark.parametrize(
    "options,error,match",
    [
        ({"maxiter": -1}, ValueError, "options\\['maxiter'\\] must be an integer >= 1, got -1"),
        ({"maxiter": 2.5}, TypeError, "options\\['maxiter'\\] must be an integer"),
        ({"maxiter": True}, TypeError, "must be an integer"),
        ({"gtol": -1e-5}, ValueError, "options\\['gtol'\\] must be a finite number >= 0"),
        ({"gtol": "tiny"}, TypeError, "options\\['gtol'\\] must be a number"),
        ([("maxiter", 3)], TypeError, "options must be a dict"),
    ],
)
def test_minimize_refuses_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        flatnn.minimize(XOR_NET, XOR_NET.init(0), XOR_X, XOR_Y, method="L-BFGS-B", options=options)


@pytest.mark.filterwarnings("error")
def test_minimize_from_an_overflowing_start_warns_nothing():
    net = flatnn.Network((2, 4, 2), hidden="sigmoid", output="identity", loss="squared_error")
    p0 = np.full(net.n_params, 1e150)
    res = flatnn.minimize(net, p0, XOR_X, np.eye(2)[XOR_Y], method="CG", options={"maxiter": 5})
    assert not res.success


def test_large_batches_and_validation_follow_the_thread_setting():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9000, 6))
    y = rng.integers(0, 3, 9000)
    net = flatnn.Network((6, 5, 3), hidden="tanh")
    kw = dict(epochs=2, batch_size=9000, learning_rate=0.5, validation=(X, y), shuffle=False)
    with flatnn.threads.using(1):
        one = flatnn.sgd(net, net.init(0), X, y, 0.1, **kw)
    with flatnn.threads.using(2):
        two = flatnn.sgd(net, net.init(0), X, y, 0.1, **kw)
        again = flatnn.sgd(net, net.init(0), X, y, 0.1, **kw)
    assert two.x.tobytes() == again.x.tobytes()  # bit-identical at a given count
    np.testing.assert_allclose(two.x, one.x, rtol=1e-12, atol=1e-15)
    for a, b in zip(one.history, two.history):
        assert a["val_cost"] == pytest.approx(b["val_cost"], rel=1e-12)
        assert a["val_accuracy"] == b["val_accuracy"]
    assert two.history[-1]["val_cost"] == pytest.approx(net.cost(two.x, X, y), rel=1e-12)


def test_minimize_steps_back_from_an_overflowing_objective():
    # lam 1e308: finite at params0, inf one line-search step away. scipy sees inf
    # there (not an exception); the run ends with status 2, a finite x and
    # not_finite True, whatever scipy's own status says.
    net = flatnn.Network((2, 4, 2), hidden="tanh")
    X, y = np.array([[0.0, 0], [0, 1], [1, 0], [1, 1]]), np.array([0, 1, 1, 0])
    p0 = net.init(0)
    res = flatnn.minimize(net, p0, X, y, 1e308, method="L-BFGS-B")
    assert res.status == flatnn.training.STATUS_NOT_FINITE and not res.success
    assert res.not_finite is True
    assert np.isfinite(res.x).all() and np.isfinite(res.fun)
    assert np.array_equal(res.x, p0)  # no iterate had a finite objective
    ok = flatnn.minimize(net, p0, X, y, 1e-3, method="L-BFGS-B")
    assert ok.not_finite is False and ok.success


@pytest.mark.parametrize(
    "sizes, output, loss",
    [((5, 6, 3), "softmax", "cross_entropy"), ((5, 6, 1), "sigmoid", "cross_entropy"),
     ((5, 6, 3), "sigmoid", "cross_entropy"), ((5, 6, 3), "identity", "squared_error")],
)  # fmt: skip
def test_val_accuracy_in_the_history_is_net_accuracy_on_the_validation_data(sizes, output, loss):
    net = flatnn.Network(sizes, hidden="tanh", output=output, loss=loss)
    X, y = blobs(m=60, k=3)
    X_val, y_val = blobs(m=50, k=3, seed=9)
    if sizes[-1] == 1:
        y, y_val = y % 2, y_val % 2
    elif output == "identity":
        y, y_val = np.eye(3)[y], np.eye(3)[y_val]
    seen = []

    def on_epoch(intermediate_result):
        seen.append((intermediate_result.x, intermediate_result.val_accuracy))

    flatnn.sgd(net, net.init(1), X, y, epochs=4, batch_size=10, learning_rate=0.3, rng=2,
               validation=(X_val, y_val), callback=on_epoch)  # fmt: skip
    assert len(seen) == 4
    for x, val_accuracy in seen:
        assert val_accuracy == net.accuracy(x, X_val, y_val)


# ------------------------------------------------------- the final evaluation
def test_final_eval_false_skips_the_pass_and_changes_nothing_else():
    X, y = blobs()
    net = flatnn.Network((5, 6, 3), hidden="relu")
    kw = dict(epochs=3, batch_size=16, learning_rate=0.1, method="momentum", rng=4)
    full = flatnn.sgd(net, net.init(0), X, y, 0.3, **kw)
    quick = flatnn.sgd(net, net.init(0), X, y, 0.3, final_eval=False, **kw)
    assert quick.x.tobytes() == full.x.tobytes()
    assert math.isnan(quick.fun) and quick.jac is None
    assert quick.nfev == full.nfev - 1
    assert quick.status == full.status == 0 and quick.success
    for a, b in zip(quick.history, full.history, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }
    with pytest.raises(TypeError, match="final_eval must be True or False"):
        flatnn.sgd(net, net.init(0), X, y, final_eval="no", **kw)


def test_the_l2_term_leaves_bias_columns_alone_and_matches_its_formula():
    """The gradient's L2 part, written over whole layers then bias restored, is lam/m·W."""
    X, y = blobs()
    rng = np.random.default_rng(1)
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        net = flatnn.Network((5, 7, 3), hidden="tanh")
        p = net.init(3, dtype=dtype) + dtype(0.5) * rng.standard_normal(net.n_params).astype(dtype)
        lam, m = 2.5, X.shape[0]
        Xd = X.astype(dtype)
        g0 = net.grad(p, Xd, y, 0.0)
        g1 = net.grad(p, Xd, y, lam)
        for t, a, b in zip(net.unpack(p), net.unpack(g0), net.unpack(g1)):
            np.testing.assert_array_equal(b[:, 0], a[:, 0])
            np.testing.assert_allclose(b[:, 1:] - a[:, 1:], lam / m * t[:, 1:], rtol=tol, atol=tol)
        l2 = sum(float((t[:, 1:].astype(np.float64) ** 2).sum()) for t in net.unpack(p))
        expected = net.cost(p, Xd, y, 0.0) + lam / (2 * m) * l2
        assert net.cost(p, Xd, y, lam) == pytest.approx(expected, rel=tol)


def test_the_finite_check_tells_overflowing_finite_data_from_nan():
    from flatnn.base import checks

    big = np.full((4, 3), 3e38, dtype=np.float32)  # finite, but its sum overflows
    assert checks.finite_rows(big) is big
    for bad, row in ((np.nan, 2), (np.inf, 1), (-np.inf, 3)):
        X = big.copy()
        X[row, 1] = bad
        with pytest.raises(
            ValueError, match=rf"X contains NaN or inf \(1 rows, first at row {row}\)"
        ):
            checks.finite_rows(X)
    X = np.zeros((3, 2))
    X[0, 0], X[2, 1] = np.inf, -np.inf  # the sum is NaN: still two bad rows
    with pytest.raises(ValueError, match=r"\(2 rows, first at row 0\)"):
        checks.finite_rows(X)
