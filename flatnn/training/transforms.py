"""Batch transforms for data augmentation in :func:`flatnn.sgd`.

A transform is a callable ``transform(X_batch, rng) -> X_batch``: it takes one
batch ``(b, n_features)`` and the loop's ``numpy.random.Generator`` and returns
a new array of the same shape and dtype. It never writes into ``X_batch`` and
draws its randomness from ``rng`` only, so that a seed fixes every batch.

:func:`translate` shifts square images (28×28 for MNIST) by a random whole
number of pixels in each direction, filling with zeros (the background).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import attrs
import numpy as np

from flatnn.base import namespace

__all__ = ["Translate", "translate"]


def _shift_count(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"max_shift must be a whole number of pixels (an int >= 1), got {value!r}")
    return int(value)


@attrs.frozen
class Translate:
    """Random translations of square images by ``-max_shift .. max_shift`` pixels.

    Each image gets its own ``(dy, dx)``, drawn uniformly from the
    ``(2 max_shift + 1)²`` integer shifts; pixels shifted in are 0.
    """

    max_shift: int = attrs.field(converter=_shift_count)

    def __attrs_post_init__(self) -> None:
        if self.max_shift < 1:
            raise ValueError(f"max_shift must be >= 1, got {self.max_shift}")

    def __call__(self, X_batch: Any, rng: np.random.Generator) -> Any:
        """Return a translated copy of ``X_batch``, shape ``(b, side * side)``.

        A device batch (CuPy) is translated on the device: the shifts are drawn
        on the host from ``rng`` (the same ones as for a NumPy batch) and only
        the row indices of each distinct shift travel.
        """
        xp = namespace.namespace_of(X_batch)
        if xp is np:
            X_batch = np.asarray(X_batch)
        if X_batch.ndim != 2:
            raise ValueError(
                f"translate takes a batch of shape (b, side*side), got {X_batch.shape}"
            )
        b, n = X_batch.shape
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(
                f"translate takes square images; {n} features is not a square number of pixels"
            )
        s = self.max_shift
        if s >= side:
            raise ValueError(f"max_shift {s} must be smaller than the image side {side}")
        shifts = rng.integers(-s, s + 1, size=(b, 2))
        images = X_batch.reshape(b, side, side)
        out = xp.zeros_like(images)
        # One slice assignment per distinct shift: (2s+1)² vectorised copies per
        # batch instead of b per-image ones.
        code = (shifts[:, 0] + s) * (2 * s + 1) + (shifts[:, 1] + s)
        for c in np.unique(code):
            rows = np.flatnonzero(code == c)
            dy, dx = int(shifts[rows[0], 0]), int(shifts[rows[0], 1])
            if xp is not np:
                rows = xp.asarray(rows)
            src_y = slice(max(0, -dy), side - max(0, dy))
            dst_y = slice(max(0, dy), side - max(0, -dy))
            src_x = slice(max(0, -dx), side - max(0, dx))
            dst_x = slice(max(0, dx), side - max(0, -dx))
            out[rows, dst_y, dst_x] = images[rows, src_y, src_x]
        return out.reshape(b, n)


def translate(max_shift: int = 2) -> Translate:
    """Transform: random translations by up to ``max_shift`` pixels (see :class:`Translate`)."""
    return Translate(max_shift)
