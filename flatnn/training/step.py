"""The SGD batch step: cost and gradient of one mini-batch into the loop's buffers."""

from __future__ import annotations

import numpy as np

from flatnn.base import threads
from flatnn.core import activations, kernel, losses
from flatnn.training import regularizers as _dropout

__all__ = ["BatchStep"]


class BatchStep:
    """Cost and gradient of one batch, written into buffers the loop owns.

    ``sgd`` validates its data once; nothing here checks it again. The result is
    what ``Network.cost_grad(params, X_b, y_b, lam * b / m)`` returns, computed
    with the same operations in the same order (the tests compare the two bit
    for bit), without its input checks and allocations of the flat vectors.
    """

    def __init__(self, net, lam, m, xp=np):
        self.net = net
        self.hidden = tuple(activations.get(n) for n in net.hidden_activations)
        self.outloss = losses.get(net.output, net.loss)
        self.lam = lam
        self.m = m
        self.xp = xp

    def __call__(self, thetas, X, target, grads, scratch, masks=None):
        """Return the batch cost; write its gradient into the views ``grads``.

        ``scratch``: views shaped like ``thetas`` that may be overwritten. A
        batch large enough for several threads (see :mod:`flatnn.threads`) is
        split into row blocks whose partial gradients are added in block order,
        as ``Network.cost_grad`` does. ``masks``: dropout masks, one per layer
        input (see :func:`flatnn.dropout.cost_grad`); such a batch runs on one
        thread.
        """
        b = X.shape[0]
        xp = self.xp
        if masks is not None:
            value = _dropout.masked_cost_grad(
                thetas, self.hidden, self.outloss, X, target, masks, grads
            )
        elif xp is np and threads.threads_for(b) > 1:
            value = self._blocked(thetas, X, target, grads)
        else:
            acts, z = kernel.forward(thetas, self.hidden, X)
            value, delta = self.outloss.value_and_delta(z, target)
            delta *= 1.0 / b
            kernel.backward(thetas, self.hidden, acts, delta, grads)
        cost = value / b
        lam = self.lam * b / self.m
        if lam:
            if xp is np:
                norms = sum(float(np.vdot(t[:, 1:], t[:, 1:])) for t in thetas)
            else:  # summed on the device in float64, as the floats above: no sync per layer
                norms = sum(xp.vdot(t[:, 1:], t[:, 1:]).astype(np.float64) for t in thetas)
            cost += lam / (2 * b) * norms
            for g, t, s in zip(grads, thetas, scratch):
                g[:, 1:] += xp.multiply(t[:, 1:], lam / b, out=s[:, 1:])
        return float(cost)  # the one value a batch brings to the host

    def _blocked(self, thetas, X, target, grads):
        b = X.shape[0]

        def block(start, stop, i):
            acts, z = kernel.forward(thetas, self.hidden, X[start:stop])
            value, delta = self.outloss.value_and_delta(z, target[start:stop])
            delta *= 1.0 / b
            part = np.empty(self.net.n_params, dtype=z.dtype)
            kernel.backward(thetas, self.hidden, acts, delta, self.net.unpack(part))
            return value, part

        results = threads.run_blocks(block, b)
        flat = results[0][1]
        for _, part in results[1:]:  # in block order: the same sum at every run
            flat += part
        for g, p in zip(grads, self.net.unpack(flat)):
            g[...] = p
        return sum(value for value, _ in results)
