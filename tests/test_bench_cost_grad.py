"""experiments/bench_cost_grad.py --quick runs end to end and writes sane results."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "bench_cost_grad.py"


@pytest.mark.parametrize("data", ["mnist", "random"])
def test_quick_run_writes_json_and_markdown(tmp_path, data):
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--m",
            "600",
            "--data",
            data,
            "--threads",
            "1",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "bench_cost_grad.json").read_text())
    rows = result["rows"]
    assert sorted((r["threads"], r["net"], r["dtype"]) for r in rows) == sorted(
        (threads, net, dtype)
        for threads in (1, 2)
        for net in ("784-100-10 sigmoid", "784-256-128-64-10 relu")
        for dtype in ("float32", "float64")
    )
    for r in rows:
        assert r["flatnn_s"] > 0 and r["floor_s"] > 0
        assert r["ratio"] == pytest.approx(r["flatnn_s"] / r["floor_s"])
        assert 1.5 < r["cost"] < 3.5  # about log(10) at initialisation
        for other in ("torch", "sklearn"):  # a number, or None with the reason recorded
            assert r[f"{other}_s"] is None or r[f"{other}_s"] > 0
        if r["torch_s"] is not None:
            assert r["torch_speedup"] == pytest.approx(r["torch_s"] / r["flatnn_s"])
        assert r["flatnn_threads"] == 1  # 600 rows: below the threshold at any count
    meta = result["meta"]
    assert meta["m"] == 600 and meta["data"] == data and meta["threads"] == [1, 2]
    assert meta["blas"]["coretype"]
    for other in ("torch", "sklearn"):
        assert meta["other"][other]
    table = (tmp_path / "bench_cost_grad.md").read_text()
    assert table.count("| 784-") == 8
    assert "ratio" in proc.stdout
