"""scikit-learn's semantics the estimators keep: labels, weights, sparse X, Poisson, divergence."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy import sparse  # noqa: E402
from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import PoissonRegressor  # noqa: E402

from flatnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# ------------------------------------------------------ partial_fit's classes
@pytest.mark.parametrize("classes", [[2], [0, 2], [0, 5]])
def test_the_first_partial_fit_checks_y_against_classes(classes):
    clf = MLPClassifier(solver="sgd")
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit([[3, 2], [1, 6]], [1, 0], classes=classes)


def test_partial_fit_with_every_class_given_trains_and_predicts_them():
    X, y = _iris()
    clf = MLPClassifier((5,), solver="sgd", random_state=0)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # class 2 not yet seen
    assert list(clf.classes_) == [0, 1, 2] and clf.predict_proba(X).shape == (150, 3)


# ------------------------------------------------------ sample weights
@pytest.mark.parametrize("solver", ["lbfgs", "CG"])
def test_integer_weights_are_repeated_rows_and_zero_weights_removed_rows(solver):
    X, y = _iris()
    w = np.random.default_rng(0).integers(0, 3, len(y))
    params = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=30, random_state=0)
    weighted = _quiet_fit(MLPClassifier(**params), X, y, sample_weight=w)
    repeated = _quiet_fit(MLPClassifier(**params), np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.params_, repeated.params_, rtol=1e-7, atol=1e-9)
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-8)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weights_in_full_batch_sgd_are_repeated_and_removed_rows(solver):
    X, y = _iris()
    w = np.random.default_rng(1).integers(0, 3, len(y))  # zeros remove rows
    params = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=15, shuffle=False)
    weighted = _quiet_fit(
        MLPClassifier(batch_size=len(y), random_state=0, **params), X, y, sample_weight=w
    )
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    repeated = _quiet_fit(MLPClassifier(batch_size=len(yr), random_state=0, **params), Xr, yr)
    np.testing.assert_allclose(weighted.params_, repeated.params_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-9)


def test_weighted_early_stopping_scores_are_weighted():
    X, y = make_regression(n_samples=100, n_features=2, random_state=42)
    params = dict(
        hidden_layer_sizes=10,
        early_stopping=True,
        tol=1e-2,
        learning_rate_init=0.01,
        batch_size=10,
        random_state=42,
    )
    ones = _quiet_fit(MLPRegressor(**params), X, y, sample_weight=np.ones_like(y))
    none = _quiet_fit(MLPRegressor(**params), X, y)
    np.testing.assert_allclose(ones.predict(X), none.predict(X))
    assert ones.validation_scores_ == pytest.approx(none.validation_scores_)
    w = np.random.default_rng(0).uniform(0.5, 2, len(y))
    weighted = _quiet_fit(MLPRegressor(**params), X, y, sample_weight=w)
    assert weighted.validation_scores_ != pytest.approx(none.validation_scores_)


def test_unit_weights_change_nothing():
    X, y = make_regression(n_samples=80, n_features=3, noise=0.1, random_state=0)
    params = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20, random_state=0)
    ones = _quiet_fit(MLPRegressor(**params), X, y, sample_weight=np.ones(len(y)))
    none = _quiet_fit(MLPRegressor(**params), X, y)
    np.testing.assert_allclose(ones.params_, none.params_, rtol=1e-10)


@pytest.mark.parametrize("w", [np.ones(3), -np.ones(150), np.full(150, np.nan)])
def test_bad_weights_are_refused(w):
    X, y = _iris()
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier(solver="lbfgs").fit(X, y, sample_weight=w)


# ------------------------------------------------------ sparse X and Poisson
def test_sparse_x_gives_the_dense_results_with_a_scipy_solver():
    X, y = _iris()
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=40, random_state=0)
    dense = _quiet_fit(MLPClassifier(**params), X, y)
    for container in (sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array):
        est = _quiet_fit(MLPClassifier(**params), container(X), y)
        np.testing.assert_allclose(est.params_, dense.params_, rtol=1e-8, atol=1e-10)
        np.testing.assert_array_equal(est.predict(container(X)), dense.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_sparse_x_gives_the_dense_results_with_the_sgd_family(solver):
    X, y = _iris()
    w = np.random.default_rng(0).uniform(0.5, 2, X.shape[0])
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=6, random_state=0)
    dense = _quiet_fit(MLPClassifier(**params), X, y, sample_weight=w)
    stopped = _quiet_fit(MLPRegressor(early_stopping=True, **params), X, y.astype(float))
    for container in (sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array):
        est = _quiet_fit(MLPClassifier(**params), container(X), y, sample_weight=w)
        np.testing.assert_allclose(est.params_, dense.params_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(est.loss_curve_, dense.loss_curve_, rtol=1e-10)
        np.testing.assert_array_equal(est.predict(container(X)), dense.predict(X))
        reg = _quiet_fit(MLPRegressor(early_stopping=True, **params), container(X), y.astype(float))
        np.testing.assert_allclose(reg.params_, stopped.params_, rtol=1e-10, atol=1e-12)
        assert reg.validation_scores_ == pytest.approx(stopped.validation_scores_, rel=1e-10)
    partial_dense = MLPClassifier(**params)
    partial_sparse = MLPClassifier(**params)
    for _ in range(3):
        partial_dense.partial_fit(X, y, classes=np.unique(y))
        partial_sparse.partial_fit(sparse.csc_matrix(X), y, classes=np.unique(y))
    np.testing.assert_allclose(
        partial_sparse.params_, partial_dense.params_, rtol=1e-10, atol=1e-12
    )


def test_poisson_with_one_identity_unit_is_the_poisson_glm():
    rng = np.random.default_rng(42)
    X = np.linspace(0, 1, 100)
    y = rng.poisson(np.exp(X + 1))
    X = X.reshape(-1, 1)
    glm = PoissonRegressor(alpha=0, tol=1e-7).fit(X, y)
    mlp = MLPRegressor(
        loss="poisson",
        hidden_layer_sizes=(1,),
        activation="identity",
        alpha=0,
        solver="lbfgs",
        tol=1e-7,
        random_state=1,
    ).fit(X, y)
    assert mlp.out_activation_ == "exp"
    np.testing.assert_allclose(mlp.predict(X), glm.predict(X), rtol=1e-4)
    sgd = _quiet_fit(MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), max_iter=5), X, y)
    assert (sgd.predict(X) > 0).all()


# ------------------------------------------------------ a diverging run
def test_a_diverging_run_with_early_stopping_records_nan_scores():
    X, y = _iris()
    est = MLPRegressor(
        hidden_layer_sizes=100,
        activation="identity",
        solver="sgd",
        learning_rate_init=1,
        max_iter=20,
        early_stopping=True,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(ConvergenceWarning, match="recorded as nan"):
            est.fit(X, y)
    assert est.n_iter_ == 20 and len(est.validation_scores_) == 20
    assert np.isnan(est.validation_scores_[-1]) and np.isnan(est.loss_curve_[-1])
    assert np.isfinite(est.params_).all()


def test_data_too_large_for_any_weights_is_scikit_learns_value_error():
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    with (
        pytest.raises(ValueError, match="Solver produced non-finite parameter weights"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        MLPRegressor().fit(X, rng.standard_normal(10))
