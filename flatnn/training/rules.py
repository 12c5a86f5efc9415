"""Update rules for stochastic training, and learning-rate schedules.

An *update rule* is a pair of pure functions in the optax manner::

    state = rule.init(params)
    step, state = rule.update(grad, state, params, learning_rate)
    params = params + step

The convention is **additive**: ``step`` already carries the minus sign, so
plain gradient descent returns ``step = -learning_rate * grad``. ``update``
never modifies ``grad``, ``state`` or ``params``; it returns new arrays. All
the state a rule has is in ``state``; the rule object itself only holds its
hyperparameters. Any object with these two methods plugs into
:func:`flatnn.sgd` as ``method=``.

The built-in rules also have an **in-place form**, which :func:`flatnn.sgd` uses
so that a step streams no new parameter-sized arrays::

    state = rule.inplace_init(params)
    state = rule.inplace_update(grad, state, params, learning_rate, scratch)

``inplace_update`` adds the step to ``params`` in place, updates the arrays of
``state`` in place, and may overwrite ``grad`` and ``scratch`` (a work array
shaped like ``params``). It performs the same floating-point operations in the
same order as ``params + update(...)[0]``, so the two forms give bit-identical
parameters (the tests check every rule in float32 and float64). A custom rule
needs only the pure pair; the loop then works on a copy of its own.

==========  =====================================================================
rule        step (g the batch gradient, η the learning rate)
==========  =====================================================================
sgd         ``-η g``
momentum    ``v ← β v − η g``; step ``v``
nesterov    ``v ← β v − η g``; step ``β v − η g`` (Sutskever's form of the look-ahead)
adam        ``m ← β₁ m + (1−β₁) g``, ``s ← β₂ s + (1−β₂) g²``;
            step ``−η m̂ / (√ŝ + ε)`` with ``m̂ = m/(1−β₁ᵗ)``, ``ŝ = s/(1−β₂ᵗ)``
rmsprop     ``s ← ρ s + (1−ρ) g²``; step ``−η g / (√s + ε)``
==========  =====================================================================

A *schedule* maps the epoch index (0, 1, 2, ...) to a learning rate:
:func:`constant`, :func:`step_decay`, :func:`exponential_decay`, :func:`cosine_decay`,
:func:`warmup` (around any of them), or any callable
``epoch -> float``. They live in :mod:`flatnn.training.schedules` and are
exported here too, so that :mod:`flatnn.optimizers` holds both.

Arrays keep the dtype of ``params``: float32 parameters give float32 state and
float32 steps (hyperparameters are Python floats, which never promote).

Arrays also keep their namespace (:mod:`flatnn.namespace`): every built-in rule
computes with the namespace of ``params`` and ``grad``, so CuPy parameters get
CuPy state and steps, on the GPU, with the same operations in the same order
as NumPy's. A custom rule written with array methods and operators
(``grad * -learning_rate``, ``state * beta``) works on any namespace as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs
import numpy as np

from flatnn.base.namespace import namespace_of
from flatnn.training.schedules import (
    as_schedule,
    constant,
    cosine_decay,
    exponential_decay,
    learning_rate_at,
    positive,
    real_fields,
    step_decay,
    warmup,
)

__all__ = [
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "rmsprop",
    "get",
    "is_rule",
    "has_inplace",
    "check_step",
    "copy_state",
    "RULES",
    "constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "warmup",
    "as_schedule",
    "learning_rate_at",
]


def _fraction(name: str, upper_open: bool = True) -> Callable[[Any, Any, float], None]:
    def check(instance: Any, attribute: Any, value: float) -> None:
        if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
            interval = "[0, 1)" if upper_open else "[0, 1]"
            raise ValueError(f"{name} must lie in {interval}, got {value!r}")

    return check


# ------------------------------------------------------------------- rules
@attrs.frozen
class SGD:
    """Plain gradient descent: ``step = -learning_rate * grad``. State: ``()``."""

    def init(self, params: Any) -> Any:
        """Return the (empty) state."""
        return ()

    def update(self, grad: Any, state: Any, params: Any, learning_rate: float) -> tuple[Any, Any]:
        """Return ``(-learning_rate * grad, state)``."""
        return namespace_of(grad).multiply(grad, -learning_rate), state

    def inplace_init(self, params: Any) -> Any:
        """The in-place form's state: ``()``."""
        return ()

    def inplace_update(
        self, grad: Any, state: Any, params: Any, learning_rate: float, scratch: Any
    ) -> Any:
        """``params += -learning_rate * grad`` in place (``grad`` is overwritten)."""
        grad *= -learning_rate
        params += grad
        return state


@attrs.frozen(field_transformer=real_fields)
class Momentum:
    """Classical momentum: ``v ← beta v − learning_rate g``; step ``v``.

    State: the velocity ``v``, shape (n_params,), zeros at first.
    """

    beta: float = attrs.field(default=0.9, validator=_fraction("beta", upper_open=False))

    def init(self, params: Any) -> Any:
        """Return the zero velocity, shaped and typed like ``params``."""
        return namespace_of(params).zeros_like(params)

    def update(self, grad: Any, state: Any, params: Any, learning_rate: float) -> tuple[Any, Any]:
        """Return ``(v_new, v_new)``."""
        velocity = namespace_of(grad).multiply(grad, -learning_rate)
        velocity += self.beta * state
        return velocity, velocity

    def inplace_init(self, params: Any) -> Any:
        """The in-place form's state: the velocity, zeros like ``params``."""
        return namespace_of(params).zeros_like(params)

    def inplace_update(
        self, grad: Any, state: Any, params: Any, learning_rate: float, scratch: Any
    ) -> Any:
        """Update the velocity ``state`` and ``params`` in place."""
        grad *= -learning_rate
        state *= self.beta  # beta v + (-lr g): the same sum as update's, in the other order
        state += grad
        params += state
        return state


@attrs.frozen(field_transformer=real_fields)
class Nesterov:
    """Nesterov momentum in Sutskever et al.'s form, with the gradient at ``params``.

    ``v ← beta v − learning_rate g``; step ``beta v − learning_rate g`` (the new ``v``).
    State: the velocity ``v``, shape (n_params,).
    """

    beta: float = attrs.field(default=0.9, validator=_fraction("beta", upper_open=False))

    def init(self, params: Any) -> Any:
        """Return the zero velocity, shaped and typed like ``params``."""
        return namespace_of(params).zeros_like(params)

    def update(self, grad: Any, state: Any, params: Any, learning_rate: float) -> tuple[Any, Any]:
        """Return ``(step, v_new)``."""
        descent = namespace_of(grad).multiply(grad, -learning_rate)
        velocity = self.beta * state
        velocity += descent
        step = self.beta * velocity
        step += descent
        return step, velocity

    def inplace_init(self, params: Any) -> Any:
        """The in-place form's state: the velocity, zeros like ``params``."""
        return namespace_of(params).zeros_like(params)

    def inplace_update(
        self, grad: Any, state: Any, params: Any, learning_rate: float, scratch: Any
    ) -> Any:
        """Update the velocity ``state`` and ``params`` in place."""
        descent = grad
        descent *= -learning_rate
        state *= self.beta
        state += descent
        step = namespace_of(state).multiply(state, self.beta, out=scratch)
        step += descent
        params += step
        return state


class AdamState(NamedTuple):
    """Adam's state: the step count and the two moment estimates (n_params,)."""

    count: int  # type: ignore[assignment]  # the field shadows tuple.count
    mu: np.ndarray
    nu: np.ndarray


@attrs.frozen(field_transformer=real_fields)
class Adam:
    """Adam (Kingma & Ba 2015) with bias-corrected moments.

    ``step = −learning_rate · m̂ / (√ŝ + eps)``. State: :class:`AdamState`.
    """

    beta1: float = attrs.field(default=0.9, validator=_fraction("beta1"))
    beta2: float = attrs.field(default=0.999, validator=_fraction("beta2"))
    eps: float = attrs.field(default=1e-8, validator=positive)

    def init(self, params: Any) -> Any:
        """Return ``AdamState(0, zeros, zeros)``."""
        xp = namespace_of(params)
        return AdamState(0, xp.zeros_like(params), xp.zeros_like(params))

    def update(self, grad: Any, state: Any, params: Any, learning_rate: float) -> tuple[Any, Any]:
        """Return ``(step, AdamState(count + 1, mu, nu))``."""
        xp = namespace_of(grad)
        t = state.count + 1
        mu = (1.0 - self.beta1) * grad
        mu += self.beta1 * state.mu
        nu = xp.square(grad)
        nu *= 1.0 - self.beta2
        nu += self.beta2 * state.nu
        denom, scale = xp.sqrt(nu), self._corrections(t, learning_rate)
        denom += self.eps * math.sqrt(1.0 - self.beta2**t)
        step = mu * scale
        step /= denom
        return step, AdamState(t, mu, nu)

    def _corrections(self, t: int, learning_rate: float) -> float:
        # −lr·m̂/(√v̂ + eps) = −lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + eps·√(1−β₂ᵗ)): the bias
        # corrections folded into two scalars spare a pass over the parameters per step
        return -learning_rate * math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)

    def inplace_init(self, params: Any) -> Any:
        """The in-place form's state: ``AdamState(0, zeros, zeros)``."""
        return self.init(params)

    def inplace_update(
        self, grad: Any, state: Any, params: Any, learning_rate: float, scratch: Any
    ) -> Any:
        """Update the moments of ``state`` and ``params`` in place."""
        xp = namespace_of(grad)
        t = state.count + 1
        mu, nu = state.mu, state.nu
        sq = xp.square(grad, out=scratch)
        sq *= 1.0 - self.beta2
        nu *= self.beta2
        nu += sq
        grad *= 1.0 - self.beta1
        mu *= self.beta1
        mu += grad
        denom = xp.sqrt(nu, out=scratch)
        denom += self.eps * math.sqrt(1.0 - self.beta2**t)
        step = xp.multiply(mu, self._corrections(t, learning_rate), out=grad)
        step /= denom
        params += step
        return AdamState(t, mu, nu)


@attrs.frozen(field_transformer=real_fields)
class RMSprop:
    """RMSprop (Tieleman & Hinton 2012): ``step = −learning_rate · g / (√s + eps)``.

    State: the running mean of squared gradients ``s``, shape (n_params,).
    """

    decay: float = attrs.field(default=0.9, validator=_fraction("decay"))
    eps: float = attrs.field(default=1e-8, validator=positive)

    def init(self, params: Any) -> Any:
        """Return zeros shaped and typed like ``params``."""
        return namespace_of(params).zeros_like(params)

    def update(self, grad: Any, state: Any, params: Any, learning_rate: float) -> tuple[Any, Any]:
        """Return ``(step, s_new)``."""
        xp = namespace_of(grad)
        mean_square = xp.square(grad)
        mean_square *= 1.0 - self.decay
        mean_square += self.decay * state
        denom = xp.sqrt(mean_square)
        denom += self.eps
        step = xp.multiply(grad, -learning_rate)
        step /= denom
        return step, mean_square

    def inplace_init(self, params: Any) -> Any:
        """The in-place form's state: zeros like ``params``."""
        return namespace_of(params).zeros_like(params)

    def inplace_update(
        self, grad: Any, state: Any, params: Any, learning_rate: float, scratch: Any
    ) -> Any:
        """Update the mean square ``state`` and ``params`` in place."""
        xp = namespace_of(grad)
        sq = xp.square(grad, out=scratch)
        sq *= 1.0 - self.decay
        state *= self.decay
        state += sq
        denom = xp.sqrt(state, out=scratch)
        denom += self.eps
        grad *= -learning_rate
        grad /= denom
        params += grad
        return state


def sgd() -> SGD:
    """Plain gradient descent (no state). See :class:`SGD`."""
    return SGD()


def momentum(beta: float = 0.9) -> Momentum:
    """Classical momentum with coefficient ``beta`` in [0, 1]. See :class:`Momentum`."""
    return Momentum(beta)


def nesterov(beta: float = 0.9) -> Nesterov:
    """Nesterov momentum with coefficient ``beta`` in [0, 1]. See :class:`Nesterov`."""
    return Nesterov(beta)


def adam(beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Adam:
    """Adam with moment decays ``beta1``, ``beta2`` in [0, 1) and ``eps > 0``."""
    return Adam(beta1, beta2, eps)


def rmsprop(decay: float = 0.9, eps: float = 1e-8) -> RMSprop:
    """RMSprop with squared-gradient decay ``decay`` in [0, 1) and ``eps > 0``."""
    return RMSprop(decay, eps)


RULES: dict[str, Callable[[], Any]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adam": adam,
    "rmsprop": rmsprop,
}
"""The built-in rules by name: their constructors."""


def is_rule(obj: Any) -> bool:
    """True when ``obj`` has callable ``init`` and ``update`` (an update rule)."""
    return callable(getattr(obj, "init", None)) and callable(getattr(obj, "update", None))


def has_inplace(rule: Any) -> bool:
    """True when ``rule`` also has the in-place form (``inplace_init``, ``inplace_update``)."""
    return callable(getattr(rule, "inplace_init", None)) and callable(
        getattr(rule, "inplace_update", None)
    )


def get(method: Any) -> Any:
    """Return an update rule from a name or a rule object.

    Parameters
    ----------
    method : str or rule
        One of :data:`RULES` (``sgd``, ``momentum``, ``nesterov``, ``adam``,
        ``rmsprop``: their default hyperparameters), or any object with ``init``
        and ``update`` (returned as is; build a configured rule with the
        constructors of this module, e.g. ``momentum(0.95)``).

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For an object that is neither a name nor a rule.
    """
    if isinstance(method, str):
        try:
            make = RULES[method.lower()]
        except KeyError:
            raise ValueError(
                f"unknown update rule {method!r}; expected one of "
                f"{list(RULES)} or an object with init and update"
            ) from None
        return make()
    if is_rule(method):
        return method
    raise TypeError(
        f"method must be a rule name {list(RULES)} or an object with "
        f"init(params) and update(grad, state, params, learning_rate); "
        f"got {type(method).__name__}"
    )


def check_step(rule: Any, step: Any, params: Any) -> None:
    """Check a pure ``update``'s step: the shape, dtype and namespace of ``params``.

    Raises ValueError (shape, dtype) or TypeError (namespace) naming the rule.
    """
    if getattr(step, "shape", None) != params.shape or getattr(step, "dtype", None) != params.dtype:
        raise ValueError(
            f"{type(rule).__name__}.update returned a step of shape "
            f"{getattr(step, 'shape', None)} and dtype {getattr(step, 'dtype', None)}; "
            f"expected {params.shape} {params.dtype}"
        )
    if namespace_of(step) is not namespace_of(params):
        raise TypeError(
            f"{type(rule).__name__}.update returned a step of type "
            f"{type(step).__module__}.{type(step).__name__}; the parameters are "
            f"{type(params).__module__}.{type(params).__name__} (write the rule with "
            f"array methods, or the namespace of grad)"
        )


def copy_state(state: Any) -> Any:
    """A copy of a rule's state: arrays copied, tuples (and NamedTuples) rebuilt, scalars kept."""
    if isinstance(state, tuple):
        items = [copy_state(s) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    if hasattr(state, "shape") and hasattr(state, "copy"):
        return state.copy()
    return state
