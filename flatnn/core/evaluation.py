"""The evaluation of a network: cost, gradient, curvature products and predictions.

Pure functions of a :class:`flatnn.Network` spec and its arguments; the
methods of :class:`~flatnn.Network` call them. Each checks its arguments once
(:mod:`flatnn.core.inputs`), splits the rows into blocks over the CPU threads
(:mod:`flatnn.threads`; one block for device data), runs the batch kernel
(:mod:`flatnn.core.kernel`) on each block, adds the blocks in a fixed order and
finishes with the objective's formula.

**The objective's formula has its one home here.** For ``m`` samples with
weights ``w_i`` (``w = 1`` when none are given, ``W = Σ_i w_i``, ``m`` then)::

    J(params) = (1/W) Σ_i w_i loss(x_i, y_i) + lam / (2W) · Σ_l ‖theta_l[:, 1:]‖²
    ∇J        = (1/W) Σ_i w_i ∇loss_i        + (lam/W) · theta_l[:, 1:]

(bias columns are not penalised; the curvature products add ``(lam/W) · v[:, 1:]``).
:func:`finish_cost` and :func:`add_l2` write the two L2 terms; :func:`batch_lam`
gives a mini-batch its share, ``lam · W_b / W`` (``lam · b / m`` unweighted), so
that the batch objectives, weighted by ``W_b / W``, add up to ``J``. The SGD
batch step, the dropout objective and :class:`flatnn.distributed.DaskObjective`
all end with these functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flatnn.base import checks, namespace, threads
from flatnn.core import activations, inputs, kernel, losses

__all__ = [
    "l2_norms",
    "finish_cost",
    "add_l2",
    "batch_lam",
    "hidden_fns",
    "output_loss",
    "cost",
    "cost_grad",
    "curvature",
    "outputs",
    "predict",
    "accuracy",
    "run_blocks",
    "row_block",
    "all_finite",
]


# ------------------------------------------------------------ the formula
def l2_norms(thetas: Sequence[Any]) -> Any:
    """``Σ_l ‖theta_l[:, 1:]‖²``: a float for NumPy, a float64 device scalar elsewhere.

    On a device the layers are summed there, so that a batch costs no
    synchronisation per layer; the values are those of the host's floats.
    """
    xp = namespace.namespace_of(thetas[0])
    if xp is np:  # the whole layer (contiguous: no copy) less its bias column
        return sum(_squares(t.reshape(-1)) - float(np.dot(t[:, 0], t[:, 0])) for t in thetas)
    return sum(xp.vdot(t[:, 1:], t[:, 1:]).astype(np.float64) for t in thetas)


HELD_DOT_SIZE = 2**19
"""Layers of at least this many weights are summed with BLAS held to one thread."""


def _squares(flat: np.ndarray) -> float:
    """``Σ flat²`` with BLAS's dot; on one BLAS thread from :data:`HELD_DOT_SIZE` entries.

    OpenBLAS runs a long dot on all its threads, which then spin on after it
    and slow what runs next on the cores they share: an SGD step's elementwise
    update, or SciPy's L-BFGS-B update (on SciPy's own OpenBLAS). With two
    threads on a 2-core machine that made a sparse ``adam`` fit over 1M weights
    in float64 up to 1.2x slower. Holding BLAS costs about 9 µs, a tenth of the
    1M-entry dot; smaller layers (an MNIST network's) are summed as they are.
    """
    if flat.size < HELD_DOT_SIZE:
        return float(np.dot(flat, flat))
    with threads.one_blas_thread():
        return float(np.dot(flat, flat))


def finish_cost(
    value: Any, thetas: Sequence[Any], total: float, lam: float, norms: Any = None
) -> float:
    """``J = value / W + lam / (2W) · Σ‖theta[:, 1:]‖²`` from the summed loss ``value``.

    ``total`` is ``W``: the number of samples ``m``, or the sum of their weights.
    ``norms`` is ``Σ‖theta[:, 1:]‖²`` when the caller has it (:func:`l2_norms`).
    """
    cost = value / total
    if lam:
        cost += lam / (2 * total) * (l2_norms(thetas) if norms is None else norms)
    return float(cost)


def _norms_in_block(thetas: Sequence[Any], lam: float, norms: list[Any], i: int) -> None:
    """Block 0 appends :func:`l2_norms` to ``norms`` (``lam`` non-zero).

    In a threaded evaluation block 0 runs while BLAS is held to one thread. Its
    dot products over every weight then leave no OpenBLAS threads spinning
    after the evaluation: a 1M-entry dot with two BLAS threads made SciPy's
    L-BFGS-B update, which runs next on SciPy's own OpenBLAS, 40 % slower on a
    2-core machine (4.1 s instead of 2.9 s a fit).
    """
    if i == 0 and lam:
        norms.append(l2_norms(thetas))


def add_l2(
    outs: Sequence[Any],
    directions: Sequence[Any],
    total: float,
    lam: float,
    scratch: Sequence[Any] | None = None,
    xp: Any = None,
) -> None:
    """``out_l[:, 1:] += (lam / W) · direction_l[:, 1:]`` per layer, in place.

    ``direction`` is ``params`` for the gradient, ``v`` for a curvature product.
    ``scratch`` (views shaped like ``outs``, free to overwrite) spares the
    temporary arrays; ``xp`` is their namespace, when the caller knows it.
    """
    if not lam:
        return
    if scratch is None:
        for o, d in zip(outs, directions):
            o[:, 1:] += (lam / total) * d[:, 1:]
        return
    if xp is None:
        xp = namespace.namespace_of(outs[0])
    for o, d, s in zip(outs, directions, scratch):
        if not _whole_layer(o, d, s, lam / total):
            o[:, 1:] += xp.multiply(d[:, 1:], lam / total, out=s[:, 1:])


def _whole_layer(out: Any, direction: Any, scratch: Any, scale: float) -> bool:
    """``out[:, 1:] += scale · direction[:, 1:]`` over the whole contiguous layer.

    The same two operations per entry as the strided form (so the same bits),
    run over contiguous memory, and the bias column put back: 3-4x faster (784-256-10,
    one SGD batch's L2 term: 78 µs against 247 µs in float32). SciPy's BLAS ``axpy``
    would be faster still, but SciPy's OpenBLAS threads then fight NumPy's: a 5x
    slower epoch. False, with nothing done, when the arrays do not allow it.
    """
    arrays = (out, direction, scratch)
    if not all(type(a) is np.ndarray and a.flags.c_contiguous for a in arrays):
        return False
    bias = out[:, 0].copy()
    flat = out.reshape(-1)
    flat += np.multiply(direction.reshape(-1), scale, out=scratch.reshape(-1))
    out[:, 0] = bias
    return True


def batch_lam(lam: float, share: float, total: float) -> float:
    """The L2 strength of a mini-batch: ``lam · W_b / W`` (``lam · b / m`` unweighted)."""
    return lam * share / total


# ------------------------------------------------------------ helpers
def hidden_fns(net: Any) -> tuple[Any, ...]:
    """The :class:`~flatnn.core.activations.Activation` of each hidden layer."""
    return tuple(activations.get(n) for n in net.hidden_activations)


def output_loss(net: Any) -> losses.OutputLoss:
    """The fused output activation and loss of ``net``."""
    return losses.get(net.output, net.loss)


def run_blocks(block: Callable[[int, int, int], Any], X: Any) -> list[Any]:
    """``block(start, stop, i)`` over the rows of ``X``: :func:`flatnn.threads.run_blocks`
    for NumPy data and CSR matrices, one block of every row for any other
    namespace (a GPU runs its own threads; the CPU pool would only add copies
    and contention) and for CSC matrices (whose row slices cost a pass over ``X``).
    """
    if type(X) is np.ndarray or (kernel.is_sparse(X) and X.format == "csr"):
        return threads.run_blocks(block, X.shape[0])
    return [block(0, X.shape[0], 0)]


def row_block(X: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of ``X``: a view of an array or of a CSR matrix's entries.

    ``X`` itself for all its rows. scipy's own row slice copies the block's
    entries, and so does its constructor given views of ``data`` and
    ``indices`` (it prunes arrays that are views of larger ones): the block is
    an empty matrix of ``X``'s type given those views (and its own ``indptr``,
    shifted) as attributes, its format flags those of ``X``. That spares two
    threads a copy of ``X``'s non-zeros per evaluation (3 ms of 20 for
    16000 x 20000 at 20 entries a row). Other sparse formats are sliced by scipy.
    """
    if start == 0 and stop == X.shape[0]:
        return X
    if type(X) is np.ndarray or X.format != "csr":
        return X[start:stop]
    lo, hi = int(X.indptr[start]), int(X.indptr[stop])
    block = type(X)((stop - start, X.shape[1]), dtype=X.dtype)
    block.indptr = X.indptr[start : stop + 1] - X.indptr.dtype.type(lo)
    block.indices, block.data = X.indices[lo:hi], X.data[lo:hi]
    block.has_sorted_indices = X.has_sorted_indices
    block.has_canonical_format = X.has_canonical_format
    return block


def _add_blocks(parts, total):
    """Add per-block ``(value, array)`` pairs in block order into ``total``; return the value.

    ``total`` is the first block's array; the order is fixed so that a result
    does not depend on which thread finished first.
    """
    value = 0.0
    for v, a in parts:
        value += v
        if a is not total:
            total += a
    return value


def all_finite(a: Any) -> bool:
    """True when every entry of ``a`` is finite.

    ``isfinite(a).all()`` takes 3 µs for 24000 float32 entries here, half the
    time of ``a.sum()`` (NumPy's pairwise sum is not vectorised that well) and
    without its false alarms; a dot product would wake BLAS's threads.
    """
    return bool(namespace.namespace_of(a).isfinite(a).all())


def _input_check(X):
    # A NaN or inf in X always reaches the first layer's pre-activations
    # (0·inf is NaN), so summing that (m, n_1) array spares a full pass over
    # X on every call; only a non-finite sum pays for the exact check.
    def check(z1):
        with np.errstate(all="ignore"):
            total = float(z1.sum())
        if not math.isfinite(total):
            inputs.finite_rows(X)

    return check


def _overflow_error(what, thetas, X, lam=0.0):
    with np.errstate(all="ignore"):
        p = max(max(float(t.max()), -float(t.min())) for t in thetas)
        x = max(float(X.max()), -float(X.min()))
    return checks.NotFiniteError(
        f"{what} overflows {X.dtype}: params and X are finite, but values computed from "
        f"them are not (largest |params| {p:.3g}, largest |X| {x:.3g}"
        + (
            f", lam {lam:.3g}); scale X or params down, or lower lam"
            if lam
            else "); scale X or params down"
        )
    )


def _prepare(net, params, X, y, lam, sample_weight):
    thetas, X = inputs.prepare_X(net, params, X)
    lam = checks.lam(lam)
    xp = namespace.namespace_of(thetas[0])
    target = inputs.check_y(net, y, X.shape[0], X.dtype, xp)
    weights, total = inputs.check_weights(sample_weight, X.shape[0], X.dtype, xp)
    return thetas, X, target, lam, weights, total


def _rows(weights, start, stop):
    return None if weights is None else weights[start:stop]


# ------------------------------------------------------------ evaluations
def cost(
    net: Any, params: Any, X: Any, y: Any, lam: float = 0.0, sample_weight: Any = None
) -> float:
    """``J(params)``; see :meth:`flatnn.Network.cost`."""
    thetas, X, target, lam, weights, total = _prepare(net, params, X, y, lam, sample_weight)
    hidden, outloss, check = hidden_fns(net), output_loss(net), _input_check(X)

    norms: list[Any] = []

    def block(start, stop, i):
        _, z = kernel.forward(thetas, hidden, row_block(X, start, stop), check)
        _norms_in_block(thetas, lam, norms, i)
        return outloss.value(z, target[start:stop], weights=_rows(weights, start, stop))

    with np.errstate(all="ignore"):  # an overflow is reported below, once
        value = sum(run_blocks(block, X))  # in block order
        result = finish_cost(value, thetas, total, lam, *norms)
    if not math.isfinite(result):
        raise _overflow_error("cost", thetas, X, lam)
    return result


def cost_grad(
    net: Any, params: Any, X: Any, y: Any, lam: float = 0.0, sample_weight: Any = None
) -> tuple[float, Any]:
    """``(J, ∇J)``; see :meth:`flatnn.Network.cost_grad`."""
    thetas, X, target, lam, weights, total = _prepare(net, params, X, y, lam, sample_weight)
    xp = namespace.namespace_of(thetas[0])
    hidden, outloss, check = hidden_fns(net), output_loss(net), _input_check(X)
    grad = xp.empty(net.n_params, dtype=X.dtype)
    norms: list[Any] = []

    def block(start, stop, i):
        g = grad if i == 0 else xp.empty_like(grad)
        _norms_in_block(thetas, lam, norms, i)
        value = kernel.loss_grad(
            thetas,
            hidden,
            outloss,
            row_block(X, start, stop),
            target[start:stop],
            inputs.views(net, g),
            1.0 / total,
            weights=_rows(weights, start, stop),
            inspect_first=check,
        )
        return value, g

    with np.errstate(all="ignore"):  # an overflow is reported below, once
        value = _add_blocks(run_blocks(block, X), grad)
        result = finish_cost(value, thetas, total, lam, *norms)
        add_l2(inputs.views(net, grad), thetas, total, lam)
    if not (math.isfinite(result) and all_finite(grad)):
        raise _overflow_error("cost_grad", thetas, X, lam)
    return result, grad


def curvature(
    net: Any, params: Any, v: Any, X: Any, y: Any, lam: float, weights: Any, gauss_newton: bool
) -> Any:
    """``H v`` (or ``G v``); see :meth:`flatnn.Network.hessp` and ``gnvp``."""
    thetas, X, target, lam, weights, total = _prepare(net, params, X, y, lam, weights)
    xp = namespace.namespace_of(thetas[0])
    v = namespace.asarray(v, xp, "v")
    if v.dtype.kind in "iu":  # scipy's trust-constr probes hessp with an int8 zero vector
        v = v.astype(X.dtype)
    v = inputs.check_params(net, v, name="v", xp=xp)
    with np.errstate(over="ignore"):  # a float64 v beyond float32's range: caught below
        v = v.astype(X.dtype, copy=False)
    vs = inputs.views(net, v)
    hidden, outloss, check = hidden_fns(net), output_loss(net), _input_check(X)
    out = xp.empty(net.n_params, dtype=X.dtype)

    def block(start, stop, i):
        o = out if i == 0 else xp.empty_like(out)
        kernel.curvature_product(
            thetas,
            vs,
            hidden,
            outloss,
            row_block(X, start, stop),
            target[start:stop],
            1.0 / total,
            inputs.views(net, o),
            gauss_newton,
            check,
            weights=_rows(weights, start, stop),
        )
        return 0.0, o

    with np.errstate(all="ignore"):  # an overflow is reported below, once
        _add_blocks(run_blocks(block, X), out)
        add_l2(inputs.views(net, out), vs, total, lam)
    if not all_finite(out):
        raise _overflow_error("gnvp" if gauss_newton else "hessp", thetas, X, lam)
    return out


def _namespace_of_rows(X):
    return np if kernel.is_sparse(X) else namespace.namespace_of(X)


def _per_row(net, params, X, what, result, write):
    """Fill ``result`` (m, ...) block by block from the logits; NotFiniteError on overflow.

    ``write(outloss, z, rows)`` stores what the logits ``z`` of the rows
    ``rows`` give; ``result`` is ``(X, xp) -> array``. For ``forward`` the
    logits are written straight into the result (``into_result``).
    """
    thetas, X = inputs.prepare_X(net, params, X)
    inputs.finite_rows(X)
    hidden, outloss = hidden_fns(net), output_loss(net)
    out = result(X, _namespace_of_rows(X))
    into_result = what == "forward"

    def block(start, stop, i):
        rows = slice(start, stop)
        z_out = out[rows] if into_result else None
        _, z = kernel.forward(thetas, hidden, row_block(X, start, stop), out=z_out)
        if not all_finite(z):
            return False
        write(outloss, z, out[rows])
        return True

    with np.errstate(all="ignore"):  # an overflow is reported below, once
        finite = all(run_blocks(block, X))
    if not finite:
        raise _overflow_error(what, thetas, X)
    return out


def outputs(net: Any, params: Any, X: Any) -> Any:
    """Output activations ``(m, sizes[-1])``; see :meth:`flatnn.Network.forward`."""

    def write(outloss, z, out):  # z is out: activated in place
        a = outloss.activate(z)
        if a is not z:
            z[...] = a

    def result(X, xp):
        return xp.empty((X.shape[0], net.sizes[-1]), dtype=X.dtype)

    return _per_row(net, params, X, "forward", result, write)


def predict(net: Any, params: Any, X: Any) -> Any:
    """Predicted labels ``(m,)``; see :meth:`flatnn.Network.predict`."""

    def write(outloss, z, out):
        outloss.predict(z, out=out, overwrite=True)

    def result(X, xp):
        return xp.empty(X.shape[0], dtype=np.int64 if net.sizes[-1] == 1 else np.intp)

    return _per_row(net, params, X, "predict", result, write)


def accuracy(net: Any, params: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
    """Fraction of samples predicted right (weighted by ``sample_weight`` when given)."""
    pred = predict(net, params, X)
    xp = namespace.namespace_of(pred)
    target = inputs.check_y(net, y, pred.shape[0], np.float64, xp)
    right = pred == losses.true_labels(target, net.sizes[-1])
    if sample_weight is None:
        return float(right.mean())
    weights, total = inputs.check_weights(sample_weight, pred.shape[0], np.float64, xp)
    return float(xp.vdot(weights, right.astype(np.float64))) / total
