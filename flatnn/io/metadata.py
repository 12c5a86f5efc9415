"""What a model file records besides its weights, and the checks it passes at load.

A model file's metadata (see :mod:`flatnn.io.models`) is free-form JSON, but
the fields below have a meaning to flatnn and are checked by :func:`check_metadata`
whenever a model is loaded, so that a missing or tampered field is an error
naming it instead of a wrong prediction:

``class_names``
    The classes in output order: text or numbers, unique, one per output unit
    (two for a one-unit network).
``features``
    The feature column names, one per input unit, unique.
``target``, ``task``
    The target column's name; ``"classify"`` or ``"regress"``.
``scaler``
    :meth:`flatnn.datasets.Scaler.to_dict` of the scaler fitted on the training rows.
``settings``
    Every resolved setting of the run (a mapping).
``history``
    One mapping per epoch or iteration, as the training driver records them;
    non-finite numbers stored as the strings ``"nan"``, ``"inf"``, ``"-inf"``.
``versions``
    ``{"flatnn": ..., "numpy": ..., "scipy": ...}`` of the run.
``data_sha256``, ``seed``
    The SHA-256 (hex) of the training data (a table: its file's bytes; a built-in
    data set: its training arrays' bytes); the random seed.

:func:`run_metadata` builds the last five from a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from flatnn.core.network import Network

__all__ = [
    "RUN_FIELDS",
    "check_metadata",
    "history_row",
    "history_value",
    "run_metadata",
    "versions",
]

RUN_FIELDS = ("settings", "history", "versions", "data_sha256", "seed")
"""The metadata fields :func:`run_metadata` writes."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


def versions() -> dict:
    """``{"flatnn": ..., "numpy": ..., "scipy": ...}``: the versions running now."""
    from importlib import metadata

    import numpy
    import scipy

    try:
        own = metadata.version("flatnn")
    except metadata.PackageNotFoundError:  # a source tree on PYTHONPATH
        own = "unknown"
    return {"flatnn": own, "numpy": numpy.__version__, "scipy": scipy.__version__}


def history_value(value: object) -> object:
    """A history entry's value as JSON can hold it (non-finite floats as text)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # a NumPy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def history_row(row: Mapping) -> dict:
    """The scalar fields of one history entry, as JSON can hold them.

    Arrays (the iterate ``x``), lists and mappings (a nested history) are left
    out; NumPy scalars become Python numbers; non-finite numbers become text.
    """
    out = {}
    for key, value in row.items():
        if hasattr(value, "ndim"):
            if value.ndim != 0:
                continue
            value = value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = history_value(value)
    return out


def run_metadata(
    settings: Mapping,
    history: Sequence[Mapping] = (),
    *,
    seed: int | None = None,
    data_sha256: str | None = None,
) -> dict:
    """The run-record fields of a model file: settings, history, versions, data hash, seed.

    Parameters
    ----------
    settings : mapping
        Every resolved setting (JSON data: str, numbers, bool, None, lists, dicts).
    history : sequence of mapping
        One mapping per epoch or iteration (``res.history``); array values are
        left out, non-finite numbers stored as text.
    seed : int, optional
    data_sha256 : str, optional
        64 lower-case hex digits.

    Returns
    -------
    dict
        Keyword arguments for :func:`flatnn.save`.
    """
    rows = [history_row(h) for h in history]
    out = {
        "settings": dict(settings),
        "history": rows,
        "versions": versions(),
        "seed": seed,
        "data_sha256": data_sha256,
    }
    if data_sha256 is not None and not _SHA256.fullmatch(str(data_sha256)):
        raise ValueError(f"data_sha256 must be 64 hex digits, got {data_sha256!r}")
    return out


def check_metadata(metadata: Mapping, net: Network, name: str = "the model file") -> None:
    """Raise ValueError naming the field when a meaningful field is missing its sense.

    Only the fields listed in this module's docstring are checked, each when
    present and not None (None means not recorded); others are free-form.
    """
    for field, check in _CHECKS.items():
        if metadata.get(field) is not None:  # None: not recorded
            try:
                check(metadata[field], net)
            except ValueError as exc:
                raise ValueError(f"{name}: metadata {field!r}: {exc}") from None


def _class_names(value, net):
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    for v in value:
        ok = isinstance(v, str) or (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        )
        if not ok:
            raise ValueError(f"holds {v!r}; a class name is text or a number")
    if len(set(map(repr, value))) != len(value):
        raise ValueError("names a class twice")
    k = net.sizes[-1]
    if len(value) != max(k, 2):
        raise ValueError(f"lists {len(value)} classes; {net!r} has {k} output units")


def _features(value, net):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of column names (text)")
    if len(set(value)) != len(value):
        raise ValueError("names a column twice")
    if len(value) != net.sizes[0]:
        raise ValueError(f"lists {len(value)} columns; {net!r} takes {net.sizes[0]} inputs")


def _task(value, net):
    if value not in ("classify", "regress"):
        raise ValueError(f"is {value!r}; expected 'classify' or 'regress'")


def _scaler(value, net):
    from flatnn.datasets.scaling import Scaler  # here: loading a model needs no data sets

    Scaler.from_dict(value, n_features=net.sizes[0])


def _mapping(value, net):
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {type(value).__name__}")


def _history(value, net):
    if not isinstance(value, list) or not all(isinstance(h, dict) for h in value):
        raise ValueError("expected a list of mappings, one per epoch or iteration")
    for i, h in enumerate(value):
        for k, v in h.items():
            if isinstance(v, str):
                if v not in ("nan", "inf", "-inf"):
                    raise ValueError(f"entry {i} field {k!r} is {v[:20]!r}; expected a number")
            elif v is not None and not isinstance(v, (int, float)):
                raise ValueError(f"entry {i} field {k!r} is a {type(v).__name__}")


def _sha256(value, net):
    if value is not None and not (isinstance(value, str) and _SHA256.fullmatch(value)):
        raise ValueError("expected 64 lower-case hex digits")


def _seed(value, net):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"expected an integer or null, got {value!r}")


def _versions(value, net):
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("expected a mapping of package names to version strings")


_CHECKS = {
    "class_names": _class_names,
    "features": _features,
    "task": _task,
    "scaler": _scaler,
    "settings": _mapping,
    "history": _history,
    "data_sha256": _sha256,
    "seed": _seed,
    "versions": _versions,
}
