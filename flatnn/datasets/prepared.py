"""A table made ready for training, and a trained model's rows made ready for it.

:func:`load_table_data` is what ``flatnn train --data`` calls: it reads the
training file (:func:`flatnn.datasets.read_table`), holds out a seeded
validation split (stratified by class) or reads ``val``, reads ``test``, fits
the scaler on the training rows only and applies it to every split. Its
:meth:`TableData.model_metadata` is what the model file stores (feature names,
target, task, class names, scaler, the data's SHA-256) so that
:func:`rows_for_model` can read new rows for ``predict`` and ``evaluate`` exactly
as the training rows were read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from flatnn.datasets.scaling import Scaler, fit_scaler
from flatnn.datasets.splits import stratified_split
from flatnn.datasets.tables import Table, read_table

__all__ = ["TableData", "load_table_data", "model_table", "rows_for_model"]


@dataclass(frozen=True)
class TableData:
    """Training, validation and test rows of one table, scaled.

    Attributes
    ----------
    train : Table
        The training rows as read (unscaled).
    scaler : Scaler
        Fitted on ``train.X``.
    X_train, X_val, X_test : ndarray, shape (m_split, n_features)
        Scaled, in the requested dtype; empty splits have 0 rows.
    y_train, y_val, y_test : ndarray
        Class indices (m_split,) for classification, (m_split, 1) floats for regression.
    """

    train: Table
    scaler: Scaler
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def class_names(self) -> tuple:
        """tuple: the classes in output order (empty for regression)."""
        return self.train.class_names

    @property
    def n_outputs(self) -> int:
        """int: output units a network needs (one per class; one for regression)."""
        return len(self.class_names) if self.train.task == "classify" else 1

    def network_options(self) -> dict:
        """``Network`` keyword arguments for the task: identity + squared error to regress."""
        if self.train.task == "regress":
            return {"output": "identity", "loss": "squared_error"}
        return {}

    def model_metadata(self) -> dict:
        """What a model trained on this table stores (see :mod:`flatnn.io.metadata`)."""
        t = self.train
        meta = {
            "dataset": os.path.basename(t.path),
            "features": list(t.feature_names),
            "target": t.target,
            "task": t.task,
            "scaler": self.scaler.to_dict(),
            "data_sha256": t.sha256,
        }
        if t.task == "classify":
            meta["class_names"] = list(t.class_names)
        return meta

    def describe(self) -> str:
        """One line: rows, features, target, task (and whether it was inferred)."""
        t = self.train
        if t.task == "classify":
            shown = ", ".join(map(str, t.class_names[:8])) + (
                ", ..." if len(t.class_names) > 8 else ""
            )
            what = f"classify {len(t.class_names)} classes ({shown})"
        else:
            what = "regress"
        how = " (inferred from the target's values; --task to change)" if t.task_inferred else ""
        return (
            f"{t.path}: {len(self.y_train)} training, {len(self.y_val)} validation, "
            f"{len(self.y_test)} test rows; {len(t.feature_names)} features; target "
            f"{t.target!r}: {what}{how}; scaling {self.scaler.kind}"
        )


def _target_array(table: Table) -> np.ndarray:
    return table.y if table.task == "classify" else table.y.reshape(-1, 1)


def load_table_data(
    path: str | os.PathLike,
    *,
    target: str | None = None,
    task: str | None = None,
    val_split: float | None = None,
    val: str | os.PathLike | None = None,
    test: str | os.PathLike | None = None,
    scale: str = "standard",
    seed: int | None = 0,
    dtype: type | np.dtype = np.float64,
) -> TableData:
    """Read a table and make training, validation and test splits of it.

    Parameters
    ----------
    path : str or os.PathLike
        The training table (see :func:`flatnn.datasets.read_table`).
    target, task : str, optional
        As in :func:`~flatnn.datasets.read_table`.
    val_split : float in (0, 1), optional
        Hold out this share of the rows for validation (stratified by class,
        seeded by ``seed``). Not with ``val``.
    val, test : str or os.PathLike, optional
        Files of validation and test rows (the same columns).
    scale : {"standard", "minmax", "none"}
        Fitted on the training rows only.
    seed : int or None
    dtype : float32 or float64

    Returns
    -------
    TableData
    """
    if val_split is not None and val is not None:
        raise ValueError("give a validation split or a validation file, not both")
    table = read_table(path, target, task)
    train = table
    val_table = None
    if val_split is not None:
        train_rows, val_rows = stratified_split(
            table.y,
            val_split,
            seed,
            stratify=table.task == "classify",
            class_names=table.class_names,
        )
        train, val_table = table.take(train_rows), table.take(val_rows)
    elif val is not None:
        val_table = read_table(val, like=table)
    test_table = read_table(test, like=table) if test is not None else None
    scaler = fit_scaler(train.X, scale)
    empty = table.take(np.zeros(0, dtype=np.int64))
    parts = []
    for part in (train, val_table or empty, test_table or empty):
        parts += [scaler.transform(part.X).astype(dtype, copy=False), _target_array(part)]
    return TableData(train, scaler, *parts)


def model_table(metadata: dict, name: str = "the model") -> Table:
    """An empty :class:`Table` describing the rows a table-trained model takes.

    Raises
    ------
    ValueError
        When the model was not trained on a table (no ``features`` in its metadata).
    """
    if not isinstance(metadata.get("features"), list):
        raise ValueError(f"{name} was not trained on a table (its file names no feature columns)")
    task = metadata.get("task") or "classify"
    classes = tuple(metadata.get("class_names") or ())
    n = len(metadata["features"])
    return Table(
        np.zeros((0, n)),
        np.zeros(0),
        task,
        tuple(metadata["features"]),
        metadata.get("target") or "",
        classes,
    )


def rows_for_model(
    path: str | os.PathLike,
    metadata: dict,
    *,
    need_target: bool = False,
    dtype: type | np.dtype = np.float64,
) -> tuple[np.ndarray, np.ndarray | None, Table]:
    """Read rows for a table-trained model and scale them as its training rows were.

    Parameters
    ----------
    path : str or os.PathLike
        A table with the model's feature columns (any order), and its target
        column if ``need_target``.
    metadata : dict
        The model file's metadata (``features``, ``task``, ``class_names``, ``scaler``).
    need_target : bool, default False
    dtype : float32 or float64

    Returns
    -------
    X : ndarray, shape (m, n_features), scaled, in ``dtype``
    y : ndarray or None
        Class indices or (m, 1) floats; None when the file has no target column.
    table : Table
        The rows as read.
    """
    like = model_table(metadata)
    table = read_table(path, like=like, need_target=need_target)
    scaler = Scaler.from_dict(metadata["scaler"], len(like.feature_names))
    X = scaler.transform(table.X).astype(dtype, copy=False)
    y = _target_array(table) if table.y.size or need_target else None
    return X, y, table
