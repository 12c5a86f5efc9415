"""The forward pass, backpropagation, and Pearlmutter's R-operator.

Notation, batch-major (rows are samples): ``a_0 = X`` of shape ``(m, n_0)``;
for layer ``l = 1..L`` with ``theta_l = [b_l | W_l]`` of shape ``(n_l, n_{l-1} + 1)``::

    z_l = a_{l-1} W_lᵀ + b_l          (m, n_l)
    a_l = f_l(z_l)

Backpropagation starts from ``δ_L = ∂J/∂z_L`` (given by the loss) and runs::

    ∂J/∂W_l = δ_lᵀ a_{l-1}      ∂J/∂b_l = Σ_rows δ_l
    δ_{l-1} = (δ_l W_l) ⊙ f'_{l-1}(z_{l-1})

The R-operator ``R{·} = d/dr (·)(params + r v)|_{r=0}`` pushes a direction ``v``
through the same recursions (Pearlmutter 1994): ``R{z_l} = R{a_{l-1}} W_lᵀ + a_{l-1}
V_lᵀ + c_l``, ``R{a_l} = f'(z_l) ⊙ R{z_l}``, and backwards ``R{δ_{l-1}} = (R{δ_l} W_l
+ δ_l V_l) ⊙ f'(z_{l-1}) + (δ_l W_l) ⊙ f''(z_{l-1}) ⊙ R{z_{l-1}}``, which gives the
exact ``H v`` in one extra forward and backward pass. Dropping the terms in
``δ`` (second-order effects of the hidden layers) and using the loss's convex
curvature at the output gives the Gauss-Newton product ``G v``.

**Dropout masks.** With an inverted-dropout mask ``M_l`` on the input of layer
``l + 1`` (see :mod:`flatnn.dropout`) the layer sees ``a_l ⊙ M_l``: its weight
gradient is ``δ_{l+1}ᵀ (a_l ⊙ M_l)`` and ``δ_l = (δ_{l+1} W_{l+1}) ⊙ M_l ⊙ f'(z_l)``.

**Sample weights.** The caller scales ``δ_L`` row by row (:func:`scale_rows`):
by ``1/m``, or by ``w_i / Σ w`` for weighted samples; the recursions are linear in
``δ_L``, so nothing else changes.

**Sparse input.** ``X`` may be a ``scipy.sparse`` matrix or array (CSR or CSC):
the first layer computes ``X W_1ᵀ`` and ``(Xᵀ δ_1)ᵀ`` with sparse products, and
nothing makes a dense copy of ``X``.

This module is the one batch kernel: :class:`flatnn.Network`'s evaluation, the
SGD batch step (:mod:`flatnn.training.step`) and the dropout objective
(:mod:`flatnn.dropout`) all run :func:`loss_grad` / :func:`forward` /
:func:`backward` / :func:`curvature_product`.

These functions take per-layer matrices (views into the flat vectors, see
:meth:`flatnn.Network.unpack`), never copy ``X`` and allocate one array per
layer (``forward`` and ``backward`` together: the activations, which ``backward``
then reuses for the deltas; a masked pass keeps the masked inputs as well).
Nothing here validates input: :class:`flatnn.Network` does that. Every function
computes with the namespace of ``X`` (NumPy or CuPy, see :mod:`flatnn.namespace`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flatnn.base.namespace import namespace_of

__all__ = [
    "BLOCK_BYTES",
    "forward",
    "backward",
    "loss_grad",
    "scale_rows",
    "curvature_product",
]

# Elementwise work (bias, activation, derivative) is done on blocks of rows
# right after the matrix product that wrote them, while they are still in cache:
# on the whole (m, n) arrays every such pass costs a trip to main memory, which
# added 30-50 % to the matrix products on MNIST. About 1 MiB per block.
BLOCK_BYTES = 1 << 20


def _block_rows(n_cols, dtype, xp):
    """Rows per block for an ``(m, n_cols)`` array of ``dtype`` in namespace ``xp``.

    The blocks are a CPU cache trick; on a GPU each slice would be a kernel
    launch of its own, so every row goes in one block there.
    """
    if xp is not np:
        return 1 << 62
    return max(64, BLOCK_BYTES // (n_cols * dtype.itemsize))


def is_sparse(X: Any) -> bool:
    """True for a ``scipy.sparse`` matrix or array (the first layer's sparse input).

    scipy.sparse is not imported here (it adds to the start-up of every command):
    a sparse ``X`` means the caller has imported it already. An ndarray is
    ruled out first: scipy's ``issparse`` is an ABC check, ~0.5 µs a batch.
    """
    if type(X) is np.ndarray:
        return False
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def _masked(a, mask):
    """The layer input ``a ⊙ mask`` (a new array; sparse stays sparse)."""
    if mask is None:
        return a
    if is_sparse(a):
        return a.multiply(mask).tocsr()
    return a * mask


def _used_columns(a):
    """``(a restricted to its non-zero columns, those columns)``, or None when not worth it.

    A minibatch of a wide CSR matrix touches few columns (200 tf-idf rows of 20
    stored entries: at most 4000 of 20000). Its products then need only those
    columns of ``W_1``: scipy copies the whole non-contiguous ``W_1ᵀ`` for
    ``a W_1ᵀ`` and ``(aᵀ δ)ᵀ`` is written across all of ``∂J/∂W_1``, which cost
    3.5 ms of a 13 ms adam step at 20000 x 50. The restricted matrix keeps every
    row's entries in their order, so the sums are the same, bit for bit.
    """
    if a.format != "csr" or 2 * a.nnz >= a.shape[1]:
        return None
    cols, inv = np.unique(a.indices, return_inverse=True)
    sub = type(a)(
        (a.data, inv.astype(a.indices.dtype, copy=False), a.indptr), shape=(a.shape[0], cols.size)
    )
    return sub, cols


def _weight_grad(delta, a, out=None):
    """``δᵀ a`` (n_l, n_{l-1}): into ``out`` when given, else a new array.

    For sparse ``a`` (the first layer's ``X``) the product is ``(aᵀ δ)ᵀ``: sparse
    times dense, with no dense copy of ``a``; only the columns ``a`` uses are
    computed when they are few (:func:`_used_columns`), the others are 0.
    """
    if is_sparse(a):
        used = _used_columns(a)
        if used is None:
            prod = a.T @ delta  # (n_{l-1}, n_l)
            if out is None:
                return prod.T
            _write_transposed(out, prod)
            return out
        sub, cols = used
        if out is None:
            out = np.zeros((delta.shape[1], a.shape[1]), dtype=np.result_type(delta, a.dtype))
        else:
            out.fill(0)
        out[:, cols] = (sub.T @ delta).T
        return out
    if out is None:
        return delta.T @ a
    return namespace_of(delta).matmul(delta.T, a, out=out)


def _write_transposed(out, src, step=1024):
    """``out[...] = src.T``, a band of ``step`` columns of ``out`` at a time.

    ``out`` (n, k) is a strided view into the gradient; writing it in bands keeps
    the lines being filled in cache: 1.7 ms instead of 2.6 ms for 50 x 20000
    float64 with cold caches.
    """
    for start in range(0, src.shape[0], step):
        out[:, start : start + step] = src[start : start + step].T


def forward(
    thetas: Sequence[Any],
    hidden_fns: Sequence[Any],
    X: Any,
    inspect_first: Callable[[Any], None] | None = None,
    out: Any = None,
    masks: Sequence[Any] | None = None,
    hidden_out: list[Any] | None = None,
) -> tuple[list[Any], Any]:
    """Run the network up to the output logits.

    Parameters
    ----------
    thetas : sequence of ndarray
        ``theta_l`` of shape ``(n_l, n_{l-1} + 1)``, bias in column 0.
    hidden_fns : sequence of Activation
        One per hidden layer (``len(thetas) - 1``).
    X : ndarray or scipy.sparse matrix, shape (m, n_0)
    inspect_first : callable, optional
        Called with each block of rows of the first layer's pre-activations
        ``z_1`` before they are overwritten (the network uses it to detect NaN/inf
        input cheaply).
    out : ndarray, shape (m, n_L), optional
        Where to write the logits (a C-contiguous array of the work dtype);
        a new array when omitted.
    masks : sequence of (ndarray or None), optional
        Dropout masks, one per layer input, shape ``(m, n_l)``; such a pass
        runs as one block of rows.
    hidden_out : list, optional
        With ``masks``: receives the unmasked hidden activations ``a_1 .. a_{L-1}``,
        which :func:`backward` needs for ``f'``.

    Returns
    -------
    acts : list of ndarray
        ``[X, a_1, ..., a_{L-1}]``: the input of every layer, as the layer saw
        it (``a_l ⊙ M_l`` under a mask).
    z : ndarray, shape (m, n_L)
        The output pre-activations (logits), owned by the caller: ``out``
        when given.
    """
    xp = namespace_of(X)
    m = X.shape[0]
    acts = []
    a = X
    last = len(thetas) - 1
    for l, theta in enumerate(thetas):
        if masks is not None:
            a = _masked(a, masks[l])
        acts.append(a)
        act = hidden_fns[l] if l < last else None
        into = out if act is None else None
        check = inspect_first if l == 0 else None
        if l == 0 and type(a) is not np.ndarray and is_sparse(a):
            z = _bias_and_activation(_sparse_product(a, theta, into), theta[:, 0], act, check)
        elif masks is None and m > _block_rows(theta.shape[0], a.dtype, xp):
            z = _layer_blocked(a, theta, act, into, check, xp)
        else:  # one block (a minibatch, or a masked pass): no slicing, which costs µs per layer
            z = xp.matmul(a, theta[:, 1:].T, out=into) if into is not None else a @ theta[:, 1:].T
            z += theta[:, 0]
            if check is not None:
                check(z)
            if act is not None:
                act.forward(z)
        if l == last:
            return acts, z
        if hidden_out is not None:
            hidden_out.append(z)
        a = z
    raise AssertionError("unreachable: a network has at least one layer")


def _sparse_product(a, theta, out):
    """``a Wᵀ`` for sparse ``a`` (m, n_0): a dense (m, n_1) array, ``out`` when given."""
    used = _used_columns(a)
    if used is None:
        z = a @ theta[:, 1:].T
    else:  # the columns a uses: a gather along W's rows, then a small copy by scipy
        sub, cols = used
        z = sub @ np.take(theta, 1 + cols, axis=1).T
    if out is None:
        return z
    out[...] = z
    return out


def _bias_and_activation(z, b, act, check):
    """``z += b``, then ``check(z)`` and ``z = f(z)`` in place; returns ``z``."""
    z += b
    if check is not None:
        check(z)
    if act is not None:
        act.forward(z)
    return z


def _layer_blocked(a, theta, act, out, check, xp):
    """One layer, its elementwise work done on cache-sized blocks of rows."""
    m = a.shape[0]
    rows = _block_rows(theta.shape[0], a.dtype, xp)
    W, b = theta[:, 1:], theta[:, 0]
    z = (
        out
        if out is not None
        else xp.empty((m, theta.shape[0]), dtype=np.result_type(a.dtype, theta.dtype))
    )
    for start in range(0, m, rows):
        z_blk = z[start : start + rows]
        xp.matmul(a[start : start + rows], W.T, out=z_blk)
        _bias_and_activation(z_blk, b, act, check)
    return z


def backward(
    thetas: Sequence[Any],
    hidden_fns: Sequence[Any],
    acts: list[Any],
    delta: Any,
    grads: Sequence[Any],
    masks: Sequence[Any] | None = None,
    hidden_acts: Sequence[Any] | None = None,
) -> None:
    """Backpropagate ``delta = ∂J/∂z_L`` and write ``∂J/∂theta_l`` into ``grads``.

    ``grads`` are views into one flat gradient vector, shaped like ``thetas``.
    ``delta`` (m, n_L) and the hidden activations in ``acts`` are overwritten:
    ``δ_{l-1}`` takes the place of ``a_{l-1}`` once ``∂J/∂W_l`` has used it, so the
    pass allocates no (m, n) array of its own. With ``masks`` (and the unmasked
    ``hidden_acts`` that :func:`forward` collected) every delta is a new array.
    """
    xp = namespace_of(delta)
    m = delta.shape[0]
    bias_grad = delta.sum(axis=0)
    for l in range(len(thetas) - 1, -1, -1):
        a_prev, g = acts[l], grads[l]
        if l == 0 and type(a_prev) is not np.ndarray and is_sparse(a_prev):
            _weight_grad(delta, a_prev, out=g[:, 1:])
        else:
            xp.matmul(delta.T, a_prev, out=g[:, 1:])
        g[:, 0] = bias_grad
        if l == 0:
            break
        W, act = thetas[l][:, 1:], hidden_fns[l - 1]
        rows = _block_rows(a_prev.shape[1], a_prev.dtype, xp)
        if masks is None and m > rows:
            delta, bias_grad = _backward_blocked(delta, W, act, a_prev, rows, xp)
            continue
        d = delta @ W  # one block (a minibatch, or a masked pass): no slicing
        if masks is not None:
            if masks[l] is not None:
                d *= masks[l]
            a_prev = hidden_acts[l - 1] if hidden_acts is not None else a_prev
        act.mul_deriv(d, a_prev)
        bias_grad = d.sum(axis=0)
        delta = d


def _backward_blocked(delta, W, act, a_prev, rows, xp):
    """``δ_{l-1}`` written over ``a_{l-1}`` block by block; returns it and its row sum."""
    m = delta.shape[0]
    block = xp.empty((min(rows, m), a_prev.shape[1]), dtype=a_prev.dtype)
    bias_grad = xp.zeros(a_prev.shape[1], dtype=a_prev.dtype)
    for start in range(0, m, rows):
        a_blk = a_prev[start : start + rows]
        d_blk = block[: a_blk.shape[0]]
        xp.matmul(delta[start : start + rows], W, out=d_blk)
        act.mul_deriv(d_blk, a_blk)
        a_blk[...] = d_blk  # δ_{l-1} over a_{l-1}, whose last use this was
        bias_grad += d_blk.sum(axis=0)
    return a_prev, bias_grad


def scale_rows(delta: Any, scale: float, weights: Any = None) -> Any:
    """``delta *= scale`` in place, or ``delta *= scale · w_i`` row by row with weights.

    ``scale`` is ``1/m`` (or ``1/Σ w``), which turns the summed loss's delta into
    the mean's; ``weights`` (m,) are the sample weights of the rows of ``delta``.
    """
    if weights is None:
        delta *= scale
    else:
        delta *= (weights * scale)[:, None]
    return delta


def loss_grad(
    thetas: Sequence[Any],
    hidden_fns: Sequence[Any],
    outloss: Any,
    X: Any,
    target: Any,
    grads: Sequence[Any],
    scale: float,
    *,
    masks: Sequence[Any] | None = None,
    weights: Any = None,
    inspect_first: Callable[[Any], None] | None = None,
) -> Any:
    """Summed loss ``Σ_i w_i ℓ_i`` of a batch; the gradient of ``scale ·`` that into ``grads``.

    One forward pass, the loss's delta, one backward pass: the whole kernel of
    a gradient evaluation. No validation and no L2 term (see
    :mod:`flatnn.core.evaluation` for the objective's formula).

    Parameters
    ----------
    thetas : sequence of ndarray
    hidden_fns : sequence of Activation
    outloss : flatnn.core.losses.OutputLoss
    X : ndarray or scipy.sparse matrix, shape (m, n_0)
    target : ndarray
        Labels ``(m,)`` or targets ``(m, k)``.
    grads : sequence of ndarray
        Views into the flat gradient, shaped like ``thetas``; overwritten.
    scale : float
        ``1/m`` (or ``1/Σ w`` of the whole data) for the mean loss.
    masks : sequence, optional
        Dropout masks, as in :func:`forward`.
    weights : ndarray, shape (m,), optional
        Sample weights ``w_i``; None for ``w = 1``.
    inspect_first : callable, optional
        As in :func:`forward`.

    Returns
    -------
    float or 0-d array
        ``Σ_i w_i ℓ_i`` (a device scalar on a GPU).
    """
    hidden_acts: list[Any] | None = [] if masks is not None else None
    acts, z = forward(thetas, hidden_fns, X, inspect_first, masks=masks, hidden_out=hidden_acts)
    value, delta = outloss.value_and_delta(z, target, weights=weights)
    if weights is None:  # scale_rows, without a call on the SGD path
        delta *= scale
    else:
        scale_rows(delta, scale, weights)
    backward(thetas, hidden_fns, acts, delta, grads, masks, hidden_acts)
    return value


def curvature_product(
    thetas: Sequence[Any],
    vs: Sequence[Any],
    hidden_fns: Sequence[Any],
    outloss: Any,
    X: Any,
    target: Any,
    scale: float,
    out: Sequence[Any],
    gauss_newton: bool,
    inspect_first: Callable[[Any], None] | None = None,
    weights: Any = None,
) -> None:
    """Write ``H v`` (or ``G v``) of ``scale · Σ_i w_i ℓ_i`` into the views ``out``.

    Parameters
    ----------
    thetas, vs : sequence of ndarray
        The parameters and the direction ``v``, unpacked the same way.
    hidden_fns : sequence of Activation
    outloss : flatnn.losses.OutputLoss
    X : ndarray or scipy.sparse matrix, shape (m, n_0)
    target : ndarray
        Labels ``(m,)`` or targets ``(m, k)``.
    scale : float
        ``1 / m`` (or ``1 / Σ w``) for the mean loss.
    out : sequence of ndarray
        Views into the flat result, shaped like ``thetas``.
    gauss_newton : bool
        False for the exact Hessian, True for the Gauss-Newton matrix.
    inspect_first : callable, optional
        As in :func:`forward`: called with the first layer's pre-activations.
    weights : ndarray, shape (m,), optional
        Sample weights; None for ``w = 1``.
    """
    acts, Racts, Rzs, z, Rz = _r_forward(thetas, vs, hidden_fns, X, inspect_first)
    _, delta, Rdelta = outloss.curvature(z, target, Rz, gauss_newton)
    scale_rows(delta, scale, weights)
    scale_rows(Rdelta, scale, weights)
    for l in range(len(thetas) - 1, -1, -1):
        a_prev, Ra_prev = acts[l], Racts[l]
        o = out[l]
        W = thetas[l][:, 1:]
        o[:, 1:] = _weight_grad(Rdelta, a_prev)
        if not gauss_newton and Ra_prev is not None:
            o[:, 1:] += delta.T @ Ra_prev
        Rdelta.sum(axis=0, out=o[:, 0])
        if l == 0:
            break
        act = hidden_fns[l - 1]
        Rdelta = Rdelta @ W
        if gauss_newton:
            act.mul_deriv(Rdelta, a_prev)
            continue
        Rdelta += delta @ vs[l][:, 1:]
        act.mul_deriv(Rdelta, a_prev)
        delta = delta @ W
        d2 = act.deriv2(a_prev)
        if d2 is not None:
            d2 *= delta
            d2 *= Rzs[l]
            Rdelta += d2
        act.mul_deriv(delta, a_prev)


def _r_forward(thetas, vs, hidden_fns, X, inspect_first):
    """The forward pass with its R-pass: ``(acts, R{acts}, R{z}s, z_L, R{z_L})``."""
    acts, Racts, Rzs = [X], [None], [None]
    a, Ra = X, None
    last = len(thetas) - 1
    for l, (theta, v) in enumerate(zip(thetas, vs)):
        z = a @ theta[:, 1:].T
        z += theta[:, 0]
        if l == 0 and inspect_first is not None:
            inspect_first(z)
        Rz = a @ v[:, 1:].T
        Rz += v[:, 0]
        if Ra is not None:
            Rz += Ra @ theta[:, 1:].T
        if l == last:
            break
        a = hidden_fns[l].forward(z)
        Ra = hidden_fns[l].deriv(a)
        Ra *= Rz
        acts.append(a)
        Racts.append(Ra)
        Rzs.append(Rz)
    return acts, Racts, Rzs, z, Rz
