"""The bottom layer: argument checks, array namespaces and threads.

Nothing here imports from the rest of flatnn.
"""

__all__ = ["checks", "namespace", "threads"]
