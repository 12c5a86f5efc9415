"""Dropout and max-norm: the regularizers of Srivastava et al. (2014), as pure functions.

**Inverted dropout.** During training each input unit of layer ``l`` (the data
for ``l = 0``, the hidden activations after that) is kept with probability
``1 - rate_l`` and the kept ones are scaled by ``1 / (1 - rate_l)``: with a mask
``M_l`` of entries ``0`` or ``1 / (1 - rate_l)``, shape ``(m, n_l)``::

    z_{l+1} = (a_l ⊙ M_l) W_{l+1}ᵀ + b_{l+1}

Its expectation over the mask is the plain network's, so evaluation, prediction
and the scipy methods use the network as it is, with no rescaling. The gradient
follows the same recursions as the plain network's with the mask applied on
the way back as well (the masks are an option of the one batch kernel,
:func:`flatnn.core.kernel.loss_grad`; the L2 term is the objective's, from
:mod:`flatnn.core.evaluation`)::

    ∂J/∂W_{l+1} = δ_{l+1}ᵀ (a_l ⊙ M_l)
    δ_l = (δ_{l+1} W_{l+1}) ⊙ M_l ⊙ f'(z_l)

For a fixed mask this is the exact gradient of :func:`cost` with that mask,
which is what the gradient check tests. :func:`flatnn.sgd` draws a new mask
for every batch from its generator, so a seed fixes every mask of a run.

**Max-norm.** After each step the incoming weight vector of every unit (row
``i`` of ``W_l``, the bias excluded) is scaled back onto the ball of radius
``c`` when it left it: ``w_i ← w_i · min(1, c / ‖w_i‖)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from flatnn.base import namespace
from flatnn.core import evaluation, inputs, kernel
from flatnn.core.network import Network
from flatnn.training.driver import as_target

__all__ = [
    "check_rates",
    "draw_masks",
    "cost",
    "cost_grad",
    "apply_max_norm",
    "check_max_norm",
]


def check_rates(net: Network, rates: Any) -> tuple[float, ...]:
    """Validated dropout rates, one per layer input: ``(rate_0, ..., rate_{L-1})``.

    Parameters
    ----------
    net : Network
    rates : sequence of float
        ``len(net.sizes) - 1`` rates in ``[0, 1)``: the input's, then one per
        hidden layer.

    Returns
    -------
    tuple of float
    """
    n = len(net.sizes) - 1
    if isinstance(rates, (str, bytes)) or not hasattr(rates, "__len__"):
        raise TypeError(
            f"dropout must be a sequence of {n} rates (input, then each hidden "
            f"layer), got {rates!r}"
        )
    if len(rates) != n:
        raise ValueError(
            f"dropout has {len(rates)} rates; {net!r} needs {n} (input, then each hidden layer)"
        )
    out = []
    for r in rates:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Real):
            raise TypeError(f"a dropout rate must be a number in [0, 1), got {r!r}")
        if not 0.0 <= float(r) < 1.0:
            raise ValueError(f"a dropout rate must lie in [0, 1), got {r!r}")
        out.append(float(r))
    return tuple(out)


def draw_masks(
    net: Network, rates: Any, m: int, rng: np.random.Generator, dtype: Any = np.float64
) -> list[Any]:
    """Draw one inverted-dropout mask per layer input.

    Parameters
    ----------
    net : Network
    rates : sequence of float
        As in :func:`check_rates`.
    m : int
        Rows of the batch.
    rng : numpy.random.Generator
        The only source of randomness; one ``random`` draw per layer with a
        non-zero rate, in layer order.
    dtype : float32 or float64

    Returns
    -------
    list of (ndarray of shape (m, n_l)) or None
        Entries ``0`` or ``1 / (1 - rate_l)``; None for a rate of 0.
    """
    dtype = np.dtype(dtype)
    masks: list[Any] = []
    for rate, n in zip(check_rates(net, rates), net.sizes[:-1]):
        if rate == 0.0:
            masks.append(None)
            continue
        mask = rng.random((m, n), dtype=dtype)
        keep = mask >= rate
        mask[...] = keep
        mask *= dtype.type(1.0 / (1.0 - rate))
        masks.append(mask)
    return masks


def _prepare(net, params, X, y, masks):
    if not isinstance(net, Network):
        raise TypeError(f"net must be a flatnn.Network, got {type(net).__name__}")
    params, X = np.asarray(params), np.asarray(X)
    work = np.float32 if (params.dtype == np.float32 and X.dtype == np.float32) else np.float64
    thetas = net.unpack(params.astype(work, copy=False))
    if X.ndim != 2 or X.shape[1] != net.sizes[0]:
        raise ValueError(f"X must have shape (m, {net.sizes[0]}), got {X.shape}")
    X = X.astype(work, copy=False)
    if len(masks) != len(thetas):
        raise ValueError(
            f"masks has {len(masks)} entries; {net!r} needs {len(thetas)} "
            f"(None or an (m, n_l) array per layer input)"
        )
    for l, (mask, n) in enumerate(zip(masks, net.sizes[:-1])):
        if mask is not None and np.shape(mask) != (X.shape[0], n):
            raise ValueError(f"masks[{l}] must have shape {(X.shape[0], n)}, got {np.shape(mask)}")
    return thetas, X, as_target(net, y, X.dtype)


def cost_grad(
    net: Network, params: Any, X: Any, y: Any, lam: float, masks: Any, sample_weight: Any = None
) -> tuple[float, Any]:
    """``J`` and its gradient with the given dropout masks (training-time forward pass).

    ``J = (1/m) Σ loss(masked network) + lam/(2m) Σ ‖theta[:, 1:]‖²`` (with
    sample weights, ``m`` becomes ``Σ w`` and the losses are weighted, as in
    :meth:`Network.cost`). With all masks None this is :meth:`Network.cost_grad`.
    The function is deterministic: the masks carry all the randomness, which is
    what a gradient check needs.

    Parameters
    ----------
    net : Network
    params : ndarray, shape (n_params,)
    X : ndarray, shape (m, sizes[0])
    y : ndarray, shape (m,) or (m, k)
    lam : float
    masks : sequence
        One entry per layer input (``len(net.sizes) - 1``): None or an array of
        shape ``(m, n_l)``, e.g. from :func:`draw_masks`.
    sample_weight : ndarray, shape (m,), optional
        Per-sample weights; None for ``w = 1``.

    Returns
    -------
    cost : float
    grad : ndarray, shape (n_params,)
    """
    thetas, X, target = _prepare(net, params, X, y, masks)
    weights, total = inputs.check_weights(sample_weight, X.shape[0], X.dtype)
    grad = np.empty(net.n_params, dtype=X.dtype)
    grads = net.unpack(grad)
    hidden, outloss = evaluation.hidden_fns(net), evaluation.output_loss(net)
    value = kernel.loss_grad(
        thetas, hidden, outloss, X, target, grads, 1.0 / total, masks=list(masks), weights=weights
    )
    evaluation.add_l2(grads, thetas, total, lam)
    return evaluation.finish_cost(value, thetas, total, lam), grad


def cost(
    net: Network, params: Any, X: Any, y: Any, lam: float, masks: Any, sample_weight: Any = None
) -> float:
    """``J`` with the given dropout masks; see :func:`cost_grad`."""
    return cost_grad(net, params, X, y, lam, masks, sample_weight)[0]


def check_max_norm(max_norm: Any) -> float | None:
    """Validated max-norm radius ``c``: a finite number > 0, or None (off)."""
    if max_norm is None:
        return None
    if isinstance(max_norm, (bool, np.bool_)) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"max_norm must be a number > 0 or None, got {max_norm!r}")
    if not (float(max_norm) > 0 and math.isfinite(max_norm)):
        raise ValueError(f"max_norm must be a finite number > 0, got {max_norm!r}")
    return float(max_norm)


def apply_max_norm(thetas: Any, max_norm: float) -> None:
    """Scale every row of each ``W_l = theta_l[:, 1:]`` to norm ``<= max_norm``, in place.

    Parameters
    ----------
    thetas : sequence of ndarray
        Per-layer matrices ``(n_l, n_{l-1} + 1)``, views into the flat vector
        (see :meth:`Network.unpack`); the bias column is left alone. Arrays of
        another namespace (CuPy) are scaled there, without a transfer to the host.
    max_norm : float
        The radius ``c``.
    """
    xp = namespace.namespace_of(thetas[0])
    if xp is not np:
        # No boolean indexing (a sync and a gather on a GPU): the rows within the
        # ball are multiplied by 1, which leaves them exactly as they were.
        for theta in thetas:
            W = theta[:, 1:]
            norms = xp.sqrt((W * W).sum(axis=1))
            W *= xp.where(norms > max_norm, max_norm / norms, 1.0).astype(W.dtype)[:, None]
        return
    for theta in thetas:
        W = theta[:, 1:]
        norms = np.sqrt(np.einsum("ij,ij->i", W, W))
        over = norms > max_norm
        if over.any():
            W[over] *= (max_norm / norms[over])[:, None].astype(W.dtype)
