"""A network bound to its data: the objective as a function of ``params`` alone."""

from __future__ import annotations

import attrs
import numpy as np

from flatnn.base import checks, namespace
from flatnn.core.network import Network, Targets


def _as_array(a):
    """``a`` as an array: NumPy's for host data, kept as it is on a device."""
    return np.asarray(a) if namespace.namespace_of(a) is np else a


@attrs.frozen(eq=False, repr=False)
class Objective:
    """``J(params)`` for one network, one data set and one ``lam``.

    Every optimizer in flatnn (and :func:`scipy.optimize.minimize`) works on an
    object with this interface; :class:`flatnn.distributed.DaskObjective`
    provides the same methods over data spread across a cluster.

    Parameters
    ----------
    net : Network
    X : ndarray, shape (m, net.sizes[0])
        A NumPy array, or a device array (CuPy): then every evaluation runs
        there and returns device arrays, and ``y`` is moved there once.
    y : ndarray
        Labels ``(m,)`` or targets ``(m, k)``, as in :meth:`Network.cost`.
    lam : float, default 0
        L2 strength of the whole-data objective.

    Notes
    -----
    The data is validated once, here; the arrays are kept by reference, never
    copied or modified. Every evaluation splits the rows over the threads that
    :func:`flatnn.get_num_threads` gives at the time of the call (see
    :mod:`flatnn.threads`), so ``flatnn.set_num_threads`` and
    ``flatnn.threads.using`` apply to objectives and to every training path
    built on them.
    """

    net: Network = attrs.field(validator=attrs.validators.instance_of(Network))
    X: np.ndarray = attrs.field(converter=_as_array)
    y: np.ndarray = attrs.field(converter=_as_array)
    lam: float = attrs.field(default=0.0, converter=checks.lam)
    targets: Targets = attrs.field(init=False)
    """``y`` as :meth:`Network.check_data` returned it; what the evaluations pass on."""

    def __attrs_post_init__(self):
        # Shapes, labels and lam are checked once, here; the evaluations pass the
        # checked Targets on, so y is not scanned again (NaN/inf in X is caught
        # cheaply at each evaluation, see Network.cost).
        object.__setattr__(self, "targets", self.net.check_data(self.X, self.y))

    def __repr__(self):
        return f"Objective({self.net!r}, m={self.m}, lam={self.lam!r})"

    @property
    def m(self):
        """int: number of samples."""
        return self.X.shape[0]

    @property
    def n_params(self):
        """int: length of the parameter vector."""
        return self.net.n_params

    def cost(self, params):
        """``J(params)``, a float."""
        return self.net.cost(params, self.X, self.targets, self.lam)

    def grad(self, params):
        """``∇J(params)``, shape (n_params,)."""
        return self.net.grad(params, self.X, self.targets, self.lam)

    def cost_grad(self, params):
        """``(J, ∇J)`` from one forward and one backward pass."""
        return self.net.cost_grad(params, self.X, self.targets, self.lam)

    def hessp(self, params, v):
        """Exact Hessian-vector product ``H v``, shape (n_params,)."""
        return self.net.hessp(params, v, self.X, self.targets, self.lam)

    def gnvp(self, params, v):
        """Gauss-Newton product ``G v``, shape (n_params,)."""
        return self.net.gnvp(params, v, self.X, self.targets, self.lam)

    def predict(self, params):
        """Predicted labels of the objective's own samples, shape (m,)."""
        return self.net.predict(params, self.X)

    def accuracy(self, params):
        """Accuracy on the objective's own samples."""
        return self.net.accuracy(params, self.X, self.targets)
