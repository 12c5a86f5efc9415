import numpy as np
import pytest

from flatnn.core.metrics import (
    classification_scores,
    confusion_matrix,
    evaluation_report,
    regression_scores,
)


def test_confusion_matrix_counts_pairs():
    c = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 4)
    assert c.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    with pytest.raises(ValueError, match=r"y_pred must lie in \[0, 2\), got the label 2"):
        confusion_matrix([0, 1], [0, 2], 2)
    with pytest.raises(TypeError, match="integer labels"):
        confusion_matrix([0.0], [0], 2)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix([0, 1], [0], 2)


def test_evaluation_report():
    r = evaluation_report(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert r.class_names == ("a", "b", "c") and r.m == 5
    assert r.accuracy == pytest.approx(0.6)
    assert r.support.tolist() == [2, 3, 0] and r.correct.tolist() == [1, 2, 0]
    np.testing.assert_allclose(r.class_accuracy[:2], [0.5, 2 / 3])
    assert np.isnan(r.class_accuracy[2])


def test_classification_scores_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    y_pred[y_pred == 3] = 2  # class 3 never predicted: precision 0 by convention
    s = classification_scores(y_true, y_pred, ["a", "b", "c", "d"])
    p, r, f, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=range(4), zero_division=0
    )
    np.testing.assert_allclose([c["precision"] for c in s["classes"]], p)
    np.testing.assert_allclose([c["recall"] for c in s["classes"]], r)
    np.testing.assert_allclose([c["f1"] for c in s["classes"]], f)
    assert [c["support"] for c in s["classes"]] == support.tolist()
    assert s["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert s["confusion"] == metrics.confusion_matrix(y_true, y_pred, labels=range(4)).tolist()


def test_regression_scores_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y, pred = rng.normal(size=50), rng.normal(size=50)
    s = regression_scores(y, pred)
    assert s["r2"] == pytest.approx(metrics.r2_score(y, pred))
    assert s["mae"] == pytest.approx(metrics.mean_absolute_error(y, pred))
    assert s["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y, pred)))
    assert np.isnan(regression_scores(np.ones(3), np.zeros(3))["r2"])
