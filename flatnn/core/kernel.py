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

These functions take per-layer matrices (views into the flat vectors, see
:meth:`flatnn.Network.unpack`), never copy ``X`` and allocate one array per
layer (``forward`` and ``backward`` together: the activations, which ``backward``
then reuses for the deltas). Nothing here validates input: :class:`flatnn.Network`
does that. Every function computes with the namespace of ``X`` (NumPy or
CuPy, see :mod:`flatnn.namespace`).
"""

from __future__ import annotations

import numpy as np

from flatnn.base.namespace import namespace_of

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


def forward(thetas, hidden_fns, X, inspect_first=None, out=None):
    """Run the network up to the output logits.

    Parameters
    ----------
    thetas : sequence of ndarray
        ``theta_l`` of shape ``(n_l, n_{l-1} + 1)``, bias in column 0.
    hidden_fns : sequence of Activation
        One per hidden layer (``len(thetas) - 1``).
    X : ndarray, shape (m, n_0)
    inspect_first : callable, optional
        Called with each block of rows of the first layer's pre-activations
        ``z_1`` before they are overwritten (the network uses it to detect NaN/inf
        input cheaply).
    out : ndarray, shape (m, n_L), optional
        Where to write the logits (a C-contiguous array of the work dtype);
        a new array when omitted.

    Returns
    -------
    acts : list of ndarray
        ``[X, a_1, ..., a_{L-1}]``: the input of every layer.
    z : ndarray, shape (m, n_L)
        The output pre-activations (logits), owned by the caller: ``out``
        when given.
    """
    xp = namespace_of(X)
    m = X.shape[0]
    acts = [X]
    a = X
    last = len(thetas) - 1
    for l, theta in enumerate(thetas):
        W, b = theta[:, 1:], theta[:, 0]
        act = hidden_fns[l] if l < last else None
        rows = _block_rows(theta.shape[0], a.dtype, xp)
        into_out = act is None and out is not None
        if m <= rows:  # one block (a minibatch): no slicing, which costs µs per layer
            z = xp.matmul(a, W.T, out=out) if into_out else a @ W.T
            z += b
            if l == 0 and inspect_first is not None:
                inspect_first(z)
            if act is not None:
                act.forward(z)
        else:
            z = (
                out
                if into_out
                else xp.empty((m, theta.shape[0]), dtype=np.result_type(a.dtype, theta.dtype))
            )
            for start in range(0, m, rows):
                z_blk = z[start : start + rows]
                xp.matmul(a[start : start + rows], W.T, out=z_blk)
                z_blk += b
                if l == 0 and inspect_first is not None:
                    inspect_first(z_blk)
                if act is not None:
                    act.forward(z_blk)
        if l == last:
            return acts, z
        a = z
        acts.append(a)


def backward(thetas, hidden_fns, acts, delta, grads):
    """Backpropagate ``delta = ∂J/∂z_L`` and write ``∂J/∂theta_l`` into ``grads``.

    ``grads`` are views into one flat gradient vector, shaped like ``thetas``.
    ``delta`` (m, n_L) and the hidden activations in ``acts`` are overwritten:
    ``δ_{l-1}`` takes the place of ``a_{l-1}`` once ``∂J/∂W_l`` has used it, so the
    pass allocates no (m, n) array of its own.
    """
    xp = namespace_of(delta)
    m = delta.shape[0]
    bias_grad = delta.sum(axis=0)
    for l in range(len(thetas) - 1, -1, -1):
        a_prev, g = acts[l], grads[l]
        xp.matmul(delta.T, a_prev, out=g[:, 1:])
        g[:, 0] = bias_grad
        if l == 0:
            break
        W, act = thetas[l][:, 1:], hidden_fns[l - 1]
        rows = _block_rows(a_prev.shape[1], a_prev.dtype, xp)
        if m <= rows:  # one block (a minibatch): no slicing, no extra buffer
            d = delta @ W
            act.mul_deriv(d, a_prev)
            bias_grad = d.sum(axis=0)
            delta = d
            continue
        block = xp.empty((min(rows, m), a_prev.shape[1]), dtype=a_prev.dtype)
        bias_grad = xp.zeros(a_prev.shape[1], dtype=a_prev.dtype)
        for start in range(0, m, rows):
            a_blk = a_prev[start : start + rows]
            d_blk = block[: a_blk.shape[0]]
            xp.matmul(delta[start : start + rows], W, out=d_blk)
            act.mul_deriv(d_blk, a_blk)
            a_blk[...] = d_blk  # δ_{l-1} over a_{l-1}, whose last use this was
            bias_grad += d_blk.sum(axis=0)
        delta = a_prev


def curvature_product(
    thetas, vs, hidden_fns, outloss, X, target, scale, out, gauss_newton, inspect_first=None
):
    """Write ``H v`` (or ``G v``) of ``scale · Σ_i ℓ_i`` into the views ``out``.

    Parameters
    ----------
    thetas, vs : sequence of ndarray
        The parameters and the direction ``v``, unpacked the same way.
    hidden_fns : sequence of Activation
    outloss : flatnn.losses.OutputLoss
    X : ndarray, shape (m, n_0)
    target : ndarray
        Labels ``(m,)`` or targets ``(m, k)``.
    scale : float
        ``1 / m`` for the mean loss.
    out : sequence of ndarray
        Views into the flat result, shaped like ``thetas``.
    gauss_newton : bool
        False for the exact Hessian, True for the Gauss-Newton matrix.
    inspect_first : callable, optional
        As in :func:`forward`: called with the first layer's pre-activations.
    """
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
    _, delta, Rdelta = outloss.curvature(z, target, Rz, gauss_newton)
    delta *= scale
    Rdelta *= scale
    for l in range(last, -1, -1):
        a_prev, Ra_prev = acts[l], Racts[l]
        o = out[l]
        W = thetas[l][:, 1:]
        o[:, 1:] = Rdelta.T @ a_prev
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
