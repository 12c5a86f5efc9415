"""Model files: :func:`save` and :func:`load` (an ``.npz`` read without pickle)."""

from flatnn.io.models import check_writable, load, save

__all__ = ["save", "load", "check_writable"]
