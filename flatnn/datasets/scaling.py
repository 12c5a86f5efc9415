"""Feature scaling fitted on the training rows and stored with the model.

A :class:`Scaler` maps a row ``x`` to ``(x - offset) / scale``:

``standard``
    ``offset`` the column means, ``scale`` the column standard deviations.
``minmax``
    ``offset`` the column minima, ``scale`` the ranges (to [0, 1] on the training rows).
``none``
    The identity (offset 0, scale 1).

A constant column gets ``scale = 1`` (it becomes 0, never NaN). The scaler is
fitted on the training rows only, stored in the model file with
:meth:`Scaler.to_dict`, and read back with :meth:`Scaler.from_dict`, which checks
every field, so that prediction applies exactly the training transformation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SCALINGS", "Scaler", "fit_scaler"]

SCALINGS = ("standard", "minmax", "none")
"""The scaling kinds :func:`fit_scaler` accepts."""


@dataclass(frozen=True, eq=False)
class Scaler:
    """``x -> (x - offset) / scale`` per column.

    Attributes
    ----------
    kind : {"standard", "minmax", "none"}
    offset, scale : ndarray, shape (n_features,), float64
    """

    kind: str
    offset: np.ndarray
    scale: np.ndarray

    @property
    def n_features(self) -> int:
        """int: the number of columns the scaler takes."""
        return int(self.offset.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled copy of ``X`` (m, n_features), in ``X``'s float dtype (float64 otherwise)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}; the scaler takes (m, {self.n_features}) rows")
        dtype = X.dtype if X.dtype.kind == "f" else np.float64
        if self.kind == "none":
            return X.astype(dtype, copy=True)
        return ((X - self.offset) / self.scale).astype(dtype, copy=False)

    def to_dict(self) -> dict:
        """Plain JSON data: ``{"kind": ..., "offset": [...], "scale": [...]}``."""
        return {"kind": self.kind, "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: object, n_features: int | None = None) -> Scaler:
        """Rebuild a scaler from :meth:`to_dict`; ValueError naming the bad field.

        Parameters
        ----------
        data : dict
        n_features : int, optional
            The number of columns the model takes; offset and scale must match it.
        """
        if not isinstance(data, dict) or set(data) != {"kind", "offset", "scale"}:
            raise ValueError(
                f"scaler must be a mapping with keys kind, offset, scale; got {_short(data)}"
            )
        kind = data["kind"]
        if kind not in SCALINGS:
            raise ValueError(f"scaler.kind is {_short(kind)}; expected one of {list(SCALINGS)}")
        arrays = {}
        for key in ("offset", "scale"):
            value = data[key]
            if not isinstance(value, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            ):
                raise ValueError(f"scaler.{key} must be a list of finite numbers")
            arrays[key] = np.array(value, dtype=np.float64).reshape(-1)
        if arrays["offset"].shape != arrays["scale"].shape:
            raise ValueError(
                f"scaler.offset has {arrays['offset'].size} values and scaler.scale "
                f"{arrays['scale'].size}"
            )
        if (arrays["scale"] <= 0).any():
            raise ValueError("scaler.scale holds a value <= 0; every scale must be positive")
        if n_features is not None and arrays["offset"].size != n_features:
            raise ValueError(
                f"scaler.offset has {arrays['offset'].size} values; the network takes "
                f"{n_features} features"
            )
        return cls(kind, arrays["offset"], arrays["scale"])


def fit_scaler(X: np.ndarray, kind: str = "standard") -> Scaler:
    """Fit a :class:`Scaler` of ``kind`` on the training rows ``X`` (m, n_features).

    Raises
    ------
    ValueError
        For an unknown kind, an X that is not 2-D with at least one row, or
        non-finite values.
    """
    if kind not in SCALINGS:
        raise ValueError(f"scaling must be one of {list(SCALINGS)}, got {kind!r}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be (m, n_features) with m >= 1, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X holds NaN or inf; a scaler is fitted on finite values only")
    n = X.shape[1]
    if kind == "none":
        return Scaler(kind, np.zeros(n), np.ones(n))
    if kind == "standard":
        offset, scale = X.mean(axis=0), X.std(axis=0)
    else:
        offset = X.min(axis=0)
        scale = X.max(axis=0) - offset
    scale = np.where(scale > 0, scale, 1.0)
    return Scaler(kind, offset, scale)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
