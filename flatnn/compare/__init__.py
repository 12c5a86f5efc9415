"""Optimizer comparisons under one protocol (``flatnn compare`` on the command line).

For each problem (:class:`Problem`: a network, its data and ``lam``; or a name
of :data:`NAMES`) and each method (:class:`Method`: every SGD rule of
:data:`flatnn.optimizers.RULES`, every scipy method of
:data:`flatnn.training.SCIPY_METHODS`, or user code given as ``module:attr``):

1. each point of a log-spaced grid of the method's learning rate (none for the
   line-search and trust-region methods) runs from ``net.init(0)`` for a
   budget in passes over the data (``cost_grad`` calls plus Hessian-vector
   products; an SGD epoch counts one) and is scored by its final validation
   accuracy;
2. the best point reruns with seeds ``0 .. N-1`` (default 5);
3. everything goes into a run folder: ``results.json`` (every run's history),
   ``summary.csv`` (median and interquartile range over seeds of the test
   accuracy and the cost, passes and seconds to the target accuracy, the
   share of seeds that reached it), ``profile.csv`` and the plots.

Rerunning with the same folder skips the finished runs. Budget, grid and
seeds are stated in every output. See :mod:`flatnn.compare.protocol` for
what is measured and how.

Examples
--------
>>> from flatnn import compare
>>> results = compare.compare(["xor"], ["adam", "L-BFGS-B"], folder=tmp,
...                           settings=compare.Settings(quick=True))  # doctest: +SKIP
"""

from __future__ import annotations

from flatnn.compare.command import add_arguments, default_folder, main, parser, run
from flatnn.compare.methods import (
    DENSE_MAX_PARAMS,
    DENSE_METHODS,
    LEARNING_RATE_RANGES,
    Method,
    default_methods,
    get_method,
    log_grid,
)
from flatnn.compare.problems import NAMES, Problem, get_problem
from flatnn.compare.protocol import Budget, CountedObjective, checkpoints, run_one
from flatnn.compare.results import profile_curve, profile_ratios, summary_rows, write_results
from flatnn.compare.runner import DEFAULT_BUDGETS, RunStore, Settings, compare, selection_score

__all__ = [
    "compare",
    "main",
    "run",
    "add_arguments",
    "parser",
    "default_folder",
    "Problem",
    "NAMES",
    "get_problem",
    "Method",
    "get_method",
    "default_methods",
    "log_grid",
    "LEARNING_RATE_RANGES",
    "DENSE_METHODS",
    "DENSE_MAX_PARAMS",
    "Settings",
    "DEFAULT_BUDGETS",
    "RunStore",
    "selection_score",
    "Budget",
    "CountedObjective",
    "checkpoints",
    "run_one",
    "summary_rows",
    "profile_ratios",
    "profile_curve",
    "write_results",
]
