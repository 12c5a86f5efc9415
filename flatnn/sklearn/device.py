"""Where the estimators compute: ``device="cpu"`` or ``"cuda"``.

``fit`` copies the data to the device once; the fitted estimator holds NumPy
arrays only (:func:`map_arrays` brings an optimizer's state back), so it
pickles and saves as on the CPU, and ``set_params(device="cpu")`` predicts on
a machine without a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flatnn.sklearn.constraints import check_parameter

__all__ = ["check_device", "device_namespace", "map_arrays"]


def check_device(device: Any, caller: str = "flatnn.sklearn") -> str:
    """Return ``device`` when it is ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    InvalidParameterError
        (a ValueError and a TypeError) naming the choices.
    """
    return check_parameter("device", device, caller)


def device_namespace(device: Any, caller: str = "flatnn.sklearn") -> Any:
    """The array namespace that computes for ``device``: None for the CPU.

    ``"cuda"`` imports CuPy and checks for a GPU (:func:`flatnn.gpu.require_cuda`:
    :class:`flatnn.gpu.GPUUnavailable` with a one-line message when either is
    missing). The estimators look this function up in this module at each call,
    so a test may replace it to run the device path on a stand-in namespace.
    """
    if check_device(device, caller) == "cpu":
        return None
    from flatnn.backends import gpu_objective as gpu

    return gpu.require_cuda()


def map_arrays(state: Any, move: Callable[[Any], Any]) -> Any:
    """``state`` with ``move`` applied to every array in it.

    ``state`` is an optimizer's: an array, a tuple or NamedTuple of them, a list;
    other values (a step count) are kept as they are.
    """
    if isinstance(state, tuple):
        items = [map_arrays(item, move) for item in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    if isinstance(state, list):
        return [map_arrays(item, move) for item in state]
    if hasattr(state, "shape") and hasattr(state, "dtype"):
        return move(state)
    return state
