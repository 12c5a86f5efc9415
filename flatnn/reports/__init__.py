"""Reports of runs: learning-curve plots and the scores the command line prints.

Library code the front ends call; nothing here prints.
"""

from __future__ import annotations

__all__ = ["environment", "outputs", "plots", "scores"]
