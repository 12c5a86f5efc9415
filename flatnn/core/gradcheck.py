"""Finite-difference gradient checking, for tests and for users' own networks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from flatnn.core.kernel import is_sparse

__all__ = ["numerical_grad", "check_grad", "GradCheck"]


def _default_eps(x):
    # Fourth-order central differences: truncation ~ eps⁴·f⁽⁵⁾/30 and round-off
    # ~ macheps·|f| / eps. 1e-4 keeps both near 1e-12·|f| while staying small
    # enough that the four points rarely straddle a relu kink.
    return 1e-4 * np.maximum(1.0, np.abs(x))


def numerical_grad(
    fun: Callable[..., float], x: Any, *args: Any, eps: Any = None, indices: Any = None
) -> np.ndarray:
    """Central-difference gradient of a scalar function, in float64.

    The fourth-order central stencil, with ``f(±k) = fun(x ± k·eps_i·e_i)``::

        g_i ≈ (8 (f(+1) − f(−1)) − (f(+2) − f(−2))) / (12 eps_i)

    Its error is ``O(eps⁴)`` instead of the two-point ``O(eps²)``, which lets a
    float64 check reach relative errors near 1e-10 on costs of any size.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``.
    x : array_like, shape (n,)
        The point; it is not modified (a float64 copy is perturbed).
    *args
        Passed on to ``fun``.
    eps : float or ndarray (n,), optional
        Step; default ``1e-4 · max(1, |x_i|)``.
    indices : array_like of int, optional
        Only these coordinates (the others are left NaN).

    Returns
    -------
    ndarray, shape (n,)
    """
    x = np.array(x, dtype=np.float64)  # a private copy to perturb
    if x.ndim != 1:
        raise ValueError(f"x must be a flat vector, got shape {x.shape}")
    steps = (
        _default_eps(x)
        if eps is None
        else np.broadcast_to(np.asarray(eps, dtype=np.float64), x.shape)
    )
    if not (steps > 0).all():
        raise ValueError(f"eps must be > 0, got {eps!r}")
    idx = np.arange(x.size) if indices is None else np.asarray(indices, dtype=np.intp)
    out = np.full(x.shape, np.nan)
    for i in idx:
        xi, h = x[i], steps[i]
        f = {}
        for k in (1, -1, 2, -2):
            x[i] = xi + k * h
            f[k] = float(fun(x, *args))
        x[i] = xi
        out[i] = (8 * (f[1] - f[-1]) - (f[2] - f[-2])) / (12 * h)
    return out


@attrs.frozen
class GradCheck:
    """The outcome of :func:`check_grad`.

    Attributes
    ----------
    max_rel_error : float
        ``max_i |analytic_i − numeric_i| / max(|analytic_i|, |numeric_i|, floor)``.
    worst_index : int
        The coordinate of ``params`` where it occurs.
    indices : ndarray (n_checked,)
        The coordinates checked.
    analytic, numeric : ndarray (n_checked,)
        The two gradients at those coordinates.
    max_abs_error : float
    floor : float
        Denominator floor (the ``floor`` argument times ``max(1, |J|)``): a
        coordinate whose gradient is below it in size is judged by its absolute
        error relative to the floor.
    """

    max_rel_error: float
    worst_index: int
    indices: np.ndarray = attrs.field(repr=False, eq=False)
    analytic: np.ndarray = attrs.field(repr=False, eq=False)
    numeric: np.ndarray = attrs.field(repr=False, eq=False)
    max_abs_error: float
    floor: float

    def ok(self, rtol: float = 1e-6) -> bool:
        """True when ``max_rel_error <= rtol``."""
        return self.max_rel_error <= rtol


def check_grad(
    net: Any,
    params: Any,
    X: Any,
    y: Any,
    lam: float = 0.0,
    *,
    eps: Any = None,
    n_coords: int | None = None,
    rng: Any = None,
    floor: float = 1e-5,
    sample_weight: Any = None,
) -> GradCheck:
    """Compare ``net.grad`` with central differences of ``net.cost`` in float64.

    Parameters
    ----------
    net : flatnn.Network
    params : ndarray, shape (n_params,)
    X, y, lam
        As in :meth:`flatnn.Network.cost`; ``params`` and ``X`` are evaluated as
        float64 copies whatever their dtype.
    eps : float, optional
        Finite-difference step (default ``1e-4 · max(1, |p_i|)``).
    n_coords : int, optional
        Check only this many coordinates drawn at random (for large nets).
    rng : None, int or numpy.random.Generator
        Chooses the coordinates when ``n_coords`` is given.
    floor : float, default 1e-5
        Smallest denominator of the relative error, per unit of cost: the
        denominator is at least ``floor · max(1, |J|)``. A difference quotient
        carries round-off of about ``macheps · |J| / eps``, so gradients that are
        zero up to that noise do not count as relative errors of 100 %.
    sample_weight : ndarray, shape (m,), optional
        Per-sample weights, as in :meth:`flatnn.Network.cost`.

    Returns
    -------
    GradCheck
    """
    params = np.array(params, dtype=np.float64)
    X = X.astype(np.float64) if is_sparse(X) else np.asarray(X, dtype=np.float64)
    # the keyword only when given: a Network subclass may override grad without it
    weighted = {} if sample_weight is None else {"sample_weight": sample_weight}

    def cost(p: Any, *args: Any) -> float:
        return float(net.cost(p, *args, **weighted))

    analytic_full = net.grad(params, X, y, lam, **weighted)
    floor = floor * max(1.0, abs(cost(params, X, y, lam)))
    n = params.size
    if n_coords is None or n_coords >= n:
        idx = np.arange(n)
    else:
        if n_coords < 1:
            raise ValueError(f"n_coords must be >= 1, got {n_coords}")
        idx = np.sort(np.random.default_rng(rng).choice(n, size=n_coords, replace=False))
    numeric = numerical_grad(cost, params, X, y, lam, eps=eps, indices=idx)[idx]
    analytic = analytic_full[idx]
    abs_err = np.abs(analytic - numeric)
    rel = abs_err / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    worst = int(np.argmax(rel))
    return GradCheck(
        max_rel_error=float(rel[worst]),
        worst_index=int(idx[worst]),
        indices=idx,
        analytic=analytic,
        numeric=numeric,
        max_abs_error=float(abs_err.max()),
        floor=floor,
    )
