"""The files a run will write, checked before it starts: no two the same, nothing replaced unasked.

A training run writes several files (the model, the plot of its curves, its
history); some paths the user named, others are derived (``model.npz`` ->
``model.png``). :func:`check_outputs` runs before any training: two outputs on
one path, or a derived path where a file already is, are refused; an existing
file the user named is replaced, and reported so that the run can say so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["Output", "check_outputs"]


class Output(NamedTuple):
    """One file a run will write.

    Attributes
    ----------
    what : str
        What it is, for messages ("the model", "the plot").
    path : str
        Where it goes.
    named : bool
        Whether the user gave this path (then an existing file may be replaced).
    how_to_name : str
        How the user names it, for messages ("--out PATH").
    """

    what: str
    path: str
    named: bool
    how_to_name: str


def _same(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs: Sequence[Output]) -> list[Output]:
    """Check the outputs of a run before it starts; the existing files it will replace.

    Parameters
    ----------
    outputs : sequence of Output

    Returns
    -------
    list of Output
        The named outputs whose path holds a file now (to be announced when replaced).

    Raises
    ------
    ValueError
        When two outputs share a path, when a derived path holds a file, or when
        a path is a folder.
    """
    for i, a in enumerate(outputs):
        for b in outputs[i + 1 :]:
            if _same(a.path, b.path):
                raise ValueError(
                    f"{b.what} would be written to {b.path}, which is also {a.what}'s path; "
                    f"give them different names ({a.how_to_name}, {b.how_to_name})"
                )
    replacing = []
    for out in outputs:
        if os.path.isdir(out.path):
            raise ValueError(f"{out.what} would be written to {out.path}, which is a folder")
        if os.path.lexists(out.path):
            if not out.named:
                raise ValueError(
                    f"{out.path} exists and {out.what} would replace it: name it "
                    f"({out.how_to_name}) to replace it, or choose another path"
                )
            replacing.append(out)
    return replacing
