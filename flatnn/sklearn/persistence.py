"""Estimator files: a flatnn model file with the estimator's state in its metadata.

``est.save(path)`` writes the network and ``params_`` like any flatnn model file
(:func:`flatnn.save`; ``flatnn.load`` reads it) and, under the metadata key
``"flatnn.sklearn"``, the estimator's state: its class, the constructor
parameters JSON can hold (the names of the others in ``omitted_params``),
``n_features_in``, ``feature_names_in``, ``n_outputs``, ``n_iter``, ``t``,
``loss``, ``loss_curve`` and, for a classifier, ``classes``, ``classes_dtype``
and ``y_type``. A non-finite number (a diverged run's ``nan``, an overflowing
loss's ``inf``) is stored as the string ``"nan"``, ``"inf"`` or ``"-inf"``, so
every fitted estimator can be saved.

``Est.load(path)`` checks the whole state against the network it comes with and
raises one ValueError naming the file and the field at the first thing that
does not hold (a missing field, a value of the wrong type, a
``hidden_layer_sizes`` or ``activation`` that is not the network's, classes
that do not fit its outputs, ...).
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from flatnn.backends.gpu_objective import GPUUnavailable
from flatnn.io import models as io
from flatnn.sklearn import device as devices
from flatnn.sklearn.constraints import InvalidParameterError
from flatnn.sklearn.interop import run_state

__all__ = ["Persistence", "FORMAT", "jsonable", "encode_float", "decode_float", "StateError"]

FORMAT = "flatnn.sklearn"
"""The metadata key of the estimator's state."""

_UNSTORABLE = object()
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StateError(ValueError):
    """A stored estimator state that does not hold (a ValueError naming file and field)."""


def encode_float(value: float) -> float | str:
    """``value`` as JSON can hold it: the float, or ``"nan"``/``"inf"``/``"-inf"``."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def decode_float(value: Any) -> float:
    """The inverse of :func:`encode_float`; TypeError for anything else."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number (or 'nan', 'inf', '-inf'), got {value!r}")
    return float(value)


def jsonable(value: Any) -> Any:
    """A constructor parameter as JSON data, or a marker object when JSON cannot hold it."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        items = [jsonable(v) for v in value]
        return _UNSTORABLE if any(v is _UNSTORABLE for v in items) else items
    if isinstance(value, dict):
        entries = {k: jsonable(v) for k, v in value.items()}
        ok = all(isinstance(k, str) and v is not _UNSTORABLE for k, v in entries.items())
        return entries if ok else _UNSTORABLE
    try:
        dt = np.dtype(value)
    except TypeError:
        return _UNSTORABLE
    return dt.name if dt in (np.float32, np.float64) else _UNSTORABLE


def _refuse_read_only(path: str) -> None:
    """A read-only file is not replaced (as the command line refuses it)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(
            f"cannot write {path!r}: the file is read-only; make it writable "
            f"(chmod u+w) or save to another path"
        )


def _field(state: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in state:
        raise StateError(f"{where}: field {FORMAT}.{key} is missing")
    value = state[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise StateError(f"{where}: field {FORMAT}.{key} holds {value!r}; expected {kind}")
    return value


def _count(state: dict[str, Any], key: str, where: str, low: int = 0) -> int:
    value = _field(state, key, int, where)
    if value < low:
        raise StateError(f"{where}: field {FORMAT}.{key} is {value}; expected an integer >= {low}")
    return int(value)


def _floats(state: dict[str, Any], key: str, where: str) -> list[float]:
    values = state.get(key)
    values = values if isinstance(values, list) else [values]
    try:
        return [decode_float(v) for v in values]
    except TypeError as exc:
        raise StateError(f"{where}: field {FORMAT}.{key}: {exc}") from None


def _table_metadata(est: Any, state: dict[str, Any]) -> dict[str, Any]:
    """What ``flatnn predict``/``evaluate`` read of a table model (no scaling).

    Only for an estimator fitted on a table with column names (a DataFrame:
    ``feature_names_in_``), a single-target regressor or a binary or
    multiclass classifier: ``features``, ``target`` (``"y"``), ``task``,
    ``class_names`` and an identity ``scaler``. Others (fitted on arrays, such
    as images) stay models ``flatnn predict`` reads images with.
    """
    n, y_type = int(est.n_features_in_), state.get("y_type")
    if y_type not in (None, "binary", "multiclass") or (y_type is None and est.n_outputs_ != 1):
        return {}
    features = state.get("feature_names_in")
    if not features:
        return {}
    return {
        "features": list(features),
        "target": "y",
        "task": "regress" if y_type is None else "classify",
        "class_names": state.get("classes"),
        "scaler": {"kind": "none", "offset": [0.0] * n, "scale": [1.0] * n},
    }


class Persistence:
    """``save`` and ``load``, a part of the estimators (not public on its own)."""

    def save(self, path: str | os.PathLike[str], **metadata: Any) -> str:
        """Write the fitted model to a flatnn model file (no pickle), atomically.

        ``flatnn.load(path)`` returns its network and ``params_`` like any other
        model file's; :meth:`load` rebuilds the estimator. A read-only file at
        ``path`` is not replaced (PermissionError).

        Parameters
        ----------
        path : str or os.PathLike
        **metadata
            Extra JSON values stored beside the estimator's own.

        Returns
        -------
        str
        """
        check_is_fitted(self, "params_")
        est: Any = self
        stored, omitted = {}, []
        for name, value in est.get_params(deep=False).items():
            value = jsonable(value)
            if value is _UNSTORABLE:
                omitted.append(name)
            else:
                stored[name] = value
        state = {
            "class": type(self).__name__,
            "params": stored,
            "omitted_params": omitted,
            "n_features_in": int(est.n_features_in_),
            "n_outputs": int(est.n_outputs_),
            "n_iter": int(est.n_iter_),
            "t": int(est.t_),
            "loss": encode_float(est.loss_),
            "loss_curve": [encode_float(v) for v in est.loss_curve_],
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in"] = [str(v) for v in est.feature_names_in_]
        state.update(est._label_state())
        _refuse_read_only(os.fspath(path))
        for key, value in _table_metadata(est, state).items():
            metadata.setdefault(key, value)
        return io.save(path, est.network_, est.params_, **{FORMAT: state}, **metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Read an estimator written by :meth:`save`, or a model from ``flatnn train``.

        A model file without an estimator's state (``flatnn train``,
        :func:`flatnn.save`) becomes a fitted estimator whose predictions are the
        network's: classes from its ``class_names`` (else ``0 .. k-1``), the
        layout and activation from the network, other parameters at their
        defaults (see :mod:`flatnn.sklearn.interop`). A model trained with
        feature scaling (``flatnn train --data`` without ``--scale none``) is
        refused: an estimator cannot apply the stored scaler.

        Constructor parameters that JSON cannot hold (an update-rule object as
        ``solver``, a ``RandomState``) were not stored and take their defaults;
        their names are in the file's ``omitted_params``. A model saved with
        ``device="cuda"`` loads with ``device="cpu"`` (and a warning) where no
        GPU is usable.

        Returns
        -------
        estimator : cls
            Fitted: it predicts exactly as the saved one did.

        Raises
        ------
        ValueError
            When the file is no estimator file of this class, or any stored
            field does not hold: one message naming the file and the field.
        """
        where = repr(os.fspath(path))
        net, params, metadata = io.load(path)
        state = metadata.get(FORMAT)
        if state is None:  # a model from `flatnn train` or flatnn.save
            state, params = run_state(
                getattr(cls, "_is_classifier", False), net, params, metadata, where
            )
        if not isinstance(state, dict) or state.get("class") != cls.__name__:
            found = state.get("class") if isinstance(state, dict) else None
            raise ValueError(f"{where} holds no flatnn.sklearn {cls.__name__} (found {found!r})")
        est: Any = cls._from_state(state, where)
        est._restore_fitted(state, net, where)
        est.network_, est.params_ = net, params
        est._check_network(net, where)
        est._fall_back_to_cpu(where)
        return est

    @classmethod
    def _from_state(cls, state: dict[str, Any], where: str) -> Any:
        stored = dict(_field(state, "params", dict, where))
        if isinstance(stored.get("hidden_layer_sizes"), list):
            stored["hidden_layer_sizes"] = tuple(stored["hidden_layer_sizes"])
        try:
            est: Any = cls(**stored)
        except TypeError as exc:
            raise StateError(f"{where}: field {FORMAT}.params: {exc}") from None
        try:
            est._validate_params()
            est._hidden_sizes()
        except InvalidParameterError as exc:
            raise StateError(f"{where}: field {FORMAT}.params: {exc}") from None
        return est

    def _restore_fitted(self, state: dict[str, Any], net: Any, where: str) -> None:
        est: Any = self
        est.n_features_in_ = _count(state, "n_features_in", where, 1)
        if "feature_names_in" in state:
            names = state["feature_names_in"]
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise StateError(f"{where}: field {FORMAT}.feature_names_in is not a list of str")
            if len(names) != est.n_features_in_:
                raise StateError(
                    f"{where}: field {FORMAT}.feature_names_in has {len(names)} names "
                    f"for {est.n_features_in_} features"
                )
            est.feature_names_in_ = np.asarray(names, dtype=object)
        est.n_outputs_ = _count(state, "n_outputs", where, 1)
        est.n_layers_ = len(net.sizes)
        est.n_iter_ = _count(state, "n_iter", where)
        est.t_ = _count(state, "t", where)
        _field(state, "loss_curve", list, where)
        est.loss_ = _floats(state, "loss", where)[0]
        est.loss_curve_ = _floats(state, "loss_curve", where)
        finite = [v for v in est.loss_curve_ if not math.isnan(v)]
        est.best_loss_ = min(finite) if finite else est.loss_
        est.validation_scores_ = None
        est.best_validation_score_ = None
        est.optimizer_state_ = None
        est._current_rate = None
        est._no_improvement_count = 0
        est._restore_labels(state, net, where)

    def _check_network(self, net: Any, where: str) -> None:
        """The stored state describes ``net``: sizes, activations, outputs."""
        est: Any = self
        if net.sizes[0] != est.n_features_in_:
            raise StateError(
                f"{where}: field {FORMAT}.n_features_in is {est.n_features_in_}; "
                f"the network {net!r} takes {net.sizes[0]}"
            )
        if net.sizes[-1] != est.n_outputs_:
            raise StateError(
                f"{where}: field {FORMAT}.n_outputs is {est.n_outputs_}; "
                f"the network {net!r} has {net.sizes[-1]}"
            )
        if list(net.sizes[1:-1]) != est._hidden_sizes():
            raise StateError(
                f"{where}: field {FORMAT}.params.hidden_layer_sizes is "
                f"{est.hidden_layer_sizes!r}; the network {net!r} has {net.sizes[1:-1]!r}"
            )
        expected = est._network(net.sizes[0], net.sizes[-1])
        if expected.hidden_activations != net.hidden_activations:
            raise StateError(
                f"{where}: field {FORMAT}.params.activation is {est.activation!r}; "
                f"the network {net!r} uses {net.hidden!r}"
            )
        if (expected.output, expected.loss) != (net.output, net.loss):
            raise StateError(
                f"{where}: the network's output {net.output!r} with loss {net.loss!r} is "
                f"not a {type(self).__name__}'s ({expected.output!r}, {expected.loss!r})"
            )
        est.out_activation_ = est._out_activation(net)

    def _fall_back_to_cpu(self, where: str) -> None:
        est: Any = self
        if est.device != "cuda":
            return
        try:
            devices.device_namespace("cuda", type(self).__name__)
        except GPUUnavailable as exc:
            warnings.warn(
                f"{where} was saved with device='cuda' and no GPU is usable here ({exc}); "
                f"it predicts on the CPU (set_params(device='cuda') where a GPU is)",
                UserWarning,
                stacklevel=3,
            )
            est.set_params(device="cpu")
