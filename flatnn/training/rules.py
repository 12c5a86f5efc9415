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
``epoch -> float``.

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
import numbers
from typing import NamedTuple

import attrs
import numpy as np

from flatnn.base import checks
from flatnn.base.namespace import namespace_of

__all__ = [
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "rmsprop",
    "get",
    "is_rule",
    "has_inplace",
    "RULES",
    "constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "warmup",
    "as_schedule",
    "learning_rate_at",
]


def _fraction(name, upper_open=True):
    def check(instance, attribute, value):
        if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must lie in [0, 1), got {value!r}")

    return check


def _positive(instance, attribute, value):
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _real(name):
    """Converter: a real number (not a bool, not a string) to float, naming the field."""

    def convert(value):
        return checks.real(value, name, finite=False)  # the validators check the range

    return convert


# ------------------------------------------------------------------- rules
@attrs.frozen
class SGD:
    """Plain gradient descent: ``step = -learning_rate * grad``. State: ``()``."""

    def init(self, params):
        """Return the (empty) state."""
        return ()

    def update(self, grad, state, params, learning_rate):
        """Return ``(-learning_rate * grad, state)``."""
        return namespace_of(grad).multiply(grad, -learning_rate), state

    def inplace_init(self, params):
        """The in-place form's state: ``()``."""
        return ()

    def inplace_update(self, grad, state, params, learning_rate, scratch):
        """``params += -learning_rate * grad`` in place (``grad`` is overwritten)."""
        grad *= -learning_rate
        params += grad
        return state


@attrs.frozen
class Momentum:
    """Classical momentum: ``v ← beta v − learning_rate g``; step ``v``.

    State: the velocity ``v``, shape (n_params,), zeros at first.
    """

    beta: float = attrs.field(default=0.9, converter=_real("beta"), validator=_fraction("beta"))

    def init(self, params):
        """Return the zero velocity, shaped and typed like ``params``."""
        return namespace_of(params).zeros_like(params)

    def update(self, grad, state, params, learning_rate):
        """Return ``(v_new, v_new)``."""
        velocity = namespace_of(grad).multiply(grad, -learning_rate)
        velocity += self.beta * state
        return velocity, velocity

    def inplace_init(self, params):
        """The in-place form's state: the velocity, zeros like ``params``."""
        return namespace_of(params).zeros_like(params)

    def inplace_update(self, grad, state, params, learning_rate, scratch):
        """Update the velocity ``state`` and ``params`` in place."""
        grad *= -learning_rate
        state *= self.beta  # beta v + (-lr g): the same sum as update's, in the other order
        state += grad
        params += state
        return state


@attrs.frozen
class Nesterov:
    """Nesterov momentum in Sutskever et al.'s form, with the gradient at ``params``.

    ``v ← beta v − learning_rate g``; step ``beta v − learning_rate g`` (the new ``v``).
    State: the velocity ``v``, shape (n_params,).
    """

    beta: float = attrs.field(default=0.9, converter=_real("beta"), validator=_fraction("beta"))

    def init(self, params):
        """Return the zero velocity, shaped and typed like ``params``."""
        return namespace_of(params).zeros_like(params)

    def update(self, grad, state, params, learning_rate):
        """Return ``(step, v_new)``."""
        descent = namespace_of(grad).multiply(grad, -learning_rate)
        velocity = self.beta * state
        velocity += descent
        step = self.beta * velocity
        step += descent
        return step, velocity

    def inplace_init(self, params):
        """The in-place form's state: the velocity, zeros like ``params``."""
        return namespace_of(params).zeros_like(params)

    def inplace_update(self, grad, state, params, learning_rate, scratch):
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

    count: int
    mu: np.ndarray
    nu: np.ndarray


@attrs.frozen
class Adam:
    """Adam (Kingma & Ba 2015) with bias-corrected moments.

    ``step = −learning_rate · m̂ / (√ŝ + eps)``. State: :class:`AdamState`.
    """

    beta1: float = attrs.field(default=0.9, converter=_real("beta1"), validator=_fraction("beta1"))
    beta2: float = attrs.field(
        default=0.999, converter=_real("beta2"), validator=_fraction("beta2")
    )
    eps: float = attrs.field(default=1e-8, converter=_real("eps"), validator=_positive)

    def init(self, params):
        """Return ``AdamState(0, zeros, zeros)``."""
        xp = namespace_of(params)
        return AdamState(0, xp.zeros_like(params), xp.zeros_like(params))

    def update(self, grad, state, params, learning_rate):
        """Return ``(step, AdamState(count + 1, mu, nu))``."""
        xp = namespace_of(grad)
        t = state.count + 1
        mu = (1.0 - self.beta1) * grad
        mu += self.beta1 * state.mu
        nu = xp.square(grad)
        nu *= 1.0 - self.beta2
        nu += self.beta2 * state.nu
        denom = xp.sqrt(nu)
        denom *= 1.0 / math.sqrt(1.0 - self.beta2**t)
        denom += self.eps
        step = mu * (-learning_rate / (1.0 - self.beta1**t))
        step /= denom
        return step, AdamState(t, mu, nu)

    def inplace_init(self, params):
        """The in-place form's state: ``AdamState(0, zeros, zeros)``."""
        return self.init(params)

    def inplace_update(self, grad, state, params, learning_rate, scratch):
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
        denom *= 1.0 / math.sqrt(1.0 - self.beta2**t)
        denom += self.eps
        step = xp.multiply(mu, -learning_rate / (1.0 - self.beta1**t), out=grad)
        step /= denom
        params += step
        return AdamState(t, mu, nu)


@attrs.frozen
class RMSprop:
    """RMSprop (Tieleman & Hinton 2012): ``step = −learning_rate · g / (√s + eps)``.

    State: the running mean of squared gradients ``s``, shape (n_params,).
    """

    decay: float = attrs.field(default=0.9, converter=_real("decay"), validator=_fraction("decay"))
    eps: float = attrs.field(default=1e-8, converter=_real("eps"), validator=_positive)

    def init(self, params):
        """Return zeros shaped and typed like ``params``."""
        return namespace_of(params).zeros_like(params)

    def update(self, grad, state, params, learning_rate):
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

    def inplace_init(self, params):
        """The in-place form's state: zeros like ``params``."""
        return namespace_of(params).zeros_like(params)

    def inplace_update(self, grad, state, params, learning_rate, scratch):
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


def sgd():
    """Plain gradient descent (no state). See :class:`SGD`."""
    return SGD()


def momentum(beta=0.9):
    """Classical momentum with coefficient ``beta`` in [0, 1). See :class:`Momentum`."""
    return Momentum(beta)


def nesterov(beta=0.9):
    """Nesterov momentum with coefficient ``beta`` in [0, 1). See :class:`Nesterov`."""
    return Nesterov(beta)


def adam(beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam with moment decays ``beta1``, ``beta2`` in [0, 1) and ``eps > 0``."""
    return Adam(beta1, beta2, eps)


def rmsprop(decay=0.9, eps=1e-8):
    """RMSprop with squared-gradient decay ``decay`` in [0, 1) and ``eps > 0``."""
    return RMSprop(decay, eps)


RULES = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adam": adam, "rmsprop": rmsprop}
"""The built-in rules by name: their constructors."""


def is_rule(obj):
    """True when ``obj`` has callable ``init`` and ``update`` (an update rule)."""
    return callable(getattr(obj, "init", None)) and callable(getattr(obj, "update", None))


def has_inplace(rule):
    """True when ``rule`` also has the in-place form (``inplace_init``, ``inplace_update``)."""
    return callable(getattr(rule, "inplace_init", None)) and callable(
        getattr(rule, "inplace_update", None)
    )


def get(method):
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


# --------------------------------------------------------------- schedules
def _epoch_count(value):
    # int(1.5) would be 1: an interval of epochs is a whole number or an error.
    return checks.integer(value, "every (epochs between drops)")


def _epochs(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"epochs must be a whole number of epochs (an int >= 1), got {value!r}")
    return int(value)


@attrs.frozen
class Constant:
    """The same learning rate every epoch."""

    learning_rate: float = attrs.field(converter=_real("learning_rate"), validator=_positive)

    def __call__(self, epoch):
        return self.learning_rate


@attrs.frozen
class StepDecay:
    """``learning_rate · drop ** (epoch // every)``."""

    learning_rate: float = attrs.field(converter=_real("learning_rate"), validator=_positive)
    drop: float = attrs.field(converter=_real("drop"))
    every: int = attrs.field(converter=_epoch_count)

    def __attrs_post_init__(self):
        if not 0 < self.drop <= 1:
            raise ValueError(f"drop must lie in (0, 1], got {self.drop!r}")
        if self.every < 1:
            raise ValueError(f"every must be an epoch count >= 1, got {self.every!r}")

    def __call__(self, epoch):
        return self.learning_rate * self.drop ** (epoch // self.every)


@attrs.frozen
class ExponentialDecay:
    """``learning_rate · rate ** epoch``."""

    learning_rate: float = attrs.field(converter=_real("learning_rate"), validator=_positive)
    rate: float = attrs.field(converter=_real("rate"))

    def __attrs_post_init__(self):
        if not 0 < self.rate <= 1:
            raise ValueError(f"rate must lie in (0, 1], got {self.rate!r}")

    def __call__(self, epoch):
        return self.learning_rate * self.rate**epoch


@attrs.frozen
class CosineDecay:
    """``final + (learning_rate - final) · (1 + cos(π e / epochs)) / 2``.

    ``e = min(epoch, epochs - 1)``.

    The rate falls from ``learning_rate`` at epoch 0 along half a cosine
    towards ``final`` at epoch ``epochs``; the last epoch of the run
    (``epochs - 1``) still has a rate > 0, and later epochs keep it.
    """

    learning_rate: float = attrs.field(converter=_real("learning_rate"), validator=_positive)
    epochs: int = attrs.field(converter=_epochs)
    final: float = attrs.field(default=0.0, converter=_real("final"))

    def __attrs_post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be an epoch count >= 1, got {self.epochs!r}")
        if not 0 <= self.final < self.learning_rate:
            raise ValueError(
                f"final must lie in [0, learning_rate={self.learning_rate!r}), got {self.final!r}"
            )

    def __call__(self, epoch):
        e = min(epoch, self.epochs - 1)
        return self.final + (self.learning_rate - self.final) * 0.5 * (
            1.0 + math.cos(math.pi * e / self.epochs)
        )


@attrs.frozen
class Warmup:
    """``schedule(epoch) · (epoch + 1) / (epochs + 1)`` while ``epoch < epochs``, then ``schedule``.

    A linear ramp over the first ``epochs`` epochs in front of another
    schedule (or a constant rate).
    """

    schedule: object = attrs.field(converter=lambda s: as_schedule(s))
    epochs: int = attrs.field(converter=_epochs)

    def __attrs_post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be an epoch count >= 1, got {self.epochs!r}")

    def __call__(self, epoch):
        rate = self.schedule(epoch)
        if epoch < self.epochs:
            return rate * (epoch + 1) / (self.epochs + 1)
        return rate


def constant(learning_rate):
    """Schedule: ``learning_rate`` (> 0) at every epoch."""
    return Constant(learning_rate)


def step_decay(learning_rate, drop, every):
    """Schedule: multiply ``learning_rate`` by ``drop`` in (0, 1] every ``every`` epochs."""
    return StepDecay(learning_rate, drop, every)


def exponential_decay(learning_rate, rate):
    """Schedule: ``learning_rate · rate ** epoch`` with ``rate`` in (0, 1]."""
    return ExponentialDecay(learning_rate, rate)


def cosine_decay(learning_rate, epochs, final=0.0):
    """Schedule: half a cosine from ``learning_rate`` to ``final`` over ``epochs`` epochs."""
    return CosineDecay(learning_rate, epochs, final)


def warmup(schedule, epochs):
    """Schedule: ``schedule`` (a number or a schedule) ramped up linearly over ``epochs`` epochs."""
    return Warmup(schedule, epochs)


def as_schedule(learning_rate):
    """Return a callable ``epoch -> learning rate`` from a number or a callable.

    A number becomes :func:`constant`; a callable is returned as is (its values
    are checked where they are used, see :func:`learning_rate_at`).
    """
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, (bool, np.bool_)) or not isinstance(learning_rate, numbers.Real):
        # the check of checks.real, with the word for a schedule added
        raise TypeError(
            f"learning_rate must be a number or a callable epoch -> learning "
            f"rate, got {learning_rate!r}"
        )
    return Constant(learning_rate)


def learning_rate_at(schedule, epoch):
    """``schedule(epoch)`` as a Python float, checked to be finite and > 0."""
    value = schedule(epoch)
    try:
        lr = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"the learning-rate schedule returned {value!r} at epoch {epoch}; expected a number"
        ) from None
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(
            f"the learning rate must be a finite number > 0; the schedule "
            f"gave {value!r} at epoch {epoch}"
        )
    return lr
