"""The network spec: an immutable description of layers bound to a flat vector.

A :class:`Network` holds no weights. It knows the layout of the one flat
parameter vector ``params`` (every layer's ``theta`` of shape ``(n_out, n_in + 1)``,
bias in column 0, C order, packed layer after layer) and exposes pure functions
of that vector: cost, gradient, Hessian-vector products, predictions.

Those functions compute where the data ``X`` lives: NumPy arrays in, NumPy
arrays out, on the CPU threads of :mod:`flatnn.threads`; CuPy arrays in, CuPy
arrays out, on the GPU (one code path, see :mod:`flatnn.namespace`).
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from flatnn.base import checks, namespace, threads
from flatnn.core import activations, kernel, losses

INIT_SCHEMES = ("glorot", "he", "normal", "uniform", "standard_normal")
UNIFORM_EPSILON = 0.1


def _convert_sizes(sizes):
    # A set or a dict has no order the caller chose (``{784, 30, 10}`` iterates as
    # 784, 10, 30), and bytes or a str are sequences of codes, not of layer sizes:
    # each would build a network other than the one written.
    if isinstance(sizes, (set, frozenset, dict, bytes, bytearray, memoryview, str)):
        raise ValueError(
            f"sizes must be an ordered sequence of layer sizes such as "
            f"(784, 30, 10), got {type(sizes).__name__} {sizes!r}"
        )
    try:
        items = tuple(sizes)
    except TypeError:
        raise ValueError(
            f"sizes must be a sequence of layer sizes such as (784, 30, 10), got {sizes!r}"
        ) from None
    out = []
    for s in items:
        try:
            out.append(checks.integer(s, "every layer size"))
        except TypeError:
            raise ValueError(f"sizes must hold integers, got {s!r} in {sizes!r}") from None
    # Checked here rather than in the validator: the default of ``output`` reads
    # ``sizes[-1]`` before attrs runs validators, so ``Network(())`` would be an IndexError.
    if len(out) < 2:
        raise ValueError(
            f"sizes needs at least an input and an output size such as (784, 30, 10), got {sizes!r}"
        )
    return tuple(out)


def _validate_sizes(instance, attribute, sizes):
    bad = [s for s in sizes if s < 1]
    if bad:
        raise ValueError(f"every layer size must be >= 1, got {bad[0]} in {sizes!r}")


_HIDDEN_HINT = (
    "an activation name such as 'relu', or a list or tuple of names, one per hidden layer"
)


def _convert_hidden(hidden):
    if isinstance(hidden, str):
        return hidden
    if not isinstance(hidden, (list, tuple)):
        raise TypeError(f"hidden must be {_HIDDEN_HINT}; got {hidden!r}")
    for name in hidden:
        if not isinstance(name, str):
            raise TypeError(f"hidden must be {_HIDDEN_HINT}; got {name!r} in {hidden!r}")
    return tuple(hidden)


def _check_name(what):
    def check(instance, attribute, value):
        if not isinstance(value, str):
            raise TypeError(f"{attribute.name} must be {what} (a str), got {value!r}")

    return check


@attrs.frozen(eq=False, repr=False)
class Targets:
    """``y`` checked once against a network: what :meth:`Network.check_data` returns.

    Pass it as ``y`` to :meth:`Network.cost`, ``grad``, ``cost_grad``,
    ``hessp``, ``gnvp`` or ``accuracy`` (with ``X`` of the same rows) and the
    labels or targets are not checked again: only their row count is.
    :class:`flatnn.Objective` does this for its data.

    Attributes
    ----------
    values : ndarray
        Integer labels ``(m,)`` (intp) or float targets ``(m, k)``, in the form
        the losses take.
    """

    values: np.ndarray

    def __repr__(self):
        return f"Targets(shape={self.values.shape}, dtype={self.values.dtype})"


def _default_output(net):
    return "softmax" if net.sizes[-1] > 1 else "sigmoid"


@attrs.frozen(repr=False)
class Network:
    """A multilayer perceptron spec: layer sizes, activations and loss.

    The weights are not part of the spec; they live in one flat vector
    ``params`` of length :attr:`n_params` that every method takes as its first
    argument. Every method is a pure function of its arguments.

    The objective, for ``m`` samples and L2 strength ``lam``::

        J(params) = (1/m) Σ_i loss(x_i, y_i) + lam / (2m) · Σ_l ‖theta_l[:, 1:]‖²

    (bias columns are not penalised).

    Parameters
    ----------
    sizes : sequence of int
        All layer sizes, input and output included: ``(784, 30, 10)``.
    hidden : str or sequence of str, default "sigmoid"
        Activation of the hidden layers: one name for all, or one per hidden
        layer. One of ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu``, ``identity``.
    output : str, optional
        Output activation: one of the above or ``softmax``. Default ``softmax``
        for two or more outputs, ``sigmoid`` for one.
    loss : {"cross_entropy", "squared_error"}, default "cross_entropy"
        ``cross_entropy`` is categorical with ``softmax`` and per-unit binary
        with ``sigmoid``; ``squared_error`` is ``½‖a − y‖²`` with any output.

    Examples
    --------
    >>> net = Network((784, 30, 10))
    >>> net.n_params
    23860
    """

    sizes: tuple = attrs.field(converter=_convert_sizes, validator=_validate_sizes)
    hidden: object = attrs.field(default="sigmoid", converter=_convert_hidden)
    output: str = attrs.field(
        default=attrs.Factory(_default_output, takes_self=True),
        validator=_check_name("an output activation name such as 'softmax'"),
    )
    loss: str = attrs.field(
        default="cross_entropy", validator=_check_name("'cross_entropy' or 'squared_error'")
    )

    def __attrs_post_init__(self):
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

    def __repr__(self):
        return (
            f"Network({self.sizes!r}, hidden={self.hidden!r}, "
            f"output={self.output!r}, loss={self.loss!r})"
        )

    # ------------------------------------------------------------------ layout
    @property
    def hidden_activations(self):
        """tuple of str: the activation of each hidden layer."""
        n_hidden = len(self.sizes) - 2
        if isinstance(self.hidden, str):
            return (self.hidden,) * n_hidden
        return tuple(self.hidden)

    @property
    def n_layers(self):
        """int: number of weight layers (``len(sizes) - 1``)."""
        return len(self.sizes) - 1

    @property
    def shapes(self):
        """tuple of (int, int): each layer's ``theta`` shape ``(n_out, n_in + 1)``."""
        return tuple((n_out, n_in + 1) for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def offsets(self):
        """tuple of int: where each layer starts in ``params``, then ``n_params``."""
        out = [0]
        for r, c in self.shapes:
            out.append(out[-1] + r * c)
        return tuple(out)

    @property
    def n_params(self):
        """int: length of the flat parameter vector."""
        return self.offsets[-1]

    def unpack(self, params):
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
        params = self._check_params(params, xp=namespace.namespace_of(params))
        off = self.offsets
        return tuple(
            params[off[i] : off[i + 1]].reshape(shape) for i, shape in enumerate(self.shapes)
        )

    def pack(self, thetas):
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

    def init(self, rng=None, *, scheme=None, dtype=np.float64):
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

    def to_dict(self):
        """The spec as plain JSON-able data (see :meth:`from_dict`)."""
        hidden = self.hidden if isinstance(self.hidden, str) else list(self.hidden)
        return {
            "sizes": list(self.sizes),
            "hidden": hidden,
            "output": self.output,
            "loss": self.loss,
        }

    @classmethod
    def from_dict(cls, data):
        """Build a spec from :meth:`to_dict` output (ValueError on bad keys)."""
        if not isinstance(data, dict):
            raise ValueError(f"a network spec must be a mapping, got {type(data).__name__}")
        expected = {"sizes", "hidden", "output", "loss"}
        if set(data) != expected:
            raise ValueError(f"a network spec has keys {sorted(expected)}, got {sorted(data)}")
        return cls(data["sizes"], hidden=data["hidden"], output=data["output"], loss=data["loss"])

    # --------------------------------------------------------- the objective
    def cost_from_sum(self, loss_sum, params, m, lam=0.0):
        """``J`` from the summed loss of ``m`` samples: the objective's formula, in one place.

        ``J = loss_sum / m + lam / (2m) · Σ_l ‖theta_l[:, 1:]‖²``. Every
        evaluation of the cost (here and in :class:`flatnn.distributed.DaskObjective`,
        whose shards return partial sums) ends with it.

        Parameters
        ----------
        loss_sum : float
            ``Σ_i loss(x_i, y_i)`` over the ``m`` samples.
        params : ndarray, shape (n_params,)
        m : int
            Number of samples the sum ran over.
        lam : float, default 0

        Returns
        -------
        float
        """
        return self._finish_cost(loss_sum, self.unpack(params), m, checks.lam(lam))

    def add_l2_grad(self, out, direction, m, lam=0.0):
        """Add the L2 term's part of ``∇J`` (or of ``H v``) into ``out``, in place.

        ``∇J = (1/m) ∇Σ_i loss_i + (lam/m) · theta[:, 1:]`` per layer (bias
        columns get nothing); the curvature products add ``(lam/m) · v[:, 1:]``.
        This adds the second term, with ``direction`` = ``params`` or ``v``.

        Parameters
        ----------
        out : ndarray, shape (n_params,)
            The mean-loss gradient or curvature product; updated in place.
        direction : ndarray, shape (n_params,)
        m : int
        lam : float, default 0

        Returns
        -------
        out
        """
        self._add_l2(self.unpack(out), self.unpack(direction), m, checks.lam(lam))
        return out

    def check_data(self, X, y):
        """Check ``X`` and ``y`` against this network once; return the checked ``y``.

        Parameters
        ----------
        X : ndarray, shape (m, sizes[0])
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
        xp, X = self._check_X(X)
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        return Targets(self._check_y(y, X.shape[0], dtype, xp))

    # ------------------------------------------------------------- the maths
    def cost(self, params, X, y, lam=0.0):
        """The objective ``J`` (see the class docstring).

        Parameters
        ----------
        params : ndarray, shape (n_params,)
        X : ndarray, shape (m, sizes[0])
            One sample per row.
        y : ndarray
            Integer labels ``(m,)`` in ``[0, k)`` (``k = sizes[-1] >= 2``), or float
            targets ``(m, k)``; with one output unit, targets ``(m,)`` or ``(m, 1)``.
        lam : float, default 0
            L2 strength (>= 0).

        Returns
        -------
        float
        """
        thetas, X, target, lam = self._prepare(params, X, y, lam)
        hidden, outloss, check = self._hidden_fns(), self._outloss(), self._input_check(X)

        def block(start, stop, i):
            _, z = kernel.forward(thetas, hidden, X[start:stop], check)
            return outloss.value(z, target[start:stop])

        with np.errstate(all="ignore"):  # an overflow is reported below, once
            value = sum(_run_blocks(block, X))  # in block order
            cost = self._finish_cost(value, thetas, X.shape[0], lam)
        if not math.isfinite(cost):
            raise self._overflow_error("cost", thetas, X, lam)
        return cost

    def grad(self, params, X, y, lam=0.0):
        """Gradient of :meth:`cost`; an array shaped and typed like the work dtype.

        Parameters are those of :meth:`cost`. Returns ndarray, shape (n_params,).
        """
        return self.cost_grad(params, X, y, lam)[1]

    def cost_grad(self, params, X, y, lam=0.0):
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
        thetas, X, target, lam = self._prepare(params, X, y, lam)
        xp = namespace.namespace_of(X)
        m = X.shape[0]
        hidden, outloss, check = self._hidden_fns(), self._outloss(), self._input_check(X)
        grad = xp.empty(self.n_params, dtype=X.dtype)

        def block(start, stop, i):
            g = grad if i == 0 else xp.empty_like(grad)
            acts, z = kernel.forward(thetas, hidden, X[start:stop], check)
            value, delta = outloss.value_and_delta(z, target[start:stop])
            delta *= 1.0 / m
            kernel.backward(thetas, hidden, acts, delta, self._views(g))
            return value, g

        with np.errstate(all="ignore"):  # an overflow is reported below, once
            value = _add_blocks(_run_blocks(block, X), grad)
            cost = self._finish_cost(value, thetas, m, lam)
            self._add_l2(self._views(grad), thetas, m, lam)
        if not (math.isfinite(cost) and _all_finite(grad)):
            raise self._overflow_error("cost_grad", thetas, X, lam)
        return cost, grad

    def hessp(self, params, v, X, y, lam=0.0):
        """Exact Hessian-vector product ``H v`` of :meth:`cost` (R-operator).

        One extra forward and backward pass; no finite differences.

        Parameters
        ----------
        params, v : ndarray, shape (n_params,)
        X, y, lam : as in :meth:`cost`

        Returns
        -------
        ndarray, shape (n_params,)
        """
        return self._curvature(params, v, X, y, lam, gauss_newton=False)

    def gnvp(self, params, v, X, y, lam=0.0):
        """Gauss-Newton product ``G v`` (positive semi-definite curvature).

        ``G = Jᵀ H_out J`` where ``J`` is the Jacobian of the output
        pre-activations (cross-entropy) or activations (squared error) and
        ``H_out`` the convex loss's Hessian there, plus ``lam/m`` on the weights.

        Parameters and return as in :meth:`hessp`.
        """
        return self._curvature(params, v, X, y, lam, gauss_newton=True)

    def forward(self, params, X):
        """Output activations.

        Parameters
        ----------
        params : ndarray, shape (n_params,)
        X : ndarray, shape (m, sizes[0])

        Returns
        -------
        ndarray, shape (m, sizes[-1])
        """
        thetas, X = self._prepare_X(params, X)
        self._check_X_finite(X)
        hidden, outloss = self._hidden_fns(), self._outloss()
        out = namespace.namespace_of(X).empty((X.shape[0], self.sizes[-1]), dtype=X.dtype)

        def block(start, stop, i):
            _, z = kernel.forward(thetas, hidden, X[start:stop], out=out[start:stop])
            if not _all_finite(z):
                return False
            a = outloss.activate(z)  # in place
            if a is not z:
                z[...] = a
            return True

        with np.errstate(all="ignore"):  # an overflow is reported below, once
            finite = all(_run_blocks(block, X))
        if not finite:
            raise self._overflow_error("forward", thetas, X)
        return out

    def predict(self, params, X):
        """Predicted labels ``(m,)``: argmax of the outputs, or ``a > 0.5`` for one unit."""
        thetas, X = self._prepare_X(params, X)
        self._check_X_finite(X)
        hidden, outloss = self._hidden_fns(), self._outloss()
        k = self.sizes[-1]
        labels = namespace.namespace_of(X).empty(X.shape[0], dtype=np.int64 if k == 1 else np.intp)

        def block(start, stop, i):
            _, z = kernel.forward(thetas, hidden, X[start:stop])
            if not _all_finite(z):
                return False
            if k == 1:
                labels[start:stop] = outloss.activate(z)[:, 0] > 0.5
            elif self.output == "softmax":  # monotone: argmax of z is argmax of a
                z.argmax(axis=1, out=labels[start:stop])
            else:
                outloss.activate(z).argmax(axis=1, out=labels[start:stop])
            return True

        with np.errstate(all="ignore"):  # an overflow is reported below, once
            finite = all(_run_blocks(block, X))
        if not finite:
            raise self._overflow_error("predict", thetas, X)
        return labels

    def accuracy(self, params, X, y):
        """Fraction of samples whose predicted label equals the true one.

        ``y`` may be labels ``(m,)``, one-hot/targets ``(m, k)`` (argmax taken), or
        0/1 targets for one output unit.
        """
        pred = self.predict(params, X)
        target = self._check_y(y, pred.shape[0], np.float64, namespace.namespace_of(pred))
        if self.sizes[-1] == 1:
            truth = target[:, 0] > 0.5
        elif losses.is_labels(target):
            truth = target
        else:
            truth = target.argmax(axis=1)
        return float((pred == truth).mean())

    # ------------------------------------------------------------- internals
    def _hidden_fns(self):
        return tuple(activations.get(n) for n in self.hidden_activations)

    def _outloss(self):
        return losses.get(self.output, self.loss)

    def _views(self, flat):
        off = self.offsets
        return tuple(flat[off[i] : off[i + 1]].reshape(s) for i, s in enumerate(self.shapes))

    def _check_params(self, params, name="params", xp=np):
        params = checks.flat_vector(params, self.n_params, name, owner=self, xp=xp)
        if name != "params":
            # A direction (hessp's and gnvp's v): a NaN in it would come back as a
            # silent NaN product. params itself is checked where it is evaluated,
            # and unpack/pack must still accept any float vector.
            checks.finite(params, name)
        return params

    def _check_X(self, X):
        """``(xp, X)``: X's array namespace and X itself, (m >= 1, n_features), numeric."""
        xp = namespace.namespace_of(X)
        if xp is np:
            X = np.asarray(X)
        checks.features(X.shape, self)
        if X.shape[0] == 0:
            raise ValueError("X has no rows")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"X must be numeric, got dtype {X.dtype}")
        return xp, X

    def _prepare_X(self, params, X):
        xp = namespace.namespace_of(X)
        params = checks.finite(self._check_params(params, xp=xp), "params")
        xp, X = self._check_X(X)
        dtype = (
            np.float32
            if (params.dtype == np.float32 and X.dtype in (np.float32, np.float16))
            else np.float64
        )
        if X.dtype.kind != "f" and params.dtype == np.float32:
            dtype = np.float32  # integer pixels follow the parameters' precision
        # Casts only when the caller mixes precisions; matching dtypes never copy.
        X = X.astype(dtype, copy=False)
        params = params.astype(dtype, copy=False)
        return self._views(params), X

    def _prepare(self, params, X, y, lam):
        thetas, X = self._prepare_X(params, X)
        lam = checks.lam(lam)
        target = self._check_y(y, X.shape[0], X.dtype, namespace.namespace_of(X))
        return thetas, X, target, lam

    def _check_y(self, y, m, dtype, xp=np):
        k = self.sizes[-1]
        if isinstance(y, Targets):  # checked by check_data: only the rows are compared
            values = y.values
            if values.shape[0] != m:
                raise ValueError(f"y has {values.shape[0]} rows; X has {m}")
            return values if values.dtype.kind != "f" else values.astype(dtype, copy=False)
        y = namespace.asarray(y, xp, "y")
        if y.ndim == 0 or y.ndim > 2:
            raise ValueError(f"y must be labels (m,) or targets (m, {k}), got shape {y.shape}")
        if y.shape[0] != m:
            raise ValueError(f"y has {y.shape[0]} rows; X has {m}")
        if y.dtype.kind not in "fiub":
            raise ValueError(f"y must be numeric, got dtype {y.dtype}")
        if y.ndim == 2 or k == 1:
            if y.ndim == 1:
                y = y.reshape(m, 1)
            if y.shape[1] != k:
                raise ValueError(f"y has {y.shape[1]} columns; the network has {k} outputs")
            y = y.astype(dtype, copy=False)
            if not _all_finite(y):
                raise ValueError("y contains NaN or inf")
            if self.loss == "cross_entropy":
                lo, hi = float(y.min()), float(y.max())
                if lo < 0 or hi > 1:
                    raise ValueError(
                        f"cross-entropy targets must lie in [0, 1], got values in [{lo}, {hi}]"
                    )
            return y
        # integer class labels
        if y.dtype.kind == "f":
            if not _all_finite(y) or bool((y != y.round()).any()):
                raise ValueError(
                    "labels y (m,) must be integers; got non-integer values "
                    f"(pass float targets as an (m, {k}) array)"
                )
        if y.dtype.kind == "b":
            raise ValueError(f"labels y must be integers in [0, {k}), got booleans")
        labels = y.astype(np.intp, copy=False)
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"label {bad} is out of range: the network has {k} outputs, "
                f"so labels must lie in [0, {k})"
            )
        return labels

    def _check_X_finite(self, X):
        checks.finite_rows(X)

    def _input_check(self, X):
        # A NaN or inf in X always reaches the first layer's pre-activations
        # (0·inf is NaN), so summing that (m, n_1) array spares a full pass over
        # X on every call; only a non-finite sum pays for the exact check.
        def check(z1):
            with np.errstate(all="ignore"):
                total = float(z1.sum())
            if not math.isfinite(total):
                self._check_X_finite(X)

        return check

    def _finish_cost(self, value, thetas, m, lam):
        # the formula of cost_from_sum, on per-layer views
        cost = value / m
        if lam:
            xp = namespace.namespace_of(thetas[0])
            cost += lam / (2 * m) * sum(float(xp.vdot(t[:, 1:], t[:, 1:])) for t in thetas)
        return float(cost)

    @staticmethod
    def _add_l2(outs, directions, m, lam):
        # the formula of add_l2_grad, on per-layer views
        if lam:
            for o, d in zip(outs, directions):
                o[:, 1:] += (lam / m) * d[:, 1:]

    def _overflow_error(self, what, thetas, X, lam=0.0):
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

    def _curvature(self, params, v, X, y, lam, gauss_newton):
        thetas, X, target, lam = self._prepare(params, X, y, lam)
        xp = namespace.namespace_of(X)
        v = namespace.asarray(v, xp, "v")
        if v.dtype.kind in "iu":  # scipy's trust-constr probes hessp with an int8 zero vector
            v = v.astype(X.dtype)
        v = self._check_params(v, name="v", xp=xp)
        with np.errstate(over="ignore"):  # a float64 v beyond float32's range: caught below
            v = v.astype(X.dtype, copy=False)
        m = X.shape[0]
        vs = self._views(v)
        hidden, outloss, check = self._hidden_fns(), self._outloss(), self._input_check(X)
        out = xp.empty(self.n_params, dtype=X.dtype)

        def block(start, stop, i):
            o = out if i == 0 else xp.empty_like(out)
            kernel.curvature_product(
                thetas,
                vs,
                hidden,
                outloss,
                X[start:stop],
                target[start:stop],
                1.0 / m,
                self._views(o),
                gauss_newton,
                check,
            )
            return 0.0, o

        with np.errstate(all="ignore"):  # an overflow is reported below, once
            _add_blocks(_run_blocks(block, X), out)
            self._add_l2(self._views(out), vs, m, lam)
        if not _all_finite(out):
            raise self._overflow_error("hessp" if not gauss_newton else "gnvp", thetas, X, lam)
        return out


def _run_blocks(block, X):
    """``block(start, stop, i)`` over the rows of ``X``: :func:`flatnn.threads.run_blocks`
    for NumPy data, one block of every row for any other namespace (a GPU runs
    its own threads; the CPU pool would only add copies and contention).
    """
    if type(X) is np.ndarray:
        return threads.run_blocks(block, X.shape[0])
    return [block(0, X.shape[0], 0)]


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


def _all_finite(a):
    """True when every entry of ``a`` is finite.

    ``isfinite(a).all()`` takes 3 µs for 24000 float32 entries here, half the
    time of ``a.sum()`` (NumPy's pairwise sum is not vectorised that well) and
    without its false alarms; a dot product would wake BLAS's threads.
    """
    return bool(namespace.namespace_of(a).isfinite(a).all())
