"""The versions a run depends on: flatnn, Python, NumPy, SciPy and the BLAS libraries."""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["versions", "blas_libraries"]


def blas_libraries() -> list[dict[str, str]]:
    """The BLAS libraries loaded by NumPy and SciPy, as ``threadpoolctl`` sees them.

    Returns
    -------
    list of dict
        One per library: ``name`` (openblas, mkl, blis, ...), ``version``,
        ``threading`` (its threading layer), ``architecture`` (the kernels it
        chose) and ``file`` (the shared library's file name); a value it does
        not report is ``"?"``.
    """
    import numpy  # noqa: F401  (loads NumPy's BLAS)
    import scipy.linalg  # noqa: F401  (and SciPy's, which may be another)
    from threadpoolctl import threadpool_info

    found = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        found.append(
            {
                "name": str(info.get("internal_api") or "?"),
                "version": str(info.get("version") or "?"),
                "threading": str(info.get("threading_layer") or "?"),
                "architecture": str(info.get("architecture") or "?"),
                "file": Path(str(info.get("filepath") or "?")).name,
            }
        )
    return found


def versions() -> dict[str, str]:
    """The versions of flatnn and what it runs on.

    Returns
    -------
    dict
        ``flatnn``, ``Python``, ``NumPy``, ``SciPy`` and ``BLAS`` (each loaded
        BLAS as ``name version (threading, architecture)``, separated by ``"; "``,
        or ``"none found"``).
    """
    import numpy
    import scipy

    import flatnn

    blas = "; ".join(
        f"{b['name']} {b['version']} ({b['threading']}, {b['architecture']}; {b['file']})"
        for b in blas_libraries()
    )
    return {
        "flatnn": flatnn.__version__,
        "Python": platform.python_version(),
        "NumPy": numpy.__version__,
        "SciPy": scipy.__version__,
        "BLAS": blas or "none found",
    }
