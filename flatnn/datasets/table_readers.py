"""The readers behind :func:`flatnn.datasets.read_table`, one per file format.

Each returns ``(feature_names, columns, raw_target, target)``: the feature
column names, one float64 array per feature column, the target cells as text
(None when ``optional``: rows to predict, whose target column, if any, is
skipped), and the target
column's name. Text in a feature column and missing values are errors naming
the column; CSV files are read row by row, never whole.
"""

from __future__ import annotations

import array
import csv
import math
import zipfile

import numpy as np

__all__ = ["MISSING", "read_arrays", "read_csv", "read_parquet"]

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
"""Cell texts (lower-cased, stripped) that mean a missing value."""

_CSV_FIELD_LIMIT = 1 << 20


# ------------------------------------------------------------------ CSV
def read_csv(name: str, target: str | None, max_columns: int, optional: bool) -> tuple:
    """(feature names, float64 columns, raw target cells or None, target name)."""
    with open(name, newline="", encoding="utf-8-sig", errors="strict") as f:
        reader = csv.reader(_bounded_lines(f, name))
        try:
            header = next((row for row in reader if row), None)
            if header is None:
                raise ValueError(f"{name}: the file is empty; expected a header row and data rows")
            header = [h.strip() for h in header]
            _check_header(name, header, max_columns)
            t = _target_index(name, header, target, optional)
            features = [i for i in range(len(header)) if i != t]
            columns = [array.array("d") for _ in features]
            # optional: rows to predict; a target column there is skipped, not read
            raw: list[str] | None = [] if t is not None and not optional else None
            state = _CsvState(name, header, features)
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                state.add(row, reader.line_num, columns, raw, t)
        except csv.Error as exc:
            raise ValueError(f"{name}: not a readable CSV file ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{name}: not a UTF-8 text file ({exc.reason})") from None
    if state.rows == 0:
        raise ValueError(f"{name}: the file has a header row but no data rows")
    state.raise_missing()
    names = [header[i] for i in features]
    target = header[t] if t is not None else target
    return names, [np.frombuffer(c, dtype=np.float64) for c in columns], raw, target


def _bounded_lines(f, name):
    """Lines of ``f``, each read with a bound (a file of one huge line is refused)."""
    while True:
        line = f.readline(_CSV_FIELD_LIMIT * 64)
        if not line:
            return
        if len(line) >= _CSV_FIELD_LIMIT * 64 and not line.endswith("\n"):
            raise ValueError(f"{name}: a line longer than {_CSV_FIELD_LIMIT * 64} characters")
        yield line


def _check_header(name, header, max_columns):
    if len(header) > max_columns:
        raise ValueError(
            f"{name}: the header has {len(header)} columns; flatnn reads at most "
            f"{max_columns} (max_columns)"
        )
    if len(header) < 2:
        raise ValueError(
            f"{name}: the header has {len(header)} column; a table needs at least one "
            f"feature column and a target column (comma separated)"
        )
    seen = set()
    for i, h in enumerate(header):
        if not h:
            raise ValueError(f"{name}: column {i + 1} of the header has no name")
        if h in seen:
            raise ValueError(f"{name}: the header names column {h!r} twice")
        seen.add(h)


def _target_index(name, header, target, optional):
    if target is None:
        return len(header) - 1
    if target in header:
        return header.index(target)
    if optional:
        return None
    shown = ", ".join(header[:10]) + (f", ... ({len(header)} in all)" if len(header) > 10 else "")
    raise ValueError(f"{name}: no column {target!r}; the columns are {shown}")


class _CsvState:
    """Row checks and missing-value counts while a CSV file streams by."""

    def __init__(self, name, header, features):
        self.name, self.header, self.features = name, header, features
        self.rows = 0
        self.missing: dict[int, list[int]] = {}

    def add(self, row, line, columns, raw, t):
        if len(row) != len(self.header):
            raise ValueError(
                f"{self.name}: line {line} has {len(row)} fields; the header has "
                f"{len(self.header)} (ragged rows)"
            )
        for j, i in enumerate(self.features):
            cell = row[i].strip()
            try:
                value = float(cell)
            except ValueError:
                value = self._not_a_number(cell, i, j, line, columns)
            else:
                if math.isnan(value):
                    value = self._not_a_number(cell, i, j, line, columns)
                elif math.isinf(value):
                    raise ValueError(
                        f"{self.name}: column {self.header[i]!r} holds {cell[:20]!r} on line "
                        f"{line}; a feature must be a finite number"
                    )
            columns[j].append(value)
        if raw is not None:
            cell = row[t].strip()
            if cell.lower() in MISSING:
                self.missing.setdefault(t, []).append(line)
            raw.append(cell)
        self.rows += 1

    def _not_a_number(self, cell, i, j, line, columns):
        if cell.lower() in MISSING:
            self.missing.setdefault(i, []).append(line)
            return math.nan
        numbers = len(columns[j]) - len(self.missing.get(i, ()))
        if numbers:
            raise ValueError(
                f"{self.name}: column {self.header[i]!r} mixes numbers and text ({cell[:20]!r} "
                f"on line {line}); a feature column holds numbers only"
            )
        raise ValueError(
            f"{self.name}: column {self.header[i]!r} holds text ({cell[:20]!r} on line {line}): "
            f"categorical features are not encoded by flatnn; encode the column as numbers "
            f"(e.g. one-hot columns) or drop it"
        )

    def raise_missing(self):
        if self.missing:
            i, lines = next(iter(self.missing.items()))
            more = f" (and {len(self.missing) - 1} more columns)" if len(self.missing) > 1 else ""
            first = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
            raise ValueError(
                f"{self.name}: column {self.header[i]!r} has {len(lines)} missing values in "
                f"{self.rows} rows (lines {first}){more}; fill or drop them before training"
            )


# ------------------------------------------------------------- Parquet
def read_parquet(name: str, target: str | None, max_columns: int, optional: bool) -> tuple:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            f"{name}: reading Parquet needs pyarrow (pip install 'flatnn[parquet]'); "
            f"or save the table as CSV"
        ) from None
    try:
        pf = pq.ParquetFile(name)
        header = list(pf.schema_arrow.names)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid family
        raise ValueError(f"{name}: not a readable Parquet file ({exc})") from None
    _check_header(name, header, max_columns)
    t = _target_index(name, header, target, optional)
    table = pf.read()
    if table.num_rows == 0:
        raise ValueError(f"{name}: the file has column names but no data rows")
    features = [i for i in range(len(header)) if i != t]
    columns = []
    for i in features:
        col = table.column(i).to_numpy(zero_copy_only=False)
        columns.append(_numeric_column(name, header[i], col))
    column = None if t is None or optional else table.column(t).to_pylist()
    raw = None if column is None else _raw_target(name, header[t], column)
    target = header[t] if t is not None else target
    return [header[i] for i in features], columns, raw, target


def _numeric_column(name, column, values):
    if values.dtype.kind in "biuf":
        values = values.astype(np.float64)
        bad = np.isnan(values)
        if bad.any():
            raise ValueError(
                f"{name}: column {column!r} has {int(bad.sum())} missing values in "
                f"{values.shape[0]} rows; fill or drop them before training"
            )
        if np.isinf(values).any():
            raise ValueError(
                f"{name}: column {column!r} holds {int(np.isinf(values).sum())} infinite values; "
                f"a feature must be a finite number"
            )
        return values
    found = [v for v in values[:3].tolist()]
    raise ValueError(
        f"{name}: column {column!r} holds {values.dtype} values such as {found!r}: "
        f"categorical or text features are not encoded by flatnn; encode them as numbers"
    )


def _raw_target(name, column, cells):
    missing = sum(c is None or (isinstance(c, float) and math.isnan(c)) for c in cells)
    if missing:
        raise ValueError(
            f"{name}: column {column!r} has {missing} missing values in {len(cells)} rows; "
            f"fill or drop them before training"
        )
    return [c if isinstance(c, str) else repr(c) if isinstance(c, float) else str(c) for c in cells]


# ---------------------------------------------------------- NPZ / NPY
def read_arrays(files: tuple, kind: str, max_columns: int) -> tuple:
    name = files[0]
    if kind == "npz":
        X, y = _npz(name)
    else:
        X, y = (_npy(f) for f in files)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name}: X must be (m, n) and y (m,) with the same m; got X {X.shape}, y {y.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name}: X has no rows")
    if X.shape[1] > max_columns:
        raise ValueError(
            f"{name}: X has {X.shape[1]} columns; flatnn reads at most {max_columns} (max_columns)"
        )
    names = [f"x{i}" for i in range(X.shape[1])]
    columns = [_numeric_column(name, n, X[:, i]) for i, n in enumerate(names)]
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(
            f"{name}: y has {int(np.isnan(y).sum())} missing values in {y.shape[0]} rows"
        )
    if y.dtype.kind not in "biufU":
        raise ValueError(f"{name}: y has dtype {y.dtype}; expected numbers or text")
    raw = [repr(float(v)) if y.dtype.kind == "f" else str(v) for v in y.tolist()]
    return names, columns, raw, "y"


def _npz(name):
    try:
        with np.load(name, allow_pickle=False) as archive:
            keys = set(archive.files)
            if not {"X", "y"} <= keys:
                raise ValueError(
                    f"{name}: an .npz table holds arrays X and y, found {sorted(keys)}"
                )
            return archive["X"], archive["y"]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{name}: not a readable .npz file ({exc})") from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(
                f"{name}: holds pickled (object) arrays; they are not loaded"
            ) from None
        raise


def _npy(name):
    try:
        return np.load(name, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file (the other half of an .npy pair)") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{name}: not a readable .npy file ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{name}: not a readable .npy file ({exc})") from None
