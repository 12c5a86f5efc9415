"""The objective on a GPU: data kept in device memory, scipy spoken to in NumPy.

:class:`flatnn.Network`'s functions already compute on the GPU when given
CuPy arrays (see :mod:`flatnn.namespace`). :class:`GPUObjective` binds a network
to data moved to the device once, and speaks NumPy to its caller: each call
copies the flat vector (and ``v``) to the device and the gradient (or product)
back, and nothing else crosses, so scipy's optimizers and :func:`flatnn.minimize`
work on it unchanged::

    obj = flatnn.gpu.GPUObjective(net, X, y, lam)
    scipy.optimize.minimize(obj.cost_grad, p0, jac=True, hessp=obj.hessp,
                            method="Newton-CG")
    flatnn.minimize(obj, p0, method="L-BFGS-B")

CuPy is an optional dependency (``pip install 'flatnn[gpu]'``, CUDA 12); it is
imported only here, when an objective is built or :func:`require_cuda` is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flatnn.base import checks, namespace
from flatnn.core import inputs
from flatnn.core.network import Network

__all__ = ["GPUObjective", "GPUUnavailable", "require_cuda"]


class GPUUnavailable(RuntimeError):
    """CuPy is not installed, or it finds no usable CUDA device."""


def require_cuda() -> Any:
    """Import CuPy and check that it sees a GPU; return the ``cupy`` module.

    Raises
    ------
    GPUUnavailable
        With a one-line message saying what is missing.
    """
    try:
        import cupy
    except ImportError as exc:
        raise GPUUnavailable(
            f"CuPy is not installed ({exc}); install flatnn[gpu] "
            f"(cupy-cuda12x) on a machine with an NVIDIA GPU"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError, or a driver that fails to load
        raise GPUUnavailable(
            f"CuPy found no usable GPU: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if count < 1:
        raise GPUUnavailable("CuPy found no GPU (cupy.cuda.runtime.getDeviceCount() is 0)")
    return cupy


class GPUObjective:
    """``J(params)`` for one network, one data set on the device and one ``lam``.

    The interface of :class:`flatnn.Objective` (``cost``, ``grad``,
    ``cost_grad``, ``hessp``, ``gnvp``, ``predict``, ``accuracy``, ``n_params``,
    ``m``, ``net``, ``lam``), taking and returning NumPy arrays.

    Parameters
    ----------
    net : Network
    X : array, shape (m, net.sizes[0])
        NumPy (copied to the device once) or already a device array (kept by
        reference). Integer data (pixels) becomes float32 on the device.
    y : array
        Labels ``(m,)`` or targets ``(m, k)``, as in :meth:`Network.cost`.
    lam : float, default 0
        L2 strength of the whole-data objective.
    sample_weight : array, shape (m,), optional
        Per-sample weights, as in :meth:`Network.cost` (moved to the device
        once); None for ``w = 1``.
    xp : module, optional
        The device's array namespace; CuPy by default (:class:`GPUUnavailable`
        when it or a GPU is missing). Any NumPy-compatible namespace registered
        with :func:`flatnn.namespace.register` works, which is how the tests run
        this class without a GPU.

    Notes
    -----
    The work dtype is that of ``X`` on the device: float32 data computes in
    float32, float64 in float64, whatever the dtype of ``params`` (a float64
    vector from scipy is cast once per call; the data never is). Results come
    back in that dtype: ``(float, ndarray)`` from :meth:`cost_grad`.

    Attributes
    ----------
    X_device, y_device : arrays of ``xp``
        The data in device memory.
    w_device : array of ``xp`` or None
        The sample weights in device memory.
    dtype : numpy.dtype
        The work dtype.
    """

    def __init__(
        self,
        net: Network,
        X: Any,
        y: Any,
        lam: float = 0.0,
        *,
        xp: Any = None,
        sample_weight: Any = None,
    ) -> None:
        if not isinstance(net, Network):
            raise TypeError(f"net must be a flatnn.Network, got {type(net).__name__}")
        if xp is None:
            xp = require_cuda()
        self.net = net
        self.lam = checks.lam(lam)
        self.xp = xp
        if inputs.is_sparse(X):
            raise TypeError(
                "GPUObjective takes a dense X (NumPy or a device array), got a scipy.sparse "
                "matrix; use flatnn.Objective for sparse data"
            )
        if namespace.namespace_of(X) is not xp:
            X = np.asarray(X)
            if X.dtype.kind in "iub":
                X = X.astype(np.float32)
            X = xp.asarray(X)
        self.X_device = X
        self.y_device = y if namespace.namespace_of(y) is xp else xp.asarray(np.asarray(y))
        if X.dtype not in (np.float32, np.float64):
            raise ValueError(f"X must hold float32 or float64 values (or integers), got {X.dtype}")
        self.dtype = np.dtype(X.dtype)
        self.w_device = None
        if sample_weight is not None:
            w = sample_weight
            if namespace.namespace_of(w) is not xp:
                w = xp.asarray(np.asarray(w))
            self.w_device = w
        # One evaluation checks shapes, labels, weights and lam now, on the device.
        net.cost(
            xp.zeros(net.n_params, dtype=self.dtype),
            self.X_device,
            self.y_device,
            self.lam,
            sample_weight=self.w_device,
        )

    def __repr__(self):
        return f"GPUObjective({self.net!r}, m={self.m}, lam={self.lam!r}, dtype={self.dtype.name})"

    @property
    def m(self) -> int:
        """int: number of samples."""
        return self.X_device.shape[0]

    @property
    def n_params(self) -> int:
        """int: length of the parameter vector."""
        return self.net.n_params

    def _to_device(self, a, name):
        if namespace.namespace_of(a) is not np:
            raise TypeError(
                f"{name} must be a NumPy array (GPUObjective speaks NumPy), got "
                f"{type(a).__module__}.{type(a).__name__}; call the network's "
                f"own methods with device arrays"
            )
        a = np.asarray(a)
        if a.shape != (self.n_params,):
            raise ValueError(
                f"{name} must be a flat vector of {self.n_params} entries for "
                f"{self.net!r}, got shape {a.shape}"
            )
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{name} must have a float dtype, got {a.dtype}")
        return self.xp.asarray(a.astype(self.dtype, copy=False))

    def cost(self, params: Any) -> float:
        """``J(params)``, a float."""
        return self.net.cost(
            self._to_device(params, "params"),
            self.X_device,
            self.y_device,
            self.lam,
            sample_weight=self.w_device,
        )

    def grad(self, params: Any) -> np.ndarray:
        """``∇J(params)``, a NumPy array of shape (n_params,)."""
        return self.cost_grad(params)[1]

    def cost_grad(self, params: Any) -> tuple[float, np.ndarray]:
        """``(J, ∇J)`` from one forward and one backward pass on the device.

        Parameters
        ----------
        params : ndarray, shape (n_params,)

        Returns
        -------
        cost : float
        grad : ndarray, shape (n_params,), the work dtype
        """
        f, g = self.net.cost_grad(
            self._to_device(params, "params"),
            self.X_device,
            self.y_device,
            self.lam,
            sample_weight=self.w_device,
        )
        return f, self.xp.asnumpy(g)

    def _curvature(self, product, params, v):
        out = product(
            self._to_device(params, "params"),
            self._to_device(v, "v"),
            self.X_device,
            self.y_device,
            self.lam,
            sample_weight=self.w_device,
        )
        return self.xp.asnumpy(out)

    def hessp(self, params: Any, v: Any) -> np.ndarray:
        """Exact Hessian-vector product ``H v``, a NumPy array of shape (n_params,)."""
        return self._curvature(self.net.hessp, params, v)

    def gnvp(self, params: Any, v: Any) -> np.ndarray:
        """Gauss-Newton product ``G v``, a NumPy array of shape (n_params,)."""
        return self._curvature(self.net.gnvp, params, v)

    def predict(self, params: Any) -> np.ndarray:
        """Predicted labels of the objective's own samples, a NumPy array of shape (m,)."""
        return self.xp.asnumpy(self.net.predict(self._to_device(params, "params"), self.X_device))

    def accuracy(self, params: Any) -> float:
        """Accuracy on the objective's own samples."""
        return self.net.accuracy(
            self._to_device(params, "params"),
            self.X_device,
            self.y_device,
            sample_weight=self.w_device,
        )
