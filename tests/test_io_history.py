"""History files written row by row (.csv, .jsonl) and read back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flatnn.io.history import HistoryWriter, read_history


@pytest.mark.parametrize("ext", [".csv", ".jsonl"])
def test_each_row_is_on_disk_as_soon_as_it_is_written(tmp_path, ext):
    path = tmp_path / ("run" + ext)
    w = HistoryWriter(path)
    w.write(
        {
            "epoch": 0,
            "fun": np.float64(0.5),
            "val_cost": float("nan"),
            "x": np.zeros(3),
            "history": [{}],
        }
    )
    first = read_history(path)  # the writer is still open: a killed run keeps this
    assert first[0]["epoch"] == 0 and first[0]["fun"] == 0.5 and math.isnan(first[0]["val_cost"])
    assert "x" not in first[0] and "history" not in first[0]
    w.write({"epoch": 1, "fun": 0.25, "val_cost": float("inf")})
    w.close()
    rows = read_history(path)
    assert [r["epoch"] for r in rows] == [0, 1] and rows[1]["val_cost"] == math.inf
    assert all(type(r["epoch"]) is int for r in rows)


def test_csv_refuses_a_field_the_first_row_lacked(tmp_path):
    with HistoryWriter(tmp_path / "h.csv") as w:
        w.write({"epoch": 0})
        with pytest.raises(ValueError, match=r"fields \['fun'\] that the first row lacks"):
            w.write({"epoch": 1, "fun": 0.1})


def test_bad_history_files(tmp_path):
    with pytest.raises(ValueError, match="ends in .csv or .jsonl"):
        HistoryWriter(tmp_path / "h.txt")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match="empty history file"):
        read_history(tmp_path / "e.csv")
    (tmp_path / "b.csv").write_text("epoch,fun\n0,abc\n")
    with pytest.raises(ValueError, match="line 2 field 'fun' is 'abc'"):
        read_history(tmp_path / "b.csv")
    (tmp_path / "b.jsonl").write_text("[1]\n")
    with pytest.raises(ValueError, match="line 1 is not a JSON object"):
        read_history(tmp_path / "b.jsonl")
