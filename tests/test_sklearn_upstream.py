"""scikit-learn's own MLP tests, run on flatnn's estimators.

The installed ``sklearn/neural_network/tests/test_mlp.py`` is imported at run
time (nothing of it is copied here); each of its test functions is collected
here, with its parametrizations, and runs with the module's ``MLPClassifier``
and ``MLPRegressor`` replaced by flatnn's (the module attributes, and the
classes among a parametrization's values). Each test that fails with flatnn is
listed in :data:`EXPECTED_FAILURES` with its reason, as a strict xfail: one
that starts passing fails the run until it is taken off the list.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

pytest.importorskip("sklearn")
upstream = pytest.importorskip("sklearn.neural_network.tests.test_mlp")

from sklearn import neural_network  # noqa: E402

from flatnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

SWAP = {neural_network.MLPClassifier: MLPClassifier, neural_network.MLPRegressor: MLPRegressor}

PRIVATE = "reads scikit-learn's private internals"
EXPECTED_FAILURES = {
    "test_fit": f"{PRIVATE}: assigns lists to coefs_ and intercepts_ and calls "
    "_forward_pass/_backprop (flatnn's coefs_ are read-only views into params_)",
    "test_gradient": f"{PRIVATE}: calls the estimator's _loss_grad_lbfgs",
    "test_learning_rate_warmstart": f"{PRIVATE}: reads _optimizer.learning_rate",
    "test_adaptive_learning_rate": f"{PRIVATE}: reads _optimizer.learning_rate",
}
"""Upstream tests expected to fail with flatnn, and why (strict xfail)."""


@pytest.fixture(autouse=True)
def flatnn_estimators(monkeypatch: pytest.MonkeyPatch) -> None:
    """The upstream module's estimators are flatnn's while a test runs."""
    monkeypatch.setattr(upstream, "MLPClassifier", MLPClassifier)
    monkeypatch.setattr(upstream, "MLPRegressor", MLPRegressor)


@pytest.fixture
def global_random_seed() -> int:
    """scikit-learn's conftest fixture, at its default seed."""
    return 42


def _swap(value: Any) -> Any:
    return SWAP.get(value, value) if isinstance(value, type) else value


def _collected(name: str, func: Any) -> Any:
    """A test that calls ``func`` with flatnn's classes in place of scikit-learn's."""

    def test(**kwargs: Any) -> None:
        func(**{key: _swap(value) for key, value in kwargs.items()})

    test.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    test.__name__ = test.__qualname__ = name
    test.__doc__ = f"scikit-learn's {name}, on flatnn's estimators."
    marks = list(getattr(func, "pytestmark", []))
    if name in EXPECTED_FAILURES:
        marks.append(pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[name]))
    test.pytestmark = marks  # type: ignore[attr-defined]
    return test


for _name, _func in list(vars(upstream).items()):
    if _name.startswith("test_") and inspect.isfunction(_func):
        globals()[_name] = _collected(_name, _func)


def test_every_expected_failure_names_an_upstream_test():
    missing = [name for name in EXPECTED_FAILURES if not hasattr(upstream, name)]
    assert not missing, f"not in scikit-learn's test_mlp.py any more: {missing}"
