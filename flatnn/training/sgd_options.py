"""The inputs of :func:`flatnn.sgd`, checked once: the data and :class:`SGDOptions`.

:func:`training_data` validates the data and the starting point and puts them
in the work dtype and namespace. Every keyword of ``sgd`` besides the data, the
callbacks and the validation pair is read here, checked in the order of
``sgd``'s signature, and turned into the form the loop uses (a schedule, a
rule, dropout rates per layer input, ...).
Errors name the keyword, what was expected and what came.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatnn.base import checks, namespace
from flatnn.core import kernel
from flatnn.core.network import Network
from flatnn.training import regularizers
from flatnn.training import rules as optimizers
from flatnn.training.driver import as_target, check_params0

__all__ = [
    "SGDOptions",
    "check_options",
    "training_data",
    "dropout_rates",
    "ON_NONFINITE",
    "L2_FORMS",
]

ON_NONFINITE = ("stop", "continue")
"""``on_nonfinite``: end the run at a non-finite or diverged batch cost, or record the
epoch as NaN and go on with the next one."""

L2_FORMS = ("per_data", "per_batch")
"""``l2``: a batch of ``b`` rows gets ``lam·b/m`` (the whole-data objective's share) or
``lam`` itself (``lam/(2b)·‖θ‖²`` per batch, scikit-learn's ``alpha`` form)."""


@dataclass(frozen=True)
class SGDOptions:
    """The checked options of one :func:`flatnn.sgd` run (see its parameters)."""

    epochs: int
    batch_size: int
    schedule: Callable[[int], Any]
    rule: Any
    rng: np.random.Generator
    shuffle: bool
    early_stopping: float | None
    rates: tuple[float, ...] | None
    max_norm: float | None
    transform: Callable[..., Any] | None
    on_plateau: Callable[[], Any] | None = None
    on_nonfinite: str = "stop"
    l2: str = "per_data"
    initial_state: Any = None
    return_best: bool = False
    final_eval: bool = True


def dropout_rates(net: Network, dropout: Any) -> tuple[float, ...] | None:
    """The rates per layer input, or None when there is no dropout.

    ``dropout``: a sequence of ``len(net.sizes) - 1`` rates in ``[0, 1)``, or a
    mapping ``{layer input index: rate}`` naming only the layers that drop (the
    others get 0); its keys must be layer-input indices (0 the input, then each
    hidden layer).
    """
    if dropout is None:
        return None
    if isinstance(dropout, Mapping):
        n = len(net.sizes) - 1
        rates: list[Any] = [0.0] * n
        for key, rate in dropout.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
                raise TypeError(
                    f"dropout's keys must be layer-input indices (int 0..{n - 1}: the input, "
                    f"then each hidden layer), got {key!r}"
                )
            if not 0 <= key < n:
                raise ValueError(
                    f"dropout has a rate for layer input {key}; {net!r} has layer inputs "
                    f"0..{n - 1} (the input, then each hidden layer)"
                )
            rates[int(key)] = rate
        dropout = rates
    checked = tuple(regularizers.check_rates(net, dropout))
    return checked if any(checked) else None


def _patience(value: Any, has_monitor: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isinf(value) and value > 0:
        value = math.inf  # never stop: the best iterate is still returned
    else:
        value = checks.integer(value, "early_stopping", 1)
    if not has_monitor:
        raise ValueError("early_stopping needs validation=(X_val, y_val) or a monitor")
    return value


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return str(value)


def _callable_or_none(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")
    return value


def check_options(net: Network, m: int, *, has_monitor: bool, **kw: Any) -> SGDOptions:
    """:class:`SGDOptions` from ``sgd``'s keywords, for ``net`` and ``m`` rows.

    ``has_monitor``: whether early stopping has something to follow (validation
    data, or an explicit ``monitor``).
    """
    epochs = checks.integer(kw["epochs"], "epochs", 1)
    batch_size = checks.integer(kw["batch_size"], "batch_size", 1, m)
    early_stopping = _patience(kw["early_stopping"], has_monitor)
    if kw["learning_rate"] is None:
        raise TypeError("sgd needs learning_rate (a number or a schedule epoch -> rate)")
    shuffle = _flag(kw["shuffle"], "shuffle")
    schedule = optimizers.as_schedule(kw["learning_rate"])
    rule = optimizers.get(kw["method"])
    rng = np.random.default_rng(kw["rng"])
    rates = dropout_rates(net, kw["dropout"])
    max_norm = regularizers.check_max_norm(kw["max_norm"])
    transform = kw["transform"]
    if transform is not None and not callable(transform):
        raise TypeError(
            f"transform must be a callable (X_batch, rng) -> X_batch, got "
            f"{type(transform).__name__}"
        )
    return_best = kw.get("return_best")
    if return_best is None:
        return_best = early_stopping is not None
    elif not isinstance(return_best, (bool, np.bool_)):
        raise TypeError(f"return_best must be True, False or None, got {return_best!r}")
    return SGDOptions(
        epochs=epochs,
        batch_size=batch_size,
        schedule=schedule,
        rule=rule,
        rng=rng,
        shuffle=bool(shuffle),
        early_stopping=early_stopping,
        rates=rates,
        max_norm=max_norm,
        transform=transform,
        on_plateau=_callable_or_none(kw.get("on_plateau"), "on_plateau"),
        on_nonfinite=_choice(kw.get("on_nonfinite", "stop"), "on_nonfinite", ON_NONFINITE),
        l2=_choice(kw.get("l2", "per_data"), "l2", L2_FORMS),
        initial_state=kw.get("initial_state"),
        return_best=bool(return_best),
        final_eval=_flag(kw.get("final_eval", True), "final_eval"),
    )


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def training_data(obj: Any, params0: Any) -> tuple[Any, Any, Any, Any, Any]:
    """``(X, target, weights, params0, xp)`` in the work dtype and the data's namespace.

    A ``scipy.sparse`` ``X`` (the host's namespace) comes back as a CSR matrix or
    array, whose batches are gathered row by row: CSC (or any other format) is
    converted once, a sparse copy of its non-zeros, never a dense one.
    """
    net, X = obj.net, obj.X
    sparse = kernel.is_sparse(X)
    xp = np if sparse else namespace.namespace_of(X)
    params0 = check_params0(params0, net.n_params, xp)
    work = np.float32 if (params0.dtype == np.float32 and X.dtype == np.float32) else np.float64
    X = X.astype(work, copy=False)  # a no-op for float data of the work's precision
    if sparse and X.format != "csr":
        X = X.tocsr()
    checks.finite_rows(X)
    y = obj.y if xp is np else namespace.asarray(obj.y, xp, "y")
    weights = getattr(obj, "sample_weight", None)
    if weights is not None:
        weights = namespace.asarray(weights, xp, "sample_weight", "the training X")
        weights = weights.astype(work, copy=False)
    return X, as_target(net, y, work), weights, params0, xp
