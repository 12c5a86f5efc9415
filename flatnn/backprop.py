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
layer. Nothing here validates input: :class:`flatnn.Network` does that.
"""

from __future__ import annotations

import numpy as np


def forward(thetas, hidden, X, inspect_first=None):
    """Run the network up to the output logits.

    Parameters
    ----------
    thetas : sequence of ndarray
        ``theta_l`` of shape ``(n_l, n_{l-1} + 1)``, bias in column 0.
    hidden : sequence of Activation
        One per hidden layer (``len(thetas) - 1``).
    X : ndarray, shape (m, n_0)
    inspect_first : callable, optional
        Called with the first layer's pre-activations ``z_1`` before they are
        overwritten (the network uses it to detect NaN/inf input cheaply).

    Returns
    -------
    acts : list of ndarray
        ``[X, a_1, ..., a_{L-1}]``: the input of every layer.
    z : ndarray, shape (m, n_L)
        The output pre-activations (logits), owned by the caller.
    """
    acts = [X]
    a = X
    last = len(thetas) - 1
    for l, theta in enumerate(thetas):
        z = a @ theta[:, 1:].T
        z += theta[:, 0]
        if l == 0 and inspect_first is not None:
            inspect_first(z)
        if l == last:
            return acts, z
        a = hidden[l].forward(z)
        acts.append(a)
    raise AssertionError("unreachable")


def backward(thetas, hidden, acts, delta, grads):
    """Backpropagate ``delta = ∂J/∂z_L`` and write ``∂J/∂theta_l`` into ``grads``.

    ``grads`` are views into one flat gradient vector, shaped like ``thetas``.
    ``delta`` (m, n_L) and the hidden activations in ``acts`` are overwritten.
    """
    for l in range(len(thetas) - 1, -1, -1):
        a_prev = acts[l]
        g = grads[l]
        g[:, 1:] = delta.T @ a_prev
        delta.sum(axis=0, out=g[:, 0])
        if l > 0:
            delta = delta @ thetas[l][:, 1:]
            hidden[l - 1].mul_deriv(delta, a_prev)


def curvature_product(thetas, vs, hidden, outloss, X, target, scale, out, gauss_newton):
    """Write ``H v`` (or ``G v``) of ``scale · Σ_i ℓ_i`` into the views ``out``.

    Parameters
    ----------
    thetas, vs : sequence of ndarray
        The parameters and the direction ``v``, unpacked the same way.
    hidden : sequence of Activation
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
    """
    acts, Racts, Rzs = [X], [None], [None]
    a, Ra = X, None
    last = len(thetas) - 1
    for l, (theta, v) in enumerate(zip(thetas, vs)):
        z = a @ theta[:, 1:].T
        z += theta[:, 0]
        Rz = a @ v[:, 1:].T
        Rz += v[:, 0]
        if Ra is not None:
            Rz += Ra @ theta[:, 1:].T
        if l == last:
            break
        a = hidden[l].forward(z)
        Ra = hidden[l].deriv(a)
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
        act = hidden[l - 1]
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
