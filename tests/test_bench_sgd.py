"""experiments/bench_sgd.py --quick runs end to end, in a folder of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_data

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "bench_sgd.py"


def test_quick_run_writes_its_own_folder_and_sane_rows(tmp_path):
    env = {**os.environ, "FLATNN_DATA": str(shared_data())}
    committed = (SCRIPT.parent / "results" / "bench_sgd.json").read_bytes()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--impls", "flatnn,numpy", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path}" in proc.stdout
    result = json.loads((tmp_path / "bench_sgd.json").read_text())
    assert [(r["rule"], r["threads"]) for r in result["rows"]] == [
        ("sgd", 1),
        ("momentum", 1),
        ("adam", 1),
    ]
    for r in result["rows"]:
        assert r["case"] == "784-256-10 relu, batch 128" and r["torch"] is None
        for impl in ("flatnn", "numpy"):
            assert r[impl]["median_s"] > 0 and len(r[impl]["times"]) == 2
        # the same start and data: both implementations learn, to a similar cost
        assert 0 < r["flatnn"]["cost"] < 2.3 and 0 < r["numpy"]["cost"] < 2.3
        assert r["flatnn"]["cost"] == pytest.approx(r["numpy"]["cost"], rel=0.1)
    assert (tmp_path / "bench_sgd.md").read_text().count("| 784-256-10 relu") == 3
    assert (SCRIPT.parent / "results" / "bench_sgd.json").read_bytes() == committed
