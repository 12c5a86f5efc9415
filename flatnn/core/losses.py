"""Output activation + loss pairs, computed from the output pre-activations ``z``.

A loss is always evaluated together with its output activation, from the logits
``z`` of shape ``(m, k)``, so that the numerically delicate pairs can be written
in their stable forms:

* ``softmax`` + ``cross_entropy``: ``ℓ = logsumexp(z) · Σ_j t_j − t·z`` (log-sum-exp
  after subtracting the row maximum; never takes ``log`` of a probability).
  ``∂ℓ/∂z = p Σ_j t_j − t`` with ``p = softmax(z)``.
* ``sigmoid`` + ``cross_entropy`` (per-unit binary cross-entropy, as in the XOR and
  captcha examples): ``ℓ = Σ_j softplus(z_j) − t_j z_j`` written as
  ``max(z, 0) − t z + log1p(exp(−|z|))``; ``∂ℓ/∂z = σ(z) − t``.
* any output + ``squared_error``: ``ℓ = ½ ‖a − t‖²`` with ``a = f(z)``;
  ``∂ℓ/∂z = f'(z) ⊙ (a − t)`` (for softmax, ``Jᵀ (a − t)`` with ``J = diag(p) − p pᵀ``).

The per-sample losses are summed here; :mod:`flatnn.network` divides by ``m``.

A *target* is either integer labels of shape ``(m,)`` (class indices; never
expanded to one-hot where the formula does not need it) or a float array
``(m, k)``.

Everything computes with the namespace of ``z`` (NumPy or CuPy, see
:mod:`flatnn.namespace`); the per-sample sums come back as 0-d arrays or
floats, which the caller turns into one float.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from flatnn.base.namespace import namespace_of
from flatnn.core import activations

LOSSES = ("cross_entropy", "squared_error")


def is_labels(target):
    """True when ``target`` holds integer class labels of shape ``(m,)``."""
    return target.ndim == 1


def as_matrix(target, k, dtype):
    """Return ``target`` as a float ``(m, k)`` array (one-hot for labels)."""
    if not is_labels(target):
        return target
    xp = namespace_of(target)
    T = xp.zeros((target.shape[0], k), dtype=dtype)
    T[xp.arange(target.shape[0]), target] = 1
    return T


def _softmax(z):
    """Overwrite the rows of ``z`` (m, k) with their softmax; return it."""
    z -= z.max(axis=1, keepdims=True)
    namespace_of(z).exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class OutputLoss:
    """An output activation fused with a loss.

    Methods overwrite the logits ``z`` they are given (the caller owns them).
    """

    def __init__(self, output, loss):
        self.output = output
        self.loss = loss

    def activate(self, z):
        """Output activations ``a = f(z)`` (m, k), computed in place."""
        if self.output == "softmax":
            return _softmax(z)
        return activations.get(self.output).forward(z)

    def value(self, z, target):
        """Summed loss over the ``m`` rows of ``z``."""
        return self.value_and_delta(z, target, want_delta=False)[0]

    def value_and_delta(self, z, target, want_delta=True):
        """Return ``(Σ_i ℓ_i, ∂(Σ ℓ)/∂z)``; the delta may reuse ``z``'s memory."""
        raise NotImplementedError

    def curvature(self, z, target, Rz, gauss_newton):
        """Return ``(Σ ℓ, δ, Rδ)`` with ``δ = ∂ℓ/∂z`` and ``Rδ = H_z · Rz``.

        ``H_z`` is the exact Hessian of the loss with respect to ``z`` when
        ``gauss_newton`` is False, and the positive semi-definite Gauss-Newton
        curvature of the loss's convex part otherwise.
        """
        raise NotImplementedError


def _row_max(z):
    """``z.max(axis=1, keepdims=True)``, fast for few columns.

    NumPy reduces a short contiguous axis row by row, 4 ms for (60000, 10);
    a running maximum over the columns takes 0.7 ms there and wins up to ~16.
    Below about 128 rows the column loop's call overhead dominates (10 µs
    against 2 µs for NumPy's reduction at 10 x 10), so small batches keep NumPy's.
    Other namespaces (a GPU) reduce in one kernel.
    """
    if z.shape[1] > 16 or z.shape[0] < 128 or namespace_of(z) is not np:
        return z.max(axis=1, keepdims=True)
    out = z[:, :1].copy()
    for j in range(1, z.shape[1]):
        np.maximum(out, z[:, j : j + 1], out=out)
    return out


def _row_sum(z):
    """``z.sum(axis=1, keepdims=True)`` as a BLAS product, 5x faster for few columns."""
    return z @ namespace_of(z).ones((z.shape[1], 1), dtype=z.dtype)


class SoftmaxCrossEntropy(OutputLoss):
    def value_and_delta(self, z, target, want_delta=True):
        xp = namespace_of(z)
        m = z.shape[0]
        z -= _row_max(z)  # now z <= 0: both sums below are >= 0
        if is_labels(target):
            rows = xp.arange(m)
            picked = z[rows, target].sum(dtype=np.float64)
            weight = None
        else:
            picked = float(xp.vdot(target, z))
            weight = _row_sum(target)
        e = xp.exp(z, out=z)
        s = _row_sum(e)
        lse = xp.log(s)
        value = (
            lse.sum(dtype=np.float64) if weight is None else float(xp.vdot(weight, lse))
        ) - picked
        if not want_delta:
            return value, None
        e /= s
        if weight is None:
            e[rows, target] -= 1
        else:
            e *= weight
            e -= target
        return value, e

    def curvature(self, z, target, Rz, gauss_newton):
        a = _softmax(z.copy())
        value, delta = self.value_and_delta(z, target)
        Rdelta = a * Rz
        Rdelta -= a * Rdelta.sum(axis=1, keepdims=True)
        if not is_labels(target):
            Rdelta *= target.sum(axis=1, keepdims=True)
        return value, delta, Rdelta


def _expit(z, out=None):
    """``1 / (1 + exp(-z))``: scipy's ``expit`` on NumPy arrays, the same formula elsewhere."""
    if namespace_of(z) is np:
        return expit(z, out=out)
    if out is None:
        out = z.copy()
    elif out is not z:
        out[...] = z
    return activations.get("sigmoid").forward(out)


class SigmoidCrossEntropy(OutputLoss):
    def value_and_delta(self, z, target, want_delta=True):
        xp = namespace_of(z)
        T = as_matrix(target, z.shape[1], z.dtype)
        # max(z, 0) - t z is (1 - t) z for z > 0 and -t z otherwise: no cancellation
        lin = xp.where(z > 0, (1 - T) * z, -T * z)
        lin += xp.log1p(xp.exp(-xp.abs(z)))
        value = lin.sum(dtype=np.float64)
        if not want_delta:
            return value, None
        delta = _expit(z, out=z)
        delta -= T
        return value, delta

    def curvature(self, z, target, Rz, gauss_newton):
        a = _expit(z)
        value, delta = self.value_and_delta(z, target)
        Rdelta = namespace_of(a).subtract(1, a)
        Rdelta *= a
        Rdelta *= Rz
        return value, delta, Rdelta


class SquaredError(OutputLoss):
    def _residual(self, z, target):
        a = self.activate(z)
        r = a - as_matrix(target, a.shape[1], a.dtype)
        return a, r

    def value_and_delta(self, z, target, want_delta=True):
        a, r = self._residual(z, target)
        value = 0.5 * float(namespace_of(r).vdot(r, r))
        if not want_delta:
            return value, None
        if self.output == "softmax":
            r -= (a * r).sum(axis=1, keepdims=True)
            r *= a
            return value, r
        return value, activations.get(self.output).mul_deriv(r, a)

    def curvature(self, z, target, Rz, gauss_newton):
        a, r = self._residual(z, target)
        value = 0.5 * float(namespace_of(r).vdot(r, r))
        if self.output == "softmax":

            def J(v):  # the softmax Jacobian diag(a) - a aᵀ (symmetric), row by row
                out = a * v
                out -= a * out.sum(axis=1, keepdims=True)
                return out

            Ra = J(Rz)
            Rdelta = J(Ra)
            if not gauss_newton:
                # R{J} r = Ra ⊙ r − Ra (a·r) − a (Ra·r)
                Rdelta += Ra * r
                Rdelta -= Ra * (a * r).sum(axis=1, keepdims=True)
                Rdelta -= a * (Ra * r).sum(axis=1, keepdims=True)
            return value, J(r), Rdelta
        act = activations.get(self.output)
        d1 = act.deriv(a)
        Rdelta = d1 * d1 * Rz
        if not gauss_newton:
            d2 = act.deriv2(a)
            if d2 is not None:
                Rdelta += r * d2 * Rz
        return value, r * d1, Rdelta


def get(output, loss):
    """Return the :class:`OutputLoss` for an output activation and a loss name.

    Raises
    ------
    ValueError
        For an unknown name, or cross-entropy after an output that is not a
        probability (only ``softmax`` and ``sigmoid`` fit it).
    """
    if output not in activations.OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"unknown output activation {output!r}; expected one of "
            f"{list(activations.OUTPUT_ACTIVATIONS)}"
        )
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {list(LOSSES)}")
    if loss == "cross_entropy":
        if output == "softmax":
            return SoftmaxCrossEntropy(output, loss)
        if output == "sigmoid":
            return SigmoidCrossEntropy(output, loss)
        raise ValueError(
            f"loss 'cross_entropy' needs output 'softmax' or 'sigmoid', "
            f"got output {output!r}; use loss 'squared_error' with it"
        )
    return SquaredError(output, loss)
