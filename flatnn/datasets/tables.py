"""Tables of your own: CSV, Parquet, NPZ and NPY pairs read as ``(X, y)``.

:func:`read_table` reads one file into a :class:`Table`: the feature matrix
``X`` (float64, one row per sample), the target ``y`` (class indices for
classification, floats for regression), the column names and the class names.

Formats, chosen by the file's extension:

``.csv``
    A header row of column names, then one row per sample, comma separated.
    Read row by row: the file is never held in memory as text.
``.parquet`` / ``.pq``
    Read with the optional ``pyarrow`` (``pip install 'flatnn[parquet]'``).
``.npz``
    Two arrays, ``X`` (m, n) and ``y`` (m,); columns are named ``x0, x1, ...``.
``.npy``
    A pair of files ``NAME_X.npy`` and ``NAME_y.npy`` (or ``X.npy`` and ``y.npy``)
    in one folder; either file may be named.

The target is the last column unless ``target=`` names another. The task is
inferred from the target unless ``task=`` says it: integers or text mean
classes, other numbers mean regression. Class names (text, or the integers
themselves) are kept in sorted order; ``y`` holds their indices.

Categorical features are not encoded: a feature column holding text is an
error naming the column (encode it as numbers, e.g. one-hot, before training).
Missing values (an empty cell, ``NA``, ``NaN``, ``null``, ``?``) are an error
naming the column and the number of rows; so is an infinite feature value. A
file larger than ``max_bytes`` (default :data:`MAX_TABLE_BYTES`) or wider than
``max_columns`` (default :data:`MAX_COLUMNS`) is refused with its size before
its rows are read.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from flatnn.datasets import table_readers as readers

__all__ = [
    "MAX_COLUMNS",
    "MAX_TABLE_BYTES",
    "TASKS",
    "Table",
    "file_sha256",
    "read_table",
]

MAX_TABLE_BYTES = 1 << 30
"""The largest table file :func:`read_table` reads by default (1 GiB)."""

MAX_COLUMNS = 100_000
"""The most columns :func:`read_table` accepts by default."""

TASKS = ("classify", "regress")
"""The two tasks: ``classify`` (class indices) and ``regress`` (real targets)."""


@dataclass(frozen=True)
class Table:
    """One table read from a file: features, target and what they are.

    Attributes
    ----------
    X : ndarray, shape (m, n_features), float64
    y : ndarray, shape (m,)
        int64 class indices into ``class_names`` (classify) or float64 (regress).
    task : {"classify", "regress"}
    feature_names : tuple of str, length n_features
    target : str
        The target column's name.
    class_names : tuple of (str or int or float)
        The classes in index order; empty for regression.
    task_inferred : bool
        True when the task was inferred from the target's values.
    path : str
    sha256 : str
        SHA-256 of the file's bytes (hex), for run records.
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: tuple
    target: str
    class_names: tuple = ()
    task_inferred: bool = False
    path: str = ""
    sha256: str = field(default="", repr=False)

    @property
    def n_rows(self) -> int:
        """int: the number of samples ``m``."""
        return int(self.X.shape[0])

    def take(self, rows: np.ndarray) -> Table:
        """The same table restricted to ``rows`` (an index array)."""
        return Table(
            self.X[rows],
            self.y[rows],
            self.task,
            self.feature_names,
            self.target,
            self.class_names,
            self.task_inferred,
            self.path,
            self.sha256,
        )


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_table(
    path: str | os.PathLike,
    target: str | None = None,
    task: str | None = None,
    *,
    like: Table | None = None,
    need_target: bool = True,
    max_bytes: int = MAX_TABLE_BYTES,
    max_columns: int = MAX_COLUMNS,
) -> Table:
    """Read a CSV, Parquet, NPZ or NPY-pair file as a :class:`Table`.

    Parameters
    ----------
    path : str or os.PathLike
    target : str, optional
        The target column; default the last column (``like.target`` when
        ``like`` is given).
    task : {"classify", "regress"}, optional
        Default: inferred (integers or text: classify; other numbers: regress).
    like : Table, optional
        A training table this file must match (validation, test or prediction
        rows): the same feature columns (in any order; reordered to ``like``'s),
        the same task, and classes among ``like.class_names``.
    need_target : bool, default True
        With ``like`` and False (rows to predict), only the features are read
        (``y`` empty): the target column may be absent, and is skipped if present.
    max_bytes, max_columns : int
        Larger files and wider tables are refused before their rows are read.

    Returns
    -------
    Table

    Raises
    ------
    ValueError
        Naming the file and what is wrong: an unknown extension, a file over
        ``max_bytes``, no header or no rows, ragged rows, text in a feature
        column, missing values (column and row count), an unknown target
        column, one class only, a file that does not match ``like``.
    ImportError
        For a Parquet file when ``pyarrow`` is not installed.
    FileNotFoundError
        When there is no file at ``path``.
    """
    name = os.fspath(path)
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if like is not None:
        target = like.target if target is None else target
        task = like.task if task is None else task
    kind = _kind(name)
    optional = like is not None and not need_target  # the target column may be absent
    files = _npy_pair(name) if kind == "npy" else (name,)
    for file in files:
        _check_file(file, max_bytes)
    if kind == "csv":
        found = readers.read_csv(name, target, max_columns, optional)
    elif kind == "parquet":
        found = readers.read_parquet(name, target, max_columns, optional)
    else:
        found = readers.read_arrays(files, kind, max_columns)
    names, columns, raw_target, target = found
    if optional:  # rows to predict: the target, if the file has one, is not read
        raw_target = None
    # one file: its own SHA-256; an .npy pair: the SHA-256 of the two digests
    digests = [file_sha256(f) for f in files]
    digest = (
        digests[0] if len(files) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()
    )
    return _assemble(name, names, columns, raw_target, target, task, like, digest)


def _kind(name: str) -> str:
    lower = name.lower()
    for ext, kind in ((".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet")):
        if lower.endswith(ext):
            return kind
    if lower.endswith(".npz"):
        return "npz"
    if lower.endswith(".npy"):
        return "npy"
    raise ValueError(
        f"{name}: unknown table format; expected a .csv, .parquet, .npz file or a "
        f"NAME_X.npy / NAME_y.npy pair"
    )


def _npy_pair(name: str) -> tuple[str, str]:
    folder, base = os.path.split(name)
    stem = base[:-4]
    for x_end, y_end in (("X", "y"), ("x", "y")):
        for end in (x_end, y_end):
            if stem == end or stem.endswith(("_" + end, "-" + end, "." + end)):
                head = stem[: len(stem) - 1]
                return (
                    os.path.join(folder, head + x_end + ".npy"),
                    os.path.join(folder, head + y_end + ".npy"),
                )
    raise ValueError(
        f"{name}: an .npy table is a pair NAME_X.npy / NAME_y.npy (or X.npy / y.npy) "
        f"in one folder; name either file"
    )


def _check_file(name: str, max_bytes: int) -> None:
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{name}: is a directory, not a table file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{name}: not a regular file (a FIFO, socket or device)")
    if st.st_size > max_bytes:
        raise ValueError(
            f"{name}: the file is {_fmt_bytes(st.st_size)}; flatnn reads tables of at most "
            f"{_fmt_bytes(max_bytes)} (max_bytes): use a sample of the rows"
        )
    if st.st_size == 0:
        raise ValueError(f"{name}: the file is empty; expected a header row and data rows")


def _fmt_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# ------------------------------------------------------- target, task
def _assemble(name, names, columns, raw, target, task, like, digest):
    m = columns[0].shape[0] if columns else len(raw or ())
    X = np.empty((m, len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        X[:, j] = col
    if like is not None:
        X = _match_features(name, names, X, like)
        names = list(like.feature_names)
    if raw is None:  # prediction rows without the target
        task = task or (like.task if like is not None else "regress")
        classes = like.class_names if like is not None else ()
        empty = np.empty(0, dtype=np.int64 if task == "classify" else np.float64)
        return Table(X, empty, task, tuple(names), target, tuple(classes), False, name, digest)
    inferred = task is None
    task = task or _infer_task(raw)
    if task == "regress":
        y, classes = _real_target(name, target, raw), ()
    else:
        known = like.class_names if like is not None else None
        y, classes = _class_target(name, target, raw, known)
    return Table(X, y, task, tuple(names), target, tuple(classes), inferred, name, digest)


def _match_features(name, names, X, like):
    want = list(like.feature_names)
    if set(names) != set(want) or len(names) != len(want):
        missing = [n for n in want if n not in names]
        extra = [n for n in names if n not in want]
        raise ValueError(
            f"{name}: the features do not match the training data's {len(want)} columns "
            f"(missing {missing[:5]}, unexpected {extra[:5]})"
        )
    order = [names.index(n) for n in want]
    return X[:, order]


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _infer_task(raw: Sequence[str]) -> str:
    if all(_is_int(c) for c in raw):
        return "classify"
    if all(_is_number(c) for c in raw):
        return "regress"
    return "classify"


def _real_target(name, target, raw):
    try:
        y = np.array([float(c) for c in raw], dtype=np.float64)
    except ValueError:
        bad = next(c for c in raw if not _is_number(c))
        raise ValueError(
            f"{name}: target {target!r} holds text ({bad[:20]!r}); regression needs numbers "
            f"(or use task 'classify')"
        ) from None
    if not np.isfinite(y).all():
        raise ValueError(
            f"{name}: target {target!r} holds {int((~np.isfinite(y)).sum())} non-finite values"
        )
    return y


def _class_value(cell):
    """The class name of a cell: an int for integer text, a float for other numbers."""
    if _is_int(cell):
        return int(cell)
    if _is_number(cell) and math.isfinite(float(cell)):
        return float(cell)
    return cell


def _class_target(name, target, raw, known):
    values = [_class_value(c) for c in raw]
    if any(isinstance(v, str) for v in values):  # text classes: numbers as their text
        values = list(raw)
    if known is None:
        classes = sorted(set(values))
        if len(classes) < 2:
            shown = repr(classes[0]) if classes else "none"
            raise ValueError(
                f"{name}: target {target!r} has one class ({shown}) in {len(values)} rows; "
                f"classification needs at least two classes"
            )
    else:
        classes = list(known)
    index = {c: i for i, c in enumerate(classes)}
    if known is not None and any(isinstance(c, str) for c in classes):
        index.update({str(c): i for i, c in enumerate(classes)})
    try:
        y = np.array([index[v] for v in values], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(
            f"{name}: target {target!r} holds class {exc.args[0]!r}, which the training data "
            f"does not have (classes {classes[:10]})"
        ) from None
    return y, classes
