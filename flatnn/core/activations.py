"""Elementwise activation functions and their derivatives.

Every function here works **in place** on arrays the caller owns, so that the
forward/backward core never allocates more than one array per layer. The
derivatives are written in terms of the activation ``a = f(z)`` rather than the
pre-activation ``z``: the backward pass then needs to keep only ``a``.

=============  ==============================  =====================  ======================
name           f(z)                            f'(z) from a           f''(z) from a
=============  ==============================  =====================  ======================
sigmoid        1 / (1 + exp(-z))               a (1 - a)              a (1 - a) (1 - 2a)
tanh           tanh(z)                         1 - a²                 -2a (1 - a²)
relu           max(z, 0)                       [a > 0]                0
leaky_relu     max(z, 0.01 z)                  1 if a > 0 else 0.01   0
identity       z                               1                      0
=============  ==============================  =====================  ======================

Each function computes with the namespace of its arrays (NumPy or CuPy, see
:mod:`flatnn.namespace`).

``softmax`` (its Jacobian is not diagonal) and ``exp`` (the Poisson loss's
log link) are output activations only; they live with the losses in
:mod:`flatnn.core.losses`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flatnn.base.namespace import namespace_of

__all__ = ["LEAKY_SLOPE", "ACTIVATIONS", "OUTPUT_ACTIVATIONS", "Activation", "get"]

LEAKY_SLOPE = 0.01


class Activation:
    """One elementwise activation: ``forward``, ``mul_deriv`` and ``deriv2``.

    Immutable: the instances in :data:`ACTIVATIONS` are shared by every network.

    Attributes
    ----------
    name : str
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __setattr__(self, key, value):
        raise AttributeError(f"Activation objects are immutable (setting {key!r} of {self!r})")

    def __delattr__(self, key):
        raise AttributeError(f"Activation objects are immutable (deleting {key!r} of {self!r})")

    def __reduce__(self):
        # a pickled activation comes back as the shared instance of its name
        return get, (self.name,)

    def __repr__(self):
        return f"Activation({self.name!r})"

    def forward(self, z: Any) -> Any:
        """Overwrite ``z`` (any shape) with ``f(z)`` and return it."""
        raise NotImplementedError

    def deriv(self, a: Any) -> Any:
        """Return a new array ``f'(z)`` computed from ``a = f(z)``."""
        raise NotImplementedError

    def mul_deriv(self, delta: Any, a: Any) -> Any:
        """``delta *= f'(z)`` in place, with ``a = f(z)``; returns ``delta``."""
        return namespace_of(delta).multiply(delta, self.deriv(a), out=delta)

    def deriv2(self, a: Any) -> Any:
        """Return ``f''(z)`` computed from ``a = f(z)``, or None when it is zero."""
        return None


class _Sigmoid(Activation):
    def forward(self, z):
        # 1 / (1 + exp(-z)) with NumPy's vectorised exp, about 3x faster than
        # scipy's expit (a scalar loop) and as accurate; for z below about -709
        # (-88 in float32) exp(-z) overflows to inf and 1 / inf is the limit, 0.
        # (np.errstate is NumPy's own state: it touches no array, so it is harmless
        # on the CuPy path, where overflow warns about nothing anyway.)
        xp = namespace_of(z)
        xp.negative(z, out=z)
        with np.errstate(over="ignore"):
            xp.exp(z, out=z)
        z += 1
        return xp.reciprocal(z, out=z)

    def deriv(self, a):
        d = namespace_of(a).subtract(1, a)
        d *= a
        return d

    def deriv2(self, a):
        d = self.deriv(a)
        d *= namespace_of(a).subtract(1, 2 * a)
        return d


class _Tanh(Activation):
    def forward(self, z):
        return namespace_of(z).tanh(z, out=z)

    def deriv(self, a):
        xp = namespace_of(a)
        d = xp.square(a)
        xp.subtract(1, d, out=d)
        return d

    def deriv2(self, a):
        d = self.deriv(a)
        d *= a
        d *= -2
        return d


class _Relu(Activation):
    def forward(self, z):
        return namespace_of(z).maximum(z, 0, out=z)

    def deriv(self, a):
        return (a > 0).astype(a.dtype)

    def mul_deriv(self, delta, a):
        # A multiply by the 0/1 mask, not copyto(where=): with half the units
        # off at random, the masked copy mispredicts a branch per element (6x slower).
        return namespace_of(delta).multiply(delta, a > 0, out=delta)


class _LeakyRelu(Activation):
    def forward(self, z):
        # max(z, 0.01 z) (the slope is < 1): branch-free, unlike a masked multiply.
        return namespace_of(z).maximum(z, z * LEAKY_SLOPE, out=z)

    def deriv(self, a):
        d = namespace_of(a).ones_like(a)
        d[a <= 0] = LEAKY_SLOPE
        return d

    def mul_deriv(self, delta, a):
        one, slope = delta.dtype.type(1), delta.dtype.type(LEAKY_SLOPE)
        xp = namespace_of(delta)
        return xp.multiply(delta, xp.where(a > 0, one, slope), out=delta)


class _Identity(Activation):
    def forward(self, z):
        return z

    def deriv(self, a):
        return namespace_of(a).ones_like(a)

    def mul_deriv(self, delta, a):
        return delta


ACTIVATIONS = {
    "sigmoid": _Sigmoid("sigmoid"),
    "tanh": _Tanh("tanh"),
    "relu": _Relu("relu"),
    "leaky_relu": _LeakyRelu("leaky_relu"),
    "identity": _Identity("identity"),
}
"""Hidden-layer activations by name (all of them are valid outputs too)."""

OUTPUT_ACTIVATIONS = (*ACTIVATIONS, "softmax", "exp")
"""Names accepted as the output activation (``softmax`` and ``exp``, the Poisson
loss's log link, are outputs only: they live with the losses in
:mod:`flatnn.core.losses`)."""


def get(name: str) -> Activation:
    """Return the :class:`Activation` called ``name`` (ValueError if unknown)."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None
