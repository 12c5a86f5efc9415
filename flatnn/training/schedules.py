"""Learning-rate schedules for :func:`flatnn.sgd`: epoch index -> learning rate.

A *schedule* is any callable ``epoch -> float`` (epochs count from 0). The
built-ins are frozen attrs classes (a repr, equality, pickling), made by
:func:`constant`, :func:`step_decay`, :func:`exponential_decay`,
:func:`cosine_decay` and :func:`warmup` (around any of them). The loop reads a
schedule once per epoch through :func:`learning_rate_at`, which checks that the
rate is a finite number > 0. Public through :mod:`flatnn.optimizers`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, cast

import attrs
import numpy as np

from flatnn.base import checks

__all__ = [
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "Warmup",
    "constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "warmup",
    "as_schedule",
    "learning_rate_at",
    "positive",
    "as_real",
    "real_fields",
]


def positive(instance: Any, attribute: Any, value: float) -> None:
    """attrs validator: a finite number > 0 (the field named in the error)."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def as_real(value: Any, name: str) -> float:
    """attrs converter body: a real number (not a bool, not a string) to float, naming the field.

    The validators check the range.
    """
    return checks.real(value, name, finite=False)


def _as_real_field(value: Any, field: attrs.Attribute) -> float:
    return as_real(value, field.name)


_REAL = attrs.Converter(_as_real_field, takes_field=True)


def real_fields(cls: type, fields: list[attrs.Attribute]) -> list[attrs.Attribute]:
    """attrs field transformer: every ``float`` field converted by :func:`as_real`, named.

    ``@attrs.frozen(field_transformer=real_fields)`` gives each hyperparameter
    of a schedule or an update rule the one conversion, whose error names the
    field (``beta must be a real number, got 'x'``); the validators check the range.
    """
    return [f.evolve(converter=_REAL) if f.type in (float, "float") else f for f in fields]


def _schedule(value: Any) -> Callable[[int], Any]:
    return as_schedule(value)  # defined below: looked up when a Warmup is made


def _epoch_count(value: Any) -> int:
    # int(1.5) would be 1: an interval of epochs is a whole number or an error.
    return checks.integer(value, "every (epochs between drops)")


def _epochs(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"epochs must be a whole number of epochs (an int >= 1), got {value!r}")
    return int(value)


@attrs.frozen(field_transformer=real_fields)
class Constant:
    """The same learning rate every epoch."""

    learning_rate: float = attrs.field(validator=positive)

    def __call__(self, epoch: int) -> float:
        return self.learning_rate


@attrs.frozen(field_transformer=real_fields)
class StepDecay:
    """``learning_rate · drop ** (epoch // every)``."""

    learning_rate: float = attrs.field(validator=positive)
    drop: float
    every: int = attrs.field(converter=_epoch_count)

    def __attrs_post_init__(self) -> None:
        if not 0 < self.drop <= 1:
            raise ValueError(f"drop must lie in (0, 1], got {self.drop!r}")
        if self.every < 1:
            raise ValueError(f"every must be an epoch count >= 1, got {self.every!r}")

    def __call__(self, epoch: int) -> float:
        return self.learning_rate * self.drop ** (epoch // self.every)


@attrs.frozen(field_transformer=real_fields)
class ExponentialDecay:
    """``learning_rate · rate ** epoch``."""

    learning_rate: float = attrs.field(validator=positive)
    rate: float

    def __attrs_post_init__(self) -> None:
        if not 0 < self.rate <= 1:
            raise ValueError(f"rate must lie in (0, 1], got {self.rate!r}")

    def __call__(self, epoch: int) -> float:
        return self.learning_rate * self.rate**epoch


@attrs.frozen(field_transformer=real_fields)
class CosineDecay:
    """``final + (learning_rate - final) · (1 + cos(π e / epochs)) / 2``.

    ``e = min(epoch, epochs - 1)``.

    The rate falls from ``learning_rate`` at epoch 0 along half a cosine
    towards ``final`` at epoch ``epochs``; the last epoch of the run
    (``epochs - 1``) still has a rate > 0, and later epochs keep it.
    """

    learning_rate: float = attrs.field(validator=positive)
    epochs: int = attrs.field(converter=_epochs)
    final: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be an epoch count >= 1, got {self.epochs!r}")
        if not 0 <= self.final < self.learning_rate:
            raise ValueError(
                f"final must lie in [0, learning_rate={self.learning_rate!r}), got {self.final!r}"
            )

    def __call__(self, epoch: int) -> float:
        e = min(epoch, self.epochs - 1)
        return self.final + (self.learning_rate - self.final) * 0.5 * (
            1.0 + math.cos(math.pi * e / self.epochs)
        )


@attrs.frozen(field_transformer=real_fields)
class Warmup:
    """``schedule(epoch) · (epoch + 1) / (epochs + 1)`` while ``epoch < epochs``, then ``schedule``.

    A linear ramp over the first ``epochs`` epochs in front of another
    schedule (or a constant rate).
    """

    schedule: Callable[[int], Any] = attrs.field(converter=_schedule)
    epochs: int = attrs.field(converter=_epochs)

    def __attrs_post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be an epoch count >= 1, got {self.epochs!r}")

    def __call__(self, epoch: int) -> float:
        rate = self.schedule(epoch)
        if epoch < self.epochs:
            return rate * (epoch + 1) / (self.epochs + 1)
        return rate


def constant(learning_rate: float) -> Constant:
    """Schedule: ``learning_rate`` (> 0) at every epoch."""
    return Constant(learning_rate)


def step_decay(learning_rate: float, drop: float, every: int) -> StepDecay:
    """Schedule: multiply ``learning_rate`` by ``drop`` in (0, 1] every ``every`` epochs."""
    return StepDecay(learning_rate, drop, every)


def exponential_decay(learning_rate: float, rate: float) -> ExponentialDecay:
    """Schedule: ``learning_rate · rate ** epoch`` with ``rate`` in (0, 1]."""
    return ExponentialDecay(learning_rate, rate)


def cosine_decay(learning_rate: float, epochs: int, final: float = 0.0) -> CosineDecay:
    """Schedule: half a cosine from ``learning_rate`` to ``final`` over ``epochs`` epochs."""
    return CosineDecay(learning_rate, epochs, final)


def warmup(schedule: Any, epochs: int) -> Warmup:
    """Schedule: ``schedule`` (a number or a schedule) ramped up linearly over ``epochs`` epochs."""
    return Warmup(schedule, epochs)


def as_schedule(learning_rate: Any) -> Callable[[int], Any]:
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
    return Constant(cast(float, learning_rate))  # the field converts it (as_real)


def learning_rate_at(schedule: Callable[[int], Any], epoch: int) -> float:
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
