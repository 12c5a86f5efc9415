"""A network bound to its data: the objective as a function of ``params`` alone."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from flatnn.base import checks, namespace
from flatnn.core import inputs
from flatnn.core.network import Network, Targets

__all__ = ["Objective"]


def _as_array(a):
    """``a`` as an array: NumPy's for host data, kept as it is on a device or sparse."""
    if inputs.is_sparse(a):
        return a
    return np.asarray(a) if namespace.namespace_of(a) is np else a


def _as_weights(w):
    return None if w is None else _as_array(w)


@attrs.frozen(eq=False, repr=False)
class Objective:
    """``J(params)`` for one network, one data set and one ``lam``.

    Every optimizer in flatnn (and :func:`scipy.optimize.minimize`) works on an
    object with this interface; :class:`flatnn.distributed.DaskObjective`
    provides the same methods over data spread across a cluster.

    Parameters
    ----------
    net : Network
    X : ndarray or scipy.sparse matrix, shape (m, net.sizes[0])
        A NumPy array, a ``scipy.sparse`` matrix or array (CSR or CSC, never made
        dense), or a device array (CuPy): then every evaluation runs there and
        returns device arrays, and ``y`` is moved there once.
    y : ndarray
        Labels ``(m,)`` or targets ``(m, k)``, as in :meth:`Network.cost`.
    lam : float, default 0
        L2 strength of the whole-data objective.
    sample_weight : ndarray, shape (m,), optional
        Per-sample weights, as in :meth:`Network.cost`; None for ``w = 1``.

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
    sample_weight: Any = attrs.field(default=None, converter=_as_weights)
    targets: Targets = attrs.field(init=False)
    """``y`` as :meth:`Network.check_data` returned it; what the evaluations pass on."""

    def __attrs_post_init__(self):
        # Shapes, labels and lam are checked once, here; the evaluations pass the
        # checked Targets on, so y is not scanned again (NaN/inf in X is caught
        # cheaply at each evaluation, see Network.cost).
        object.__setattr__(self, "targets", self.net.check_data(self.X, self.y))
        if self.sample_weight is not None:
            xp = np if inputs.is_sparse(self.X) else namespace.namespace_of(self.X)
            inputs.check_weights(self.sample_weight, self.m, np.float64, xp)

    def __repr__(self):
        weighted = "" if self.sample_weight is None else ", sample_weight=..."
        return f"Objective({self.net!r}, m={self.m}, lam={self.lam!r}{weighted})"

    @property
    def m(self) -> int:
        """int: number of samples."""
        return self.X.shape[0]

    @property
    def n_params(self) -> int:
        """int: length of the parameter vector."""
        return self.net.n_params

    def cost(self, params: Any) -> float:
        """``J(params)``, a float."""
        return self.net.cost(
            params, self.X, self.targets, self.lam, sample_weight=self.sample_weight
        )

    def grad(self, params: Any) -> Any:
        """``∇J(params)``, shape (n_params,)."""
        return self.net.grad(
            params, self.X, self.targets, self.lam, sample_weight=self.sample_weight
        )

    def cost_grad(self, params: Any) -> tuple[float, Any]:
        """``(J, ∇J)`` from one forward and one backward pass."""
        return self.net.cost_grad(
            params, self.X, self.targets, self.lam, sample_weight=self.sample_weight
        )

    def hessp(self, params: Any, v: Any) -> Any:
        """Exact Hessian-vector product ``H v``, shape (n_params,)."""
        return self.net.hessp(
            params, v, self.X, self.targets, self.lam, sample_weight=self.sample_weight
        )

    def gnvp(self, params: Any, v: Any) -> Any:
        """Gauss-Newton product ``G v``, shape (n_params,)."""
        return self.net.gnvp(
            params, v, self.X, self.targets, self.lam, sample_weight=self.sample_weight
        )

    def predict(self, params: Any) -> Any:
        """Predicted labels of the objective's own samples, shape (m,)."""
        return self.net.predict(params, self.X)

    def accuracy(self, params: Any) -> float:
        """Accuracy on the objective's own samples (weighted with ``sample_weight``)."""
        return self.net.accuracy(params, self.X, self.targets, sample_weight=self.sample_weight)
