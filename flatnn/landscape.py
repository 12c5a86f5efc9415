"""The loss landscape: the cost along a line and on a plane through parameter space.

- :func:`line`: ``J((1 − α) params_from + α params_to)`` for a range of ``α``,
  the linear interpolation of Goodfellow, Vinyals & Saxe (2015), "Qualitatively
  characterizing neural network optimization problems": from the initial to the
  trained parameters the cost of many networks falls monotonically, without a
  barrier.
- :func:`plane`: ``J(params + a·d1 + b·d2)`` on a grid of ``(a, b)``, with two
  random directions normalised filter by filter (Li, Xu, Taylor, Studer &
  Goldstein 2018, "Visualizing the loss landscape of neural nets"): each row of
  each layer's ``theta`` (one unit's incoming weights and bias, the MLP's
  "filter") of a Gaussian direction is scaled to the norm of the same row of
  ``params``, so that the picture does not depend on the scale of the weights
  (which a network with ReLU units can change without changing its function).
  :func:`filter_normalized_direction` gives such a direction.

The cost is the training objective ``J`` of :meth:`flatnn.Network.cost` (with
its L2 term); pass ``lam=0`` for the data loss alone. ``plot_line`` and
``plot_plane`` draw the arrays (matplotlib, optional).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flatnn.base import checks
from flatnn.core.network import Network
from flatnn.training import driver

__all__ = [
    "line",
    "plane",
    "filter_normalized_direction",
    "plot_line",
    "plot_plane",
]


def _objective(net: Any, X: Any, y: Any, lam: float, who: str) -> Any:
    return driver.resolve_objective(net, X, y, checks.lam(lam), who)


def _vector(params: Any, n: int, name: str) -> np.ndarray:
    out = checks.flat_vector(params, n, name, owner="the objective")
    checks.finite(out, name)
    return np.asarray(out, dtype=np.float64)


def _cost(objective: Any, params: np.ndarray) -> float:
    """``J(params)``; inf where the cost overflows (far out along a direction)."""
    try:
        return float(objective.cost(params))
    except checks.NotFiniteError:
        return float("inf")


def _points(values: Any, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1 or out.size < 1:
        raise ValueError(f"{name} must be a 1-D array of numbers, got shape {out.shape}")
    checks.finite(out, name)
    return out


def line(
    net: Any,
    params_from: Any,
    params_to: Any,
    X: Any = None,
    y: Any = None,
    lam: float = 0.0,
    *,
    alphas: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The cost along the straight line between two parameter vectors.

    ``J(α) = J((1 − α)·params_from + α·params_to)``.

    Parameters
    ----------
    net : Network or Objective
        A network (with ``X``, ``y``, ``lam``) or an objective with
        ``cost(params)`` and ``n_params`` (then omit ``X``, ``y``, ``lam``).
    params_from, params_to : ndarray, shape (n_params,)
        ``α = 0`` and ``α = 1`` (e.g. the initial and the trained parameters).
    X, y, lam
        As in :meth:`flatnn.Network.cost`.
    alphas : array_like, shape (p,), optional
        Where to evaluate; default 51 points from 0 to 1.

    Returns
    -------
    alphas : ndarray, shape (p,)
    costs : ndarray, shape (p,)
        ``inf`` where the cost overflows.
    """
    objective = _objective(net, X, y, lam, "line")
    n = int(objective.n_params)
    start = _vector(params_from, n, "params_from")
    end = _vector(params_to, n, "params_to")
    alphas = np.linspace(0.0, 1.0, 51) if alphas is None else _points(alphas, "alphas")
    costs = np.array([_cost(objective, (1.0 - a) * start + a * end) for a in alphas])
    return alphas, costs


def filter_normalized_direction(net: Network, params: Any, rng: Any = None) -> np.ndarray:
    """A Gaussian direction with each row of each ``theta`` scaled to ``params``' row norm.

    Parameters
    ----------
    net : Network
    params : ndarray, shape (n_params,)
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    ndarray, shape (n_params,)
        ``d`` with ``‖d_row‖ = ‖params_row‖`` for every row of every layer's
        ``theta`` (bias column included); a zero row of ``params`` gives a zero row.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a flatnn.Network, got {type(net).__name__}")
    params = _vector(params, net.n_params, "params")
    gen = np.random.default_rng(rng)  # a Generator is returned as it is (shared draws)
    direction = gen.standard_normal(net.n_params)
    for d, theta in zip(net.unpack(direction), net.unpack(params)):
        norms = np.linalg.norm(d, axis=1, keepdims=True)
        d *= np.linalg.norm(theta, axis=1, keepdims=True) / np.maximum(norms, 1e-300)
    return direction


def plane(
    net: Any,
    params: Any,
    X: Any = None,
    y: Any = None,
    lam: float = 0.0,
    *,
    directions: Any = None,
    span: float = 1.0,
    n_points: int = 21,
    rng: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cost on a 2-D slice ``params + a·d1 + b·d2`` of parameter space.

    Parameters
    ----------
    net : Network or Objective
        As in :func:`line`; random directions need the network, so an objective
        must be a :class:`flatnn.Objective` unless ``directions`` are given.
    params : ndarray, shape (n_params,)
        The centre of the slice (e.g. trained parameters).
    X, y, lam
        As in :meth:`flatnn.Network.cost`.
    directions : (ndarray, ndarray), optional
        ``(d1, d2)``, each of shape (n_params,); default two independent
        :func:`filter_normalized_direction` draws from ``rng``.
    span : float, default 1
        The grid covers ``a, b`` in ``[-span, span]``.
    n_points : int, default 21
        Grid points per axis (``n_points²`` cost evaluations).
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    a, b : ndarray, shape (n_points,)
        The coordinates along ``d1`` and ``d2``.
    costs : ndarray, shape (n_points, n_points)
        ``costs[i, j] = J(params + a[i]·d1 + b[j]·d2)``; ``inf`` where it overflows.
    """
    objective = _objective(net, X, y, lam, "plane")
    n = int(objective.n_params)
    centre = _vector(params, n, "params")
    span = checks.real(span, "span", 0, low_open=True)
    n_points = checks.integer(n_points, "n_points", 2)
    if directions is None:
        spec = net if isinstance(net, Network) else getattr(objective, "net", None)
        if not isinstance(spec, Network):
            raise TypeError("plane: random directions need a Network; pass directions=(d1, d2)")
        gen = np.random.default_rng(rng)
        directions = (
            filter_normalized_direction(spec, centre, gen),
            filter_normalized_direction(spec, centre, gen),
        )
    if len(directions) != 2:
        raise ValueError(f"directions must be a pair (d1, d2), got {len(directions)} arrays")
    d1, d2 = (_vector(d, n, name) for d, name in zip(directions, ("d1", "d2")))
    a = np.linspace(-span, span, n_points)
    costs = np.array([[_cost(objective, centre + ai * d1 + bj * d2) for bj in a] for ai in a])
    return a, a.copy(), costs


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 4))[1]


def plot_line(
    alphas: Any, costs: Any, path: Any = None, *, ax: Any = None, label: str | None = None
) -> Any:
    """Plot :func:`line`'s costs against ``α`` (needs matplotlib).

    Parameters
    ----------
    alphas, costs : ndarray, shape (p,)
    path : str or os.PathLike, optional
        Save the figure there.
    ax : matplotlib Axes, optional
        Draw into it (several lines on one plot); default a new figure.
    label : str, optional
        The legend entry.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    ax.plot(alphas, costs, label=label)
    ax.set_xlabel("α (0: from, 1: to)")
    ax.set_ylabel("cost J")
    if label is not None:
        ax.legend()
    if path is not None:
        ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    return ax


def plot_plane(
    a: Any, b: Any, costs: Any, path: Any = None, *, ax: Any = None, levels: int = 30
) -> Any:
    """Contour plot of :func:`plane`'s costs (needs matplotlib).

    Parameters
    ----------
    a, b : ndarray, shape (p,)
    costs : ndarray, shape (p, p)
    path : str or os.PathLike, optional
        Save the figure there.
    ax : matplotlib Axes, optional
    levels : int, default 30

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    finite = np.where(np.isfinite(costs), costs, np.nan)
    contour = ax.contour(a, b, np.asarray(finite).T, levels=levels)
    ax.clabel(contour, fontsize=6)
    ax.plot([0], [0], "k+")
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    if path is not None:
        ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    return ax
