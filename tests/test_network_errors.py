"""Issue 11: specs, L2 strengths, directions and schedules that cannot mean what was written."""

import numpy as np
import pytest

import flatnn
from flatnn import optimizers


@pytest.mark.parametrize(
    "sizes",
    [{784, 30, 10}, frozenset((3, 2)), {3: 1, 2: 1}, b"\x03\x02", bytearray(b"\x03\x02"), "32"],
)
def test_unordered_or_byte_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match=f"ordered sequence.*got {type(sizes).__name__}"):
        flatnn.Network(sizes)


@pytest.mark.parametrize("sizes", [(), (3,), [], iter(())])
def test_too_few_sizes_is_a_value_error_not_an_index_error(sizes):
    with pytest.raises(ValueError, match="at least an input and an output size"):
        flatnn.Network(sizes)


def test_ordered_sequences_and_numpy_integers_still_build():
    assert flatnn.Network([784, 30, 10]).sizes == (784, 30, 10)
    assert flatnn.Network(np.array([4, 3, 2])).sizes == (4, 3, 2)
    assert flatnn.Network(x for x in (4, 3, 2)).sizes == (4, 3, 2)


@pytest.mark.parametrize(
    "hidden", [None, 5, 2.0, {"relu"}, {"a": "relu"}, ["relu", 5], ("relu", None)]
)
def test_hidden_of_the_wrong_kind_names_hidden(hidden):
    with pytest.raises(TypeError, match="hidden must be an activation name"):
        flatnn.Network((3, 4, 4, 2), hidden=hidden)


@pytest.mark.parametrize(
    "field,value", [("output", None), ("output", 5), ("loss", None), ("loss", ["cross_entropy"])]
)
def test_output_and_loss_of_the_wrong_kind_name_the_field(field, value):
    with pytest.raises(TypeError, match=f"{field} must be"):
        flatnn.Network((3, 2), **{field: value})


@pytest.mark.parametrize("lam", ["0.5", True, np.bool_(True), None, 1j, [0.5], b"1"])
def test_lam_of_the_wrong_kind_is_refused_everywhere(lam):
    net = flatnn.Network((3, 2, 2))
    p = net.init(0)
    X, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
    for call in (
        lambda: net.cost(p, X, y, lam),
        lambda: net.cost_grad(p, X, y, lam),
        lambda: net.hessp(p, p, X, y, lam),
        lambda: flatnn.Objective(net, X, y, lam),
        lambda: flatnn.minimize(net, p, X, y, lam),
    ):
        with pytest.raises(TypeError, match="lam must be a number"):
            call()


def test_lam_accepts_numpy_scalars_and_0d_arrays():
    net = flatnn.Network((3, 2, 2))
    p = net.init(0)
    X, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
    ref = net.cost(p, X, y, 0.5)
    assert net.cost(p, X, y, np.float32(0.5)) == ref
    assert net.cost(p, X, y, np.array(0.5)) == ref
    assert net.cost(p, X, y, 1) > net.cost(p, X, y, 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("product", ["hessp", "gnvp"])
def test_non_finite_direction_is_refused(product, bad):
    net = flatnn.Network((3, 4, 2))
    p = net.init(0)
    X, y = np.ones((5, 3)), np.array([0, 1, 0, 1, 1])
    v = np.ones(net.n_params)
    v[7] = bad
    with pytest.raises(ValueError, match="v contains NaN or inf.*index 7"):
        getattr(net, product)(p, v, X, y)
    # unpack and pack still take any float vector (a NaN weight is the caller's to find)
    assert np.isnan(net.pack(net.unpack(np.full(net.n_params, np.nan)))).all()


@pytest.mark.parametrize("every", [1.5, 2.0, True, "3", np.float64(2.5), float("inf"), None])
def test_step_decay_refuses_non_integral_every(every):
    with pytest.raises(TypeError, match=r"every \(epochs between drops\) must be an integer"):
        optimizers.step_decay(0.1, 0.5, every)


def test_step_decay_accepts_numpy_integers():
    s = optimizers.step_decay(0.1, 0.5, np.int64(2))
    assert [s(e) for e in range(4)] == [0.1, 0.1, 0.05, 0.05]


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda: optimizers.step_decay("0.1", 0.5, 2), "learning_rate"),
        (lambda: optimizers.step_decay(0.1, True, 2), "drop"),
        (lambda: optimizers.exponential_decay(0.1, "0.9"), "rate"),
        (lambda: optimizers.exponential_decay(True, 0.9), "learning_rate"),
        (lambda: optimizers.constant("1"), "learning_rate"),
    ],
)
def test_schedule_hyperparameters_of_the_wrong_kind_name_the_field(make, field):
    with pytest.raises(TypeError, match=f"{field} must be a number"):
        make()
