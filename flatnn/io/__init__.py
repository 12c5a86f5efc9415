"""Model files (:func:`save`, :func:`load`: an ``.npz`` read without pickle), safe writes,
run records (history files) and exports (ONNX, safetensors, scikit-learn)."""

from flatnn.io.files import check_writable
from flatnn.io.models import load, save

__all__ = ["save", "load", "check_writable"]
