"""flatnn.sklearn: scikit-learn's own estimator checks, and the drop-in promise checked
against scikit-learn's MLPs on the same data, the same start and the same settings."""

import inspect
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")  # the sklearn extra; CI installs it with .[dev,all]

from sklearn import neural_network as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, make_multilabel_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_dataframe_column_names_consistency,
    parametrize_with_checks,
)

import flatnn  # noqa: E402
from flatnn import optimizers  # noqa: E402
from flatnn.sklearn import (  # noqa: E402
    InvalidParameterError,
    MLPClassifier,
    MLPRegressor,
    history_fun,
)
from flatnn.training import SCIPY_METHODS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ------------------------------------------------------ scikit-learn's checks
@parametrize_with_checks(
    [
        MLPClassifier(),
        MLPRegressor(),
        MLPClassifier(solver="lbfgs", max_iter=100),
        MLPRegressor(solver="Newton-CG", max_iter=50),
        MLPClassifier(solver="sgd", dtype="float32", max_iter=100),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _check_names(estimator):
    mark = parametrize_with_checks([estimator])
    return {getattr(check, "func", check).__name__ for _, check in mark.args[1]}


@pytest.mark.parametrize(
    "ours,theirs,missing",
    [
        (MLPClassifier(solver="lbfgs"), sk.MLPClassifier(solver="lbfgs"), set()),
        (MLPRegressor(solver="lbfgs"), sk.MLPRegressor(solver="lbfgs"), set()),
        (MLPClassifier(), sk.MLPClassifier(), set()),
        (MLPRegressor(), sk.MLPRegressor(), set()),
    ],
)
def test_as_many_scikit_learn_checks_as_scikit_learns_own_estimators(ours, theirs, missing):
    assert _check_names(theirs) - _check_names(ours) == missing
    assert any("sample_weight" in name for name in _check_names(ours))


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_feature_names_from_a_dataframe(Est):
    pd = pytest.importorskip("pandas")
    check_dataframe_column_names_consistency(Est.__name__, Est(max_iter=20))
    X, y = _iris()
    est = Est(max_iter=20, random_state=0).fit(pd.DataFrame(X, columns=list("abcd")), y)
    assert list(est.feature_names_in_) == list("abcd") and est.n_features_in_ == 4


def test_nothing_else_in_flatnn_imports_scikit_learn():
    code = "import sys, flatnn, flatnn.cli; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------ data
def _iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _binary():
    X, y = _iris()
    return X, np.where(y == 2, "virginica", "other")


def _multilabel():
    X, Y = make_multilabel_classification(n_samples=120, n_features=6, n_classes=3, random_state=0)
    return (X - X.mean(0)) / X.std(0), Y


def _regression(n_targets=1):
    X, y = make_regression(
        n_samples=120, n_features=5, n_targets=n_targets, noise=0.1, random_state=0
    )
    return X, y / y.std()


def _fit_both(Ours, Theirs, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Ours(**params).fit(X, y), Theirs(**params).fit(X, y)


def _max_diff(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(a, b))


# ------------------------------------------------------ the same objective as sklearn
CASES = {
    "multiclass": (MLPClassifier, sk.MLPClassifier, _iris),
    "binary": (MLPClassifier, sk.MLPClassifier, _binary),
    "multilabel": (MLPClassifier, sk.MLPClassifier, _multilabel),
    "regression": (MLPRegressor, sk.MLPRegressor, _regression),
    "regression-3-targets": (MLPRegressor, sk.MLPRegressor, lambda: _regression(3)),
}


SAME_LOSS = [c for c in CASES if c != "regression-3-targets"]  # see the last test here


@pytest.mark.parametrize("case", SAME_LOSS)
@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh", "identity"])
def test_lbfgs_follows_scikit_learn_step_for_step(case, activation):
    # Same initial draws from random_state, same objective (alpha's scaling, the
    # loss averaged like sklearn's), same scipy solver: the same iterates.
    Ours, Theirs, data = CASES[case]
    X, y = data()
    ours, theirs = _fit_both(
        Ours,
        Theirs,
        X,
        y,
        hidden_layer_sizes=(7, 5),
        solver="lbfgs",
        activation=activation,
        alpha=0.3,
        max_iter=15,
        random_state=3,
    )
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-8
    assert _max_diff(ours.intercepts_, theirs.intercepts_) < 1e-8
    assert ours.out_activation_ == theirs.out_activation_
    if Ours is MLPRegressor:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("momentum,nesterov", [(0.9, True), (0.5, False), (0.0, True)])
def test_sgd_follows_scikit_learn_step_for_step(case, momentum, nesterov):
    # 120-150 rows in batches of 32: a smaller last batch, where the L2 term
    # differs by design (alpha/(2b) here, alpha/(2 b_last) in sklearn): alpha=0 for
    # exactness there, and the alpha scaling is checked with full batches below.
    Ours, Theirs, data = CASES[case]
    X, y = data()
    ours, theirs = _fit_both(
        Ours,
        Theirs,
        X,
        y,
        hidden_layer_sizes=(6,),
        solver="sgd",
        momentum=momentum,
        nesterovs_momentum=nesterov,
        alpha=0.0,
        batch_size=32,
        learning_rate_init=0.05,
        shuffle=False,
        max_iter=12,
        random_state=1,
        tol=0.0,
    )
    assert ours.n_iter_ == theirs.n_iter_ == 12
    if case in SAME_LOSS:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-10


@pytest.mark.parametrize("case", ["multiclass", "regression"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_sgd_alpha_scaling_and_learning_rate_schedules_match(case, learning_rate):
    # batch 30 divides 150 and 120: every batch has sklearn's alpha / (2 b)
    Ours, Theirs, data = CASES[case]
    X, y = data()
    ours, theirs = _fit_both(
        Ours,
        Theirs,
        X,
        y,
        hidden_layer_sizes=(6,),
        solver="sgd",
        alpha=0.5,
        batch_size=30,
        learning_rate=learning_rate,
        learning_rate_init=0.2,
        power_t=0.3,
        shuffle=False,
        max_iter=60,
        n_iter_no_change=2,
        tol=1e-3,
        random_state=2,
    )
    assert ours.n_iter_ == theirs.n_iter_
    if learning_rate == "adaptive":
        # the schedule was exercised (the same losses: scikit-learn's rate went down too)
        assert ours.result_.history[-1]["learning_rate"] < 0.2
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-9


@pytest.mark.parametrize("case", ["multiclass", "multilabel", "regression-3-targets"])
def test_adam_matches_scikit_learn_up_to_where_epsilon_is_added(case):
    Ours, Theirs, data = CASES[case]
    X, y = data()
    # flatnn adds epsilon to sqrt(v-hat), sklearn to sqrt(v): with a negligible
    # epsilon the two are the same algorithm
    ours, theirs = _fit_both(
        Ours,
        Theirs,
        X,
        y,
        hidden_layer_sizes=(8,),
        alpha=0.01,
        batch_size=30,
        learning_rate_init=0.01,
        shuffle=False,
        max_iter=25,
        epsilon=1e-13,
        random_state=0,
    )
    if case in SAME_LOSS:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-8)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-8
    ours, theirs = _fit_both(
        Ours,
        Theirs,
        X,
        y,
        hidden_layer_sizes=(8,),
        alpha=0.01,
        batch_size=30,
        learning_rate_init=0.01,
        shuffle=False,
        max_iter=25,
        random_state=0,
    )
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-3


def test_multi_output_regression_reports_the_objective_its_gradient_follows():
    # sklearn's reported squared error is averaged over the k targets, its
    # gradient is that of the sum: the SGD steps agree (tested above); flatnn's
    # loss_ is the objective those steps descend.
    X, Y = _regression(3)
    est = MLPRegressor(
        hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.3, max_iter=15, random_state=0
    ).fit(X, Y)
    residual = est.predict(X) - Y
    l2 = 0.3 / (2 * len(X)) * sum(float((c**2).sum()) for c in est.coefs_)
    assert est.loss_ == pytest.approx(0.5 * (residual**2).sum() / len(X) + l2, rel=1e-10)
    assert est.loss_ == pytest.approx(est.network_.cost(est.params_, X, Y, 0.3), rel=1e-12)
    theirs = sk.MLPRegressor(
        hidden_layer_sizes=(6,),
        solver="sgd",
        alpha=0.3,
        max_iter=1,
        shuffle=False,
        batch_size=120,
        random_state=0,
    ).fit(X, Y)
    ours = MLPRegressor(
        hidden_layer_sizes=(6,),
        solver="sgd",
        alpha=0.3,
        max_iter=1,
        shuffle=False,
        batch_size=120,
        random_state=0,
    ).fit(X, Y)
    # one epoch of one full batch: loss_ is the objective at the (shared) start
    start = sk.MLPRegressor(
        hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=1e-300, max_iter=1, random_state=0
    ).fit(X, Y)
    pred = start.predict(X)
    data = 0.5 * ((pred - Y) ** 2).sum() / len(X)
    l2 = 0.3 / (2 * len(X)) * sum(float((c**2).sum()) for c in start.coefs_)
    assert ours.loss_ == pytest.approx(data + l2, rel=1e-10)
    assert theirs.loss_ == pytest.approx(data / 3 + l2, rel=1e-10)


def test_tol_stopping_and_early_stopping_match_scikit_learn():
    X, y = _iris()
    for early in (False, True):
        ours, theirs = _fit_both(
            MLPClassifier,
            sk.MLPClassifier,
            X,
            y,
            hidden_layer_sizes=(5,),
            solver="sgd",
            learning_rate_init=0.1,
            batch_size=15,
            shuffle=False,
            tol=1e-2,
            n_iter_no_change=3,
            early_stopping=early,
            random_state=4,
            max_iter=200,
        )
        assert ours.n_iter_ == theirs.n_iter_ < 200
        assert ours.loss_curve_ == pytest.approx(theirs.loss_curve_, rel=1e-9)
        assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-9  # early: the best epoch's weights
        if early:
            assert ours.validation_scores_ == theirs.validation_scores_
            assert ours.best_validation_score_ == theirs.best_validation_score_
            assert ours.best_loss_ is None
        else:
            assert ours.validation_scores_ is None
            assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-12)


def test_partial_fit_continues_the_optimizer_like_scikit_learn():
    X, y = _iris()
    ours = MLPClassifier(
        (6,),
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.3,
        batch_size=50,
        shuffle=False,
        random_state=0,
    )
    theirs = sk.MLPClassifier(
        (6,),
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.3,
        batch_size=50,
        shuffle=False,
        random_state=0,
    )
    for i in range(4):
        rows = slice(0, 150) if i else slice(0, 100)
        ours.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        theirs.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-10
    # the no-improvement count carries over from call to call: adaptive decays
    ours = MLPClassifier(
        (6,),
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.3,
        tol=10.0,
        n_iter_no_change=1,
        shuffle=False,
        random_state=0,
    )
    theirs = sk.MLPClassifier(
        (6,),
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.3,
        tol=10.0,
        n_iter_no_change=1,
        shuffle=False,
        random_state=0,
    )
    rates = []
    for _ in range(6):
        ours.partial_fit(X, y, classes=[0, 1, 2])
        theirs.partial_fit(X, y, classes=[0, 1, 2])
        rates.append(ours.result_.history[-1]["learning_rate"])
    # divided by 5 after the third and the fifth call; the same weights as scikit-learn's
    assert rates == pytest.approx([0.3, 0.3, 0.3, 0.06, 0.06, 0.3 / 25])
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-10
    reg = MLPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(*_regression())
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 1


def test_warm_start_continues_and_refuses_another_network():
    X, y = _iris()
    est = MLPClassifier((6,), solver="lbfgs", max_iter=5, random_state=0, warm_start=True)
    est.fit(X, y)
    first = est.params_.copy()
    loss = est.loss_
    est.fit(X, y)
    assert est.loss_ < loss and not np.array_equal(est.params_, first)
    assert len(est.loss_curve_) == 10
    est = MLPClassifier((6,), max_iter=5, random_state=0, warm_start=True, early_stopping=True)
    est.fit(X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_
    est.set_params(early_stopping=False).fit(X, y)  # continues, tracking the training loss
    assert est.best_loss_ == min(est.loss_curve_[-5:]) and len(est.loss_curve_) == 10
    est.set_params(hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match="continue the fitted"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        MLPClassifier((6,), max_iter=2, warm_start=True).fit(X, y).fit(X[y < 2], y[y < 2])


# ------------------------------------------------------ the flat vector
def test_coefs_and_intercepts_are_views_into_the_one_flat_vector():
    X, y = _iris()
    est = MLPClassifier((5, 4), solver="lbfgs", max_iter=10, random_state=0).fit(X, y)
    assert [c.shape for c in est.coefs_] == [(4, 5), (5, 4), (4, 3)]
    assert [b.shape for b in est.intercepts_] == [(5,), (4,), (3,)]
    assert est.params_.shape == (est.network_.n_params,) == (5 * 5 + 4 * 6 + 3 * 5,)
    for a in est.coefs_ + est.intercepts_:
        assert np.shares_memory(a, est.params_)
    before = est.predict_proba(X)
    est.coefs_[-1][...] = 0.0
    est.intercepts_[-1][...] = 0.0
    np.testing.assert_allclose(est.predict_proba(X), 1 / 3)
    assert not np.allclose(before, 1 / 3)
    thetas = est.network_.unpack(est.params_)
    assert np.array_equal(thetas[0][:, 1:], est.coefs_[0].T)


def test_float32_stays_float32():
    X, y = _iris()
    X32 = X.astype(np.float32)
    for est in (
        MLPClassifier((6,), max_iter=5, random_state=0).fit(X32, y),
        MLPClassifier((6,), solver="lbfgs", max_iter=5, random_state=0, dtype="float32").fit(X, y),
    ):
        assert est.params_.dtype == np.float32
        assert est.coefs_[0].dtype == np.float32
        assert est.predict_proba(X32).dtype == np.float32
        assert est.result_.x.dtype == np.float32
    est = MLPClassifier((6,), max_iter=5, random_state=0, dtype=np.float64).fit(X32, y)
    assert est.params_.dtype == np.float64


# ------------------------------------------------------ every solver
@pytest.mark.parametrize("solver", ["lbfgs"] + list(SCIPY_METHODS))
def test_every_scipy_method_fits_and_records_a_loss_curve(solver):
    X, y = _iris()
    est = MLPClassifier((6,), solver=solver, max_iter=30, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.85
    assert est.result_.nit == est.n_iter_ >= 1
    assert len(est.loss_curve_) == len(est.result_.history)
    assert est.loss_curve_ == [history_fun(h) for h in est.result_.history]
    assert est.best_loss_ == min(est.loss_curve_ + [est.loss_])
    assert est.loss_ == pytest.approx(est.result_.fun)
    assert est.validation_scores_ is None
    if solver not in ("SLSQP", "trust-constr"):  # neither is monotone
        assert est.loss_curve_[-1] < est.loss_curve_[0]


@pytest.mark.parametrize(
    "solver",
    [
        "adam",
        "sgd",
        "momentum",
        "nesterov",
        "rmsprop",
        optimizers.rmsprop(0.8),
        optimizers.adam(0.8, 0.99),
    ],
)
def test_every_sgd_rule_fits_and_has_partial_fit(solver):
    X, y = _iris()
    est = MLPClassifier(
        (8,), solver=solver, learning_rate_init=0.01, max_iter=60, random_state=0
    ).fit(X, y)
    assert est.score(X, y) > 0.85
    assert len(est.loss_curve_) == est.n_iter_ == est.result_.nit
    assert est.loss_curve_ == pytest.approx([history_fun(h) for h in est.result_.history])
    assert est.t_ == 150 * est.n_iter_
    assert hasattr(est, "partial_fit")


def test_method_options_and_max_iter_reach_scipy():
    X, y = _iris()
    est = MLPClassifier(
        (6,),
        solver="L-BFGS-B",
        max_iter=200,
        tol=0.0,
        random_state=0,
        method_options={"maxcor": 3, "ftol": 0.0, "maxfun": 7},
    ).fit(X, y)
    assert est.result_.nfev <= 9  # maxfun 7 (plus the evaluation at the end)
    est = MLPClassifier((6,), solver="TNC", max_iter=4, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=4"):
        est.fit(X, y)
    assert est.n_iter_ == 4
    with pytest.raises(TypeError, match="'method_options' parameter of MLPClassifier must be None"):
        MLPClassifier(solver="CG", method_options=[1]).fit(X, y)
    with pytest.raises(ValueError, match="method_options are options of the scipy solvers"):
        MLPClassifier(solver="adam", method_options={"maxcor": 3}).fit(X, y)


def test_convergence_warning_like_scikit_learn():
    X, y = _iris()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        MLPClassifier((6,), max_iter=3).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPClassifier((6,), solver="lbfgs", max_iter=3).fit(X, y)


def test_a_diverging_run_warns_and_keeps_the_best_finite_weights():
    X, y = _iris()
    est = MLPClassifier((6,), solver="sgd", learning_rate_init=1e4, max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning, match="stopped"):
        est.fit(X, y)
    assert est.result_.status in (2, 3) and not est.result_.success
    assert np.isfinite(est.params_).all()
    assert est.predict(X).shape == (150,)


def test_verbose_prints_the_loss_of_each_epoch(capsys):
    X, y = _iris()
    MLPClassifier((6,), max_iter=3, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]
    MLPClassifier((6,), max_iter=3, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------ targets
def test_multilabel_and_multioutput_shapes():
    X, Y = _multilabel()
    clf = MLPClassifier((10,), solver="lbfgs", max_iter=50, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic"
    assert clf.predict(X).shape == Y.shape and set(np.unique(clf.predict(X))) <= {0, 1}
    assert clf.predict_proba(X).shape == Y.shape
    assert clf.score(X, Y) > 0.3  # subset accuracy
    X, Y = _regression(3)
    reg = MLPRegressor(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=100, random_state=0).fit(
        X, Y
    )
    assert reg.predict(X).shape == Y.shape and reg.score(X, Y) > 0.9
    assert reg.n_outputs_ == 3 and reg.network_.sizes == (5, 10, 3)


def test_binary_string_labels_and_probabilities():
    X, y = _binary()
    clf = MLPClassifier((6,), solver="lbfgs", max_iter=50, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["other", "virginica"] and clf.network_.sizes[-1] == 1
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.9


# ------------------------------------------------------ in scikit-learn's machinery
def test_pipeline_grid_search_cross_val_score_clone_and_pickle(tmp_path):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier((8,), solver="lbfgs", max_iter=60, random_state=0)
    )
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    grid = GridSearchCV(
        pipe,
        {"mlpclassifier__alpha": [1e-4, 1.0], "mlpclassifier__solver": ["lbfgs", "trust-ncg"]},
        cv=3,
    ).fit(X, y)
    assert grid.best_score_ > 0.85 and len(grid.cv_results_["params"]) == 4
    est = grid.best_estimator_[-1]
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "params_")
    copy = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(copy.predict_proba(X), grid.best_estimator_.predict_proba(X))
    assert np.shares_memory(copy[-1].coefs_[0], copy[-1].params_)
    rule = MLPClassifier(solver=optimizers.momentum(0.5))
    assert clone(rule).solver == optimizers.momentum(0.5)


@pytest.mark.parametrize(
    "Ours,Theirs", [(MLPClassifier, sk.MLPClassifier), (MLPRegressor, sk.MLPRegressor)]
)
def test_constructors_take_scikit_learns_parameters_in_its_order(Ours, Theirs):
    ours, theirs = inspect.signature(Ours).parameters, inspect.signature(Theirs).parameters
    extra = ["dtype", "method_options", "init", "device"]
    assert list(ours) == list(theirs) + extra
    for name, p in theirs.items():
        assert ours[name].kind == p.kind, name
    est = MLPRegressor("poisson", (5,), "tanh", solver="sgd")
    assert (est.loss, est.hidden_layer_sizes, est.activation, est.solver) == (
        "poisson",
        (5,),
        "tanh",
        "sgd",
    )
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(TypeError):
        Ours(solvr="sgd")


# ------------------------------------------------------ model files
@pytest.mark.parametrize("case", ["multiclass", "binary", "multilabel", "regression-3-targets"])
def test_save_and_load_through_flatnn_model_files(tmp_path, case):
    Ours, _, data = CASES[case]
    X, y = data()
    est = Ours(
        hidden_layer_sizes=(6,), solver="lbfgs", max_iter=20, random_state=0, dtype="float32"
    ).fit(X, y)
    path = est.save(tmp_path / "model.npz", note="hello")
    net, params, metadata = flatnn.load(path)  # a plain flatnn model file
    assert net == est.network_ and np.array_equal(params, est.params_)
    assert params.dtype == np.float32 and metadata["note"] == "hello"
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {"params", "header"}
    back = Ours.load(path)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.get_params() == est.get_params()
    assert back.loss_curve_ == pytest.approx(est.loss_curve_)
    if Ours is MLPClassifier:
        np.testing.assert_array_equal(back.classes_, est.classes_)
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    with pytest.raises(ValueError, match="holds no flatnn.sklearn"):
        (MLPRegressor if Ours is MLPClassifier else MLPClassifier).load(path)


def test_a_rule_object_solver_is_not_stored_but_named(tmp_path):
    X, y = _iris()
    est = MLPClassifier((6,), solver=optimizers.momentum(0.5), max_iter=5, random_state=0)
    est.fit(X, y)
    path = est.save(tmp_path / "m.npz")
    meta = flatnn.load(path)[2]["flatnn.sklearn"]
    assert meta["omitted_params"] == ["solver"]
    back = MLPClassifier.load(path)
    assert back.solver == "adam"
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


# ------------------------------------------------------ errors
@pytest.mark.parametrize(
    "params,name,expected",
    [
        ({"solver": "newton"}, "solver", "a str among"),
        ({"solver": 3}, "solver", "an object implementing 'init' and 'update'"),
        ({"activation": "softmax"}, "activation", "a str among"),
        ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes", "made of int > 0"),
        ({"hidden_layer_sizes": (4.5,)}, "hidden_layer_sizes", "a sequence of int"),
        ({"alpha": -1.0}, "alpha", r"a float in the range \[0.0, inf\)"),
        ({"alpha": np.inf}, "alpha", r"a float in the range \[0.0, inf\)"),
        ({"alpha": "big"}, "alpha", "a float"),
        ({"max_iter": 0}, "max_iter", r"an int in the range \[1, inf\)"),
        ({"batch_size": "all"}, "batch_size", "a str among"),
        ({"learning_rate": "cyclic"}, "learning_rate", "a str among"),
        ({"dtype": "float16"}, "dtype", "None, a str among"),
        ({"init": "zeros"}, "init", "a str among"),
        ({"early_stopping": "yes"}, "early_stopping", "an instance of 'bool'"),
        ({"validation_fraction": 1.0, "early_stopping": True}, "validation_fraction", "a float"),
        ({"power_t": -0.5}, "power_t", "a float"),
        ({"beta_1": 1.0}, "beta_1", r"\[0.0, 1.0\)"),
        ({"tol": np.inf}, "tol", "a float"),
        ({"max_fun": 0}, "max_fun", "an int"),
        ({"momentum": 1.5}, "momentum", r"\[0.0, 1.0\]"),
        ({"n_iter_no_change": 0}, "n_iter_no_change", "an int"),
    ],
)
def test_bad_parameters_fail_at_fit_in_scikit_learns_words(params, name, expected):
    X, y = _iris()
    est = MLPClassifier(**params)  # never in __init__ (scikit-learn's rule)
    with pytest.raises(
        InvalidParameterError, match=f"The '{name}' parameter of MLPClassifier must be .*{expected}"
    ) as info:
        est.fit(X, y)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


@pytest.mark.parametrize("solver", ["lbfgs", "adam", "sgd"])
def test_every_parameter_is_checked_whatever_the_solver(solver):
    X, y = _iris()
    for params in ({"beta_1": 1.0}, {"momentum": -1}, {"max_fun": 0}, {"power_t": -1}):
        with pytest.raises(InvalidParameterError, match=f"'{next(iter(params))}' parameter"):
            MLPClassifier(solver=solver, **params).fit(X, y)


def test_scikit_learns_wider_ranges_are_accepted():
    X, y = _iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((5,), solver="sgd", momentum=1.0, max_iter=3, random_state=0)
        assert est.fit(X, y).n_iter_ == 3
        est = MLPClassifier((5,), n_iter_no_change=np.inf, max_iter=4, tol=1e9, random_state=0)
        assert est.fit(X, y).n_iter_ == 4  # never stops for lack of improvement


def test_what_flatnn_does_not_do_fails_loudly():
    X, y = _iris()
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


# ------------------------------------------------------ the benchmark
def test_bench_sklearn_quick_writes_its_table_only_where_told(tmp_path):
    root = Path(__file__).resolve().parent.parent
    results = root / "experiments" / "results"
    before = {p.name: p.stat().st_mtime_ns for p in results.glob("bench_sklearn.*")}
    env = dict(os.environ)
    env.setdefault("FLATNN_DATA", str(root.parent / "shared" / "data"))
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "experiments" / "bench_sklearn.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "bench_sklearn.json").read_text())
    assert result["quick"] is True and result["machine"]["threads"] == 1
    rows = {(r["solver"], r["dtype"]): r for r in result["rows"]}
    assert set(rows) == {
        (s, d) for s in ("adam", "lbfgs", "rmsprop") for d in ("float64", "float32")
    }
    for (solver, dtype), r in rows.items():
        assert r["m"] == 2000 and r["flatnn"]["median_s"] > 0
        assert r["flatnn"]["weights_dtype"] == [dtype]
        assert 0.3 < r["flatnn"]["median_accuracy"] <= 1.0  # well above chance (0.1)
        if solver != "rmsprop":
            assert r["speedup"] == pytest.approx(r["sklearn"]["median_s"] / r["flatnn"]["median_s"])
            # the same start and the same steps: the same accuracy, give or take a digit
            assert abs(r["accuracy_gain"]) < 0.02
        else:
            assert "sklearn" not in r
    table = (tmp_path / "bench_sklearn.md").read_text()
    assert table.count("| adam |") == 2 and "Machines" in table
    after = {p.name: p.stat().st_mtime_ns for p in results.glob("bench_sklearn.*")}
    assert after == before  # --quick never touches experiments/results/


def test_bench_sklearn_sparse_rows_match_scikit_learn(tmp_path):
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env.setdefault("FLATNN_DATA", str(root.parent / "shared" / "data"))
    command = [sys.executable, str(root / "experiments" / "bench_sklearn.py"), "--quick"]
    command += ["--solvers", "", "--dtypes", "float64", "--sparse", "--out", str(tmp_path)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "bench_sklearn.json").read_text())
    lbfgs, adam = result["sparse_rows"]
    assert (lbfgs["solver"], adam["solver"]) == ("lbfgs", "adam")
    assert lbfgs["density"] < 0.02 and lbfgs["flatnn"]["median_s"] > 0
    assert abs(lbfgs["accuracy_gain"]) < 0.02  # the same start, the same lbfgs on the same CSR
    assert abs(adam["accuracy_gain"]) < 0.05  # the same start, batches in another order
    assert "Sparse X" in (tmp_path / "bench_sklearn.md").read_text()


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_a_wrong_argument_names_the_estimator_not_its_base_class(Estimator):
    with pytest.raises(
        TypeError, match=rf"^{Estimator.__name__}\.__init__\(\): .*'hiden_layer_sizes'"
    ):
        Estimator(hiden_layer_sizes=(3,))
    with pytest.raises(
        TypeError, match=rf"^{Estimator.__name__}\.__init__\(\): too many positional"
    ):
        Estimator(*range(40))
    est = (
        Estimator((5,), "tanh") if Estimator is MLPClassifier else Estimator("squared_error", (5,))
    )
    assert est.hidden_layer_sizes == (5,)
