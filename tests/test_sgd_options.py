"""flatnn.sgd's stopping options (monitor, score, tol, patience, on_plateau, return_best),
on_nonfinite, l2, initial_state/result.state, dropout mappings, and the probes of a run
that goes non-finite (issue 20): what the status and the message say."""

import math

import numpy as np
import pytest

import flatnn
from flatnn import optimizers
from flatnn.training import STATUS_DONE, STATUS_EARLY_STOPPED, STATUS_NOT_FINITE, minimize
from flatnn.training.scipy_bridge import TNC_INT_MAX


def blobs(m=120, n=5, k=3, seed=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(k, n))
    y = rng.integers(0, k, size=m)
    return centres[y] + rng.normal(size=(m, n)), y


NET = flatnn.Network((5, 8, 3), hidden="tanh")
X, Y = blobs()
X_VAL, Y_VAL = blobs(m=40, seed=6)
KW = dict(epochs=6, batch_size=20, learning_rate=0.2, rng=0)


def run(**kw):
    return flatnn.sgd(NET, NET.init(0), X, Y, **{**KW, **kw})


# ------------------------------------------------------------ the defaults
def test_default_options_are_the_plain_run_bit_for_bit():
    plain = run()
    spelled = run(monitor="fun", tol=0.0, on_nonfinite="stop", l2="per_data", sample_weight=None)
    assert plain.x.tobytes() == spelled.x.tobytes()
    assert [h["fun"] for h in plain.history] == [h["fun"] for h in spelled.history]


# ------------------------------------------------------- score and monitor
def test_score_is_recorded_and_the_best_iterate_follows_it():
    scores = []

    def score(params):
        value = NET.accuracy(params, X_VAL, Y_VAL)
        scores.append(value)
        return value

    res = run(score=score, monitor="val_score", early_stopping=math.inf, learning_rate=0.5)
    assert [h["val_score"] for h in res.history] == scores
    best = int(np.argmax(scores))  # the first of the highest: later ties do not replace it
    assert res.status == STATUS_DONE and res.nit == 6
    assert NET.accuracy(res.x, X_VAL, Y_VAL) == scores[best]


def test_monitor_needs_what_it_names():
    with pytest.raises(ValueError, match="monitor='val_score' needs score"):
        run(monitor="val_score")
    with pytest.raises(ValueError, match="monitor='val_cost' needs validation"):
        run(monitor="val_cost")
    with pytest.raises(ValueError, match="monitor must be"):
        run(monitor="accuracy")
    with pytest.raises(TypeError, match="score must be a callable"):
        run(score=3)
    with pytest.raises(ValueError, match="early_stopping needs validation"):
        run(early_stopping=2)


def test_patience_on_the_training_cost_with_a_huge_tol_stops_and_returns_the_last():
    # tol 1e9: no epoch ever "improves", so the count grows by one per epoch after the first
    res = run(monitor="fun", tol=1e9, early_stopping=3, return_best=False, epochs=20)
    assert res.status == STATUS_EARLY_STOPPED and res.nit == 4
    last = run(epochs=4)
    assert res.x.tobytes() == last.x.tobytes()  # the last iterate, as asked


def test_infinite_patience_never_stops():
    res = run(monitor="fun", tol=1e9, early_stopping=math.inf, epochs=8)
    assert res.status == STATUS_DONE and res.nit == 8
    with pytest.raises((TypeError, ValueError)):
        run(monitor="fun", early_stopping=-math.inf)


def test_on_plateau_resets_the_count_until_it_says_no():
    calls = []

    def on_plateau():
        calls.append(len(calls))
        return len(calls) < 3

    res = run(monitor="fun", tol=1e9, early_stopping=2, on_plateau=on_plateau, epochs=30)
    # epochs 0..2 reach the patience (count 2 after epoch 2); each yes buys 2 more epochs
    assert calls == [0, 1, 2] and res.status == STATUS_EARLY_STOPPED and res.nit == 7


def test_tol_counts_only_real_improvements_but_keeps_the_best():
    res = run(validation=(X_VAL, Y_VAL), tol=10.0, early_stopping=3, epochs=20)
    costs = [h["val_cost"] for h in res.history]
    assert res.nit == 4 and res.status == STATUS_EARLY_STOPPED
    # the best iterate is the lowest val_cost, though none improved by more than tol
    assert NET.cost(res.x, X_VAL, Y_VAL) == pytest.approx(min(costs), rel=1e-12)


# --------------------------------------------------------- on_nonfinite
def test_continue_records_nan_epochs_and_returns_the_best_finite_iterate():
    relu = flatnn.Network((5, 8, 3), hidden="relu")
    res = flatnn.sgd(
        relu,
        relu.init(0),
        X,
        Y,
        epochs=5,
        batch_size=20,
        learning_rate=1e300,
        rng=0,
        validation=(X_VAL, Y_VAL),
        on_nonfinite="continue",
    )
    assert res.nit == 5 and res.status == STATUS_NOT_FINITE and not res.success
    assert all(math.isnan(h["val_cost"]) for h in res.history[-2:])
    assert all(math.isnan(h["fun"]) for h in res.history[-2:])
    assert np.isfinite(res.x).all() and math.isfinite(res.fun)
    with pytest.raises(ValueError, match="on_nonfinite must be one of"):
        run(on_nonfinite="ignore")


# ------------------------------------------------------------------- l2
def test_per_batch_l2_is_the_network_cost_with_lam_itself_for_each_batch():
    lam = 0.3
    seen = []

    def on_batch(intermediate_result):
        seen.append((intermediate_result.batch, intermediate_result.fun))

    res = run(
        lam=lam,
        l2="per_batch",
        shuffle=False,
        epochs=1,
        batch_callback=on_batch,
    )
    params = NET.init(0)
    for batch, fun in seen:
        rows = slice(20 * batch, 20 * batch + 20)
        assert fun == pytest.approx(NET.cost(params, X[rows], Y[rows], lam), rel=1e-12)
        params = params - 0.2 * NET.grad(params, X[rows], Y[rows], lam)
    assert np.allclose(res.x, params, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="l2 must be one of"):
        run(l2="per_sample")


# ------------------------------------------------------- the rule's state
@pytest.mark.parametrize("method", ["momentum", "adam", "rmsprop"])
def test_two_runs_with_the_state_handed_over_are_one_run(method):
    kw = dict(shuffle=False, method=method, learning_rate=0.05)
    whole = run(epochs=4, **kw)
    first = run(epochs=2, **kw)
    state = optimizers.copy_state(first.state)
    second = flatnn.sgd(NET, first.x, X, Y, **{**KW, **kw, "epochs": 2}, initial_state=first.state)
    assert second.x.tobytes() == whole.x.tobytes()
    # the state given was copied, never written into
    for a, b in zip(leaves(first.state), leaves(state)):
        assert np.array_equal(a, b)


# ------------------------------------------------------- the stopping state
def test_result_stopping_is_the_best_monitored_value_and_the_count():
    res = run(epochs=3, monitor="fun", tol=1e9)  # only the first entry improves
    funs = [e["fun"] for e in res.history]
    assert res.stopping == {"monitor": "fun", "best": min(funs), "since_best": 2}
    scored = run(epochs=3, score=lambda x: -float(x[0] ** 2), monitor="val_score")
    best = max(e["val_score"] for e in scored.history)
    assert scored.stopping["monitor"] == "val_score" and scored.stopping["best"] == best


def test_a_carried_count_goes_on_from_where_the_last_run_left_it():
    first = run(epochs=2, monitor="fun", tol=1e9)
    assert first.stopping["since_best"] == 1
    kw = dict(monitor="fun", tol=1e9, early_stopping=3, epochs=6)
    fresh = flatnn.sgd(NET, first.x, X, Y, **{**KW, **kw})
    carried = flatnn.sgd(NET, first.x, X, Y, **{**KW, **kw}, initial_stopping=first.stopping)
    assert (fresh.status, fresh.nit) == (STATUS_EARLY_STOPPED, 4)  # 1 improving + 3 more
    assert (carried.status, carried.nit) == (STATUS_EARLY_STOPPED, 2)  # 1 + 2 more
    assert first.stopping["since_best"] == 1  # read, never written into


def test_a_carried_best_sets_the_bar_with_scikit_learns_comparison():
    # a carried best no entry can reach: every entry counts against the patience
    bar = {"monitor": "fun", "best": -1.0, "since_best": 0}
    res = run(monitor="fun", early_stopping=2, initial_stopping=bar)
    assert (res.status, res.nit, res.stopping["best"]) == (STATUS_EARLY_STOPPED, 2, -1.0)
    # equal to the bar counts as no worse (scikit-learn's tol rule); a fresh run needs better
    first = run(epochs=1, monitor="fun")
    again = {"monitor": "fun", "best": first.history[0]["fun"], "since_best": 5}
    res = flatnn.sgd(
        NET, NET.init(0), X, Y, **{**KW, "epochs": 1}, monitor="fun", initial_stopping=again
    )
    assert res.stopping["since_best"] == 0


def test_a_stopping_state_of_another_monitor_or_form_is_refused():
    with pytest.raises(ValueError, match="initial_stopping follows 'val_cost'"):
        run(monitor="fun", initial_stopping={"monitor": "val_cost", "best": 1.0, "since_best": 0})
    with pytest.raises(TypeError, match="previous result.stopping"):
        run(initial_stopping=3)
    with pytest.raises(ValueError, match="NaN"):
        run(initial_stopping={"monitor": "fun", "best": math.nan, "since_best": 0})


def leaves(state):
    if isinstance(state, tuple):
        return [leaf for s in state for leaf in leaves(s)]
    return [np.asarray(state)]


# --------------------------------------------------------- dropout mapping
def test_a_dropout_mapping_names_layer_inputs():
    as_list = run(dropout=[0.0, 0.5])
    as_map = run(dropout={1: 0.5})
    assert as_list.x.tobytes() == as_map.x.tobytes()
    with pytest.raises(ValueError, match="rate for layer input 2"):
        run(dropout={2: 0.1})
    with pytest.raises(TypeError, match="keys must be layer-input indices"):
        run(dropout={"hidden": 0.1})
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        run(dropout={0: 1.5})
    one_layer = flatnn.Network((5, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):  # not read as the rate 0 of its key
        flatnn.sgd(one_layer, one_layer.init(0), X, Y, **KW, dropout={0: 1.0})


# ------------------------------------------------ issue 20: non-finite runs
@pytest.mark.parametrize("batch_size", [20, 120])
def test_a_relu_network_at_learning_rate_1e300_ends_with_a_status(batch_size):
    relu = flatnn.Network((5, 8, 3), hidden="relu")
    res = flatnn.sgd(
        relu, relu.init(0), X, Y, epochs=3, batch_size=batch_size, learning_rate=1e300, rng=0
    )
    assert res.status in (2, 3) and not res.success
    assert np.isfinite(res.x).all() and math.isfinite(res.fun)
    assert "learning rate" in res.message


def test_a_cost_non_finite_before_any_step_names_lam_not_the_learning_rate():
    res = run(lam=1e308)
    assert res.status == STATUS_NOT_FINITE
    assert "before any step" in res.message and "lam" in res.message
    assert "learning rate" not in res.message
    assert res.x.tobytes() == NET.init(0).tobytes()


def test_a_transform_returning_nan_is_named():
    res = run(transform=lambda Xb, rng: Xb * np.nan)
    assert res.status == STATUS_NOT_FINITE
    assert "transform returned NaN" in res.message and "learning rate" not in res.message


@pytest.mark.parametrize("key", ["maxfun", "maxCGit"])
def test_tnc_limits_beyond_a_c_int_are_clamped(key):
    res = minimize(NET, NET.init(0), X, Y, method="TNC", options={key: 2**31, "maxfun": 50})
    assert res.nfev >= 1 and np.isfinite(res.x).all()
    huge = minimize(NET, NET.init(0), X, Y, method="TNC", options={"maxfun": 2**40})
    assert np.isfinite(huge.x).all() and TNC_INT_MAX == 2**31 - 1
