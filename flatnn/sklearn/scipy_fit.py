"""The full-batch solvers' ``fit``: scikit-learn's ``lbfgs`` and :func:`flatnn.minimize`'s methods.

The objective is the whole data's, so ``lam = alpha`` (scikit-learn's
``alpha / (2m)·Σ‖W‖²``); ``tol`` is each method's gradient tolerance (its
``ftol``/``xtol`` where it has none), ``max_iter`` and ``max_fun`` its limits,
``method_options`` go on top. ``loss_curve_`` holds ``J`` at each iteration.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from flatnn.core.objective import Objective
from flatnn.training import STATUS_STOPPED, minimize

__all__ = ["ScipyFit", "TOL_OPTION", "MAXFUN_METHODS", "history_fun"]

TOL_OPTION = {
    "CG": "gtol",
    "BFGS": "gtol",
    "L-BFGS-B": "gtol",
    "TNC": "gtol",
    "SLSQP": "ftol",
    "Newton-CG": "xtol",
    "trust-ncg": "gtol",
    "trust-krylov": "gtol",
    "trust-constr": "gtol",
}
"""Each scipy method's option that ``tol`` sets (scikit-learn's lbfgs passes gtol=tol)."""

MAXFUN_METHODS = ("L-BFGS-B", "TNC")
"""The methods that take ``max_fun`` (as ``maxfun``)."""


def history_fun(entry: dict[str, Any]) -> float:
    """The objective value recorded in one ``history`` entry of a flatnn result."""
    return entry["fun"]


class ScipyFit:
    """The scipy solvers' fit, a part of the estimators (not public on its own)."""

    def _scipy_options(self: Any, method: str) -> dict[str, Any]:
        options: dict[str, Any] = {TOL_OPTION[method]: float(self.tol)}
        if method != "TNC":  # TNC has no iteration limit of its own: see _fit_scipy
            options["maxiter"] = int(self.max_iter)
        if method in MAXFUN_METHODS:
            options["maxfun"] = int(self.max_fun)
        if self.method_options is not None:
            options.update(self.method_options)
        return options

    def _fit_scipy(
        self: Any, X: Any, target: Any, weights: Any, params: Any, method: str, xp: Any
    ) -> None:
        max_iter = int(self.max_iter)
        verbose = bool(self.verbose)
        count = {"nit": 0}

        def on_iteration(intermediate_result: Any) -> None:
            count["nit"] += 1
            if verbose:
                print(f"Iteration {count['nit']}, loss = {float(intermediate_result.fun):.8f}")
            if method == "TNC" and count["nit"] >= max_iter:
                raise StopIteration

        alpha = float(self.alpha)
        weighted = {} if weights is None else {"sample_weight": weights}
        if xp is not None:  # the data on the device; scipy sees NumPy vectors
            from flatnn.backends.gpu_objective import GPUObjective

            obj = GPUObjective(self.network_, X, target, alpha, xp=xp, **weighted)
            problem: tuple[Any, ...] = (obj, params)
        elif weights is not None:
            problem = (Objective(self.network_, X, target, alpha, **weighted), params)
        else:
            problem = (self.network_, params, X, target, alpha)
        options = self._scipy_options(method)
        # the callback prints or stops TNC; without one, no copy of x per iteration
        callback = on_iteration if verbose or method == "TNC" else None
        result = minimize(*problem, method=method, options=options, callback=callback)
        curve = [history_fun(entry) for entry in result.history]
        self.loss_curve_.extend(curve)
        self.loss_ = float(result.fun)
        self.best_loss_ = min([self.loss_] + curve)
        self.n_iter_ = int(result.nit)
        self.params_ = np.ascontiguousarray(result.x)
        self.result_ = result
        if not result.success:
            if method == "TNC" and result.status == STATUS_STOPPED:
                why = f"reached max_iter={max_iter}"
            else:
                why = f"status {result.status}: {result.message}"
            warnings.warn(
                f"{self.solver} failed to converge after {self.n_iter_} "
                f"iteration(s) ({why}). Increase max_iter or scale the data.",
                ConvergenceWarning,
                stacklevel=4,
            )
