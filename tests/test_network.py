"""The Network spec: layout, validation, purity, dtypes, stability, and XOR end to end."""

import pickle
import warnings

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import flatnn

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
XOR_Y = np.array([0, 1, 1, 0])


# ----------------------------------------------------------------- the spec
def test_n_params_shapes_offsets():
    net = flatnn.Network((784, 30, 10))
    assert net.n_params == 23860
    assert net.shapes == ((30, 785), (10, 31))
    assert net.offsets == (0, 30 * 785, 23860)
    assert net.hidden_activations == ("sigmoid",)
    assert net.output == "softmax" and net.loss == "cross_entropy"
    assert flatnn.Network((2, 4, 1)).output == "sigmoid"


def test_spec_is_frozen_hashable_picklable():
    net = flatnn.Network((5, 4, 3, 2), hidden=("relu", "tanh"), output="softmax")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        net.sizes = (1, 2)
    same = flatnn.Network([5, 4, 3, 2], hidden=["relu", "tanh"])
    assert net == same and hash(net) == hash(same)
    assert flatnn.Network((3, 4, 4, 2), hidden="relu") == flatnn.Network(
        (3, 4, 4, 2), hidden=("relu", "relu")
    )
    assert net != flatnn.Network((5, 4, 3, 2), hidden=("relu", "relu"))
    assert pickle.loads(pickle.dumps(net)) == net
    assert flatnn.Network.from_dict(net.to_dict()) == net
    assert "Network((5, 4, 3, 2)" in repr(net)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sizes=(3,)), "at least an input and an output"),
        (dict(sizes=(3, 0, 2)), ">= 1"),
        (dict(sizes=(3, 2.5, 2)), "integers"),
        (dict(sizes=(3, True, 2)), "integers"),
        (dict(sizes=5), "sequence"),
        (dict(sizes=(3, 4, 2), hidden="swish"), "unknown activation 'swish'.*sigmoid"),
        (dict(sizes=(3, 4, 4, 2), hidden=("relu",)), "1 activations.*2 hidden"),
        (dict(sizes=(3, 4, 2), output="softplus"), "unknown output activation 'softplus'.*softmax"),
        (dict(sizes=(3, 4, 2), loss="hinge"), "unknown loss 'hinge'.*cross_entropy"),
        (
            dict(sizes=(3, 4, 2), output="tanh", loss="cross_entropy"),
            "needs output 'softmax' or 'sigmoid'",
        ),
        (dict(sizes=(3, 4, 1), output="softmax"), "at least 2 output units"),
    ],
)
def test_bad_specs_raise_naming_the_value(kwargs, message):
    sizes = kwargs.pop("sizes")
    with pytest.raises(ValueError, match=message):
        flatnn.Network(sizes, **kwargs)


# ------------------------------------------------------------------- layout
@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
    seed=st.integers(0, 1000),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_pack_unpack_round_trip_and_views(sizes, seed, dtype):
    net = flatnn.Network(sizes, output="sigmoid")
    params = net.init(rng=seed, dtype=dtype)
    thetas = net.unpack(params)
    assert [t.shape for t in thetas] == list(net.shapes)
    assert all(np.shares_memory(t, params) and t.flags.c_contiguous for t in thetas)
    again = net.pack(thetas)
    assert again.dtype == dtype and np.array_equal(again, params)
    assert not np.shares_memory(again, params)
    thetas[0][0, 0] = 42.0  # a view: writing through it writes the flat vector
    assert params[0] == 42.0
    # layout: layer by layer, C order, bias in column 0
    off = net.offsets
    assert np.array_equal(params[off[-2] : off[-2] + net.shapes[-1][1]], thetas[-1][0])


def test_layout_errors():
    net = flatnn.Network((784, 30, 10))
    with pytest.raises(ValueError, match="23859 entries.*needs 23860"):
        net.unpack(np.zeros(23859))
    with pytest.raises(ValueError, match="flat vector.*shape"):
        net.unpack(np.zeros((2, 23860)))
    with pytest.raises(ValueError, match="float dtype"):
        net.unpack(np.zeros(23860, dtype=np.int64))
    thetas = net.unpack(net.init(rng=0))
    with pytest.raises(ValueError, match=r"theta 1 has shape \(10, 30\).*\(10, 31\)"):
        net.pack([thetas[0], thetas[1][:, 1:]])
    with pytest.raises(ValueError, match="2 matrices.*got 1"):
        net.pack(thetas[:1])
    with pytest.raises(ValueError, match="float dtype"):
        net.pack([thetas[0].astype(int), thetas[1]])


def test_init_schemes_and_seeds():
    net = flatnn.Network((50, 40, 10), hidden="relu")
    assert np.array_equal(net.init(rng=3), net.init(rng=3))
    assert not np.array_equal(net.init(rng=3), net.init(rng=4))
    assert np.array_equal(net.init(rng=np.random.default_rng(5)), net.init(rng=5))
    assert net.init(rng=0, dtype=np.float32).dtype == np.float32
    t1, t2 = net.unpack(net.init(rng=1))
    assert np.all(t1[:, 0] == 0) and np.all(t2[:, 0] == 0)  # he / glorot: zero biases
    assert abs(t1[:, 1:].std() - np.sqrt(2 / 50)) < 0.1 * np.sqrt(2 / 50)  # he for relu
    limit = np.sqrt(6 / (40 + 10))  # glorot for the softmax layer
    assert np.abs(t2[:, 1:]).max() <= limit and np.abs(t2[:, 1:]).max() > 0.9 * limit
    u = net.init(rng=1, scheme="uniform")
    assert np.abs(u).max() <= 0.1 and np.abs(u).max() > 0.099
    assert np.all(net.unpack(u)[0][:, 0] != 0)
    n1, _ = net.unpack(net.init(rng=1, scheme="normal"))
    assert abs(n1[:, 1:].std() - 1 / np.sqrt(50)) < 0.1 / np.sqrt(50) and n1[:, 0].std() > 0.5
    assert abs(net.init(rng=1, scheme="standard_normal").std() - 1) < 0.05
    with pytest.raises(ValueError, match="unknown init scheme 'xavier2'"):
        net.init(scheme="xavier2")
    with pytest.raises(ValueError, match="float32 or float64"):
        net.init(dtype=np.int32)


# ------------------------------------------------------- the pure functions
def _problem(rng, sizes=(6, 5, 4), m=9, **kw):
    net = flatnn.Network(sizes, **kw)
    return net, net.init(rng=rng), rng.normal(size=(m, sizes[0])), rng.integers(0, sizes[-1], m)


def test_cost_grad_fused_equals_separate_and_inputs_untouched():
    rng = np.random.default_rng(0)
    net, params, X, y = _problem(rng, hidden="tanh")
    copies = params.copy(), X.copy(), y.copy()
    c, g = net.cost_grad(params, X, y, 0.3)
    assert c == net.cost(params, X, y, 0.3)
    assert np.array_equal(g, net.grad(params, X, y, 0.3))
    assert g.shape == params.shape and g.dtype == np.float64
    for before, after in zip(copies, (params, X, y)):
        assert np.array_equal(before, after)
    # calling again gives bit-identical results
    c2, g2 = net.cost_grad(params, X, y, 0.3)
    assert c2 == c and np.array_equal(g2, g)


def test_objective_formula_by_hand():
    rng = np.random.default_rng(1)
    net, params, X, y = _problem(rng, sizes=(3, 4, 3))
    lam, m = 0.5, X.shape[0]
    t1, t2 = net.unpack(params)
    a1 = 1 / (1 + np.exp(-(X @ t1[:, 1:].T + t1[:, 0])))
    z2 = a1 @ t2[:, 1:].T + t2[:, 0]
    p = np.exp(z2) / np.exp(z2).sum(axis=1, keepdims=True)
    expected = -np.log(p[np.arange(m), y]).mean() + lam / (2 * m) * (
        (t1[:, 1:] ** 2).sum() + (t2[:, 1:] ** 2).sum()
    )
    assert net.cost(params, X, y, lam) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(net.forward(params, X), p, rtol=1e-12)
    assert np.array_equal(net.predict(params, X), p.argmax(axis=1))


def test_binary_and_squared_error_by_hand():
    rng = np.random.default_rng(2)
    X, t = rng.normal(size=(7, 3)), rng.integers(0, 2, 7).astype(float)
    bce = flatnn.Network((3, 1), output="sigmoid", loss="cross_entropy")
    params = bce.init(rng=0)
    a = bce.forward(params, X)[:, 0]
    expected = -(t * np.log(a) + (1 - t) * np.log(1 - a)).mean()
    assert bce.cost(params, X, t) == pytest.approx(expected, rel=1e-12)
    assert bce.cost(params, X, t[:, None]) == bce.cost(params, X, t)
    se = flatnn.Network((3, 4, 2), output="sigmoid", loss="squared_error")
    params = se.init(rng=1)
    Y = np.eye(2)[t.astype(int)]
    expected = 0.5 * ((se.forward(params, X) - Y) ** 2).sum(axis=1).mean()
    assert se.cost(params, X, t.astype(int)) == pytest.approx(expected, rel=1e-12)
    assert se.cost(params, X, Y) == pytest.approx(expected, rel=1e-12)


def test_labels_and_one_hot_agree():
    rng = np.random.default_rng(3)
    for output, loss in [
        ("softmax", "cross_entropy"),
        ("sigmoid", "cross_entropy"),
        ("softmax", "squared_error"),
        ("tanh", "squared_error"),
    ]:
        net, params, X, y = _problem(rng, output=output, loss=loss)
        Y = np.eye(4)[y]
        c1, g1 = net.cost_grad(params, X, y, 0.1)
        c2, g2 = net.cost_grad(params, X, Y, 0.1)
        assert c1 == pytest.approx(c2, rel=1e-13)
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-15)
        assert net.accuracy(params, X, y) == net.accuracy(params, X, Y)


def test_accuracy_and_single_unit_predict():
    net = flatnn.Network((2, 1), output="sigmoid")
    params = np.array([0.0, 1.0, -1.0])  # z = x0 - x1
    X = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.5]])
    assert net.predict(params, X).tolist() == [1, 0, 1]
    assert net.accuracy(params, X, np.array([1, 0, 0])) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "case, message",
    [
        ("short_params", "8 entries.*needs 9"),
        ("X_1d", "2-D"),
        ("X_3d", "2-D"),
        ("X_wrong_features", "3 features per row.*takes 2"),
        ("X_nan", "NaN or inf"),
        ("X_inf", "NaN or inf"),
        ("y_wrong_m", "y has 3 rows; X has 4"),
        ("y_wrong_k", "y has 3 columns; the network has 1 outputs"),
        ("y_3d", "labels.*targets"),
        ("negative_lam", "lam must be a finite number >= 0"),
        ("nan_params", "params contains NaN"),
        ("target_out_of_range", r"targets must lie in \[0, 1\]"),
    ],
)
def test_bad_inputs_binary(case, message):
    net = flatnn.Network((2, 2, 1), output="sigmoid")
    params, X, y, lam = net.init(rng=0), XOR_X.copy(), XOR_Y.copy(), 0.0
    if case == "short_params":
        params = params[:-1]
    elif case == "X_1d":
        X = X[0]
    elif case == "X_3d":
        X = X[None]
    elif case == "X_wrong_features":
        X = np.ones((4, 3))
    elif case == "X_nan":
        X[2, 1] = np.nan
    elif case == "X_inf":
        X[1, 0] = np.inf
    elif case == "y_wrong_m":
        y = y[:3]
    elif case == "y_wrong_k":
        y = np.zeros((4, 3))
    elif case == "y_3d":
        y = np.zeros((4, 1, 1))
    elif case == "negative_lam":
        lam = -1.0
    elif case == "nan_params":
        params[0] = np.nan
    elif case == "target_out_of_range":
        y = np.array([0.0, 1.0, 2.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (net.cost, net.grad, net.cost_grad):
            with pytest.raises(ValueError, match=message):
                fn(params, X, y, lam)


def test_bad_labels_multiclass():
    rng = np.random.default_rng(4)
    net, params, X, y = _problem(rng)
    with pytest.raises(ValueError, match=r"label 4 is out of range.*\[0, 4\)"):
        net.cost(params, X, np.where(y == 0, 4, y))
    with pytest.raises(ValueError, match="label -1 is out of range"):
        net.cost(params, X, np.where(y == 0, -1, y))
    with pytest.raises(ValueError, match="must be integers"):
        net.cost(params, X, y + 0.5)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.forward(params, np.full_like(X, np.nan))
    with pytest.raises(ValueError, match="NaN or inf"):
        net.predict(params, np.full_like(X, np.inf))
    with pytest.raises(TypeError, match="lam must be a number"):
        net.cost(params, X, y, "a lot")
    assert net.cost(params, X, y.astype(float)) == net.cost(params, X, y)


# ------------------------------------------------------ dtypes and stability
def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    net = flatnn.Network((6, 5, 4), hidden="relu")
    params = net.init(rng=0, dtype=np.float32)
    X = rng.normal(size=(20, 6)).astype(np.float32)
    y = rng.integers(0, 4, 20)
    c, g = net.cost_grad(params, X, y, 0.1)
    assert g.dtype == np.float32 and isinstance(c, float)
    assert net.forward(params, X).dtype == np.float32
    assert net.hessp(params, params, X, y).dtype == np.float32
    # against float64 at float32 accuracy
    c64, g64 = net.cost_grad(params.astype(float), X.astype(float), y, 0.1)
    assert c == pytest.approx(c64, rel=1e-5)
    np.testing.assert_allclose(g, g64, rtol=1e-3, atol=1e-5)
    # mixed precision computes in float64
    assert net.grad(params, X.astype(float), y).dtype == np.float64
    # integer pixels follow the parameters
    assert net.grad(params, (X > 0).astype(np.uint8), y).dtype == np.float32


@pytest.mark.parametrize(
    "output, loss",
    [
        ("softmax", "cross_entropy"),
        ("sigmoid", "cross_entropy"),
        ("softmax", "squared_error"),
        ("sigmoid", "squared_error"),
        ("tanh", "squared_error"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_and_silent(output, loss, dtype):
    # weights that give |z| ~ 1e3 at the output and saturate every hidden unit
    net = flatnn.Network((2, 3, 3), hidden="sigmoid", output=output, loss=loss)
    params = (net.init(rng=0, scheme="standard_normal") * 1e3).astype(dtype)
    X = np.array([[1.0, -1.0], [30.0, 2.0], [-5.0, 8.0]], dtype=dtype)
    y = np.array([0, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c, g = net.cost_grad(params, X, y, 0.0)
        a = net.forward(params, X)
        hv = net.hessp(params, np.ones_like(params), X, y)
    assert np.isfinite(c) and np.isfinite(g).all()
    assert np.isfinite(a).all() and np.isfinite(hv).all()
    if loss == "cross_entropy":
        assert c > 1.0  # confidently wrong costs a lot: not clipped to a small number


def test_softmax_cross_entropy_exact_at_huge_logits():
    # z = (1000, 0): cost for label 1 is exactly 1000, for label 0 is log(1 + e^-1000) ~ 0
    net = flatnn.Network((1, 2), output="softmax")
    params = np.array([0.0, 1000.0, 0.0, 0.0])  # theta_0 = [[0, 1000], [0, 0]]
    X = np.array([[1.0]])
    assert net.cost(params, X, np.array([1])) == pytest.approx(1000.0)
    assert net.cost(params, X, np.array([0])) == 0.0
    bce = flatnn.Network((1, 1), output="sigmoid")
    assert bce.cost(np.array([0.0, -1000.0]), X, np.array([1.0])) == pytest.approx(1000.0)


# --------------------------------------------------------------- end to end
def test_xor_trains_with_lbfgs_and_cg_in_both_forms():
    net = flatnn.Network((2, 4, 1), hidden="sigmoid", output="sigmoid", loss="cross_entropy")
    p0 = net.init(rng=0)
    res = minimize(net.cost_grad, p0, args=(XOR_X, XOR_Y, 0.0), jac=True, method="L-BFGS-B")
    assert (net.predict(res.x, XOR_X) == XOR_Y).all() and res.fun < 0.01
    res = minimize(net.cost, p0, args=(XOR_X, XOR_Y, 0.0), jac=net.grad, method="CG")
    assert (net.predict(res.x, XOR_X) == XOR_Y).all() and res.fun < 0.01
    assert net.accuracy(res.x, XOR_X, XOR_Y) == 1.0


def test_objective_binds_data():
    rng = np.random.default_rng(6)
    net, params, X, y = _problem(rng)
    obj = flatnn.Objective(net, X, y, lam=0.2)
    assert obj.cost(params) == net.cost(params, X, y, 0.2)
    assert np.array_equal(obj.cost_grad(params)[1], net.grad(params, X, y, 0.2))
    v = rng.normal(size=params.size)
    assert np.array_equal(obj.hessp(params, v), net.hessp(params, v, X, y, 0.2))
    assert obj.m == 9 and obj.n_params == net.n_params
    with pytest.raises(ValueError, match="label 9 is out of range"):
        flatnn.Objective(net, X, np.full(9, 9))


def test_curvature_products_reject_nan_input():
    net = flatnn.Network((3, 4, 2))
    params = net.init(rng=0)
    X = np.ones((5, 3))
    X[2, 1] = np.nan
    for fn in (net.hessp, net.gnvp):
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            fn(params, params, X, np.array([0, 1, 0, 1, 0]))


def test_objective_formula_has_one_home_and_check_data_skips_rechecking():
    net = flatnn.Network((4, 5, 3), hidden="tanh")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    p, lam = net.init(1), 0.7
    loss_sum = net.cost(p, X, y) * 20
    assert np.isclose(net.cost_from_sum(loss_sum, p, 20, lam), net.cost(p, X, y, lam), rtol=1e-13)
    g = net.grad(p, X, y)
    np.testing.assert_allclose(
        net.add_l2_grad(g.copy(), p, 20, lam), net.grad(p, X, y, lam), rtol=1e-12
    )
    checked = net.check_data(X, y)
    assert net.cost(p, X, checked, lam) == net.cost(p, X, y, lam)
    assert net.accuracy(p, X, checked) == net.accuracy(p, X, y)
    with pytest.raises(ValueError, match="y has 20 rows; X has 19"):
        net.cost(p, X[:19], checked)
    with pytest.raises(ValueError, match="label 3 is out of range"):
        net.check_data(X, np.full(20, 3))


def test_shared_activations_are_immutable():
    from flatnn.core.activations import ACTIVATIONS

    with pytest.raises(AttributeError, match="immutable"):
        ACTIVATIONS["relu"].name = "x"
    assert ACTIVATIONS["relu"].name == "relu"
    assert not hasattr(flatnn.Network((2, 2)), "predict_proba")  # one name: forward


def test_activations_pickle_to_the_shared_instance():
    from flatnn.core.activations import ACTIVATIONS

    a = ACTIVATIONS["tanh"]
    assert pickle.loads(pickle.dumps(a)) is a
