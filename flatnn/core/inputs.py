"""The checks of a network's inputs: its spec's arguments, ``params``, ``X``, ``y``, weights.

Every public evaluation of :class:`flatnn.Network` checks its arguments here
once, at the boundary, and then calls the pure functions of
:mod:`flatnn.core.evaluation`, which check nothing. Errors name what was
expected and what came (``ValueError``; ``TypeError`` for a wrong kind of object).

``X`` is a NumPy array, a device array (CuPy), or a ``scipy.sparse`` matrix or
array (CSR or CSC; other sparse formats are converted to CSR, which is a sparse
copy, never a dense one).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from flatnn.base import checks, namespace
from flatnn.core.kernel import is_sparse

__all__ = [
    "convert_sizes",
    "validate_sizes",
    "convert_hidden",
    "check_name",
    "DEFAULT_OUTPUT",
    "Targets",
    "views",
    "check_params",
    "check_X",
    "check_y",
    "check_weights",
    "finite_rows",
    "prepare_X",
    "work_dtype",
    "is_sparse",
]


# ------------------------------------------------------ the spec's arguments
def convert_sizes(sizes: Any) -> tuple[int, ...]:
    """``Network``'s ``sizes`` as a tuple of ints (ValueError for anything else)."""
    # A set or a dict has no order the caller chose (``{784, 30, 10}`` iterates as
    # 784, 10, 30), and bytes or a str are sequences of codes, not of layer sizes:
    # each would build a network other than the one written.
    if isinstance(sizes, (set, frozenset, dict, bytes, bytearray, memoryview, str)):
        raise ValueError(
            f"sizes must be an ordered sequence of layer sizes such as "
            f"(784, 30, 10), got {type(sizes).__name__} {sizes!r}"
        )
    try:
        items = tuple(sizes)
    except TypeError:
        raise ValueError(
            f"sizes must be a sequence of layer sizes such as (784, 30, 10), got {sizes!r}"
        ) from None
    out = []
    for s in items:
        try:
            out.append(checks.integer(s, "every layer size"))
        except TypeError:
            raise ValueError(f"sizes must hold integers, got {s!r} in {sizes!r}") from None
    # Checked here rather than in the validator: the default of ``output`` reads
    # ``sizes[-1]``, so ``Network(())`` would be an IndexError.
    if len(out) < 2:
        raise ValueError(
            f"sizes needs at least an input and an output size such as (784, 30, 10), got {sizes!r}"
        )
    return tuple(out)


def validate_sizes(instance: Any, attribute: Any, sizes: tuple[int, ...]) -> None:
    """Every layer size >= 1 (an attrs validator)."""
    bad = [s for s in sizes if s < 1]
    if bad:
        raise ValueError(f"every layer size must be >= 1, got {bad[0]} in {sizes!r}")


class _DefaultOutput:
    """The default of ``Network``'s ``output``: chosen from ``sizes`` and ``loss``."""

    def __repr__(self) -> str:
        return "<softmax, sigmoid for one output, exp for poisson>"


DEFAULT_OUTPUT = _DefaultOutput()
"""``Network(output=...)``'s default, replaced by the name it stands for."""


HIDDEN_HINT = "an activation name such as 'relu', or a list or tuple of names, one per hidden layer"
"""What ``hidden`` may be, for error messages."""


def convert_hidden(hidden: Any) -> str | tuple[str, ...]:
    """``Network``'s ``hidden``: one name, or a tuple of names (TypeError otherwise)."""
    if isinstance(hidden, str):
        return hidden
    if not isinstance(hidden, (list, tuple)):
        raise TypeError(f"hidden must be {HIDDEN_HINT}; got {hidden!r}")
    for name in hidden:
        if not isinstance(name, str):
            raise TypeError(f"hidden must be {HIDDEN_HINT}; got {name!r} in {hidden!r}")
    return tuple(hidden)


def check_name(what: str) -> Any:
    """An attrs validator: the value is a str (or :data:`DEFAULT_OUTPUT`)."""

    def check(instance, attribute, value):
        if value is DEFAULT_OUTPUT:  # resolved in Network.__attrs_post_init__
            return
        if not isinstance(value, str):
            raise TypeError(f"{attribute.name} must be {what} (a str), got {value!r}")

    return check


# ------------------------------------------------------ the data
@attrs.frozen(eq=False, repr=False)
class Targets:
    """``y`` checked once against a network: what :meth:`Network.check_data` returns.

    Pass it as ``y`` to :meth:`Network.cost`, ``grad``, ``cost_grad``,
    ``hessp``, ``gnvp`` or ``accuracy`` (with ``X`` of the same rows) and the
    labels or targets are not checked again: only their row count is.
    :class:`flatnn.Objective` does this for its data.

    Attributes
    ----------
    values : ndarray
        Integer labels ``(m,)`` (intp) or float targets ``(m, k)``, in the form
        the losses take.
    """

    values: np.ndarray

    def __repr__(self) -> str:
        return f"Targets(shape={self.values.shape}, dtype={self.values.dtype})"


def views(net: Any, flat: Any) -> tuple[Any, ...]:
    """Per-layer views ``theta_l`` (n_out, n_in + 1) of a flat vector, unchecked."""
    off = net.offsets
    return tuple(flat[off[i] : off[i + 1]].reshape(s) for i, s in enumerate(net.shapes))


def check_params(net: Any, params: Any, name: str = "params", xp: Any = np) -> Any:
    """``params`` (or a direction ``v``) as a flat float vector of ``net.n_params`` entries."""
    params = checks.flat_vector(params, net.n_params, name, owner=net, xp=xp)
    if name != "params":
        # A direction (hessp's and gnvp's v): a NaN in it would come back as a
        # silent NaN product. params itself is checked where it is evaluated,
        # and unpack/pack must still accept any float vector.
        checks.finite(params, name)
    return params


def check_X(net: Any, X: Any) -> tuple[Any, Any]:
    """``(xp, X)``: X's array namespace and X itself, (m >= 1, n_features), numeric."""
    if is_sparse(X):
        if X.format not in ("csr", "csc"):
            X = X.tocsr()
        xp = np
    else:
        xp = namespace.namespace_of(X)
        if xp is np:
            X = np.asarray(X)
    checks.features(X.shape, net)
    if X.shape[0] == 0:
        raise ValueError("X has no rows")
    if X.dtype.kind not in "fiub":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}")
    return xp, X


def finite_rows(X: Any) -> Any:
    """ValueError naming the first row of ``X`` that holds NaN or inf, if any (sparse too)."""
    return checks.finite_rows(X)


def work_dtype(params_dtype: Any, X_dtype: Any) -> Any:
    """float32 when ``params`` is float32 and ``X`` float32/float16 (or integers); else float64."""
    if params_dtype == np.float32 and (X_dtype in (np.float32, np.float16) or X_dtype.kind != "f"):
        return np.float32
    return np.float64


def prepare_X(net: Any, params: Any, X: Any) -> tuple[tuple[Any, ...], Any]:
    """Check ``params`` and ``X``; return the per-layer views and ``X`` in the work dtype.

    Casts only when the caller mixes precisions; matching dtypes never copy.
    """
    xp = np if is_sparse(X) else namespace.namespace_of(X)
    params = checks.finite(check_params(net, params, xp=xp), "params")
    xp, X = check_X(net, X)
    dtype = work_dtype(params.dtype, X.dtype)
    X = X.astype(dtype, copy=False)
    params = params.astype(dtype, copy=False)
    return views(net, params), X


def check_weights(sample_weight: Any, m: int, dtype: Any, xp: Any = np) -> tuple[Any, float]:
    """``(weights, Σ w)``: sample weights ``(m,)`` in ``dtype``, or ``(None, m)`` for None.

    Weights must be finite and ``>= 0`` with a positive sum (a zero weight
    removes a row from the objective; an integer weight counts it that many times).
    """
    if sample_weight is None:
        return None, m
    w = namespace.asarray(sample_weight, xp, "sample_weight")
    if w.ndim != 1 or w.shape[0] != m:
        raise ValueError(f"sample_weight must have shape ({m},) (one per row of X), got {w.shape}")
    if w.dtype.kind not in "fiub":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}")
    w = w.astype(dtype, copy=False)
    if not bool(xp.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("sample_weight must hold finite values >= 0")
    total = float(w.sum(dtype=np.float64))
    if not (total > 0 and math.isfinite(total)):
        raise ValueError(f"sample_weight must have a positive finite sum, got {total}")
    return w, total


def check_y(net: Any, y: Any, m: int, dtype: Any, xp: Any = np) -> Any:
    """Labels ``(m,)`` (intp) or targets ``(m, k)`` in ``dtype``, checked against ``net``."""
    k = net.sizes[-1]
    if isinstance(y, Targets):  # checked by check_data: only the rows are compared
        values = y.values
        if values.shape[0] != m:
            raise ValueError(f"y has {values.shape[0]} rows; X has {m}")
        return values if values.dtype.kind != "f" else values.astype(dtype, copy=False)
    y = namespace.asarray(y, xp, "y")
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"y must be labels (m,) or targets (m, {k}), got shape {y.shape}")
    if y.shape[0] != m:
        raise ValueError(f"y has {y.shape[0]} rows; X has {m}")
    if y.dtype.kind not in "fiub":
        raise ValueError(f"y must be numeric, got dtype {y.dtype}")
    if y.ndim == 2 or k == 1 or net.loss == "poisson":
        return _check_targets(net, y, m, dtype)
    return _check_labels(y, k)


def _check_targets(net, y, m, dtype):
    k = net.sizes[-1]
    if y.ndim == 1:
        y = y.reshape(m, 1)
    if y.shape[1] != k:
        raise ValueError(f"y has {y.shape[1]} columns; the network has {k} outputs")
    y = y.astype(dtype, copy=False)
    if not bool(namespace.namespace_of(y).isfinite(y).all()):
        raise ValueError("y contains NaN or inf")
    if net.loss == "cross_entropy":
        lo, hi = float(y.min()), float(y.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"cross-entropy targets must lie in [0, 1], got values in [{lo}, {hi}]"
            )
    if net.loss == "poisson" and float(y.min()) < 0:
        raise ValueError(
            f"Poisson targets must be >= 0 (counts or rates), got a minimum of {float(y.min())}"
        )
    return y


def _check_labels(y, k):
    if y.dtype.kind == "f":
        finite = bool(namespace.namespace_of(y).isfinite(y).all())
        if not finite or bool((y != y.round()).any()):
            raise ValueError(
                "labels y (m,) must be integers; got non-integer values "
                f"(pass float targets as an (m, {k}) array)"
            )
    if y.dtype.kind == "b":
        raise ValueError(f"labels y must be integers in [0, {k}), got booleans")
    labels = y.astype(np.intp, copy=False)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= k:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"label {bad} is out of range: the network has {k} outputs, "
            f"so labels must lie in [0, {k})"
        )
    return labels
