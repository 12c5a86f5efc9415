"""scikit-learn estimators on flatnn's core: a drop-in ``MLPClassifier`` and ``MLPRegressor``.

``pip install "flatnn[sklearn]"``; nothing else in flatnn imports scikit-learn.
The constructors take scikit-learn's parameter names with scikit-learn's
meaning, so that changing the import is enough::

    from flatnn.sklearn import MLPClassifier     # was: from sklearn.neural_network import ...
    clf = MLPClassifier(hidden_layer_sizes=(100,), solver="adam", alpha=1e-4).fit(X, y)

``solver`` also takes every flatnn method: the SGD family (``"sgd"``, ``"adam"``,
``"momentum"``, ``"nesterov"``, ``"rmsprop"`` or an update-rule object from
:mod:`flatnn.optimizers`) and every scipy method :func:`flatnn.minimize` knows
(``"lbfgs"`` is scikit-learn's name for ``"L-BFGS-B"``; ``"CG"``, ``"Newton-CG"``,
``"trust-ncg"``, ...). The weights live in one flat vector ``params_`` bound to
``network_`` (a :class:`flatnn.Network`); ``coefs_`` and ``intercepts_`` are views
into it.

The objective, exactly scikit-learn's
--------------------------------------
scikit-learn minimises, over a batch of ``b`` rows (``b = m`` for the full-batch
solvers), ``mean loss + alpha / (2 b) · Σ ‖W‖²`` (with weights: the weighted
mean and ``alpha / (2 Σ_b w)``). flatnn's whole-data objective is ``J = (1/W) Σ
w·loss + lam / (2W) · Σ ‖W‖²``, so the scipy solvers get ``lam = alpha``, and the
SGD family runs :func:`flatnn.sgd` with ``l2="per_batch"`` and ``lam = alpha``:
each batch gets scikit-learn's ``alpha / (2b)``, the last one included.

The losses are the same: softmax or per-unit logistic cross-entropy, or half
the squared error, summed over the outputs and averaged over the rows. One
exception: for a regression with ``k > 1`` targets scikit-learn *reports* the
squared error averaged over the outputs too (``loss_`` divided by ``k``) while
its gradient, and so every SGD step, is that of the sum. flatnn minimises and
reports the objective whose gradient both follow; its SGD steps are
scikit-learn's, its ``loss_`` is not divided by ``k``, and its ``lbfgs`` may
take another path (scikit-learn's line search sees values and gradients of two
different functions there).

Differences from scikit-learn, by design
----------------------------------------
* Sparse ``X`` (CSR/CSC) trains with the scipy solvers only (:func:`flatnn.sgd`
  takes dense data): a TypeError says so for the SGD family. ``sample_weight``
  works with every solver.
* Every parameter is checked at ``fit`` against one table
  (:mod:`flatnn.sklearn.constraints`) with scikit-learn's own checker: the
  same :class:`InvalidParameterError` (a ValueError and a TypeError) and words.
* A diverging SGD run (non-finite or exploding cost) keeps the best finite
  weights and warns, recording ``nan`` for the epochs after it as scikit-learn
  does; scikit-learn raises instead unless ``early_stopping`` is on. Data so
  large that even the initial weights give a non-finite cost raises
  scikit-learn's ValueError.
* ``loss_curve_`` and ``best_loss_`` exist for every solver, the full-batch
  ones too (``J`` at each iteration).
* Adam adds ``epsilon`` to ``√v̂`` (Kingma & Ba), scikit-learn to ``√v``.
* Epochs are shuffled by a NumPy ``Generator`` seeded from ``random_state``; the
  initial weights are scikit-learn's own draws from ``random_state`` (``init=
  "sklearn"``), so the same seed starts both libraries at the same point.
* ``early_stopping``, ``tol``/``n_iter_no_change`` and ``learning_rate`` act on
  the SGD family, as in scikit-learn; the scipy solvers get ``tol`` as their
  gradient tolerance and ``max_iter``/``max_fun`` as their limits.
* ``coefs_`` and ``intercepts_`` are read-only properties (views: write into
  their entries, not over the lists).
* ``verbose`` prints the per-epoch loss to stdout, as scikit-learn does; it is
  the one place flatnn prints, and only when asked.
* ``device="cuda"`` trains and predicts on an NVIDIA GPU (CuPy, ``flatnn[gpu]``):
  the data is copied to the device once per ``fit``, the SGD family runs
  :func:`flatnn.sgd` there and the scipy solvers run over a
  :class:`flatnn.gpu.GPUObjective`. Every fitted attribute (``params_``,
  ``result_``, the optimizer state kept for ``partial_fit``) and every
  prediction is NumPy, so a fitted estimator pickles and saves as on the CPU;
  ``set_params(device="cpu")`` predicts without a GPU.

Layout: :mod:`~flatnn.sklearn.constraints` (names and the table of parameter
constraints), :mod:`~flatnn.sklearn.base` (what both estimators share),
:mod:`~flatnn.sklearn.stochastic` (the SGD family's fit over :func:`flatnn.sgd`),
:mod:`~flatnn.sklearn.scipy_fit` (the scipy solvers over :func:`flatnn.minimize`),
:mod:`~flatnn.sklearn.persistence` (estimator files), :mod:`~flatnn.sklearn.device`,
:mod:`~flatnn.sklearn.classifier`, :mod:`~flatnn.sklearn.regressor`.
"""

from __future__ import annotations

from flatnn.sklearn.classifier import MLPClassifier
from flatnn.sklearn.constraints import SCIPY_SOLVERS, SGD_SOLVERS, InvalidParameterError
from flatnn.sklearn.regressor import MLPRegressor
from flatnn.sklearn.scipy_fit import history_fun

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "InvalidParameterError",
    "SGD_SOLVERS",
    "SCIPY_SOLVERS",
    "history_fun",
]
