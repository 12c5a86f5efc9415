"""flatnn.training.recipes: a recipe resolved against a user's choices, and its schedule."""

import numpy as np
import pytest

import flatnn
from flatnn.cli import presets
from flatnn.training import recipes


def mnist():
    return presets.recipe("mnist", "fast")


def test_no_choices_keep_the_recipe():
    cfg = recipes.resolve(mnist(), {"epochs": None, "dropout": None})
    assert cfg == dict(mnist(), dtype=np.dtype("float32"))


def test_choices_win_and_max_norm_zero_is_off():
    cfg = recipes.resolve(presets.recipe("mnist", "best"), {"epochs": 2, "max_norm": 0})
    assert cfg["epochs"] == 2 and cfg["max_norm"] is None


def test_another_rule_gets_its_own_learning_rate():
    cfg = recipes.resolve(mnist(), {"method": "adam"}, {"adam": 0.001})
    assert cfg["learning_rate"] == 0.001
    cfg = recipes.resolve(mnist(), {"method": "adam", "learning_rate": 0.01}, {"adam": 0.001})
    assert cfg["learning_rate"] == 0.01


def test_sgd_only_settings_with_a_scipy_method_are_named():
    with pytest.raises(recipes.NotForThisMethod) as info:
        recipes.resolve(presets.recipe("mnist", "best"), {"method": "L-BFGS-B"})
    assert info.value.keys == ("input_dropout", "dropout", "max_norm", "augment", "schedule")
    assert info.value.method == "L-BFGS-B" and isinstance(info.value, ValueError)


@pytest.mark.parametrize("rate", [1.0, -0.1])
def test_dropout_rate_outside_zero_to_one_is_refused(rate):
    with pytest.raises(ValueError, match=r"dropout must be a rate in \[0, 1\)"):
        recipes.resolve(mnist(), {"dropout": rate})


def test_momentum_for_a_rule_without_one_is_refused():
    with pytest.raises(ValueError, match="momentum applies to"):
        recipes.resolve(mnist(), {"method": "adam", "momentum": 0.5})


def test_learning_rate_schedules():
    opt = flatnn.optimizers
    cfg = dict(mnist(), schedule="cosine", epochs=4, warmup=1)
    assert recipes.learning_rate_schedule(cfg) == opt.warmup(opt.cosine_decay(0.1, 4), 1)
    assert recipes.learning_rate_schedule(mnist()) == opt.exponential_decay(0.1, 0.6)
    assert recipes.learning_rate_schedule(dict(mnist(), lr_decay=1.0)) == 0.1
