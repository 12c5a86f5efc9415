"""The network spec: an immutable description of layers bound to a flat vector.

A :class:`Network` holds no weights. It knows the layout of the one flat
parameter vector ``params`` (every layer's ``theta`` of shape ``(n_out, n_in + 1)``,
bias in column 0, C order, packed layer after layer) and exposes pure functions
of that vector: cost, gradient, Hessian-vector products, predictions.

Those functions compute where the data ``X`` lives: NumPy arrays in, NumPy
arrays out, on the CPU threads of :mod:`flatnn.threads`; CuPy arrays in, CuPy
arrays out, on the GPU (one code path, see :mod:`flatnn.namespace`); ``X`` may
also be a ``scipy.sparse`` matrix or array (CSR or CSC).

This module is the spec (sizes, activations, loss, the flat layout, ``init``,
``to_dict``); the evaluation lives in :mod:`flatnn.core.evaluation` (pure
functions, and the objective's formula), the input checks in
:mod:`flatnn.core.inputs`, the batch kernel in :mod:`flatnn.core.kernel`.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from flatnn.base import checks, namespace
from flatnn.core import activations, evaluation, inputs, losses
from flatnn.core.inputs import Targets

__all__ = ["Network", "Targets", "INIT_SCHEMES", "UNIFORM_EPSILON"]

INIT_SCHEMES = ("glorot", "he", "normal", "uniform", "standard_normal")
UNIFORM_EPSILON = 0.1


def _default_output(sizes, loss):
    if loss == "poisson":
        return "exp"
    return "softmax" if sizes[-1] > 1 else "sigmoid"


@attrs.frozen(repr=False)
class Network:
    """A multilayer perceptron spec: layer sizes, activations and loss.

    The weights are not part of the spec; they live in one flat vector
    ``params`` of length :attr:`n_params` that every method takes as its first
    argument. Every method is a pure function of its arguments.

    The objective, for ``m`` samples and L2 strength ``lam``::

        J(params) = (1/m) Σ_i loss(x_i, y_i) + lam / (2m) · Σ_l ‖theta_l[:, 1:]‖²

    (bias columns are not penalised); with sample weights ``w_i`` the ``m`` of
    both terms becomes ``W = Σ_i w_i`` and the sum is ``Σ_i w_i loss_i`` (the
    formula's home is :mod:`flatnn.core.evaluation`).

    Parameters
    ----------
    sizes : sequence of int
        All layer sizes, input and output included: ``(784, 30, 10)``.
    hidden : str or sequence of str, default "sigmoid"
        Activation of the hidden layers: one name for all, or one per hidden
        layer. One of ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu``, ``identity``.
    output : str, optional
        Output activation: one of the above, ``softmax`` or ``exp``. Default
        ``exp`` for ``loss="poisson"``, else ``softmax`` for two or more outputs
        and ``sigmoid`` for one.
    loss : {"cross_entropy", "squared_error", "poisson"}, default "cross_entropy"
        ``cross_entropy`` is categorical with ``softmax`` and per-unit binary
        with ``sigmoid``; ``squared_error`` is ``½‖a − y‖²`` with any output but
        ``exp``; ``poisson`` is half the Poisson deviance (scikit-learn's) with
        the log link ``exp``, for targets ``y >= 0``.

    Examples
    --------
    >>> net = Network((784, 30, 10))
    >>> net.n_params
    23860
    """

    sizes: tuple[int, ...] = attrs.field(
        converter=inputs.convert_sizes, validator=inputs.validate_sizes
    )
    hidden: Any = attrs.field(default="sigmoid", converter=inputs.convert_hidden)
    output: Any = attrs.field(
        default=inputs.DEFAULT_OUTPUT,
        validator=inputs.check_name("an output activation name such as 'softmax'"),
    )
    loss: str = attrs.field(
        default="cross_entropy",
        validator=inputs.check_name("'cross_entropy', 'squared_error' or 'poisson'"),
    )

    def __attrs_post_init__(self) -> None:
        if self.output is inputs.DEFAULT_OUTPUT:
            object.__setattr__(self, "output", _default_output(self.sizes, self.loss))
        n_hidden = len(self.sizes) - 2
        if not isinstance(self.hidden, str) and len(self.hidden) != n_hidden:
            raise ValueError(
                f"hidden lists {len(self.hidden)} activations; sizes "
                f"{self.sizes} has {n_hidden} hidden layers"
            )
        if not isinstance(self.hidden, str) and len(set(self.hidden)) == 1:
            # one canonical form, so that equal specs compare (and hash) equal
            object.__setattr__(self, "hidden", self.hidden[0])
        for name in self.hidden_activations:
            activations.get(name)
        if self.output == "softmax" and self.sizes[-1] == 1:
            raise ValueError(
                "output 'softmax' needs at least 2 output units, got 1; "
                "use output 'sigmoid' for one unit"
            )
        losses.get(self.output, self.loss)

    def __repr__(self) -> str:
        return (
            f"Network({self.sizes!r}, hidden={self.hidden!r}, "
            f"output={self.output!r}, loss={self.loss!r})"
        )

    # ------------------------------------------------------------------ layout
    @property
    def hidden_activations(self) -> tuple[str, ...]:
        """tuple of str: the activation of each hidden layer."""
        n_hidden = len(self.sizes) - 2
        if isinstance(self.hidden, str):
            return (self.hidden,) * n_hidden
        return tuple(self.hidden)

    @property
    def n_layers(self) -> int:
        """int: number of weight layers (``len(sizes) - 1``)."""
        return len(self.sizes) - 1

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """tuple of (int, int): each layer's ``theta`` shape ``(n_out, n_in + 1)``."""
        return tuple((n_out, n_in + 1) for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def offsets(self) -> tuple[int, ...]:
        """tuple of int: where each layer starts in ``params``, then ``n_params``."""
        out = [0]
        for r, c in self.shapes:
            out.append(out[-1] + r * c)
        return tuple(out)

    @property
    def n_params(self) -> int:
        """int: length of the flat parameter vector."""
        return self.offsets[-1]

    def unpack(self, params: Any) -> tuple[Any, ...]:
        """Split the flat vector into per-layer matrices, without copying.

        Parameters
        ----------
        params : ndarray, shape (n_params,)

        Returns
        -------
        thetas : tuple of ndarray
            ``theta_l`` of shape ``(n_out, n_in + 1)``, bias in column 0; views
            into ``params`` (writing to them writes to ``params``).
        """
        params = inputs.check_params(self, params, xp=namespace.namespace_of(params))
        off = self.offsets
        return tuple(
            params[off[i] : off[i + 1]].reshape(shape) for i, shape in enumerate(self.shapes)
        )

    def pack(self, thetas: Any) -> Any:
        """Concatenate per-layer matrices into a new flat vector (inverse of unpack).

        Parameters
        ----------
        thetas : sequence of ndarray
            One ``(n_out, n_in + 1)`` float matrix per layer.

        Returns
        -------
        params : ndarray, shape (n_params,)
        """
        thetas = list(thetas)
        if len(thetas) != self.n_layers:
            raise ValueError(f"pack needs {self.n_layers} matrices for {self!r}, got {len(thetas)}")
        xp = namespace.namespace_of(*thetas)
        arrays = []
        for i, (theta, shape) in enumerate(zip(thetas, self.shapes)):
            theta = namespace.asarray(theta, xp, f"theta {i}", "another theta")
            if theta.shape != shape:
                raise ValueError(f"theta {i} has shape {theta.shape}; {self!r} needs {shape}")
            if theta.dtype.kind != "f":
                raise ValueError(f"theta {i} has dtype {theta.dtype}; expected a float dtype")
            arrays.append(theta)
        dtype = np.result_type(*(a.dtype for a in arrays))
        params = xp.empty(self.n_params, dtype=dtype)
        off = self.offsets
        for i, theta in enumerate(arrays):
            params[off[i] : off[i + 1]].reshape(theta.shape)[...] = theta
        return params

    def init(
        self, rng: Any = None, *, scheme: str | None = None, dtype: Any = np.float64
    ) -> np.ndarray:
        """Draw a fresh parameter vector.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            Seed or generator; the same seed gives the same vector.
        scheme : str, optional
            ``glorot`` (uniform ±√(6/(n_in+n_out)), default for sigmoid, tanh,
            identity and softmax layers), ``he`` (normal, std √(2/n_in), default
            for relu and leaky_relu), ``normal`` (Nielsen: weights N(0, 1/n_in),
            biases N(0, 1)), ``uniform`` (every entry, bias included, uniform in
            ±0.1, as in the captcha example), ``standard_normal`` (every entry
            N(0, 1), Nielsen's large initializer). Biases are zero for ``glorot``
            and ``he``.
        dtype : float32 or float64

        Returns
        -------
        params : ndarray, shape (n_params,)
        """
        dtype = checks.float_dtype(dtype)
        if scheme is not None and scheme not in INIT_SCHEMES:
            raise ValueError(
                f"unknown init scheme {scheme!r}; expected one of {list(INIT_SCHEMES)}"
            )
        rng = np.random.default_rng(rng)
        params = np.zeros(self.n_params, dtype=np.float64)
        layer_acts = (*self.hidden_activations, self.output)
        for theta, act in zip(self.unpack(params), layer_acts):
            n_out, n_in = theta.shape[0], theta.shape[1] - 1
            s = scheme or ("he" if act in ("relu", "leaky_relu") else "glorot")
            if s == "glorot":
                limit = math.sqrt(6.0 / (n_in + n_out))
                theta[:, 1:] = rng.uniform(-limit, limit, (n_out, n_in))
            elif s == "he":
                theta[:, 1:] = rng.normal(0.0, math.sqrt(2.0 / n_in), (n_out, n_in))
            elif s == "normal":
                theta[:, 1:] = rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_out, n_in))
                theta[:, 0] = rng.normal(0.0, 1.0, n_out)
            elif s == "uniform":
                theta[...] = rng.uniform(-UNIFORM_EPSILON, UNIFORM_EPSILON, theta.shape)
            else:
                theta[...] = rng.normal(0.0, 1.0, theta.shape)
        return params.astype(dtype, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-able data (see :meth:`from_dict`)."""
        hidden = self.hidden if isinstance(self.hidden, str) else list(self.hidden)
        return {
            "sizes": list(self.sizes),
            "hidden": hidden,
            "output": self.output,
            "loss": self.loss,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Network:
        """Build a spec from :meth:`to_dict` output (ValueError on bad keys)."""
        if not isinstance(data, dict):
            raise ValueError(f"a network spec must be a mapping, got {type(data).__name__}")
        expected = {"sizes", "hidden", "output", "loss"}
        if set(data) != expected:
            raise ValueError(f"a network spec has keys {sorted(expected)}, got {sorted(data)}")
        return cls(data["sizes"], hidden=data["hidden"], output=data["output"], loss=data["loss"])

    # --------------------------------------------------------- the objective
    def cost_from_sum(self, loss_sum: float, params: Any, m: float, lam: float = 0.0) -> float:
        """``J`` from the summed loss of ``m`` samples (the objective's formula).

        ``J = loss_sum / m + lam / (2m) · Σ_l ‖theta_l[:, 1:]‖²``, through
        :func:`flatnn.core.evaluation.finish_cost`. :class:`flatnn.distributed.DaskObjective`,
        whose shards return partial sums, ends with it.

        Parameters
        ----------
        loss_sum : float
            ``Σ_i loss(x_i, y_i)`` (or ``Σ_i w_i loss_i``) over the samples.
        params : ndarray, shape (n_params,)
        m : int or float
            Number of samples the sum ran over (or the sum of their weights).
        lam : float, default 0

        Returns
        -------
        float
        """
        return evaluation.finish_cost(loss_sum, self.unpack(params), m, checks.lam(lam))

    def add_l2_grad(self, out: Any, direction: Any, m: float, lam: float = 0.0) -> Any:
        """Add the L2 term's part of ``∇J`` (or of ``H v``) into ``out``, in place.

        ``∇J = (1/m) ∇Σ_i loss_i + (lam/m) · theta[:, 1:]`` per layer (bias
        columns get nothing); the curvature products add ``(lam/m) · v[:, 1:]``.
        This adds the second term, with ``direction`` = ``params`` or ``v``
        (through :func:`flatnn.core.evaluation.add_l2`).

        Parameters
        ----------
        out : ndarray, shape (n_params,)
            The mean-loss gradient or curvature product; updated in place.
        direction : ndarray, shape (n_params,)
        m : int or float
            Number of samples (or the sum of their weights).
        lam : float, default 0

        Returns
        -------
        out
        """
        evaluation.add_l2(self.unpack(out), self.unpack(direction), m, checks.lam(lam))
        return out

    def check_data(self, X: Any, y: Any) -> Targets:
        """Check ``X`` and ``y`` against this network once; return the checked ``y``.

        Parameters
        ----------
        X : ndarray or scipy.sparse matrix, shape (m, sizes[0])
        y : ndarray
            As in :meth:`cost`.

        Returns
        -------
        Targets
            Pass it as ``y`` to the evaluation methods to skip checking ``y``
            again (NaN or inf in ``X`` is still caught, cheaply, at each one).

        Raises
        ------
        ValueError
            When a shape, a dtype or a label does not fit the network.
        """
        xp, X = inputs.check_X(self, X)
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        return Targets(inputs.check_y(self, y, X.shape[0], dtype, xp))

    # ------------------------------------------------------------- the maths
    def cost(
        self, params: Any, X: Any, y: Any, lam: float = 0.0, *, sample_weight: Any = None
    ) -> float:
        """The objective ``J`` (see the class docstring).

        Parameters
        ----------
        params : ndarray, shape (n_params,)
        X : ndarray or scipy.sparse matrix, shape (m, sizes[0])
            One sample per row. A sparse ``X`` (CSR or CSC) is multiplied as it
            is, never made dense.
        y : ndarray
            Integer labels ``(m,)`` in ``[0, k)`` (``k = sizes[-1] >= 2``), or float
            targets ``(m, k)``; with one output unit, targets ``(m,)`` or ``(m, 1)``.
        lam : float, default 0
            L2 strength (>= 0).
        sample_weight : ndarray, shape (m,), optional
            Weights ``w_i >= 0`` (positive sum): ``J = Σ w_i loss_i / Σ w_i +
            lam / (2 Σ w_i) · Σ‖theta[:, 1:]‖²``. None means ``w = 1``.

        Returns
        -------
        float
        """
        return evaluation.cost(self, params, X, y, lam, sample_weight)

    def grad(
        self, params: Any, X: Any, y: Any, lam: float = 0.0, *, sample_weight: Any = None
    ) -> Any:
        """Gradient of :meth:`cost`; an array shaped and typed like the work dtype.

        Parameters are those of :meth:`cost`. Returns ndarray, shape (n_params,).
        """
        return evaluation.cost_grad(self, params, X, y, lam, sample_weight)[1]

    def cost_grad(
        self, params: Any, X: Any, y: Any, lam: float = 0.0, *, sample_weight: Any = None
    ) -> tuple[float, Any]:
        """Cost and gradient from one forward and one backward pass.

        Parameters are those of :meth:`cost`. This is the form for
        ``scipy.optimize.minimize(net.cost_grad, p0, args=(X, y, lam), jac=True)``.

        Returns
        -------
        cost : float
        grad : ndarray, shape (n_params,)
            float32 when ``params`` and ``X`` are float32, else float64; an
            array of the namespace of ``X`` (CuPy for CuPy data).
        """
        return evaluation.cost_grad(self, params, X, y, lam, sample_weight)

    def hessp(
        self, params: Any, v: Any, X: Any, y: Any, lam: float = 0.0, *, sample_weight: Any = None
    ) -> Any:
        """Exact Hessian-vector product ``H v`` of :meth:`cost` (R-operator).

        One extra forward and backward pass; no finite differences.

        Parameters
        ----------
        params, v : ndarray, shape (n_params,)
        X, y, lam, sample_weight : as in :meth:`cost`

        Returns
        -------
        ndarray, shape (n_params,)
        """
        return evaluation.curvature(self, params, v, X, y, lam, sample_weight, False)

    def gnvp(
        self, params: Any, v: Any, X: Any, y: Any, lam: float = 0.0, *, sample_weight: Any = None
    ) -> Any:
        """Gauss-Newton product ``G v`` (positive semi-definite curvature).

        ``G = Jᵀ H_out J`` where ``J`` is the Jacobian of the output
        pre-activations (cross-entropy, Poisson) or activations (squared error)
        and ``H_out`` the convex loss's Hessian there, plus ``lam/m`` on the weights.

        Parameters and return as in :meth:`hessp`.
        """
        return evaluation.curvature(self, params, v, X, y, lam, sample_weight, True)

    def forward(self, params: Any, X: Any) -> Any:
        """Output activations.

        Parameters
        ----------
        params : ndarray, shape (n_params,)
        X : ndarray or scipy.sparse matrix, shape (m, sizes[0])

        Returns
        -------
        ndarray, shape (m, sizes[-1])
        """
        return evaluation.outputs(self, params, X)

    def predict(self, params: Any, X: Any) -> Any:
        """Predicted labels ``(m,)``: argmax of the outputs, or ``a > 0.5`` for one unit.

        The rule is :meth:`flatnn.core.losses.OutputLoss.predict`.
        """
        return evaluation.predict(self, params, X)

    def accuracy(self, params: Any, X: Any, y: Any, *, sample_weight: Any = None) -> float:
        """Fraction of samples whose predicted label equals the true one.

        ``y`` may be labels ``(m,)``, one-hot/targets ``(m, k)`` (argmax taken), or
        0/1 targets for one output unit (see :func:`flatnn.core.losses.true_labels`).
        With ``sample_weight``, the weighted fraction ``Σ w_i [right_i] / Σ w_i``.
        """
        return evaluation.accuracy(self, params, X, y, sample_weight)
