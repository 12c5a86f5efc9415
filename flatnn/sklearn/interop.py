"""Estimator state for a model file written by ``flatnn train`` (or :func:`flatnn.save`).

Such a file holds a network, its ``params`` and a run record (see
:mod:`flatnn.io.metadata`) but no ``"flatnn.sklearn"`` state. :func:`run_state`
builds one from what the file does say, so that ``MLPClassifier.load`` and
``MLPRegressor.load`` read it like an estimator file:

* ``hidden_layer_sizes`` and ``activation`` from the network (its hidden layers
  must share one activation scikit-learn knows: ``identity``, ``logistic``,
  ``tanh``, ``relu``, ``leaky_relu``); ``dtype`` from the params; every other
  constructor parameter at its default;
* a classifier's classes from the file's ``class_names`` (else ``0 .. k-1``),
  the output units reordered (exactly) to the sorted order scikit-learn keeps
  its ``classes_`` in; a two-unit softmax network stays one, so its predictions
  are the network's argmax, bit for bit;
* ``n_iter_``, ``t_`` at 0 and an empty ``loss_curve_`` (``loss_`` is nan): the
  file's own history stays in the file.

What scikit-learn's estimators cannot express is refused with a ValueError naming
the file: mixed hidden activations, an activation or output/loss pair they do not
have (a classifier is softmax or logistic output with cross-entropy, a regressor
identity with squared error or exp with Poisson), a ``k``-unit logistic output
(one-of-``k`` in flatnn, multi-label in scikit-learn), and a model trained with
feature scaling (``flatnn train --data`` stores its scaler; an estimator takes
the rows as they come, so its predictions would silently differ: retrain with
``--scale none``, or scale the rows yourself before ``fit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from flatnn.core.network import Network

__all__ = ["SKLEARN_ACTIVATION", "run_state"]

SKLEARN_ACTIVATION = {
    "identity": "identity",
    "sigmoid": "logistic",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
}
"""flatnn's hidden activation -> scikit-learn's ``activation`` name."""


def _activation(net: Network, where: str) -> str:
    kinds = set(net.hidden_activations)
    if len(kinds) > 1:
        raise ValueError(
            f"{where}: the network {net!r} mixes hidden activations "
            f"{list(net.hidden_activations)}; scikit-learn's estimators take one"
        )
    kind = kinds.pop() if kinds else "relu"
    if kind not in SKLEARN_ACTIVATION:
        raise ValueError(
            f"{where}: the network's hidden activation {kind!r} has no scikit-learn "
            f"counterpart; expected one of {sorted(SKLEARN_ACTIVATION)}"
        )
    return SKLEARN_ACTIVATION[kind]


def _check_scaler(metadata: Mapping[str, Any], where: str) -> None:
    scaler = metadata.get("scaler")
    if isinstance(scaler, Mapping) and scaler.get("kind", "none") != "none":
        raise ValueError(
            f"{where} was trained with {scaler.get('kind')!r} feature scaling, which a "
            f"scikit-learn estimator cannot apply; retrain with `flatnn train --scale none` "
            f"(or scale the rows yourself), or use `flatnn predict` on this file"
        )


def _classes(net: Network, metadata: Mapping[str, Any], where: str) -> np.ndarray:
    """The class of each output unit (two for one unit), in output order."""
    k = net.sizes[-1]
    names = metadata.get("class_names")
    if names is None:
        return np.arange(max(k, 2))
    values = np.asarray(names)
    if values.ndim != 1 or len(values) != max(k, 2):
        raise ValueError(
            f"{where}: class_names {names!r} do not fit the network's {k} output unit(s)"
        )
    return values


def _classifier_labels(
    net: Network, params: np.ndarray, metadata: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], np.ndarray]:
    """The label state and the params with the output units in sorted class order."""
    if net.loss != "cross_entropy" or net.output not in ("softmax", "sigmoid"):
        raise ValueError(
            f"{where}: the network's output {net.output!r} with loss {net.loss!r} is not "
            f"a MLPClassifier's (softmax or sigmoid output with cross_entropy)"
        )
    k = net.sizes[-1]
    if net.output == "sigmoid" and k > 1:
        raise ValueError(
            f"{where}: the network's {k}-unit sigmoid output is one-of-{k} in flatnn but "
            f"multi-label in scikit-learn; retrain with a softmax output"
        )
    if net.output == "softmax" and k < 2:
        raise ValueError(f"{where}: a one-unit softmax network has no classifier counterpart")
    classes = _classes(net, metadata, where)
    order = np.argsort(classes, kind="stable")
    params = np.array(params, copy=True)
    last = net.unpack(params)[-1]
    if k == 1 and order[0] == 1:
        last *= -1  # sigmoid(-z) = 1 - sigmoid(z): the unit now means the other class
    elif k > 1:
        last[...] = last[order]
    state = {
        "classes": classes[order].tolist(),
        "classes_dtype": classes.dtype.str,
        "y_type": "binary" if k == 1 else "multiclass",
    }
    return state, params


def run_state(
    is_classifier: bool, net: Network, params: np.ndarray, metadata: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], np.ndarray]:
    """The ``"flatnn.sklearn"`` state of a model file that has none, and its params.

    Parameters
    ----------
    is_classifier : bool
        True for :class:`MLPClassifier`, False for :class:`MLPRegressor`.
    net : Network
    params : ndarray, shape (net.n_params,)
    metadata : mapping
        The file's metadata (``class_names``, ``task``, ``scaler``, ...).
    where : str
        The file, for the messages.

    Returns
    -------
    state : dict
        What :meth:`flatnn.sklearn.MLPClassifier.save` would have stored.
    params : ndarray, shape (net.n_params,)
        ``params``, or a copy with the output units reordered to the classes.

    Raises
    ------
    ValueError
        For what scikit-learn's estimators cannot express (see the module).
    """
    _check_scaler(metadata, where)
    task = metadata.get("task")
    if task is not None and task != ("classify" if is_classifier else "regress"):
        other = "MLPRegressor" if is_classifier else "MLPClassifier"
        raise ValueError(f"{where} holds a {task!r} model; load it with {other}")
    settings: dict[str, Any] = {
        "hidden_layer_sizes": list(net.sizes[1:-1]),
        "activation": _activation(net, where),
        "dtype": np.dtype(params.dtype).name if params.dtype == np.float32 else None,
    }
    labels: dict[str, Any] = {}
    if is_classifier:
        labels, params = _classifier_labels(net, params, metadata, where)
    elif net.output == "exp" and net.loss == "poisson":
        settings["loss"] = "poisson"
    state = {
        "class": "MLPClassifier" if is_classifier else "MLPRegressor",
        "params": settings,
        "omitted_params": [],
        "n_features_in": int(net.sizes[0]),
        "n_outputs": int(net.sizes[-1]),
        "n_iter": 0,
        "t": 0,
        "loss": "nan",
        "loss_curve": [],
        **labels,
    }
    return state, params
