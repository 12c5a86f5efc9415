"""Dropout, max-norm, batch transforms and the cosine / warm-up schedules (issue 13)."""

import math

import attrs
import numpy as np
import pytest

import flatnn
from flatnn import augment, dropout, optimizers
from flatnn.core.gradcheck import numerical_grad


def blobs(m=90, n=16, k=3, seed=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(k, n))
    y = rng.integers(0, k, size=m)
    return centres[y] + rng.normal(size=(m, n)), y


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid", ("relu", "leaky_relu")])
@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_dropout_gradient_with_a_fixed_mask_matches_central_differences(hidden, lam):
    X, y = blobs(m=12)
    net = flatnn.Network((16, 7, 5, 3), hidden=hidden)
    params = net.init(1) + 0.05  # relu kinks away from the sample points
    masks = dropout.draw_masks(net, (0.2, 0.5, 0.3), 12, np.random.default_rng(3))
    assert all(m is not None for m in masks)
    _, grad = dropout.cost_grad(net, params, X, y, lam, masks)
    num = numerical_grad(lambda p: dropout.cost(net, p, X, y, lam, masks), params)
    err = np.abs(grad - num).max() / max(1e-8, np.abs(num).max())
    assert err < 1e-7


@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_weighted_dropout_gradient_matches_central_differences(lam):
    X, y = blobs(m=12)
    net = flatnn.Network((16, 7, 3), hidden="tanh")
    params = net.init(2)
    masks = dropout.draw_masks(net, (0.2, 0.5), 12, np.random.default_rng(4))
    w = np.random.default_rng(5).uniform(0, 2, 12)
    _, grad = dropout.cost_grad(net, params, X, y, lam, masks, sample_weight=w)
    num = numerical_grad(lambda p: dropout.cost(net, p, X, y, lam, masks, w), params)
    assert np.abs(grad - num).max() / max(1e-8, np.abs(num).max()) < 1e-7
    plain = dropout.cost_grad(net, params, X, y, lam, [None, None], sample_weight=w)
    ref = net.cost_grad(params, X, y, lam, sample_weight=w)
    assert plain[0] == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(plain[1], ref[1], rtol=1e-10, atol=1e-14)


def test_dropout_masks_change_the_cost_and_none_masks_are_the_plain_network():
    X, y = blobs(m=20)
    net = flatnn.Network((16, 8, 3), hidden="relu")
    params = net.init(0)
    plain = net.cost_grad(params, X, y, 0.3)
    same = dropout.cost_grad(net, params, X, y, 0.3, [None, None])
    assert same[0] == pytest.approx(plain[0], rel=1e-12)
    np.testing.assert_allclose(same[1], plain[1], rtol=1e-10, atol=1e-14)
    masks = dropout.draw_masks(net, (0.0, 0.5), 20, np.random.default_rng(0))
    assert masks[0] is None
    assert set(np.unique(masks[1])) <= {0.0, 2.0}
    assert dropout.cost(net, params, X, y, 0.3, masks) != pytest.approx(plain[0])


def test_inverted_dropout_keeps_the_expected_activation():
    net = flatnn.Network((200, 10, 3))
    mask = dropout.draw_masks(net, (0.3, 0.0), 2000, np.random.default_rng(1))[0]
    assert mask.mean() == pytest.approx(1.0, abs=0.01)
    assert (mask == 0).mean() == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize(
    "rates, exc",
    [
        ((0.1,), ValueError),
        ((0.1, 1.0), ValueError),
        ((0.1, -0.1), ValueError),
        (0.5, TypeError),
        (("a", 0.1), TypeError),
    ],
)
def test_bad_dropout_rates_are_named(rates, exc):
    X, y = blobs()
    net = flatnn.Network((16, 8, 3))
    with pytest.raises(exc, match="dropout|rate"):
        flatnn.sgd(
            net, net.init(0), X, y, epochs=1, batch_size=10, learning_rate=0.1, dropout=rates
        )


def test_sgd_with_dropout_same_seed_same_result_other_seed_differs_and_learns():
    X, y = blobs()
    net = flatnn.Network((16, 12, 3), hidden="relu")
    p0 = net.init(2)
    copies = [a.copy() for a in (X, y, p0)]
    kw = dict(epochs=8, batch_size=10, learning_rate=0.05, method="momentum", dropout=(0.2, 0.5))
    a = flatnn.sgd(net, p0, X, y, rng=3, **kw)
    b = flatnn.sgd(net, p0, X, y, rng=3, **kw)
    c = flatnn.sgd(net, p0, X, y, rng=4, **kw)
    plain = flatnn.sgd(net, p0, X, y, rng=3, **{**kw, "dropout": None})
    assert a.x.tobytes() == b.x.tobytes()
    assert a.x.tobytes() != c.x.tobytes()
    assert a.x.tobytes() != plain.x.tobytes()
    assert net.accuracy(a.x, X, y) > 0.9
    # fun/jac of the result are the deterministic objective, without dropout
    assert a.fun == pytest.approx(net.cost(a.x, X, y), rel=1e-12)
    for before, after in zip(copies, (X, y, p0)):
        np.testing.assert_array_equal(before, after)


def test_zero_rates_are_the_plain_path_bit_for_bit():
    X, y = blobs()
    net = flatnn.Network((16, 12, 3), hidden="relu")
    kw = dict(epochs=2, batch_size=16, learning_rate=0.05, rng=1)
    a = flatnn.sgd(net, net.init(0), X, y, dropout=(0.0, 0.0), **kw)
    b = flatnn.sgd(net, net.init(0), X, y, **kw)
    assert a.x.tobytes() == b.x.tobytes()


def test_dropout_float32_stays_float32():
    X, y = blobs()
    net = flatnn.Network((16, 12, 3), hidden="relu")
    res = flatnn.sgd(
        net,
        net.init(0, dtype=np.float32),
        X.astype(np.float32),
        y,
        epochs=2,
        batch_size=16,
        learning_rate=0.05,
        rng=1,
        dropout=(0.1, 0.3),
    )
    assert res.x.dtype == np.float32


def test_minimize_scipy_path_has_no_dropout_keyword():
    X, y = blobs()
    net = flatnn.Network((16, 6, 3))
    with pytest.raises(TypeError):
        flatnn.minimize(net, net.init(0), X, y, method="L-BFGS-B", options=None, dropout=(0.1, 0.1))


# ----------------------------------------------------------------- max-norm
def test_max_norm_holds_after_every_step():
    X, y = blobs()
    net = flatnn.Network((16, 12, 3), hidden="relu")
    c = 0.8

    def check(intermediate_result):
        for theta in net.unpack(intermediate_result.x):
            norms = np.linalg.norm(theta[:, 1:], axis=1)
            assert norms.max() <= c * (1 + 1e-12)

    res = flatnn.sgd(
        net,
        net.init(0) * 5,
        X,
        y,
        epochs=3,
        batch_size=16,
        learning_rate=0.5,
        rng=0,
        max_norm=c,
        batch_callback=check,
    )
    plain = flatnn.sgd(
        net, net.init(0) * 5, X, y, epochs=3, batch_size=16, learning_rate=0.5, rng=0
    )
    assert max(np.linalg.norm(t[:, 1:], axis=1).max() for t in net.unpack(plain.x)) > c
    assert max(np.linalg.norm(t[:, 1:], axis=1).max() for t in net.unpack(res.x)) <= c + 1e-12


def test_apply_max_norm_leaves_short_rows_and_biases_alone():
    net = flatnn.Network((3, 2, 2))
    params = np.zeros(net.n_params)
    thetas = net.unpack(params)
    thetas[0][0] = [7.0, 3.0, 4.0, 0.0]  # bias 7, norm 5
    thetas[0][1] = [1.0, 0.3, 0.4, 0.0]  # norm 0.5
    dropout.apply_max_norm(thetas, 2.0)
    np.testing.assert_allclose(thetas[0][0], [7.0, 1.2, 1.6, 0.0])
    np.testing.assert_allclose(thetas[0][1], [1.0, 0.3, 0.4, 0.0])


@pytest.mark.parametrize(
    "value, exc",
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.inf, ValueError),
        ("2", TypeError),
        (True, TypeError),
    ],
)
def test_bad_max_norm_is_named(value, exc):
    X, y = blobs()
    net = flatnn.Network((16, 6, 3))
    with pytest.raises(exc, match="max_norm"):
        flatnn.sgd(
            net, net.init(0), X, y, epochs=1, batch_size=10, learning_rate=0.1, max_norm=value
        )


# --------------------------------------------------------------- transforms
def test_translate_shifts_each_image_and_never_writes_into_its_input():
    rng = np.random.default_rng(0)
    X = rng.random((50, 28 * 28)).astype(np.float32)
    before = X.copy()
    out = augment.translate(2)(X, np.random.default_rng(1))
    np.testing.assert_array_equal(X, before)
    assert out.shape == X.shape and out.dtype == np.float32
    shifts = np.random.default_rng(1).integers(-2, 3, size=(50, 2))
    for i, (dy, dx) in enumerate(shifts):
        expect = np.zeros((28, 28), np.float32)
        src = X[i].reshape(28, 28)
        expect[max(0, dy) : 28 + min(0, dy), max(0, dx) : 28 + min(0, dx)] = src[
            max(0, -dy) : 28 - max(0, dy), max(0, -dx) : 28 - max(0, dx)
        ]
        np.testing.assert_array_equal(out[i].reshape(28, 28), expect)
    again = augment.translate(2)(X, np.random.default_rng(1))
    np.testing.assert_array_equal(out, again)


@pytest.mark.parametrize("arg, exc", [(0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_translate_bad_shift(arg, exc):
    with pytest.raises(exc, match="max_shift"):
        augment.translate(arg)


def test_translate_needs_square_images():
    with pytest.raises(ValueError, match="square"):
        augment.translate(1)(np.zeros((2, 10)), np.random.default_rng(0))


@pytest.mark.parametrize("shuffle", [True, False])
def test_sgd_transform_gets_a_copy_and_is_seeded(shuffle):
    X, y = blobs(n=16)
    net = flatnn.Network((16, 8, 3), hidden="relu")
    seen = []

    def vandal(X_batch, rng):  # a transform that writes into what it is given
        assert not np.shares_memory(X_batch, X)
        X_batch += 1.0
        seen.append(rng.random())
        return X_batch

    before = X.copy()
    kw = dict(epochs=2, batch_size=16, learning_rate=0.05, rng=5, shuffle=shuffle)
    flatnn.sgd(net, net.init(0), X, y, transform=vandal, **kw)
    np.testing.assert_array_equal(X, before)
    assert len(seen) == 2 * 6
    a = flatnn.sgd(net, net.init(0), X, y, transform=augment.translate(1), **kw)
    b = flatnn.sgd(net, net.init(0), X, y, transform=augment.translate(1), **kw)
    plain = flatnn.sgd(net, net.init(0), X, y, **kw)
    assert a.x.tobytes() == b.x.tobytes() != plain.x.tobytes()


def test_a_transform_returning_the_wrong_shape_is_named():
    X, y = blobs()
    net = flatnn.Network((16, 8, 3))
    with pytest.raises(ValueError, match="transform returned"):
        flatnn.sgd(
            net,
            net.init(0),
            X,
            y,
            epochs=1,
            batch_size=10,
            learning_rate=0.1,
            transform=lambda X_batch, rng: X_batch[:, :3].copy(),
        )
    with pytest.raises(TypeError, match="transform"):
        flatnn.sgd(net, net.init(0), X, y, epochs=1, batch_size=10, learning_rate=0.1, transform=3)


# ---------------------------------------------------------------- schedules
def test_cosine_decay_values():
    s = optimizers.cosine_decay(0.1, 4)
    assert [s(e) for e in range(6)] == pytest.approx(
        [
            0.1,
            0.05 * (1 + math.cos(math.pi / 4)),
            0.05,
            0.05 * (1 + math.cos(3 * math.pi / 4)),
            0.05 * (1 + math.cos(3 * math.pi / 4)),
            0.05 * (1 + math.cos(3 * math.pi / 4)),
        ]
    )
    f = optimizers.cosine_decay(0.1, 2, final=0.02)
    assert f(0) == pytest.approx(0.1) and f(1) == pytest.approx(0.06)
    assert all(s(e) > 0 for e in range(10))


def test_warmup_values():
    w = optimizers.warmup(0.3, 2)
    assert [w(e) for e in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])
    wc = optimizers.warmup(optimizers.cosine_decay(1.0, 4), 1)
    assert [wc(e) for e in range(3)] == pytest.approx([0.5, 0.5 * (1 + math.cos(math.pi / 4)), 0.5])


@pytest.mark.parametrize(
    "make, exc",
    [
        (lambda: optimizers.cosine_decay(0.0, 3), ValueError),
        (lambda: optimizers.cosine_decay(0.1, 0), ValueError),
        (lambda: optimizers.cosine_decay(0.1, 2.5), TypeError),
        (lambda: optimizers.cosine_decay(0.1, 3, final=0.2), ValueError),
        (lambda: optimizers.warmup(0.1, 0), ValueError),
        (lambda: optimizers.warmup("fast", 2), TypeError),
    ],
)
def test_bad_schedules_are_named(make, exc):
    with pytest.raises(exc):
        make()


def test_schedules_are_frozen_and_drive_sgd():
    s = optimizers.warmup(optimizers.cosine_decay(0.1, 3), 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.epochs = 4
    assert s == optimizers.warmup(optimizers.cosine_decay(0.1, 3), 1)
    X, y = blobs()
    net = flatnn.Network((16, 6, 3))
    res = flatnn.sgd(net, net.init(0), X, y, epochs=3, batch_size=30, learning_rate=s, rng=0)
    assert [h["learning_rate"] for h in res.history] == pytest.approx([s(0), s(1), s(2)])
