"""Models that leave flatnn: ONNX and safetensors exports, scikit-learn imports.

Layer ``l`` of a network holds ``theta_l`` of shape ``(n_out, n_in + 1)``, bias in
column 0. Exports split it into PyTorch's layout:

``layer{l}.weight``
    ``theta_l[:, 1:]``, shape ``(n_out, n_in)`` (``y = x @ weight.T + bias``).
``layer{l}.bias``
    ``theta_l[:, 0]``, shape ``(n_out,)``.

:func:`to_onnx` writes a graph of ``Gemm`` nodes and activations with input ``X``
``(m, n_features)`` in the parameters' dtype and two outputs: ``output`` (the
output activations, what :meth:`Network.forward` returns) and ``label`` (int64
class indices, what :meth:`Network.predict` returns). A stored scaler
(:class:`flatnn.datasets.Scaler`) may be folded in as a first ``(X - offset) /
scale`` step. It needs the optional ``onnx`` package (``pip install
'flatnn[onnx]'``; ``onnxruntime`` runs the file).

:func:`to_safetensors` writes the tensors above with the network spec in the
file's metadata; :func:`read_safetensors` reads them back as ``(Network, params,
metadata)``. It needs the optional ``safetensors`` package.

:func:`from_sklearn` converts a fitted ``sklearn.neural_network.MLPClassifier`` or
``MLPRegressor`` into a ``(Network, params)`` pair whose predictions are those of
the estimator (class indices into ``estimator.classes_``).
"""

from __future__ import annotations

import json
import os

import numpy as np

from flatnn.core.activations import LEAKY_SLOPE
from flatnn.core.network import Network
from flatnn.io.files import write_bytes_atomically

__all__ = [
    "ONNX_OPSET",
    "SAFETENSORS_FORMAT",
    "from_sklearn",
    "read_safetensors",
    "to_onnx",
    "to_safetensors",
]

ONNX_OPSET = 17
"""The ONNX operator set :func:`to_onnx` targets (onnxruntime 1.14 or later runs it)."""

SAFETENSORS_FORMAT = "flatnn-safetensors"
"""The ``format`` entry of the metadata of every safetensors file flatnn writes."""

_ONNX_ACTIVATIONS = {
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "relu": "Relu",
    "leaky_relu": "LeakyRelu",
    "identity": None,
    "softmax": "Softmax",
}


def _layers(net: Network, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight (n_out, n_in), bias (n_out,)) per layer, as contiguous copies."""
    return [
        (np.ascontiguousarray(theta[:, 1:]), np.ascontiguousarray(theta[:, 0]))
        for theta in net.unpack(params)
    ]


def _need(module: str, extra: str) -> object:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this export needs the optional package {module.split('.')[0]!r} "
            f"(pip install 'flatnn[{extra}]')"
        ) from None


def to_onnx(
    net: Network,
    params: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    scaler: object = None,
) -> object:
    """Export a network as an ONNX model (and write it to ``path`` if given).

    Parameters
    ----------
    net : Network
    params : ndarray, shape (net.n_params,)
        float32 or float64; the graph computes in this dtype.
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file (atomically).
    scaler : flatnn.datasets.Scaler or dict, optional
        Folded in as the graph's first step, so the file takes raw rows.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` (m, n_features); outputs ``output`` (m, n_outputs) and
        ``label`` (m,) int64.
    """
    onnx = _need("onnx", "onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper  # type: ignore[attr-defined]
    dtype = np.dtype(params.dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"params has dtype {dtype}; an export takes float32 or float64")
    elem = onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE  # type: ignore[attr-defined]
    nodes: list = []
    inits: list = []
    current = "X"
    if scaler is not None:
        current = _scaler_nodes(scaler, net, dtype, nodes, inits, helper, numpy_helper)
    acts = (*net.hidden_activations, net.output)
    for l, ((weight, bias), act) in enumerate(zip(_layers(net, params), acts)):
        inits += [
            numpy_helper.from_array(weight.astype(dtype), f"layer{l}.weight"),
            numpy_helper.from_array(bias.astype(dtype), f"layer{l}.bias"),
        ]
        z = f"z{l}" if (act != "identity" or l < net.n_layers - 1) else "output"
        nodes.append(
            helper.make_node("Gemm", [current, f"layer{l}.weight", f"layer{l}.bias"], [z], transB=1)
        )
        current = _activation_node(act, z, l == net.n_layers - 1, nodes, helper)
    if "leaky_relu" in acts:
        inits.append(numpy_helper.from_array(np.array(LEAKY_SLOPE, dtype=dtype), "leaky_slope"))
    _label_nodes(net, nodes, inits, dtype, helper, numpy_helper)
    n_in, k = net.sizes[0], net.sizes[-1]
    graph = helper.make_graph(
        nodes,
        "flatnn",
        [helper.make_tensor_value_info("X", elem, ["m", n_in])],
        [
            helper.make_tensor_value_info("output", elem, ["m", k]),
            helper.make_tensor_value_info("label", onnx.TensorProto.INT64, ["m"]),  # type: ignore[attr-defined]
        ],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="flatnn"
    )
    model.ir_version = 8  # readable by onnxruntime 1.14 and later
    model.doc_string = json.dumps({"network": net.to_dict()})
    onnx.checker.check_model(model)  # type: ignore[attr-defined]
    if path is not None:
        write_bytes_atomically(path, model.SerializeToString())
    return model


def _scaler_nodes(scaler, net, dtype, nodes, inits, helper, numpy_helper):
    from flatnn.datasets.scaling import Scaler

    if isinstance(scaler, dict):
        scaler = Scaler.from_dict(scaler, n_features=net.sizes[0])
    if not isinstance(scaler, Scaler) or scaler.n_features != net.sizes[0]:
        raise ValueError(f"scaler must be a Scaler taking {net.sizes[0]} features")
    inits += [
        numpy_helper.from_array(scaler.offset.astype(dtype), "scaler.offset"),
        numpy_helper.from_array(scaler.scale.astype(dtype), "scaler.scale"),
    ]
    nodes += [
        helper.make_node("Sub", ["X", "scaler.offset"], ["X_centred"]),
        helper.make_node("Div", ["X_centred", "scaler.scale"], ["X_scaled"]),
    ]
    return "X_scaled"


def _activation_node(act, z, last, nodes, helper):
    op = _ONNX_ACTIVATIONS[act]
    out = "output" if last else f"a{z[1:]}"
    if op is None:
        if last and z != "output":
            nodes.append(helper.make_node("Identity", [z], [out]))
            return out
        return z
    if op == "LeakyRelu":
        # max(z, slope·z) as flatnn computes it: LeakyRelu's alpha is a float32
        # attribute, 2e-10 off 0.01 in float64
        nodes += [
            helper.make_node("Mul", [z, "leaky_slope"], [f"{z}_slope"]),
            helper.make_node("Max", [z, f"{z}_slope"], [out]),
        ]
        return out
    kwargs = {"axis": 1} if op == "Softmax" else {}
    nodes.append(helper.make_node(op, [z], [out], **kwargs))
    return out


def _label_nodes(net, nodes, inits, dtype, helper, numpy_helper):
    if net.sizes[-1] > 1:
        nodes.append(helper.make_node("ArgMax", ["output"], ["label"], axis=1, keepdims=0))
        return
    inits += [
        numpy_helper.from_array(np.array(0.5, dtype=dtype), "half"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
    ]
    nodes += [
        helper.make_node("Greater", ["output", "half"], ["above"]),
        helper.make_node("Cast", ["above"], ["above_int"], to=7),  # INT64
        helper.make_node("Reshape", ["above_int", "flat"], ["label"]),
    ]


def to_safetensors(
    net: Network, params: np.ndarray, path: str | os.PathLike, **metadata: object
) -> str:
    """Write ``layer{l}.weight`` (n_out, n_in) and ``layer{l}.bias`` (n_out,) tensors.

    Parameters
    ----------
    net : Network
    params : ndarray, shape (net.n_params,)
    path : str or os.PathLike
        Written atomically.
    **metadata
        JSON data stored (as JSON text) in the file's string metadata, beside
        ``format`` and ``network``.

    Returns
    -------
    str
        ``os.fspath(path)``.
    """
    st = _need("safetensors.numpy", "safetensors")
    tensors = {}
    for l, (weight, bias) in enumerate(_layers(net, params)):
        tensors[f"layer{l}.weight"] = weight
        tensors[f"layer{l}.bias"] = bias
    meta = {key: json.dumps(value, allow_nan=False) for key, value in metadata.items()}
    meta.update(format=SAFETENSORS_FORMAT, network=json.dumps(net.to_dict()))
    return write_bytes_atomically(path, st.save(tensors, metadata=meta))  # type: ignore[attr-defined]


def read_safetensors(
    path: str | os.PathLike, net: Network | None = None
) -> tuple[Network, np.ndarray, dict]:
    """Read a safetensors file of ``layer{l}.weight`` / ``layer{l}.bias`` tensors.

    Parameters
    ----------
    path : str or os.PathLike
    net : Network, optional
        The spec, for a file that does not store one (one written by PyTorch);
        default the spec in the file's metadata.

    Returns
    -------
    net : Network
    params : ndarray, shape (net.n_params,)
    metadata : dict
        The keyword arguments given to :func:`to_safetensors`.

    Raises
    ------
    ValueError
        When the tensors do not fit the spec, or the file names no spec and
        ``net`` is not given.
    """
    st = _need("safetensors", "safetensors")
    name = os.fspath(path)
    try:
        with st.safe_open(name, framework="numpy") as f:  # type: ignore[attr-defined]
            meta = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise ValueError(f"{name}: not a readable safetensors file ({exc})") from None
    if net is None:
        if "network" not in meta:
            raise ValueError(f"{name}: the file names no network spec; pass net=Network(...)")
        try:
            net = Network.from_dict(json.loads(meta["network"]))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name}: bad network spec: {exc}") from None
    thetas = []
    for l, (r, c) in enumerate(net.shapes):
        weight, bias = tensors.get(f"layer{l}.weight"), tensors.get(f"layer{l}.bias")
        if weight is None or bias is None or weight.shape != (r, c - 1) or bias.shape != (r,):
            raise ValueError(
                f"{name}: layer{l} needs weight ({r}, {c - 1}) and bias ({r},) for {net!r}"
            )
        thetas.append(np.column_stack([bias, weight]))
    if len(tensors) != 2 * net.n_layers:
        raise ValueError(f"{name}: holds {len(tensors)} tensors; {net!r} has {net.n_layers} layers")
    extra = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "network")}
    return net, net.pack(thetas), extra


_SKLEARN_ACTIVATIONS = {
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "identity": "identity",
}


def from_sklearn(estimator: object) -> tuple[Network, np.ndarray]:
    """A ``(Network, params)`` pair computing a fitted scikit-learn MLP's predictions.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted. A classifier's outputs are indices into its ``classes_``
        (softmax for several classes, one sigmoid unit for two, per-unit
        sigmoids for multilabel); a regressor's are its predictions.

    Returns
    -------
    net : Network
    params : ndarray, shape (net.n_params,), in the dtype of ``coefs_``
    """
    coefs = getattr(estimator, "coefs_", None)
    intercepts = getattr(estimator, "intercepts_", None)
    out = getattr(estimator, "out_activation_", None)
    if coefs is None or intercepts is None or out is None:
        raise TypeError(
            f"expected a fitted sklearn.neural_network MLPClassifier or MLPRegressor, "
            f"got {type(estimator).__name__}"
        )
    hidden = getattr(estimator, "activation", None)
    if hidden not in _SKLEARN_ACTIVATIONS:
        raise ValueError(f"activation {hidden!r} has no flatnn counterpart")
    sizes = [coefs[0].shape[0], *(w.shape[1] for w in coefs)]
    if out == "identity":
        net = Network(
            sizes, hidden=_SKLEARN_ACTIVATIONS[hidden], output="identity", loss="squared_error"
        )
    elif out in ("softmax", "logistic"):
        output = "softmax" if out == "softmax" else "sigmoid"
        net = Network(sizes, hidden=_SKLEARN_ACTIVATIONS[hidden], output=output)
    else:
        raise ValueError(f"output activation {out!r} has no flatnn counterpart")
    thetas = [np.column_stack([b, w.T]) for w, b in zip(coefs, intercepts)]
    return net, net.pack(thetas)
