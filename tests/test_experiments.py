"""The experiment scripts run end to end with --quick, so that they cannot rot.

Each script runs as a subprocess, as a user would run it, writing into a
temporary results folder; the tests check the exit code and that the files
hold sane numbers.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"


def _env():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    if not env.get("FLATNN_DATA"):
        env["FLATNN_DATA"] = str(ROOT.parent / "shared" / "data")
    return env


def _run(script, *args):
    proc = subprocess.run(
        [sys.executable, str(EXPERIMENTS / script), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"{script} {args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    stdout = _run("reproduce.py", "all", "--quick", "--out", str(out))
    return out, stdout


PAPERS = {"simard-800": 0.016, "hinton-500-300": 0.0153, "dropout-1024": 0.0106}
NAMES = ("xor", "captcha", "mnist-ce", "mnist-nielsen", "mnist-deep", "mnist-relu", *PAPERS)


def test_reproduce_prints_original_beside_ours(reproduced):
    out, stdout = reproduced
    lines = [line for line in stdout.splitlines() if "original:" in line]
    assert [line.split()[0] for line in lines] == list(NAMES)
    assert all(" / ours: " in line for line in lines)


def test_reproduce_writes_json_and_table(reproduced):
    out, _ = reproduced
    table = (out / "reproduce.md").read_text()
    for name in NAMES:
        result = json.loads((out / f"reproduce_{name}.json").read_text())
        assert result["name"] == name and result["quick"] is True
        assert result["seconds"] > 0
        assert f"| {name} | {result['original']} | {result['ours']} |" in table


def test_reproduce_quick_figures_are_sane(reproduced):
    out, _ = reproduced
    fig = {n: json.loads((out / f"reproduce_{n}.json").read_text())["figures"] for n in NAMES}
    assert fig["xor"]["right"] == 4 and fig["xor"]["cost"] < 0.1
    # quick runs are short, but every network learns well above chance (10%, 1/36)
    assert fig["mnist-ce"]["test_accuracy"] > 0.6
    assert fig["mnist-relu"]["test_accuracy"] > 0.2
    assert fig["captcha"]["train_accuracy"] > 0.2
    for name in ("mnist-ce", "mnist-nielsen", "mnist-deep", "mnist-relu"):
        assert 0.0 <= fig[name]["test_accuracy"] <= 1.0
    # the deep network is stopped by its wall-clock cap, not by running out of epochs
    assert 1 <= fig["mnist-deep"]["epochs_run"] < fig["mnist-deep"]["epochs_asked"]


def test_reproduce_published_rows_print_the_paper_beside_ours(reproduced):
    out, stdout = reproduced
    for name, paper_error in PAPERS.items():
        result = json.loads((out / f"reproduce_{name}.json").read_text())
        f = result["figures"]
        assert f["paper_test_error"] == result["paper"]["test_error"] == paper_error
        line = next(line for line in stdout.splitlines() if line.startswith(name + " "))
        assert f"original: {100 * paper_error:.2f}% test error" in line
        assert f"ours: {100 * f['test_error']:.2f}% test error" in line
        # what the paper leaves open is said, in the JSON and in the table's setup column
        assert result["guessed"] and "guessed:" in result["setup"]
        assert f"{f['epochs_run']} epoch" in result["setup"]
        assert f["test_error"] == pytest.approx(1 - f["test_accuracy"])


def test_reproduce_published_rows_learn_in_quick_mode(reproduced):
    out, _ = reproduced
    fig = {n: json.loads((out / f"reproduce_{n}.json").read_text())["figures"] for n in PAPERS}
    for name, f in fig.items():
        assert f["status"] == 0 and f["epochs_run"] == f["epochs_asked"] >= 2, name
        curve = f["val_error_per_epoch"]
        assert len(curve) == f["epochs_run"]
        # 2000 images and a few epochs: far from the paper, but far from chance (90%) too
        assert curve[-1] < curve[0] and f["val_error"] < 0.35, (name, curve)
        assert f["val_error"] == pytest.approx(curve[-1], abs=1e-5)


def test_reproduce_rejects_an_unknown_experiment():
    proc = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "reproduce.py"), "mnist-huge"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown experiment" in proc.stderr


def test_profile_sparse_lbfgs_splits_both_fits(tmp_path):
    stdout = _run("profile_sparse_lbfgs.py", "--quick", "--out", str(tmp_path))
    text = (tmp_path / "profile_sparse_lbfgs.md").read_text()
    assert text == stdout.rstrip("\n") or text.strip() == stdout.strip()
    assert "| flatnn |" in text and "| sklearn |" in text
    assert "scikit-learn _loss_grad_lbfgs" in text
