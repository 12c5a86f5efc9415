import numpy as np
import pytest

from flatnn.core.metrics import confusion_matrix, evaluation_report


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
