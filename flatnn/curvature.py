"""Curvature of the training objective: eigenvalues, trace and spectral density.

Every function here works from matrix-free products ``A v`` with ``A`` the
Hessian ``H`` of ``J(params)`` (:meth:`flatnn.Network.hessp`, exact, by the
R-operator) or the Gauss-Newton matrix ``G`` (:meth:`flatnn.Network.gnvp`,
positive semi-definite). ``A`` is never formed: one product costs about one
extra forward and backward pass over the data.

- :func:`eigs`: the top (or bottom) ``k`` eigenpairs by Lanczos (ARPACK's
  :func:`scipy.sparse.linalg.eigsh` over a ``LinearOperator``);
- :func:`trace`: ``tr A`` by Hutchinson's estimator ``E[zᵀ A z]`` over
  Rademacher vectors ``z``, or Hutch++ (Meyer, Musco, Musco & Woodruff 2021):
  the exact trace of ``A`` on a sketched subspace ``Q = orth(A S)`` plus
  Hutchinson on the rest, ``tr(QᵀAQ) + tr(Gᵀ(I−QQᵀ)A(I−QQᵀ)G)/l``; its error
  falls as ``1/n_products`` rather than ``1/√n_products``;
- :func:`density`: the spectral density ``(1/n) Σ δ(t − λ_i)``, smoothed by a
  Gaussian of width ``sigma``, by stochastic Lanczos quadrature (Ubaru, Chen &
  Saad 2017; Ghorbani, Krishnan & Xiao 2019): a Lanczos run from a random unit
  vector ``v`` gives Gauss quadrature nodes ``θ_j`` (the Ritz values) and
  weights ``τ_j`` (the squared first components of the Ritz vectors) with
  ``vᵀ f(A) v ≈ Σ τ_j f(θ_j)``; the average over probes estimates the density;
- :class:`Sharpness`: a training callback that writes the top Hessian
  eigenvalue into the history every ``every`` epochs or iterations.

Each function takes either ``(net, params, X, y, lam)`` or ``(objective,
params)`` with an :class:`flatnn.Objective` (then ``X`` and ``y`` are omitted
and ``lam`` is the objective's own), and ``subset=s`` to work on ``s`` rows of
the data drawn without replacement by ``rng``, the same rows for every product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from flatnn.base import checks
from flatnn.core.objective import Objective
from flatnn.training import driver

__all__ = ["eigs", "trace", "density", "plot_density", "Sharpness", "CURVATURES"]

CURVATURES = ("hessian", "gauss-newton")
"""The matrices the functions of this module accept as ``curvature``."""

Product = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------- the operator
def _rows(objective: Any, subset: Any, rng: np.random.Generator, who: str) -> Any:
    """``objective`` restricted to ``subset`` rows drawn by ``rng`` (or itself)."""
    if subset is None:
        return objective
    if not isinstance(objective, Objective):
        raise TypeError(
            f"{who}: subset= needs a flatnn.Network or flatnn.Objective, "
            f"got {type(objective).__name__}"
        )
    m = objective.m
    s = checks.integer(subset, "subset", 1)
    if s >= m:
        return objective
    idx = np.sort(rng.choice(m, size=s, replace=False))
    weights = getattr(objective, "sample_weight", None)  # kept with their rows
    extra = {} if weights is None else {"sample_weight": np.asarray(weights)[idx]}
    return Objective(objective.net, objective.X[idx], objective.y[idx], objective.lam, **extra)


def _bind(net: Any, X: Any, y: Any, lam: float, who: str) -> Any:
    """The objective of ``(net, X, y, lam)``, or ``net`` itself when it is one."""
    objective = driver.resolve_objective(net, X, y, checks.lam(lam), who)
    if not callable(getattr(objective, "hessp", None)):
        raise TypeError(f"{who}: {type(objective).__name__} has no hessp(params, v)")
    return objective


def _product(
    net: Any,
    params: Any,
    X: Any,
    y: Any,
    lam: float,
    curvature: str,
    subset: Any,
    rng: np.random.Generator,
    who: str,
) -> tuple[Product, int]:
    """``(v -> A v, n_params)`` for the curvature matrix ``A`` at ``params``."""
    _check_curvature(curvature)
    objective = _rows(_bind(net, X, y, lam, who), subset, rng, who)
    n = int(objective.n_params)
    params = checks.flat_vector(params, n, "params", owner="the objective")
    method = objective.hessp if curvature == "hessian" else getattr(objective, "gnvp", None)
    if method is None:
        raise TypeError(f"{who}: {type(objective).__name__} has no gnvp(params, v)")

    def product(v: np.ndarray) -> np.ndarray:
        return np.asarray(method(params, np.asarray(v, dtype=params.dtype)), dtype=np.float64)

    return product, n


def _check_curvature(curvature: Any) -> str:
    if curvature not in CURVATURES:
        raise ValueError(f"curvature must be 'hessian' or 'gauss-newton', got {curvature!r}")
    return str(curvature)


def _operator(product: Product, n: int) -> scipy.sparse.linalg.LinearOperator:
    def matvec(v: np.ndarray) -> np.ndarray:
        return product(np.ravel(v))

    return scipy.sparse.linalg.LinearOperator((n, n), matvec=matvec, dtype=np.float64)


def _lanczos_eigs(
    product: Product,
    n: int,
    k: int,
    which: str,
    rng: np.random.Generator,
    *,
    tol: float = 0.0,
    v0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (``top``) or smallest (``bottom``) eigenpairs of ``A``."""
    if which not in ("top", "bottom"):
        raise ValueError(f"which must be 'top' or 'bottom', got {which!r}")
    k = checks.integer(k, "k", 1, n - 1)  # ARPACK's limit; every network has n >= 2
    start = rng.standard_normal(n) if v0 is None else np.asarray(v0, dtype=np.float64)
    operator = _operator(product, n)
    # ARPACK's default ncv at full precision; to a loose tol a narrower one stops sooner (19 vs 21)
    ncv = min(n, max(2 * k + 1, 20 if tol == 0 else 12))
    while True:
        try:
            values, vectors = scipy.sparse.linalg.eigsh(
                operator, k=k, which="LA" if which == "top" else "SA", v0=start, ncv=ncv, tol=tol
            )
            break
        except scipy.sparse.linalg.ArpackNoConvergence:
            # a cluster of equal eigenvalues (the null space of a Gauss-Newton
            # matrix) needs a wider Krylov space; at ncv = n it is the whole space
            if ncv == n:
                raise
            ncv = min(n, 4 * ncv)
    order = np.argsort(values)
    if which == "top":
        order = order[::-1]
    return values[order], vectors[:, order]


# ------------------------------------------------------------------ eigenvalues
def eigs(
    net: Any,
    params: Any,
    X: Any = None,
    y: Any = None,
    lam: float = 0.0,
    *,
    k: int = 1,
    which: str = "top",
    curvature: str = "hessian",
    rng: Any = None,
    subset: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The top (or bottom) ``k`` eigenpairs of the Hessian or Gauss-Newton matrix.

    Lanczos (ARPACK's implicitly restarted form, :func:`scipy.sparse.linalg.eigsh`)
    over matrix-free products, converged to machine precision.

    Parameters
    ----------
    net : Network or Objective
        A network (with ``X``, ``y``, ``lam``) or an objective with ``hessp``
        (and ``gnvp`` for the Gauss-Newton matrix) and ``n_params``.
    params : ndarray, shape (n_params,)
        The point where the curvature is taken.
    X, y, lam
        As in :meth:`flatnn.Network.cost`; omitted with an objective.
    k : int, default 1
        How many eigenpairs, ``1 <= k < n_params``.
    which : {"top", "bottom"}
        The largest (algebraically) or the smallest eigenvalues.
    curvature : {"hessian", "gauss-newton"}
    rng : numpy.random.Generator or int, optional
        Draws the Lanczos start vector and the ``subset`` rows.
    subset : int, optional
        Use this many rows of the data, drawn without replacement by ``rng``.

    Returns
    -------
    eigenvalues : ndarray, shape (k,)
        Descending for ``top``, ascending for ``bottom`` (the extreme one first).
    eigenvectors : ndarray, shape (n_params, k)
        Unit eigenvectors as columns, in the order of ``eigenvalues``.
    """
    gen = np.random.default_rng(rng)  # a Generator is returned as it is (shared draws)
    product, n = _product(net, params, X, y, lam, curvature, subset, gen, "eigs")
    return _lanczos_eigs(product, n, k, which, gen)


# ------------------------------------------------------------------------ trace
def _rademacher(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=(n, count))


def _apply(product: Product, V: np.ndarray) -> np.ndarray:
    """``A V`` column by column."""
    out = np.empty_like(V)
    for j in range(V.shape[1]):
        out[:, j] = product(V[:, j])
    return out


def _hutchpp(product: Product, n: int, n_products: int, rng: np.random.Generator) -> float:
    if n_products >= n:  # the sketch spans the whole space: the trace is exact
        return float(sum(product(np.eye(1, n, i)[0])[i] for i in range(n)))
    s = n_products // 3  # sketch columns; as many for A Q, the rest (>= s) for the residual
    n_residual = n_products - 2 * s
    Q, _ = np.linalg.qr(_apply(product, _rademacher(rng, n, s)))
    estimate = float(np.trace(Q.T @ _apply(product, Q)))
    if n_residual > 0:
        G = _rademacher(rng, n, n_residual)
        G -= Q @ (Q.T @ G)
        estimate += float(np.einsum("ij,ij->", G, _apply(product, G))) / n_residual
    return estimate


def trace(
    net: Any,
    params: Any,
    X: Any = None,
    y: Any = None,
    lam: float = 0.0,
    *,
    curvature: str = "hessian",
    method: str = "hutch++",
    n_products: int = 100,
    rng: Any = None,
    subset: int | None = None,
) -> float:
    """An estimate of the trace of the Hessian or Gauss-Newton matrix.

    Parameters
    ----------
    net, params, X, y, lam, curvature, rng, subset
        As in :func:`eigs`.
    method : {"hutch++", "hutchinson"}
        ``hutchinson``: the mean of ``zᵀ A z`` over ``n_products`` Rademacher
        vectors (unbiased, error ``O(1/√n_products)``). ``hutch++``: a third of
        the products sketch ``A``'s range, a third take its exact trace there
        and the rest estimate the remainder by Hutchinson (error
        ``O(1/n_products)``); with ``n_products >= n_params`` the subspace is the
        whole space and the result is exact (from the unit vectors).
    n_products : int, default 100
        The number of matrix-vector products spent; ``hutch++`` needs at least 3.

    Returns
    -------
    float
    """
    if method not in ("hutch++", "hutchinson"):
        raise ValueError(f"method must be 'hutch++' or 'hutchinson', got {method!r}")
    n_products = checks.integer(n_products, "n_products", 3 if method == "hutch++" else 1)
    gen = np.random.default_rng(rng)
    product, n = _product(net, params, X, y, lam, curvature, subset, gen, "trace")
    if method == "hutch++":
        return _hutchpp(product, n, n_products, gen)
    total = 0.0
    for _ in range(n_products):
        z = _rademacher(gen, n, 1)[:, 0]
        total += float(z @ product(z))
    return total / n_products


# ---------------------------------------------------------------------- density
def _lanczos(product: Product, v: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature nodes and weights of ``vᵀ f(A) v`` for a unit ``v``.

    ``steps`` Lanczos steps with full reorthogonalisation (the Ritz values of a
    plain run repeat once extreme eigenvalues have converged); stops early when
    the Krylov space is exhausted.
    """
    n = v.shape[0]
    basis = np.empty((steps, n))
    alphas: list[float] = []
    betas: list[float] = []
    q, beta = v, 0.0
    for j in range(steps):
        basis[j] = q
        w = product(q)
        alpha = float(q @ w)
        w -= alpha * q + (beta * basis[j - 1] if j else 0.0)
        w -= basis[: j + 1].T @ (basis[: j + 1] @ w)  # full reorthogonalisation
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        if j == steps - 1 or beta <= 1e-10 * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        q = w / beta
    nodes, vectors = scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas))
    return nodes, vectors[0] ** 2


def _grid(grid: Any, nodes: np.ndarray, sigma: float) -> np.ndarray:
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        size = checks.integer(grid, "grid", 2)
        return np.linspace(nodes.min() - 5 * sigma, nodes.max() + 5 * sigma, size)
    points = np.asarray(grid, dtype=np.float64)
    if points.ndim != 1 or points.size < 2:
        raise ValueError(
            f"grid must be an int >= 2 or a 1-D array of points, got shape {points.shape}"
        )
    return points


def density(
    net: Any,
    params: Any,
    X: Any = None,
    y: Any = None,
    lam: float = 0.0,
    *,
    curvature: str = "hessian",
    n_products: int = 100,
    n_vectors: int = 1,
    grid: Any = 1000,
    sigma: float | None = None,
    rng: Any = None,
    subset: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The smoothed spectral density of the Hessian or Gauss-Newton matrix (SLQ).

    ``φ(t) = (1/n) Σ_i N(t; λ_i, sigma²)``, estimated by stochastic Lanczos
    quadrature: ``n_vectors`` Lanczos runs of ``n_products // n_vectors`` steps
    from random unit vectors, each giving quadrature nodes and weights.

    Parameters
    ----------
    net, params, X, y, lam, curvature, rng, subset
        As in :func:`eigs`.
    n_products : int, default 100
        Matrix-vector products in all; at most ``n_params`` per vector are used.
    n_vectors : int, default 1
        Random start vectors (probes); more lower the variance of the weights.
    grid : int or array_like, default 1000
        The points ``t``; an int spans the nodes' range plus ``5 sigma`` each side.
    sigma : float, optional
        Gaussian width; default 1 % of the range of the nodes (or 1e-3 if zero).

    Returns
    -------
    grid : ndarray, shape (g,)
    density : ndarray, shape (g,)
        ``φ`` at the grid points; it integrates to 1 over a grid covering the
        nodes.
    """
    n_vectors = checks.integer(n_vectors, "n_vectors", 1)
    n_products = checks.integer(n_products, "n_products", n_vectors)
    gen = np.random.default_rng(rng)
    product, n = _product(net, params, X, y, lam, curvature, subset, gen, "density")
    steps = min(n_products // n_vectors, n)
    runs = []
    for _ in range(n_vectors):
        v = _rademacher(gen, n, 1)[:, 0] / np.sqrt(n)
        runs.append(_lanczos(product, v, steps))
    nodes = np.concatenate([r[0] for r in runs])
    weights = np.concatenate([r[1] for r in runs]) / n_vectors
    if sigma is None:
        spread = float(nodes.max() - nodes.min())
        sigma = 0.01 * spread if spread > 0 else 1e-3
    sigma = checks.real(sigma, "sigma", 0, low_open=True)
    points = _grid(grid, nodes, sigma)
    z = (points[:, None] - nodes[None, :]) / sigma
    phi = np.exp(-0.5 * z**2) @ weights / (sigma * np.sqrt(2 * np.pi))
    return points, phi


def plot_density(
    grid: np.ndarray, density: np.ndarray, path: Any = None, *, ax: Any = None, log: bool = True
) -> Any:
    """Plot a spectral density from :func:`density` (needs matplotlib).

    Parameters
    ----------
    grid, density : ndarray, shape (g,)
    path : str or os.PathLike, optional
        Save the figure there.
    ax : matplotlib Axes, optional
        Draw into it; default a new figure.
    log : bool, default True
        Logarithmic density axis (the bulk near 0 and the outliers both show).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.5))
    floor = np.maximum(density, 1e-12) if log else density
    ax.plot(grid, floor)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    if path is not None:
        ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    return ax


# -------------------------------------------------------------------- sharpness
class Sharpness:
    """A training callback: the top Hessian eigenvalue every ``every`` epochs.

    Pass it as ``callback=`` to :func:`flatnn.sgd` or :func:`flatnn.minimize`.
    At the first epoch (iteration) and every ``every``-th after it, it computes
    the largest eigenvalue of the Hessian at the current parameters and writes it
    into that history entry as ``sharpness``; the other entries have no
    ``sharpness`` key. Each estimate starts Lanczos from the previous top
    eigenvector, so later ones need few products.

    Parameters
    ----------
    net, X, y, lam, curvature, rng, subset
        As in :func:`eigs` (the same rows every time when ``subset`` is given).
    every : int, default 1
    tol : float, default 1e-6
        Relative accuracy of each estimate (ARPACK's ``tol``).

    Attributes
    ----------
    values : list of (int, float)
        ``(nit, sharpness)`` pairs so far (``nit`` counts history entries from 1).
    """

    def __init__(
        self,
        net: Any,
        X: Any = None,
        y: Any = None,
        lam: float = 0.0,
        *,
        every: int = 1,
        curvature: str = "hessian",
        tol: float = 1e-6,
        rng: Any = None,
        subset: int | None = None,
    ) -> None:
        self.every = checks.integer(every, "every", 1)
        self.tol = checks.real(tol, "tol", 0)
        self.curvature = _check_curvature(curvature)
        self._rng = np.random.default_rng(rng)
        self.objective = _rows(_bind(net, X, y, lam, "Sharpness"), subset, self._rng, "Sharpness")
        self.values: list[tuple[int, float]] = []
        self._v0: np.ndarray | None = None

    def measure(self, params: np.ndarray) -> float:
        """The top eigenvalue at ``params`` (warm-started from the last one)."""
        product, n = _product(
            self.objective, params, None, None, 0.0, self.curvature, None, self._rng, "Sharpness"
        )
        values, vectors = _lanczos_eigs(product, n, 1, "top", self._rng, tol=self.tol, v0=self._v0)
        self._v0 = vectors[:, 0]
        return float(values[0])

    def __call__(self, intermediate_result: Any) -> None:
        """Record the sharpness into ``intermediate_result.history[-1]`` when due."""
        nit = int(intermediate_result.nit)
        if (nit - 1) % self.every:
            return
        value = self.measure(np.asarray(intermediate_result.x))
        self.values.append((nit, value))
        history = intermediate_result.get("history")
        if history:
            history[-1]["sharpness"] = value
