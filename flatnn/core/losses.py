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
* ``exp`` + ``poisson`` (log link, for counts ``t >= 0``): half the Poisson
  deviance, as scikit-learn defines it, ``ℓ = Σ_j t_j log(t_j / a_j) − t_j + a_j``
  with ``a = exp(z)``, written as ``xlogy(t, t) − t z − t + exp(z)``;
  ``∂ℓ/∂z = a − t`` and ``∂²ℓ/∂z² = a`` (convex: the Gauss-Newton product is exact).

The per-sample losses are summed here (``Σ_i ℓ_i``, or ``Σ_i w_i ℓ_i`` with sample
weights); :mod:`flatnn.core.evaluation` divides by ``m`` (or ``Σ w``) and adds the
L2 term.

**The prediction rule has its home here too**: :meth:`OutputLoss.predict` turns
logits into labels (``a > 0.5`` for one output unit, the argmax of the outputs
otherwise) and :func:`true_labels` turns targets into the labels they mean.

A *target* is either integer labels of shape ``(m,)`` (class indices; never
expanded to one-hot where the formula does not need it) or a float array
``(m, k)``.

Everything computes with the namespace of ``z`` (NumPy or CuPy, see
:mod:`flatnn.namespace`); the per-sample sums come back as 0-d arrays or
floats, which the caller turns into one float.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from flatnn.base.namespace import namespace_of
from flatnn.core import activations

__all__ = [
    "LOSSES",
    "OutputLoss",
    "is_labels",
    "as_matrix",
    "true_labels",
    "get",
]

LOSSES = ("cross_entropy", "squared_error", "poisson")
"""Loss names: ``cross_entropy`` (softmax or sigmoid outputs), ``squared_error``
(any output but ``exp``), ``poisson`` (``exp`` output)."""


def is_labels(target: Any) -> bool:
    """True when ``target`` holds integer class labels of shape ``(m,)``."""
    return target.ndim == 1


def true_labels(target: Any, k: int) -> Any:
    """The labels ``(m,)`` that ``target`` means: the prediction rule's other half.

    Labels ``(m,)`` as they are; targets ``(m, 1)`` of one output unit as
    ``t > 0.5``; targets ``(m, k)`` as their argmax (one-hot rows give the class).
    """
    if k == 1:
        return target[:, 0] > 0.5
    if is_labels(target):
        return target
    return target.argmax(axis=1)


def _weighted_rows(rows, weights):
    """``Σ_i w_i r_i`` of per-row values ``rows`` (m,) or (m, 1), in float64."""
    xp = namespace_of(rows)
    return xp.vdot(weights.astype(np.float64), rows.reshape(-1).astype(np.float64))


def _summed(losses, weights):
    """``Σ_ij losses_ij``, or ``Σ_i w_i Σ_j losses_ij`` with weights, in float64."""
    if weights is None:
        return losses.sum(dtype=np.float64)
    return _weighted_rows(losses.sum(axis=1, dtype=np.float64), weights)


def as_matrix(target: Any, k: int, dtype: Any) -> Any:
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

    def __init__(self, output: str, loss: str) -> None:
        self.output = output
        self.loss = loss

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.output!r}, {self.loss!r})"

    def activate(self, z: Any) -> Any:
        """Output activations ``a = f(z)`` (m, k), computed in place."""
        if self.output == "softmax":
            return _softmax(z)
        if self.output == "exp":
            return namespace_of(z).exp(z, out=z)
        return activations.get(self.output).forward(z)

    def predict(self, z: Any, out: Any = None, *, overwrite: bool = False) -> Any:
        """Predicted labels ``(m,)`` from logits ``z`` (m, k): the prediction rule.

        ``a > 0.5`` for one output unit (a boolean array, or 0/1 written into
        ``out``), else the argmax of the outputs ``a = f(z)``; for softmax that is
        the argmax of ``z`` (monotone), with no activation computed. ``z`` is left
        alone unless ``overwrite`` is True.
        """
        if z.shape[1] == 1:
            above = self.activate(z if overwrite else z.copy())[:, 0] > 0.5
            if out is None:
                return above
            out[...] = above
            return out
        if self.output == "softmax":
            return z.argmax(axis=1, out=out)
        return self.activate(z if overwrite else z.copy()).argmax(axis=1, out=out)

    def value(self, z: Any, target: Any, weights: Any = None) -> Any:
        """Summed loss over the ``m`` rows of ``z`` (``Σ_i w_i ℓ_i`` with weights)."""
        return self.value_and_delta(z, target, want_delta=False, weights=weights)[0]

    def value_and_delta(
        self, z: Any, target: Any, want_delta: bool = True, weights: Any = None
    ) -> tuple[Any, Any]:
        """Return ``(Σ_i w_i ℓ_i, ∂(Σ ℓ)/∂z)``; the delta may reuse ``z``'s memory.

        The delta is that of the unweighted sum: the kernel scales its rows by
        the weights (see :func:`flatnn.core.kernel.scale_rows`).
        """
        raise NotImplementedError

    def curvature(self, z: Any, target: Any, Rz: Any, gauss_newton: bool) -> tuple[Any, Any, Any]:
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
    """``softmax`` + ``cross_entropy``."""

    def value_and_delta(self, z, target, want_delta=True, weights=None):
        xp = namespace_of(z)
        m = z.shape[0]
        z -= _row_max(z)  # now z <= 0: both sums below are >= 0
        if is_labels(target):
            rows = xp.arange(m)
            if weights is not None:
                picked = _weighted_rows(z[rows, target], weights)
            else:
                picked = z[rows, target].sum(dtype=np.float64)
            weight = None
        else:
            if weights is not None:
                picked = _weighted_rows((target * z).sum(axis=1), weights)
            else:
                picked = float(xp.vdot(target, z))
            weight = _row_sum(target)
        e = xp.exp(z, out=z)
        s = _row_sum(e)
        lse = xp.log(s)
        if weights is not None:
            value = _weighted_rows(lse if weight is None else weight * lse, weights) - picked
        else:
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
    """``sigmoid`` + ``cross_entropy`` (per-unit binary)."""

    def value_and_delta(self, z, target, want_delta=True, weights=None):
        xp = namespace_of(z)
        T = as_matrix(target, z.shape[1], z.dtype)
        # max(z, 0) - t z is (1 - t) z for z > 0 and -t z otherwise: no cancellation
        lin = xp.where(z > 0, (1 - T) * z, -T * z)
        lin += xp.log1p(xp.exp(-xp.abs(z)))
        value = _summed(lin, weights)
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
    """Any output but ``exp`` + ``squared_error``."""

    def _residual(self, z, target):
        a = self.activate(z)
        r = a - as_matrix(target, a.shape[1], a.dtype)
        return a, r

    def value_and_delta(self, z, target, want_delta=True, weights=None):
        a, r = self._residual(z, target)
        if weights is not None:
            value = 0.5 * float(_weighted_rows((r * r).sum(axis=1), weights))
        else:
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


def _xlogx(T):
    """``t log t`` with ``0 log 0 = 0`` (scipy's ``xlogy(t, t)``, in any namespace)."""
    xp = namespace_of(T)
    positive = T > 0
    return xp.where(positive, T * xp.log(xp.where(positive, T, 1)), 0)


class ExpPoisson(OutputLoss):
    """``exp`` + ``poisson``: half the Poisson deviance with a log link."""

    def value_and_delta(self, z, target, want_delta=True, weights=None):
        T = as_matrix(target, z.shape[1], z.dtype)
        a = namespace_of(z).exp(z)
        ell = _xlogx(T)
        ell -= T * z
        ell -= T
        ell += a
        value = _summed(ell, weights)
        if not want_delta:
            return value, None
        a -= T
        return value, a

    def curvature(self, z, target, Rz, gauss_newton):
        a = namespace_of(z).exp(z)
        value, delta = self.value_and_delta(z, target)
        return value, delta, a * Rz


def get(output: str, loss: str) -> OutputLoss:
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
    if (loss == "poisson") != (output == "exp"):
        raise ValueError(
            f"loss 'poisson' goes with output 'exp' (a log link), and output 'exp' "
            f"with loss 'poisson'; got output {output!r} with loss {loss!r}"
        )
    if loss == "poisson":
        return ExpPoisson(output, loss)
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
