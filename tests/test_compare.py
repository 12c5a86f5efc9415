"""flatnn.compare: the optimizer comparison protocol, its run folder and its command.

Every run here is tiny (XOR, or a few hundred random rows); the protocol's
counts are checked exactly (no evaluation beyond the optimizer's own, the
trajectory unchanged, validation checkpoints within their share of the budget);
no wall-clock figure is asserted.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

import flatnn
from flatnn import compare
from flatnn.training import SCIPY_METHODS

ROOT = Path(__file__).resolve().parent.parent


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _blobs(m=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def _problem(m=240):
    X, y = _blobs(m)
    Xv, yv = _blobs(m // 4, seed=1)
    net = flatnn.Network((5, 6, 2), hidden="tanh")
    return compare.Problem(
        "blobs", net, (X, y), lam=0.1, validation=(Xv, yv), target=0.9, batch_size=16
    )


# ------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("xor") / "run"
    argv = ["--problem", "xor", "--quick", "--methods", "adam,momentum,L-BFGS-B,Newton-CG"]
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    parser = __import__("argparse").ArgumentParser()
    compare.add_arguments(parser)
    args = parser.parse_args([*argv, "--out", str(out)])
    assert compare.run(args, Out()) == 0
    return out, "".join(lines).splitlines(), argv


def test_the_folder_is_printed_last_and_holds_every_output(xor_run):
    out, lines, _ = xor_run
    assert lines[-1] == str(out)
    for name in ("results.json", "summary.csv", "profile.csv", "protocol.json"):
        assert (out / name).is_file()
    assert (out / "curves_xor.png").exists() == _has_matplotlib()
    assert (out / "profile.png").exists() == _has_matplotlib()
    assert "budget in passes per run (xor 300)" in lines[-2]
    assert "3 log-spaced points" in lines[-2] and "2 seeds" in lines[-2]


def test_a_progress_line_per_run(xor_run):
    out, lines, _ = xor_run
    progress = [line for line in lines if line.startswith("[")]
    # adam and momentum: 3 grid points, the best rerun with seed 1; scipy: 2 seeds each
    assert len(progress) == 2 * (3 + 1) + 2 * 2
    assert len(list((out / "runs" / "xor").glob("*.json"))) == len(progress)
    assert all(" passes, " in line and "val " in line for line in progress)


def test_summary_states_budget_grid_seeds_and_the_spread(xor_run):
    out, _, _ = xor_run
    with (out / "summary.csv").open() as fh:
        rows = {row["method"]: row for row in csv.DictReader(fh)}
    assert set(rows) == {"adam", "momentum", "L-BFGS-B", "Newton-CG"}
    for row in rows.values():
        assert float(row["budget_passes"]) == 300
        assert int(row["seeds"]) == 2
        assert 0 <= float(row["test_accuracy_median"]) <= 1
        assert float(row["test_accuracy_iqr"]) >= 0 and float(row["cost_iqr"]) >= 0
        assert 0 <= float(row["reached_fraction"]) <= 1
    assert rows["adam"]["grid"] == "0.0001..0.1 (3 log-spaced)"
    assert rows["adam"]["hyperparameter"] == "learning_rate"
    assert rows["L-BFGS-B"]["grid"] == "none" and rows["L-BFGS-B"]["best_learning_rate"] == ""
    assert float(rows["L-BFGS-B"]["reached_fraction"]) == 1.0


def test_the_profile_file_states_the_protocol_too(xor_run):
    out, _, _ = xor_run
    with (out / "profile.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {row["method"] for row in rows} == {"adam", "momentum", "L-BFGS-B", "Newton-CG"}
    assert {row["budget_passes"] for row in rows} == {"300"}
    assert {row["seeds"] for row in rows} == {"2"}
    assert min(float(row["passes_ratio"]) for row in rows) == 1.0


def test_results_json_holds_every_run_with_its_history(xor_run):
    out, _, _ = xor_run
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["seeds"] == 2 and results["settings"]["grid_points"] == 3
    xor = results["problems"]["xor"]
    assert xor["n_params"] == flatnn.Network((2, 4, 1)).n_params
    adam = xor["methods"]["adam"]
    assert adam["grid"] == [0.0001, 0.00316, 0.1]
    assert adam["best_learning_rate"] in adam["grid"]
    assert len(adam["runs"]) == 4
    for run in adam["runs"]:
        assert len(run["history"]) == 300  # one row per epoch
        assert [row["passes"] for row in run["history"]] == list(range(1, 301))
        assert run["checks"][0]["passes"] == 0 and run["checks"][-1]["passes"] == 300
    tuning = {r["learning_rate"]: r for r in adam["runs"] if r["seed"] == 0}
    best = max(tuning.values(), key=compare.selection_score)
    assert best["learning_rate"] == adam["best_learning_rate"]


def test_rerunning_the_folder_skips_every_finished_run(xor_run, capsys):
    out, _, argv = xor_run
    before = {p: p.read_bytes() for p in (out / "runs").rglob("*.json")}
    assert compare.main([*argv, "--out", str(out), "--no-plots"]) == 0
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert progress and all(line.endswith("done before, skipped") for line in progress)
    assert {p: p.read_bytes() for p in (out / "runs").rglob("*.json")} == before


def test_a_folder_of_other_settings_is_refused(xor_run, capsys):
    out, _, argv = xor_run
    assert compare.main([*argv, "--out", str(out), "--budget", "50"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings" in err and "new folder" in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--problem", "nope"], "unknown problem 'nope'"),
        (["--problem", "xor", "--methods", "nope"], "unknown method 'nope'"),
        (["--problem", "no_such_module_x:thing"], "cannot import"),
        (["--problem", "flatnn:Network"], "expected a flatnn.compare.Problem"),
        (["--problem", "xor", "--methods", "flatnn:__version__"], "expected an update rule"),
        (["--problem", "xor", "--budget", "0"], "budget must be"),
        (["--problem", "xor", "--seeds", "0"], "seeds must be >= 1"),
        (["--problem", "xor", "--eval-share", "1"], "eval_share must lie in [0, 1)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, words, tmp_path, capsys):
    assert compare.main([*argv, "--quick", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert not (tmp_path / "run").exists()  # checked before the folder is made


MISSING_MODULE = """
def problem():
    raise FileNotFoundError("mnist: train-images-idx3-ubyte was found nowhere. Looked in:\\n"
                            "  $FLATNN_DATA: /nowhere\\nDid not download.")
"""


def test_missing_data_is_one_line_and_no_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_missing_mod.py").write_text(MISSING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = compare.main(["--problem", "my_missing_mod:problem", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "found nowhere. Looked in: $FLATNN_DATA: /nowhere Did not download." in err
    assert not (tmp_path / "run").exists()


def test_a_folder_inside_the_package_is_refused(capsys):
    inside = Path(compare.__file__).parent / "run"
    assert compare.main(["--problem", "xor", "--quick", "--out", str(inside)]) == 2
    assert "inside the flatnn package" in capsys.readouterr().err
    assert not inside.exists()


def test_the_flatnn_command_runs_compare(tmp_path, capsys):
    from flatnn import cli

    out = tmp_path / "run"
    argv = ["compare", "--problem", "xor", "--quick", "--methods", "adam", "--no-plots"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == str(out) and (out / "summary.csv").is_file()
    assert sum(line.startswith("[") for line in lines) == 3 + 1
    assert cli.main(["compare", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: flatnn compare ")
    assert cli.main(["compare", "--grid", "1:0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LOW <= HIGH" in err


def test_the_default_folder_is_new_and_never_in_the_source_tree(tmp_path):
    here = compare.default_folder(["xor"], cwd=tmp_path)
    assert here.parent == tmp_path and here.name.startswith("flatnn-compare-xor-")
    assert not here.exists()
    source = Path(compare.__file__).resolve().parents[2]
    if (source / "pyproject.toml").exists():
        elsewhere = compare.default_folder(["xor"], cwd=source)
        assert source not in elsewhere.resolve().parents


# ---------------------------------------------------------- the protocol
def test_an_sgd_run_is_the_plain_sgd_run():
    problem = _problem()
    method = compare.get_method("momentum")
    record = compare.run_one(problem, method, 0.05, 3, compare.Budget(12))
    res = flatnn.sgd(
        flatnn.Objective(problem.net, *problem.train, problem.lam),
        problem.net.init(3),
        epochs=12,
        batch_size=16,
        learning_rate=0.05,
        method="momentum",
        rng=3,
    )
    assert record["final"]["cost"] == res.fun  # the same trajectory, bit for bit
    assert record["nfev"] == res.nfev  # no evaluation beyond the optimizer's own
    assert record["passes"] == 12
    assert [row["cost"] for row in record["history"]] == [h["fun"] for h in res.history]
    assert record["final"]["val_accuracy"] == problem.accuracy(res.x, "validation")
    assert record["final"]["test_accuracy"] == problem.accuracy(res.x, "test")


def test_scores_in_float32_agree_with_float64():
    problem = _problem()
    x = problem.net.init(5)
    for split, (X, y) in (("validation", problem.validation), ("test", problem.test)):
        m = X.shape[0]
        assert abs(problem.accuracy(x, split) - problem.net.accuracy(x, X, y)) <= 1 / m
    with pytest.raises(ValueError, match="'validation' or 'test'"):
        problem.accuracy(x, "train")


@pytest.mark.parametrize("method", ["L-BFGS-B", "CG", "trust-ncg"])
def test_a_scipy_run_counts_exactly_the_optimizer_evaluations(method):
    problem = _problem()
    record = compare.run_one(problem, compare.get_method(method), None, 0, compare.Budget(40))
    res = flatnn.minimize(
        flatnn.Objective(problem.net, *problem.train, problem.lam),
        problem.net.init(0),
        method=method,
        options={"maxiter": 40},
        callback=lambda intermediate_result: None,
    )
    passes = record["nfev"] + record["nhev"]
    assert record["passes"] == passes
    if passes < 40:  # converged inside the budget: the same run as minimize's
        assert record["nfev"] == res.nfev and record["final"]["cost"] == res.fun
    else:  # stopped by the budget, after at most one more iteration
        assert record["status"] == flatnn.training.STATUS_STOPPED
        assert passes < 40 + 25


def test_the_budget_stops_a_scipy_method_and_hessp_answers_zeros_after_it():
    problem = _problem()
    record = compare.run_one(problem, compare.get_method("Newton-CG"), None, 0, compare.Budget(15))
    assert 15 <= record["passes"] <= 15 + 25
    objective = flatnn.Objective(problem.net, *problem.train, problem.lam)
    counted = compare.CountedObjective(objective, 2)
    x = problem.net.init(0)
    v = np.ones_like(x)
    counted.cost_grad(x)
    assert np.any(counted.hessp(x, v) != 0)
    assert counted.passes == 2 and counted.nfev == 1 and counted.nhev == 1
    assert np.all(counted.hessp(x, v) == 0) and counted.nhev == 1


def test_validation_checkpoints_stay_within_their_share_of_the_budget():
    problem = _problem(m=600)
    budget = compare.Budget(200, max_checkpoints=50, eval_share=0.01)
    share = problem.validation[0].shape[0] / problem.m / 3
    points = compare.checkpoints(budget, problem.m, problem.validation[0].shape[0], whole=True)
    assert len(points) >= 1 and len(points) * share <= 0.01 * 200
    assert points == sorted(points) and all(float(p).is_integer() for p in points)
    record = compare.run_one(problem, compare.get_method("sgd"), 0.1, 0, budget)
    # the checkpoints and the end: one forward pass over the validation rows each
    # (params0's accuracy is computed once per problem and seed)
    assert record["validation_passes"] == len(points) + 1
    assert len(record["checks"]) == len(points) + 2
    assert [c["passes"] for c in record["checks"][1:-1]] == points
    assert compare.checkpoints(compare.Budget(1), 600, 150, whole=True) == []


def test_time_to_target_is_the_first_checkpoint_at_target():
    problem = _problem()
    record = compare.run_one(problem, compare.get_method("adam"), 0.05, 0, compare.Budget(30))
    hits = [c for c in record["checks"] if c["val_accuracy"] >= problem.target]
    if hits:
        assert record["passes_to_target"] == hits[0]["passes"]
        assert record["seconds_to_target"] == hits[0]["seconds"]
    else:
        assert record["passes_to_target"] is None


# ----------------------------------------------------- problems, methods
def test_named_problems():
    assert compare.NAMES == ("xor", "mnist-mlp", "mnist-deep", "fashion-mlp", "captcha-mlp")
    xor = compare.get_problem("xor")
    assert xor.net.sizes == (2, 4, 1) and xor.target == 1.0 and xor.m == 4


@pytest.mark.skipif(
    not (Path(os.environ.get("FLATNN_DATA", "/nonexistent")) / "mnist").is_dir(),
    reason="MNIST is not in $FLATNN_DATA",
)
def test_mnist_problems_have_the_issue_s_networks():
    mlp = compare.get_problem("mnist-mlp", quick=True)
    deep = compare.get_problem("mnist-deep", quick=True)
    assert mlp.net.sizes == (784, 100, 10) and deep.net.sizes == (784, 256, 128, 64, 10)
    assert mlp.m == 1000 and mlp.validation[0].shape == (1000, 784)


def test_every_rule_and_scipy_method_by_default():
    small, skipped = compare.default_methods(100)
    names = [m.name for m in small]
    assert names == [*flatnn.optimizers.RULES, *SCIPY_METHODS] and skipped == []
    large, skipped = compare.default_methods(compare.DENSE_MAX_PARAMS + 1)
    assert {m.name for m in large} == set(names) - set(compare.DENSE_METHODS)
    assert len(skipped) == len(compare.DENSE_METHODS) and "dense" in skipped[0]


def test_grids():
    assert compare.log_grid(1e-3, 1.0, 4) == (0.001, 0.01, 0.1, 1.0)
    assert compare.get_method("adam").grid(3) == (0.0001, 0.00316, 0.1)
    assert compare.get_method("ADAM").grid(2, (0.5, 2.0)) == (0.5, 2.0)
    assert compare.get_method("l-bfgs-b").grid(7) == ()
    assert compare.get_method("trust-ncg").uses_hessp
    with pytest.raises(ValueError, match="0 < low <= high"):
        compare.log_grid(1.0, 0.1, 3)
    with pytest.raises(ValueError, match="needs lr_range"):
        compare.Method("mine", "rule", flatnn.optimizers.sgd())


USER_MODULE = """
    import numpy as np
    import scipy.optimize
    import flatnn
    from flatnn import compare

    class HalfSGD:
        def init(self, params):
            return ()

        def update(self, grad, state, params, learning_rate):
            return -0.5 * learning_rate * grad, state

    def descent(fun, x0, args=(), jac=None, hessp=None, callback=None,
                learning_rate=0.1, maxiter=100, **unused):
        x = np.array(x0, dtype=float)
        for _ in range(maxiter):  # scipy splits jac=True into fun(x) -> f and jac(x) -> g
            f, g = fun(x), jac(x)
            x = x - learning_rate * g
            if callback is not None:
                callback(scipy.optimize.OptimizeResult(x=x, fun=f))
        f = fun(x)
        return scipy.optimize.OptimizeResult(x=x, fun=f, nit=maxiter, success=True,
                                             status=0, message="done")

    def blobs():
        rng = np.random.default_rng(0)
        X = rng.normal(size=(80, 3))
        y = (X[:, 0] > 0).astype(int)
        return compare.Problem("user-blobs", flatnn.Network((3, 4, 2)), (X, y), lam=0.01,
                               target=0.8, batch_size=8)
"""


def test_user_problem_rule_and_minimize_like_callable(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_compare_mod.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = compare.get_method("my_compare_mod:HalfSGD")
    custom = compare.get_method("my_compare_mod:descent")
    assert rule.kind == "rule" and custom.kind == "callable"
    assert rule.grid(2) and custom.grid(2)
    argv = ["--problem", "my_compare_mod:blobs", "--quick", "--budget", "20", "--no-plots"]
    argv += ["--methods", "my_compare_mod:HalfSGD,my_compare_mod:descent,sgd"]
    assert compare.main([*argv, "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    results = json.loads((Path(out[-1]) / "results.json").read_text())
    methods = results["problems"]["user-blobs"]["methods"]
    assert set(methods) == {"my_compare_mod:HalfSGD", "my_compare_mod:descent", "sgd"}
    for info in methods.values():
        assert all(run["passes"] == 20 for run in info["runs"])


# ------------------------------------------------------ summary, profile
def _synthetic(times):
    """results with one method per entry of ``times``: problem -> method -> per-seed passes."""
    problems = {}
    for p, methods in times.items():
        problems[p] = {"target": 0.9, "methods": {}}
        for m, passes in methods.items():
            runs = [
                {
                    "learning_rate": None,
                    "seed": s,
                    "passes_to_target": t,
                    "seconds_to_target": None if t is None else t / 10,
                    "seconds": 1.0,
                    "overhead_seconds": 0.01,
                    "final": {"test_accuracy": 0.8 + 0.01 * s, "cost": 1.0 + s},
                }
                for s, t in enumerate(passes)
            ]
            problems[p]["methods"][m] = {
                "hyperparameter": None,
                "best_learning_rate": None,
                "grid": [],
                "seeds": len(runs),
                "budget_passes": 100.0,
                "runs": runs,
            }
    return {"problems": problems}


def test_summary_medians_quartiles_and_reached_fraction():
    results = _synthetic({"p": {"a": [10, 20, None, 40]}})
    (row,) = compare.summary_rows(results)
    assert row["test_accuracy_median"] == pytest.approx(0.815)
    assert row["test_accuracy_iqr"] == pytest.approx(
        np.percentile([0.8, 0.81, 0.82, 0.83], 75) - 0.8075
    )
    assert row["cost_median"] == 2.5 and row["cost_iqr"] == pytest.approx(1.5)
    assert row["passes_to_target_median"] == 20 and row["seconds_to_target_median"] == 2
    assert row["reached_fraction"] == 0.75 and row["overhead_median"] == pytest.approx(0.01)
    assert row["overhead_max"] == pytest.approx(0.01)


def test_performance_profile():
    results = _synthetic(
        {"p1": {"a": [10, 10, 10], "b": [20, 30, 20]}, "p2": {"a": [None, None, 5], "b": [8, 8, 8]}}
    )
    ratios = compare.profile_ratios(results)
    assert ratios["p1"] == {"a": 1.0, "b": 2.0}
    assert ratios["p2"]["b"] == 1.0 and math.isinf(ratios["p2"]["a"])  # a's median missed
    taus = np.array([1.0, 1.9, 2.0, 100.0])
    assert compare.profile_curve(ratios, "a", taus).tolist() == [0.5, 0.5, 0.5, 0.5]
    assert compare.profile_curve(ratios, "b", taus).tolist() == [0.5, 0.5, 1.0, 1.0]


# ------------------------------------------------- installed from a wheel
def test_a_built_wheel_runs_compare_and_touches_only_its_run_folder(tmp_path):
    # built from a copy, so that setuptools' build/ and egg-info stay out of the source tree
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "flatnn", source / "flatnn", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("flatnn-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    # flatnn's dependencies come from this environment's site-packages by a plain .pth
    # line (no download); a plain line runs none of its .pth files, so an editable
    # flatnn there stays out and the new environment's flatnn is the wheel's
    purelib = subprocess.run(
        [str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(purelib) / "deps.pth").write_text("\n".join(sorted(here)) + "\n")
    install = subprocess.run(  # this pip, installing into the new environment
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install"]
        + ["--no-deps", "--no-index", "--force-reinstall", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import flatnn; print(flatnn.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [str(bin_dir / "flatnn"), "compare", "--problem", "xor", "--quick"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = Path(proc.stdout.splitlines()[-1])
    assert folder.parent == work and folder.is_dir()
    assert sorted(p.name for p in work.iterdir()) == sorted(["keep.txt", folder.name])
    assert (work / "keep.txt").read_text() == "mine"
    assert (folder / "summary.csv").is_file() and (folder / "results.json").is_file()
