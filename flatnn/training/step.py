"""The SGD batch step: cost and gradient of one mini-batch into the loop's buffers.

The batch's cost is the objective's formula with the batch's share of the L2
strength, ``lam · W_b / W`` (``lam · b / m`` unweighted): both come from
:mod:`flatnn.core.evaluation`, the formula's one home; the forward and backward
passes are :func:`flatnn.core.kernel.loss_grad`, the one batch kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flatnn.base import threads
from flatnn.core import evaluation, kernel

__all__ = ["BatchStep"]


class BatchStep:
    """Cost and gradient of one batch, written into buffers the loop owns.

    ``sgd`` validates its data once; nothing here checks it again. The result is
    what ``Network.cost_grad(params, X_b, y_b, lam * b / m)`` returns (with
    weights, ``Network.cost_grad(params, X_b, y_b, lam * W_b / W,
    sample_weight=w_b)``), computed with the same operations in the same order
    (the tests compare the two bit for bit), without its input checks and
    allocations of the flat vectors.

    Parameters
    ----------
    net : Network
    lam : float
        L2 strength of the whole-data objective.
    m : int
        Number of samples of the whole data.
    xp : module, default numpy
        The array namespace of the data.
    total_weight : float, optional
        ``W = Σ w_i`` over the whole data, when batches come with sample
        weights; ``m`` by default.
    """

    def __init__(
        self, net: Any, lam: float, m: int, xp: Any = np, total_weight: float | None = None
    ) -> None:
        self.net = net
        self.hidden = evaluation.hidden_fns(net)
        self.outloss = evaluation.output_loss(net)
        self.lam = lam
        self.m = m
        self.xp = xp
        self.total_weight = m if total_weight is None else float(total_weight)

    def __call__(
        self,
        thetas: Any,
        X: Any,
        target: Any,
        grads: Any,
        scratch: Any,
        masks: Any = None,
        weights: Any = None,
    ) -> float:
        """Return the batch cost; write its gradient into the views ``grads``.

        ``scratch``: views shaped like ``thetas`` that may be overwritten. A
        batch large enough for several threads (see :mod:`flatnn.threads`) is
        split into row blocks whose partial gradients are added in block order,
        as ``Network.cost_grad`` does. ``masks``: dropout masks, one per layer
        input (see :func:`flatnn.dropout.cost_grad`); such a batch runs on one
        thread. ``weights``: the batch's sample weights ``(b,)`` in the work
        dtype, or None.
        """
        b = X.shape[0]
        if weights is None:
            share, lam = b, evaluation.batch_lam(self.lam, b, self.m)
        else:
            share = float(weights.sum(dtype=np.float64))
            lam = evaluation.batch_lam(self.lam, share, self.total_weight)
        if masks is None and self.xp is np and threads.threads_for(b) > 1:
            value = self._blocked(thetas, X, target, grads, 1.0 / share, weights)
        else:
            value = kernel.loss_grad(
                thetas,
                self.hidden,
                self.outloss,
                X,
                target,
                grads,
                1.0 / share,
                masks=masks,
                weights=weights,
            )
        evaluation.add_l2(grads, thetas, share, lam, scratch, self.xp)
        return evaluation.finish_cost(value, thetas, share, lam)  # the one value to the host

    def _blocked(self, thetas, X, target, grads, scale, weights):
        b = X.shape[0]

        def block(start, stop, i):
            part = np.empty(self.net.n_params, dtype=np.result_type(X.dtype, thetas[0].dtype))
            value = kernel.loss_grad(
                thetas,
                self.hidden,
                self.outloss,
                X[start:stop],
                target[start:stop],
                self.net.unpack(part),
                scale,
                weights=None if weights is None else weights[start:stop],
            )
            return value, part

        results = threads.run_blocks(block, b)
        flat = results[0][1]
        for _, part in results[1:]:  # in block order: the same sum at every run
            flat += part
        for g, p in zip(grads, self.net.unpack(flat)):
            g[...] = p
        return sum(value for value, _ in results)
