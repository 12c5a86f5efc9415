"""History files: one row per epoch or iteration, written as the run goes.

:class:`HistoryWriter` appends one row per call and flushes it, so a run that is
killed keeps every row it finished. Two formats, chosen by the extension:

``.csv``
    A header row of field names (those of the first row), then one line per row.
``.jsonl``
    One JSON object per line.

Array, list and mapping values (the iterate ``x``, a nested history) are left
out; non-finite numbers are written as ``nan``, ``inf`` and ``-inf`` (text in
JSON). :func:`read_history` reads either format back as a list of dicts of floats.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from types import TracebackType

from flatnn.io.metadata import history_row

__all__ = ["HISTORY_FORMATS", "HistoryWriter", "read_history"]

HISTORY_FORMATS = (".csv", ".jsonl")
"""The file extensions a history file may have."""


def _format(path: str) -> str:
    for ext in HISTORY_FORMATS:
        if path.lower().endswith(ext):
            return ext
    raise ValueError(f"a history file ends in .csv or .jsonl, got {path!r}")


class HistoryWriter:
    """Write history rows to a ``.csv`` or ``.jsonl`` file, one flushed line per row.

    Parameters
    ----------
    path : str or os.PathLike
        Created (or replaced) when the writer opens.

    Examples
    --------
    >>> with HistoryWriter("run.csv") as w:  # doctest: +SKIP
    ...     w.write({"epoch": 0, "fun": 0.7, "val_cost": 0.8})
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.kind = _format(self.path)
        self.fields: list[str] | None = None
        self._file = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._file) if self.kind == ".csv" else None

    def write(self, row: Mapping) -> None:
        """Append one row (epoch or iteration) and flush it to the file.

        Raises
        ------
        ValueError
            In a CSV file, when the row has a field the first row did not have.
        """
        row = history_row(row)
        if self._csv is None:
            self._file.write(json.dumps(row, allow_nan=False) + "\n")
        else:
            if self.fields is None:
                self.fields = list(row)
                self._csv.writerow(self.fields)
            extra = [k for k in row if k not in self.fields]
            if extra:
                raise ValueError(
                    f"{self.path}: history row has fields {extra} that the first row lacks"
                )
            self._csv.writerow(["" if row.get(k) is None else row[k] for k in self.fields])
        self._file.flush()

    def close(self) -> None:
        """Close the file (rows already written stay written)."""
        self._file.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _number(text: object, path: str, line: int, field: str) -> float | int | None:
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        return float(text)
    if isinstance(text, int) or (isinstance(text, str) and text.lstrip("-").isdigit()):
        return int(text)  # epoch and iteration counts stay integers
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"{path}: line {line} field {field!r} is {text!r}; expected a number"
        ) from None
    return value


def read_history(path: str | os.PathLike) -> list[dict]:
    """Read a history file written by :class:`HistoryWriter`.

    Returns
    -------
    list of dict
        One dict per row, every value an int (whole numbers written as such) or
        a float (None for an empty CSV cell).

    Raises
    ------
    ValueError
        For another extension, an empty file, a line that is not a row of
        numbers (the message names the line and field).
    """
    path = os.fspath(path)
    kind = _format(path)
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        if kind == ".csv":
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise ValueError(f"{path}: an empty history file")
            for row in reader:
                if len(row) != len(header):
                    raise ValueError(
                        f"{path}: line {reader.line_num} has {len(row)} fields; the header "
                        f"has {len(header)}"
                    )
                rows.append({k: _number(v, path, reader.line_num, k) for k, v in zip(header, row)})
        else:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except ValueError:
                    raise ValueError(f"{path}: line {i} is not JSON") from None
                if not isinstance(doc, dict):
                    raise ValueError(f"{path}: line {i} is not a JSON object")
                rows.append({k: _number(v, path, i, k) for k, v in doc.items()})
    if not rows:
        raise ValueError(f"{path}: the history file holds no rows")
    return rows
