"""A CuPy stand-in on the CPU: an array type that only its own namespace can compute on.

``HostArray`` wraps a NumPy array and behaves like a CuPy array does for code
that is not CuPy's: NumPy refuses it (``np.asarray`` raises, as CuPy's
"implicit conversion to a NumPy array is not allowed" does; ufuncs and array
functions raise TypeError), and its operators refuse NumPy arrays as operands.
Only the functions of :data:`xp` (NumPy's, unwrapping their arguments and
wrapping the results) and the array's own methods compute with it. Running
flatnn's functions on ``HostArray`` data therefore proves that their code path
goes through the namespace of the data for every operation, which is what
makes them run on CuPy; the numbers themselves come from NumPy, so they must
match the NumPy path.

Register it with ``flatnn.base.namespace.register(ROOT, xp)`` (the ``stand_in``
fixture in the tests does, and removes it afterwards).
"""

from __future__ import annotations

import operator
import types

import numpy as np

ROOT = __name__.partition(".")[0]


def _unwrap(x):
    if isinstance(x, HostArray):
        return x.wrapped
    if isinstance(x, np.ndarray):
        raise TypeError(
            "a NumPy array reached the stand-in namespace: the code mixes host and device arrays"
        )
    if isinstance(x, tuple):
        return tuple(_unwrap(i) for i in x)
    if isinstance(x, list):
        return [_unwrap(i) for i in x]
    return x


def _wrap(r):
    if isinstance(r, np.ndarray):
        return HostArray(r)
    if isinstance(r, np.generic):  # CuPy gives 0-d arrays where NumPy gives scalars
        return HostArray(np.asarray(r))
    return r


class HostArray:
    """A NumPy array that NumPy's functions refuse; see the module docstring."""

    __slots__ = ("wrapped",)
    __array_ufunc__ = None  # np.exp(HostArray) raises TypeError, like CuPy with NumPy ufuncs

    def __init__(self, a):
        self.wrapped = a

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "implicit conversion of a HostArray to a NumPy array is not allowed "
            "(a stand-in for CuPy: use xp.asnumpy)"
        )

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # NumPy raises TypeError

    def __repr__(self):
        return f"HostArray({self.wrapped!r})"

    # attributes
    shape = property(lambda self: self.wrapped.shape)
    ndim = property(lambda self: self.wrapped.ndim)
    size = property(lambda self: self.wrapped.size)
    dtype = property(lambda self: self.wrapped.dtype)
    T = property(lambda self: HostArray(self.wrapped.T))

    def __len__(self):
        return len(self.wrapped)

    def __float__(self):
        return float(self.wrapped)

    def __int__(self):
        return int(self.wrapped)

    def __bool__(self):
        return bool(self.wrapped)

    def __format__(self, spec):
        return format(self.wrapped[()] if self.wrapped.ndim == 0 else self.wrapped, spec)

    def __getitem__(self, key):
        return _wrap(self.wrapped[_unwrap(key)])

    def __setitem__(self, key, value):
        self.wrapped[_unwrap(key)] = _unwrap(value)

    # methods (NumPy's, with out= unwrapped and the result identity kept)
    def _method(name):
        def method(self, *args, **kwargs):
            out = kwargs.get("out")
            args, kwargs = _unwrap(args), {k: _unwrap(v) for k, v in kwargs.items()}
            r = getattr(self.wrapped, name)(*args, **kwargs)
            return out if isinstance(out, HostArray) else _wrap(r)

        method.__name__ = name
        return method

    for _name in (
        "sum",
        "max",
        "min",
        "argmax",
        "mean",
        "all",
        "any",
        "reshape",
        "astype",
        "copy",
        "item",
        "ravel",
        "round",
    ):
        locals()[_name] = _method(_name)
    del _name

    # operators
    def _binary(op, reflected=False):
        def method(self, other):
            if isinstance(other, np.ndarray):
                raise TypeError(
                    "a NumPy array as an operand of a HostArray (CuPy refuses this too)"
                )
            other = _unwrap(other)
            return _wrap(op(other, self.wrapped) if reflected else op(self.wrapped, other))

        return method

    def _inplace(op):
        def method(self, other):
            if isinstance(other, np.ndarray):
                raise TypeError("a NumPy array as an operand of a HostArray")
            op(self.wrapped, _unwrap(other))
            return self

        return method

    for _name, _op in (
        ("add", operator.add),
        ("sub", operator.sub),
        ("mul", operator.mul),
        ("truediv", operator.truediv),
        ("matmul", operator.matmul),
        ("pow", operator.pow),
    ):
        locals()[f"__{_name}__"] = _binary(_op)
        locals()[f"__r{_name}__"] = _binary(_op, reflected=True)
    for _name, _op in (
        ("iadd", operator.iadd),
        ("isub", operator.isub),
        ("imul", operator.imul),
        ("itruediv", operator.itruediv),
    ):
        locals()[f"__{_name}__"] = _inplace(_op)
    for _name, _op in (
        ("gt", operator.gt),
        ("ge", operator.ge),
        ("lt", operator.lt),
        ("le", operator.le),
        ("eq", operator.eq),
        ("ne", operator.ne),
        ("and", operator.and_),
        ("or", operator.or_),
    ):
        locals()[f"__{_name}__"] = _binary(_op)
    del _name, _op
    __hash__ = None

    def __neg__(self):
        return HostArray(-self.wrapped)

    def __invert__(self):
        return HostArray(~self.wrapped)

    def __abs__(self):
        return HostArray(abs(self.wrapped))

    def get(self):
        """A NumPy copy (CuPy's ``ndarray.get``)."""
        return self.wrapped.copy()


def _function(name):
    np_func = getattr(np, name)

    def func(*args, **kwargs):
        out = kwargs.get("out")
        r = np_func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
        return out if isinstance(out, HostArray) else _wrap(r)

    func.__name__ = name
    return func


def _asarray(a, dtype=None):
    if isinstance(a, HostArray):
        return a if dtype is None else a.astype(dtype, copy=False)
    return HostArray(np.array(a, dtype=dtype))  # a copy, as a transfer to the device is


def _asnumpy(a):
    return a.get() if isinstance(a, HostArray) else np.asarray(a)


FUNCTIONS = (
    "matmul",
    "empty",
    "zeros",
    "ones",
    "ones_like",
    "empty_like",
    "zeros_like",
    "full",
    "exp",
    "log",
    "log1p",
    "abs",
    "negative",
    "reciprocal",
    "tanh",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
    "add",
    "divide",
    "square",
    "sqrt",
    "where",
    "isfinite",
    "arange",
    "vdot",
    "dot",
    "flatnonzero",
    "take",
    "concatenate",
    "sign",
    "clip",
    "argmax",
    "sum",
    "mean",
    "array_equal",
)

xp = types.SimpleNamespace(
    __name__=ROOT,
    asarray=_asarray,
    asnumpy=_asnumpy,
    ndarray=HostArray,
    float32=np.float32,
    float64=np.float64,
    intp=np.intp,
    int64=np.int64,
    bool_=np.bool_,
    **{name: _function(name) for name in FUNCTIONS},
)
"""The stand-in namespace: NumPy's functions over :class:`HostArray`."""
