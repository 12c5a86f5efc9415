"""Input checks shared by the whole package: one wording, one policy.

Every public function of flatnn checks its arguments at the boundary with
these helpers, so that a rule such as "a non-bool integer" or "float32 or
float64" is written once. The policy:

- ``TypeError`` when the argument is the wrong kind of thing (a string where a
  number goes, a float where an integer goes, a bool anywhere a number goes);
- ``ValueError`` when it is the right kind with a wrong value (out of range,
  wrong shape, wrong length, NaN);
- both messages say what was expected and what came: ``"<name> must be ...,
  got <value>"``.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import numpy as np

from flatnn.base import namespace

__all__ = [
    "FLOAT_DTYPES",
    "NotFiniteError",
    "integer",
    "real",
    "lam",
    "boolean",
    "float_dtype",
    "flat_vector",
    "finite",
    "finite_rows",
    "features",
]


class NotFiniteError(ValueError):
    """Finite inputs whose computed values overflow to inf or NaN.

    A ValueError (the inputs' values are the cause); its own type lets an
    optimizer tell "this point is out of reach" from a wrong argument.
    """


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
"""The precisions flatnn computes in."""


def _bound(low, high):
    if high is not None:
        return f"in [{low}, {high}]"
    return f">= {low}"


def integer(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int: an integer (not a bool) in ``[low, high]``.

    Parameters
    ----------
    value : object
    name : str
        What the message calls the argument.
    low, high : int, optional
        Inclusive bounds; None for no bound.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (Python or NumPy), or is a bool.
    ValueError
        If it lies outside ``[low, high]``.
    """
    expected = "an integer" if low is None else f"an integer {_bound(low, high)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {expected}, got {value}")
    return value


def real(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """Return ``value`` as a float: a real number (not a bool) in the given bounds.

    A 0-d array counts as its scalar.

    Parameters
    ----------
    value : object
    name : str
        What the message calls the argument.
    low, high : float, optional
        Bounds; None for no bound. Inclusive unless ``low_open`` / ``high_open``.
    finite : bool, default True
        Whether ``inf`` is refused (NaN always is).

    Raises
    ------
    TypeError
        If ``value`` is not a real number (a bool or a string included).
    ValueError
        If it lies outside the bounds, is NaN, or is infinite while ``finite`` is True.
    """
    scalar = value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value
    if isinstance(scalar, (bool, np.bool_)) or not isinstance(scalar, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    out = float(scalar)
    ok = not math.isnan(out) and not (finite and math.isinf(out))
    if ok and low is not None:
        ok = out > low if low_open else out >= low
    if ok and high is not None:
        ok = out < high if high_open else out <= high
    if not ok:
        expected = "a finite number" if finite else "a number"
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        if bounds:
            expected += " " + " and ".join(bounds)
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return out


def lam(value: Any) -> float:
    """Return the L2 strength ``lam`` as a float: a finite real number >= 0.

    Booleans and strings are refused rather than read as 1.0 or parsed.

    Raises
    ------
    TypeError
        If ``lam`` is not a real number.
    ValueError
        If it is negative, NaN or infinite.
    """
    return real(value, "lam", 0)


def boolean(value: Any, name: str) -> bool:
    """Return ``value`` as a bool; TypeError unless it is True or False (NumPy's too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """Return ``dtype`` as a numpy.dtype that is float32 or float64.

    Raises
    ------
    TypeError
        If ``dtype`` does not name a dtype at all.
    ValueError
        If it names another dtype.
    """
    try:
        out = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if out not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {out}")
    return out


def flat_vector(
    params: Any,
    n_params: int,
    name: str = "params",
    *,
    owner: Any = "the network",
    dtypes: str = "float",
    xp: Any = np,
) -> Any:
    """Check that ``params`` is a flat vector of ``n_params`` entries.

    Parameters
    ----------
    params : array_like
    n_params : int
    name : str
        What the message calls the vector (``params``, ``params0``, ``v``).
    owner : str or Network
        Named in the message (``params has 23859 entries; Network(...) needs 23860``).
    dtypes : {"float", "float32/64"}
        ``float`` accepts any float dtype (``unpack`` and ``pack`` take any),
        ``float32/64`` only the two precisions flatnn computes in.
    xp : module
        The array namespace of the data (:mod:`flatnn.namespace`); a NumPy
        ``params`` moves there, one from another device is refused.

    Returns
    -------
    array, shape (n_params,)
        ``params`` itself when it is already an array of ``xp`` (never a copy).

    Raises
    ------
    TypeError
        When ``params`` lives on another device than the data.
    ValueError
        On a wrong shape, length or dtype.
    """
    if not (type(params) is np.ndarray and xp is np):
        params = namespace.asarray(params, xp, name)
    n = n_params
    if params.ndim != 1:
        raise ValueError(
            f"{name} must be a flat vector of {n} entries, got an array of shape {params.shape}"
        )
    if params.shape[0] != n:
        who = owner if isinstance(owner, str) else repr(owner)
        raise ValueError(f"{name} has {params.shape[0]} entries; {who} needs {n}")
    if dtypes == "float":
        if params.dtype.kind != "f":
            raise ValueError(f"{name} must have a float dtype, got {params.dtype}")
    elif params.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {params.dtype}")
    return params


def finite(a: Any, name: str) -> Any:
    """ValueError naming the first non-finite entry of the 1-D array ``a``, if any."""
    xp = namespace.namespace_of(a)
    if not bool(xp.isfinite(a).all()):
        bad = xp.flatnonzero(~xp.isfinite(a))
        raise ValueError(
            f"{name} contains NaN or inf ({bad.size} entries, first at index {int(bad[0])})"
        )
    return a


def finite_rows(X: Any, name: str = "X") -> Any:
    """ValueError naming the first row of ``X`` (m, n) that holds NaN or inf, if any.

    A finite sum proves every entry finite (NaN and inf propagate through it),
    which costs one read of ``X`` and no boolean array of its size; only a
    non-finite sum (a bad entry, or an overflow of large finite ones) pays for
    the entry-by-entry check. A ``scipy.sparse`` ``X`` is checked through its
    stored entries (``X.data``), never made dense.
    """
    if _is_sparse(X):
        return _finite_sparse_rows(X, name)
    xp = namespace.namespace_of(X)
    with np.errstate(all="ignore"):
        total = X.sum()
    if bool(xp.isfinite(total)):
        return X
    if not bool(xp.isfinite(X).all()):
        rows = xp.flatnonzero(~xp.isfinite(X).all(axis=1))
        raise ValueError(
            f"{name} contains NaN or inf ({rows.size} rows, first at row {int(rows[0])})"
        )
    return X


def _is_sparse(X: Any) -> bool:
    # scipy.sparse is not imported here: a sparse X means the caller imported it
    if type(X) is np.ndarray:
        return False
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def _finite_sparse_rows(X: Any, name: str) -> Any:
    with np.errstate(all="ignore"):
        total = X.data.sum()
    if np.isfinite(total) or np.isfinite(X.data).all():
        return X
    coo = X.tocoo()
    rows = np.unique(coo.row[~np.isfinite(coo.data)])
    raise ValueError(f"{name} contains NaN or inf ({rows.size} rows, first at row {int(rows[0])})")


def features(shape: tuple[int, ...], net: Any, name: str = "X") -> None:
    """Check an input shape ``(m, n_features)`` against ``net`` (works for any array type).

    Raises
    ------
    ValueError
        If the shape is not 2-D or its columns are not ``net.sizes[0]``.
    """
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (m, {net.sizes[0]}), got shape {tuple(shape)}")
    if shape[1] != net.sizes[0]:
        raise ValueError(f"{name} has {shape[1]} features per row; {net!r} takes {net.sizes[0]}")
