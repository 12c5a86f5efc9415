"""Captcha characters rendered with the `captcha` package (the flatnn[captcha] extra)."""

import os
import random
import sys

import numpy as np
import pytest

from flatnn.datasets import load_captcha, whole_captcha_accuracy

try:
    import captcha.image
except ImportError:  # CI installs the extra and must run these tests
    if os.environ.get("CI"):
        raise
    pytest.skip("the captcha tests need: pip install flatnn[captcha]", allow_module_level=True)

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def sixty():
    return load_captcha(60, rng=0)


def test_shapes_labels_and_texts(sixty):
    c = sixty
    assert c.X.shape == (240, 260) and c.X.dtype == np.float64 and c.X.flags.c_contiguous
    assert c.y.shape == (240,) and c.y.dtype == np.int64
    assert len(c.texts) == c.n_captchas == 60 and all(len(t) == 4 for t in c.texts)
    assert c.class_names == tuple(CHARS)
    assert "".join(c.class_names[k] for k in c.y) == "".join(c.texts)
    assert c.X.min() >= 0.0 and c.X.max() <= 1.0
    # every cell holds ink and background: a character was cut, not an empty strip
    assert (c.X.min(axis=1) == 0.0).all() and (c.X.max(axis=1) == 1.0).all()
    assert repr(c) == "CaptchaSet(n_captchas=60, X=(240, 260), n_classes=36)"


def test_labels_cover_the_36_classes():
    c = load_captcha(100, rng=3)
    assert set(c.y.tolist()) == set(range(36))
    assert c.y[:4].tolist() == [CHARS.index(ch) for ch in c.texts[0]]


def test_deterministic_for_a_seed_and_different_across_seeds(sixty):
    again = load_captcha(60, rng=0)
    np.testing.assert_array_equal(sixty.X, again.X)
    assert sixty.texts == again.texts
    other = load_captcha(60, rng=1)
    assert other.texts != sixty.texts
    assert not np.array_equal(other.X, sixty.X)
    # a prefix of a longer set is the shorter set
    np.testing.assert_array_equal(load_captcha(5, rng=0).X, sixty.X[:20])


def test_generator_rng_and_global_random_state_untouched():
    state = random.getstate()
    secrets_module = captcha.image.__dict__.get("secrets")
    a = load_captcha(3, rng=np.random.default_rng(7))
    b = load_captcha(3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.X, b.X)
    assert random.getstate() == state
    assert captcha.image.__dict__.get("secrets") is secrets_module


def test_cells_are_characters_a_nearest_neighbour_can_read():
    """The cells line up with the characters: 1-nearest-neighbour on held-out captchas beats
    chance by far."""
    train, test = load_captcha(150, rng=10), load_captcha(30, rng=11)
    d = (test.X**2).sum(1)[:, None] - 2 * test.X @ train.X.T + (train.X**2).sum(1)[None, :]
    predicted = train.y[d.argmin(axis=1)]
    assert np.mean(predicted == test.y) > 0.6  # chance is 1/36; measured 0.96


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_captchas must be an integer >= 0, got -1"):
        load_captcha(-1)
    with pytest.raises(TypeError, match="got 2.5"):
        load_captcha(2.5)
    with pytest.raises(
        TypeError, match="rng must be None, an int seed or a numpy.random.Generator, got 'a'"
    ):
        load_captcha(2, rng="a")
    assert load_captcha(0).X.shape == (0, 260)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "captcha.image", None)
    with pytest.raises(ImportError, match=r"pip install flatnn\[captcha\]"):
        load_captcha(1)


def test_whole_captcha_accuracy():
    y = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    assert whole_captcha_accuracy(y, y) == 1.0
    wrong_one = y.copy()
    wrong_one[6] = 0
    assert whole_captcha_accuracy(y, wrong_one) == 0.5
    with pytest.raises(ValueError, match="multiple of 4 labels, got 6"):
        whole_captcha_accuracy(y[:6], y[:6])
    with pytest.raises(ValueError, match="same shape"):
        whole_captcha_accuracy(y, y[:4])


# ------------------------------------------ more training captchas, held-out captchas
def test_train_captchas_renders_more_of_the_same_training_split():
    from flatnn.datasets import CAPTCHA_SPLITS, load

    base = load("captcha")
    more = load("captcha", train_captchas=CAPTCHA_SPLITS["train"][1] + 25)
    fewer = load("captcha", train_captchas=10)
    n = 4 * CAPTCHA_SPLITS["train"][1]
    assert base.X_train.shape == (n, 260) and more.X_train.shape == (n + 100, 260)
    assert fewer.X_train.shape == (40, 260)
    # the same seed: the default split is a prefix of the larger one, and so is the smaller
    assert np.array_equal(more.X_train[:n], base.X_train)
    assert np.array_equal(more.y_train[:n], base.y_train)
    assert np.array_equal(fewer.X_train, base.X_train[:40])
    for split in ("X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(getattr(more, split), getattr(base, split)), split


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(name="xor", train_captchas=5), ValueError, "captcha, not xor"),
        (dict(name="captcha", train_captchas=0), ValueError, "train_captchas"),
        (dict(name="captcha", train_captchas=2.5), TypeError, "train_captchas"),
    ],
)
def test_train_captchas_bad_arguments(kwargs, error, match):
    from flatnn.datasets import load

    with pytest.raises(error, match=match):
        load(**kwargs)


def test_heldout_captchas_use_a_seed_no_split_uses():
    from flatnn.datasets import CAPTCHA_HELDOUT, CAPTCHA_SPLITS, load_captcha_heldout

    seed, n = CAPTCHA_HELDOUT
    assert seed not in {s for s, _ in CAPTCHA_SPLITS.values()} and n >= 1000
    held = load_captcha_heldout(8, dtype=np.float32)
    assert held.X.shape == (32, 260) and held.X.dtype == np.float32
    same = load_captcha(8, rng=seed)
    assert held.texts == same.texts and np.array_equal(held.X, same.X.astype(np.float32))
    for split_seed, _ in CAPTCHA_SPLITS.values():
        assert load_captcha(8, rng=split_seed).texts != held.texts
    assert load_captcha_heldout(3).texts == held.texts[:3]


def test_limit_renders_only_the_captchas_it_keeps(monkeypatch):
    import flatnn.datasets.captcha as captcha_module
    from flatnn.datasets import CAPTCHA_SPLITS, load

    rendered = []
    real = captcha_module.load_captcha

    def counting(n, **kwargs):
        rendered.append(n)
        return real(n, **kwargs)

    monkeypatch.setattr(captcha_module, "load_captcha", counting)
    s = load("captcha", limit=6)
    assert rendered == [2, 2, 2]  # ceil(6 / 4) captchas per split, not 400/100/100
    assert s.X_train.shape == (6, 260) and s.X_test.shape == (6, 260)
    first = real(2, rng=CAPTCHA_SPLITS["train"][0])
    np.testing.assert_array_equal(s.X_train, first.X[:6])
    np.testing.assert_array_equal(s.y_train, first.y[:6])
