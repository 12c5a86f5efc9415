"""scikit-learn estimators: drop-in ``MLPClassifier`` and ``MLPRegressor``."""

from flatnn.sklearn.estimators import *  # noqa: F403
from flatnn.sklearn.estimators import __all__  # noqa: F401
