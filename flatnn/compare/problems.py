"""Problems of an optimizer comparison: a network, its data splits and ``lam``.

A :class:`Problem` is everything the protocol holds fixed while the optimizers
vary: the network, the training data and L2 strength ``lam`` (so the objective
``J``), the validation split that tunes each method and scores its curve, the
test split of the final figure, the target validation accuracy of "time to
target", and the batch size of the SGD family.

The named problems (:data:`NAMES`) load their data with
:func:`flatnn.datasets.load` (never downloading: MNIST and Fashion-MNIST are
read from ``$FLATNN_DATA`` or the system folders); ``quick=True`` keeps a few
rows of each split, for tests. Any other problem is a :class:`Problem` built by
the caller, or on the command line ``module:attr`` naming a Problem or a
function of no arguments that returns one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from flatnn.core.network import Network

__all__ = ["Problem", "NAMES", "get_problem", "load_attr"]

NAMES = ("xor", "mnist-mlp", "mnist-deep", "fashion-mlp", "captcha-mlp")
"""The problems :func:`get_problem` knows by name."""


def _pair(value: Any) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise TypeError(f"a data split must be a pair (X, y), got {type(value).__name__}")
    return np.asarray(value[0]), np.asarray(value[1])


def _accuracy(instance: Any, attribute: Any, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"target must be an accuracy in (0, 1], got {value!r}")


@attrs.frozen(eq=False)
class Problem:
    """One problem: the network, the splits, ``lam`` and the target accuracy.

    Parameters
    ----------
    name : str
        Names the problem in every output (file names, tables, plots).
    net : Network
    train : (X, y)
        ``X`` (m, net.sizes[0]), ``y`` (m,) or (m, k): the objective's data.
    lam : float
        L2 strength of ``J``.
    validation : (X, y), optional
        Tunes each method and scores its curves (default: ``train``).
    test : (X, y), optional
        Scores the final parameters only (default: ``validation``).
    target : float, default 0.95
        Validation accuracy in (0, 1] of "passes and seconds to target".
    batch_size : int, default 64
        Rows per batch of the SGD family (capped at ``m``).
    """

    name: str
    net: Network = attrs.field(validator=attrs.validators.instance_of(Network))
    train: tuple[np.ndarray, np.ndarray] = attrs.field(converter=_pair)
    lam: float = attrs.field(default=0.0, converter=float)
    validation: tuple[np.ndarray, np.ndarray] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_pair)
    )
    test: tuple[np.ndarray, np.ndarray] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_pair)
    )
    target: float = attrs.field(default=0.95, converter=float, validator=_accuracy)
    batch_size: int = attrs.field(default=64, converter=int)
    _cache: dict = attrs.field(factory=dict, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.net.check_data(*self.train)
        if self.validation is None:
            object.__setattr__(self, "validation", self.train)
        if self.test is None:
            object.__setattr__(self, "test", self.validation)

    @property
    def m(self) -> int:
        """Training rows."""
        return int(self.train[0].shape[0])

    def objective(self) -> Any:
        """The training objective ``J`` (a :class:`flatnn.Objective`), built once."""
        if "objective" not in self._cache:
            from flatnn.core.objective import Objective

            self._cache["objective"] = Objective(self.net, *self.train, self.lam)
        return self._cache["objective"]

    def start(self, seed: int) -> tuple[np.ndarray, float]:
        """``params0 = net.init(seed)`` and its validation accuracy (computed once per seed).

        The first call also casts the validation and test rows to float32 for
        :meth:`accuracy`, once per problem.
        """
        key = ("start", int(seed))
        if key not in self._cache:
            self._rows32("test")
            params0 = self.net.init(int(seed))
            self._cache[key] = (params0, self.accuracy(params0, "validation"))
        params0, accuracy = self._cache[key]
        return params0.copy(), accuracy

    def accuracy(self, params: np.ndarray, split: str = "validation") -> float:
        """The accuracy of ``params`` on ``"validation"`` or ``"test"``, scored in float32.

        The split's ``X`` is cast to float32 once and ``params`` at each call:
        the argmax of float32 outputs differs from float64's only where two
        outputs tie to about 1e-6, and the forward pass costs half as much,
        which keeps the protocol's scoring under its share of each run.
        """
        X32, y = self._rows32(split)
        with np.errstate(all="ignore"):  # a diverged run's parameters still get a score
            return float(self.net.accuracy(np.asarray(params, dtype=np.float32), X32, y))

    def _rows32(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in ("validation", "test"):
            raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
        key = ("rows32", split)
        if key not in self._cache:
            data = self.validation if split == "validation" else self.test
            assert data is not None
            self._cache[key] = (np.asarray(data[0], dtype=np.float32), data[1])
        return self._cache[key]

    def describe(self) -> dict[str, Any]:
        """The problem as JSON-ready facts: network, ``lam``, split sizes, target, batch."""
        assert self.validation is not None and self.test is not None
        return {
            "name": self.name,
            "network": self.net.to_dict(),
            "n_params": int(self.net.n_params),
            "lam": self.lam,
            "m_train": self.m,
            "m_validation": int(self.validation[0].shape[0]),
            "m_test": int(self.test[0].shape[0]),
            "target": self.target,
            "batch_size": min(self.batch_size, self.m),
        }


def load_attr(spec: str, what: str) -> Any:
    """The object ``attr`` of module ``module`` named by ``"module:attr"``.

    Raises ValueError naming ``what`` was expected when the spec has no colon,
    the module cannot be imported or has no such attribute.
    """
    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise ValueError(f"{what} {spec!r}: expected a name or module:attr")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{what} {spec!r}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what} {spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _splits(name: str, limit: int | None, dtype: Any = np.float64) -> Any:
    from flatnn.datasets.registry import load

    return load(name, download=False, dtype=dtype, limit=limit)


def _from_splits(name: str, net: Network, s: Any, **kwargs: Any) -> Problem:
    return Problem(
        name,
        net,
        (s.X_train, s.y_train),
        validation=(s.X_val, s.y_val),
        test=(s.X_test, s.y_test),
        **kwargs,
    )


def _xor(quick: bool) -> Problem:
    from flatnn.datasets.toy import xor

    X, y = xor()
    net = Network((2, 4, 1), hidden="sigmoid", output="sigmoid")
    return Problem("xor", net, (X, y), target=1.0, batch_size=4)


def _mnist(
    name: str, sizes: tuple[int, ...], dataset: str, target: float
) -> Callable[..., Problem]:
    def build(quick: bool) -> Problem:
        s = _splits(dataset, 1000 if quick else None)
        net = Network(sizes, hidden="relu", output="softmax")
        return _from_splits(name, net, s, lam=5.0, target=target, batch_size=64)

    return build


def _captcha(quick: bool) -> Problem:
    s = _splits("captcha", 200 if quick else None)
    net = Network((260, 200, 200, 36), hidden="relu", output="softmax")
    return _from_splits("captcha-mlp", net, s, lam=1.0, target=0.8, batch_size=32)


_BUILDERS: dict[str, Callable[[bool], Problem]] = {
    "xor": _xor,
    "mnist-mlp": _mnist("mnist-mlp", (784, 100, 10), "mnist", 0.95),
    "mnist-deep": _mnist("mnist-deep", (784, 256, 128, 64, 10), "mnist", 0.95),
    "fashion-mlp": _mnist("fashion-mlp", (784, 100, 10), "fashion-mnist", 0.85),
    "captcha-mlp": _captcha,
}


def get_problem(name: str | Problem, *, quick: bool = False) -> Problem:
    """A problem by name (:data:`NAMES`), by ``"module:attr"``, or a Problem as it is.

    Parameters
    ----------
    name : str or Problem
        A name of :data:`NAMES`; ``"module:attr"`` naming a :class:`Problem` or a
        function of no arguments returning one; or a Problem (returned unchanged).
    quick : bool, default False
        Named problems only: the first 1000 rows of each split (200 for
        captcha-mlp), for tests.

    Raises
    ------
    ValueError
        An unknown name or a ``module:attr`` that is not a Problem.
    FileNotFoundError
        When the data of a named problem is not on this machine.
    """
    if isinstance(name, Problem):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a problem is a name or a Problem, got {type(name).__name__}")
    if name in _BUILDERS:
        return _BUILDERS[name](quick)
    if ":" not in name:
        raise ValueError(
            f"unknown problem {name!r}; expected one of {', '.join(NAMES)} or module:attr"
        )
    obj = load_attr(name, "problem")
    if callable(obj) and not isinstance(obj, (Problem, type)):
        obj = obj()
    if not isinstance(obj, Problem):
        raise ValueError(
            f"problem {name!r} is a {type(obj).__name__}; expected a flatnn.compare.Problem "
            f"or a function returning one"
        )
    return obj
