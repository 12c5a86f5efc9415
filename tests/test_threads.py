"""Threaded evaluations: the setting, determinism, agreement across counts, overflow."""

import threading
import warnings

import numpy as np
import pytest
import threadpoolctl

import flatnn
from flatnn import threads

BIG = 4 * threads.MIN_ROWS_PER_THREAD + 37  # rows enough for 4 threads, blocks of unequal size
LAM = 0.3


@pytest.fixture(autouse=True)
def default_setting(monkeypatch):
    """Every test starts from the default setting and leaves it there."""
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    flatnn.set_num_threads(None)
    yield
    flatnn.set_num_threads(None)


def _problem(
    hidden="tanh", output=None, loss="cross_entropy", m=BIG, dtype=np.float64, k=4, seed=0
):
    rng = np.random.default_rng(seed)
    spec = {"hidden": hidden, "loss": loss, **({"output": output} if output else {})}
    net = flatnn.Network((9, 7, 5, k), **spec)
    X = rng.standard_normal((m, 9)).astype(dtype)
    if loss == "cross_entropy" and net.output == "softmax":
        y = rng.integers(0, k, m)
    else:
        y = rng.random((m, k)).astype(dtype)
    params = net.init(seed, dtype=dtype)
    v = rng.standard_normal(net.n_params).astype(dtype)
    return net, params, v, X, y


def _evaluate(net, params, v, X, y):
    """Every threaded function of Network, as a dict of arrays."""
    cost, grad = net.cost_grad(params, X, y, LAM)
    return {
        "cost": np.float64(net.cost(params, X, y, LAM)),
        "cost_grad.cost": np.float64(cost),
        "cost_grad.grad": grad,
        "grad": net.grad(params, X, y, LAM),
        "hessp": net.hessp(params, v, X, y, LAM),
        "gnvp": net.gnvp(params, v, X, y, LAM),
        "forward": net.forward(params, X),
        "predict": net.predict(params, X),
        "accuracy": np.float64(net.accuracy(params, X, y)),
    }


CASES = [
    dict(hidden="tanh"),
    dict(hidden="sigmoid", output="sigmoid", loss="cross_entropy"),
    dict(hidden="relu", output="identity", loss="squared_error"),
    dict(hidden=("sigmoid", "leaky_relu"), output="softmax", loss="squared_error"),
]


# ---------------------------------------------------------------- setting
def test_set_and_get():
    flatnn.set_num_threads(3)
    assert flatnn.get_num_threads() == 3
    flatnn.set_num_threads(None)
    assert flatnn.get_num_threads() == threads.available_cores()


@pytest.mark.parametrize(
    "bad, error",
    [
        (0, ValueError),
        (-2, ValueError),
        (2.0, TypeError),
        ("2", TypeError),
        (True, TypeError),
        ([2], TypeError),
    ],
)
def test_set_rejects_bad_counts(bad, error):
    with pytest.raises(error, match="integer >= 1"):
        flatnn.set_num_threads(bad)
    assert flatnn.get_num_threads() == threads.available_cores()  # unchanged


def test_numpy_integers_are_counts():
    flatnn.set_num_threads(np.int64(2))
    assert flatnn.get_num_threads() == 2 and type(flatnn.get_num_threads()) is int


def test_environment_variable(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "3")
    assert flatnn.get_num_threads() == 3
    flatnn.set_num_threads(2)  # the call wins over the environment
    assert flatnn.get_num_threads() == 2
    flatnn.set_num_threads(None)
    assert flatnn.get_num_threads() == 3


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_environment_variable_is_reported(monkeypatch, raw):
    monkeypatch.setenv(threads.ENV_VAR, raw)
    with pytest.raises(ValueError, match=f"{threads.ENV_VAR}.*{raw}"):
        flatnn.get_num_threads()
    net, params, _, X, y = _problem()
    with pytest.raises(ValueError, match=threads.ENV_VAR):
        net.cost(params, X, y)


def test_using_is_local_to_the_thread_and_restores():
    flatnn.set_num_threads(2)
    seen = {}

    def other():
        seen["other"] = flatnn.get_num_threads()

    with threads.using(5):
        assert flatnn.get_num_threads() == 5
        with threads.using(1):
            assert flatnn.get_num_threads() == 1
        with threads.using(None):
            assert flatnn.get_num_threads() == 5
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["other"] == 2
    assert flatnn.get_num_threads() == 2
    with pytest.raises(TypeError), threads.using(1.0):
        pass


def test_small_batches_stay_on_one_thread():
    flatnn.set_num_threads(4)
    per = threads.MIN_ROWS_PER_THREAD
    assert threads.threads_for(1) == 1
    assert threads.threads_for(2 * per - 1) == 1
    assert threads.threads_for(2 * per) == 2
    assert threads.threads_for(100 * per) == 4
    # below the threshold a result does not depend on the setting, to the bit
    net, params, v, X, y = _problem(m=2 * per - 1)
    with threads.using(1):
        one = _evaluate(net, params, v, X, y)
    with threads.using(4):
        four = _evaluate(net, params, v, X, y)
    for key in one:
        assert np.array_equal(one[key], four[key]), key


def test_row_blocks_cover_the_rows_in_order():
    for m, n in [(10, 3), (BIG, 4), (7, 7), (2048, 1)]:
        blocks = threads.row_blocks(m, n)
        assert len(blocks) == n and blocks[0][0] == 0 and blocks[-1][1] == m
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
        sizes = [b - a for a, b in blocks]
        assert max(sizes) - min(sizes) <= 1


def test_large_batches_use_the_pool():
    net, params, _, X, y = _problem()
    with threads.using(3):
        net.cost_grad(params, X, y)
    names = [t.name for t in threading.enumerate()]
    assert sum(name.startswith("flatnn") for name in names) >= 2, names


def test_blas_threads_are_restored():
    before = [
        lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"
    ]
    net, params, v, X, y = _problem()
    with threads.using(3):
        _evaluate(net, params, v, X, y)
    after = [
        lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"
    ]
    assert after == before


# ------------------------------------------------------------ determinism
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.get('hidden')}-{c.get('loss')}")
@pytest.mark.parametrize("n", [2, 3, 4])
def test_bit_identical_from_run_to_run(case, n):
    net, params, v, X, y = _problem(**case)
    with threads.using(n):
        first = _evaluate(net, params, v, X, y)
        for _ in range(3):
            again = _evaluate(net, params, v, X, y)
            for key in first:
                assert np.array_equal(first[key], again[key]), key


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.get('hidden')}-{c.get('loss')}")
def test_counts_agree_to_1e_12_in_float64(case):
    net, params, v, X, y = _problem(**case)
    results = {}
    for n in (1, 2, 3, 4, 7):
        with threads.using(n):
            results[n] = _evaluate(net, params, v, X, y)
    for n in (2, 3, 4, 7):
        for key, ref in results[1].items():
            got = results[n][key]
            assert got.dtype == ref.dtype and got.shape == ref.shape, key
            if key in ("predict",):
                assert np.array_equal(got, ref), key
                continue
            scale = np.max(np.abs(ref))
            assert np.max(np.abs(got - ref)) <= 1e-12 * scale, (n, key)


def test_float32_stays_float32_and_agrees():
    net, params, v, X, y = _problem(dtype=np.float32)
    with threads.using(1):
        one = _evaluate(net, params, v, X, y)
    with threads.using(4):
        four = _evaluate(net, params, v, X, y)
    for key in ("cost_grad.grad", "hessp", "gnvp", "forward"):
        assert four[key].dtype == np.float32, key
        assert np.max(np.abs(four[key] - one[key])) <= 1e-5 * np.max(np.abs(one[key])), key


def test_concurrent_callers_get_the_serial_results():
    net, params, v, X, y = _problem()
    with threads.using(2):
        expected = _evaluate(net, params, v, X, y)
    out, errors = [], []

    def work():
        try:
            with threads.using(2):
                out.append(_evaluate(net, params, v, X, y))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    for got in out:
        for key in expected:
            assert np.array_equal(got[key], expected[key]), key


def test_nan_in_a_later_block_names_its_row():
    net, params, v, X, y = _problem()
    X = X.copy()
    row = BIG - 5  # in the last block
    X[row, 3] = np.nan
    with threads.using(4):
        for call in (
            lambda: net.cost_grad(params, X, y),
            lambda: net.hessp(params, v, X, y),
            lambda: net.predict(params, X),
        ):
            with pytest.raises(ValueError, match=f"first at row {row}"):
                call()


def test_objective_and_minimize_follow_the_setting():
    net, params, v, X, y = _problem()
    obj = flatnn.Objective(net, X, y, LAM)
    for n in (1, 3):
        with threads.using(n):
            c_obj, g_obj = obj.cost_grad(params)
            c_net, g_net = net.cost_grad(params, X, y, LAM)
            assert c_obj == c_net and np.array_equal(g_obj, g_net)
            assert np.array_equal(obj.hessp(params, v), net.hessp(params, v, X, y, LAM))
    results = {}
    for n in (1, 3):
        with threads.using(n):
            results[n] = flatnn.minimize(obj, params, method="L-BFGS-B", options={"maxiter": 5})
    assert results[3].fun == pytest.approx(results[1].fun, rel=1e-10)


# --------------------------------------------------------------- overflow
def _overflowing(dtype, m):
    """A relu network whose finite input overflows to inf - inf = NaN."""
    net = flatnn.Network((3, 4, 2), hidden="relu")
    params = np.ones(net.n_params, dtype=dtype)
    params[net.offsets[1] :] *= np.where(np.arange(net.n_params - net.offsets[1]) % 2, 1, -1)
    big = np.finfo(dtype).max / 2
    X = np.full((m, 3), big, dtype=dtype)
    y = np.arange(m) % 2
    return net, params, X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [10, BIG])
def test_overflow_raises_a_value_error_without_warnings(dtype, m):
    net, params, X, y = _overflowing(dtype, m)
    v = np.ones_like(params)
    calls = {
        "cost": lambda: net.cost(params, X, y),
        "grad": lambda: net.grad(params, X, y),
        "cost_grad": lambda: net.cost_grad(params, X, y),
        "hessp": lambda: net.hessp(params, v, X, y),
        "gnvp": lambda: net.gnvp(params, v, X, y),
        "forward": lambda: net.forward(params, X),
        "predict": lambda: net.predict(params, X),
        "accuracy": lambda: net.accuracy(params, X, y),
    }
    with warnings.catch_warnings(), threads.using(4):
        warnings.simplefilter("error")
        for name, call in calls.items():
            with pytest.raises(ValueError, match="overflows") as info:
                call()
            assert "largest |X|" in str(info.value), name


def test_huge_params_overflow_the_l2_term():
    net, params, _, X, y = _problem(m=50)
    params = np.full_like(params, 1e200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"cost overflows float64.*1e\+200"):
            net.cost(params, X, y, lam=1.0)
        with pytest.raises(ValueError, match="overflows"):
            net.cost_grad(params, X, y, lam=1.0)


def test_large_finite_results_are_returned():
    # saturated sigmoids: huge but finite inputs give a finite answer, no error
    net, params, v, X, y = _problem(hidden="sigmoid", m=50)
    X = X * 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost, grad = net.cost_grad(params, X, y)
        assert np.isfinite(cost) and np.isfinite(grad).all()


def test_nonfinite_v_is_refused():
    net, params, v, X, y = _problem(m=50)
    v[3] = np.inf
    with pytest.raises(ValueError, match="v contains NaN or inf"):
        net.hessp(params, v, X, y)


def test_callers_with_different_counts_at_once():
    net, params, v, X, y = _problem()
    expected = {}
    for n in (2, 3, 4):
        with threads.using(n):
            expected[n] = net.cost_grad(params, X, y, LAM)[1]
    errors = []

    def work(n):
        try:
            with threads.using(n):
                for _ in range(5):
                    assert np.array_equal(net.cost_grad(params, X, y, LAM)[1], expected[n])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in (2, 3, 4, 2, 4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("fn", ["cost", "cost_grad"])
def test_a_threaded_evaluation_sums_the_weights_while_blas_is_on_one_thread(monkeypatch, fn):
    # a BLAS dot over every weight on several BLAS threads leaves them spinning after
    # the evaluation, beside whatever runs next (SciPy's L-BFGS-B update: 40 % slower)
    from flatnn.core import evaluation

    net, params, _, X, y = _problem()
    seen = []
    real = evaluation.l2_norms

    def spy(thetas):
        seen.append(
            [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        )
        return real(thetas)

    monkeypatch.setattr(evaluation, "l2_norms", spy)
    with threadpoolctl.threadpool_limits(2, user_api="blas"), threads.using(2):
        got = getattr(net, fn)(params, X, y, 0.3)
    assert len(seen) == 1 and seen[0] and set(seen[0]) == {1}
    with threads.using(1):
        want = getattr(net, fn)(params, X, y, 0.3)
    value = got[0] if fn == "cost_grad" else got
    assert value == pytest.approx(want[0] if fn == "cost_grad" else want, rel=1e-12)


def test_a_layer_of_half_a_million_weights_is_summed_on_one_blas_thread(monkeypatch):
    # an SGD step sums the weights for its L2 term; a long BLAS dot on several threads
    # leaves them spinning beside the elementwise update that follows
    from flatnn.base import threads as base_threads
    from flatnn.core import evaluation

    seen = []
    real = base_threads.one_blas_thread

    def spy():
        seen.append(
            [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        )
        return real()

    monkeypatch.setattr(base_threads, "one_blas_thread", spy)
    big = flatnn.Network((evaluation.HELD_DOT_SIZE // 2, 2, 2))  # 2 x (n + 1) weights
    small = flatnn.Network((784, 100, 10))
    for net, held in ((big, 1), (small, 0)):
        seen.clear()
        thetas = net.unpack(net.init(0))
        got = evaluation.l2_norms(thetas)
        assert len(seen) == held
        want = sum(float(np.sum(t[:, 1:].astype(np.longdouble) ** 2)) for t in thetas)
        assert got == pytest.approx(want, rel=1e-12)
