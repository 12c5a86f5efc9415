"""flatnn.curvature against the dense Hessian and Gauss-Newton matrices of small networks."""

import numpy as np
import pytest

import flatnn
from flatnn import curvature

CASES = {
    "tanh-softmax-ce": (flatnn.Network((4, 5, 3), hidden="tanh"), 0.0),
    "sigmoid-softmax-ce-lam": (flatnn.Network((4, 5, 3)), 0.3),
    "relu-identity-se": (
        flatnn.Network((3, 6, 2), hidden="relu", output="identity", loss="squared_error"),
        0.1,
    ),
}


def problem(name, m=40, seed=0):
    net, lam = CASES[name]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, net.sizes[0]))
    if net.loss == "squared_error":
        y = rng.standard_normal((m, net.sizes[-1]))
    else:
        y = rng.integers(0, net.sizes[-1], m)
    params = net.init(rng) * 3  # away from the small-weight regime: a spread spectrum
    return net, params, X, y, lam


def dense(net, params, X, y, lam, curvature="hessian"):
    """The matrix from its products with the unit vectors, symmetrised."""
    product = net.hessp if curvature == "hessian" else net.gnvp
    n = net.n_params
    A = np.column_stack([product(params, np.eye(1, n, i)[0], X, y, lam) for i in range(n)])
    return (A + A.T) / 2


def rel(a, b):
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("which", ["top", "bottom"])
@pytest.mark.parametrize("kind", ["hessian", "gauss-newton"])
def test_eigs_match_the_dense_matrix(name, which, kind):
    net, params, X, y, lam = problem(name)
    A = dense(net, params, X, y, lam, kind)
    exact = np.linalg.eigvalsh(A)
    k = 3
    values, vectors = curvature.eigs(
        net, params, X, y, lam, k=k, which=which, curvature=kind, rng=1
    )
    expected = exact[::-1][:k] if which == "top" else exact[:k]
    if kind == "gauss-newton" and which == "bottom":
        # G is semi-definite: its bottom eigenvalues sit at lam/m or 0, where
        # a relative test means nothing; the absolute error is what counts
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-10 * exact[-1])
    else:
        assert rel(values, expected) < 1e-8
    assert vectors.shape == (net.n_params, k)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=1e-10)
    np.testing.assert_allclose(A @ vectors, vectors * values, atol=1e-8 * abs(exact).max())


def test_eigs_of_an_objective_equal_those_of_the_network():
    net, params, X, y, lam = problem("sigmoid-softmax-ce-lam")
    objective = flatnn.Objective(net, X, y, lam)
    a, _ = curvature.eigs(net, params, X, y, lam, k=2, rng=0)
    b, _ = curvature.eigs(objective, params, k=2, rng=0)
    assert rel(a, b) < 1e-12


def test_a_subset_is_seeded_and_its_rows_are_used():
    net, params, X, y, lam = problem("tanh-softmax-ce", m=60)
    a, _ = curvature.eigs(net, params, X, y, lam, subset=20, rng=5)
    b, _ = curvature.eigs(net, params, X, y, lam, subset=20, rng=5)
    full, _ = curvature.eigs(net, params, X, y, lam, rng=5)
    assert a[0] == b[0]
    assert abs(a[0] - full[0]) > 1e-6 * abs(full[0])
    # a subset of all the rows is the whole data
    whole, _ = curvature.eigs(net, params, X, y, lam, subset=60, rng=5)
    assert rel(whole, full) < 1e-10


def test_eigs_match_torch_autograd_hessian():
    torch = pytest.importorskip("torch")
    net, params, X, y, lam = problem("sigmoid-softmax-ce-lam")
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    m = X.shape[0]

    def cost(p):
        a = Xt
        for i, shape in enumerate(net.shapes):
            theta = p[net.offsets[i] : net.offsets[i + 1]].reshape(shape)
            z = a @ theta[:, 1:].T + theta[:, 0]
            a = torch.sigmoid(z) if i < len(net.shapes) - 1 else z
        loss = torch.nn.functional.cross_entropy(a, yt, reduction="sum") / m
        l2 = sum(
            (p[net.offsets[i] : net.offsets[i + 1]].reshape(s)[:, 1:] ** 2).sum()
            for i, s in enumerate(net.shapes)
        )
        return loss + lam / (2 * m) * l2

    pt = torch.from_numpy(params.copy())
    assert float(cost(pt)) == pytest.approx(net.cost(params, X, y, lam), rel=1e-12)
    H = torch.autograd.functional.hessian(cost, pt).numpy()
    exact = np.linalg.eigvalsh((H + H.T) / 2)
    top, _ = curvature.eigs(net, params, X, y, lam, k=3, rng=0)
    bottom, _ = curvature.eigs(net, params, X, y, lam, k=3, which="bottom", rng=0)
    assert rel(top, exact[::-1][:3]) < 1e-8
    assert rel(bottom, exact[:3]) < 1e-8


@pytest.mark.parametrize("kind", ["hessian", "gauss-newton"])
def test_hutchpp_with_n_products_n_is_exact(kind):
    net, params, X, y, lam = problem("relu-identity-se")
    exact = np.trace(dense(net, params, X, y, lam, kind))
    n = net.n_params
    got = curvature.trace(net, params, X, y, lam, curvature=kind, n_products=n, rng=0)
    assert got == pytest.approx(exact, rel=1e-10)


def test_trace_estimators_converge():
    net, params, X, y, lam = problem("tanh-softmax-ce")
    A = dense(net, params, X, y, lam)
    exact, frob = np.trace(A), np.linalg.norm(A)
    n = net.n_params

    def mean_error(method, n_products):
        errors = [
            abs(
                curvature.trace(net, params, X, y, lam, method=method, n_products=n_products, rng=s)
                - exact
            )  # fmt: skip
            for s in range(20)
        ]
        return float(np.mean(errors))

    for method in ("hutchinson", "hutch++"):
        small, large = mean_error(method, 6), mean_error(method, n - 1)
        assert large < small
        # Hutchinson's standard deviation is at most sqrt(2/N) ||A||_F
        assert large < 3 * np.sqrt(2 / (n - 1)) * frob
    assert mean_error("hutch++", n - 1) < mean_error("hutchinson", n - 1)
    # the estimate is unbiased: many Hutchinson products land near the trace
    got = curvature.trace(net, params, X, y, lam, method="hutchinson", n_products=4000, rng=1)
    assert abs(got - exact) < 4 * np.sqrt(2 / 4000) * frob


def test_density_integrates_to_one_and_matches_the_eigenvalue_histogram():
    net, params, X, y, lam = problem("sigmoid-softmax-ce-lam")
    exact = np.linalg.eigvalsh(dense(net, params, X, y, lam))
    n = net.n_params
    n_vectors = 60
    grid, phi = curvature.density(
        net, params, X, y, lam, n_products=n * n_vectors, n_vectors=n_vectors, grid=4000, rng=0
    )
    assert grid.shape == phi.shape == (4000,)
    assert np.all(phi >= 0)
    assert np.trapezoid(phi, grid) == pytest.approx(1.0, abs=1e-6)
    # full Lanczos runs: the nodes are the eigenvalues, the averaged weights ~1/n each;
    # the cumulative distributions agree (a histogram without the choice of bins)
    cdf = np.concatenate([[0.0], np.cumsum((phi[1:] + phi[:-1]) / 2 * np.diff(grid))])
    empirical = np.searchsorted(exact, grid, side="right") / n
    assert np.max(np.abs(cdf - empirical)) < 0.15
    # a grid of one's own points
    points = np.linspace(exact[0], exact[-1], 50)
    grid2, phi2 = curvature.density(net, params, X, y, lam, n_products=40, grid=points, rng=0)
    assert np.array_equal(grid2, points) and phi2.shape == (50,)


def test_density_of_few_products_still_integrates_to_one():
    net, params, X, y, lam = problem("tanh-softmax-ce")
    grid, phi = curvature.density(net, params, X, y, lam, n_products=10, rng=3)
    assert np.trapezoid(phi, grid) == pytest.approx(1.0, abs=1e-5)


def test_plot_density_writes_a_file(tmp_path):
    pytest.importorskip("matplotlib")
    net, params, X, y, lam = problem("tanh-softmax-ce")
    grid, phi = curvature.density(net, params, X, y, lam, n_products=20, rng=0)
    curvature.plot_density(grid, phi, tmp_path / "density.png")
    assert (tmp_path / "density.png").stat().st_size > 0


def test_sharpness_callback_records_every_k_epochs():
    net, params, X, y, lam = problem("tanh-softmax-ce")
    sharpness = curvature.Sharpness(net, X, y, lam, every=2)
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result.x)
        sharpness(intermediate_result)

    result = flatnn.sgd(
        net, params, X, y, lam, epochs=5, batch_size=40, learning_rate=0.05, callback=callback,
        rng=0,
    )  # fmt: skip
    marked = [i for i, entry in enumerate(result.history) if "sharpness" in entry]
    assert marked == [0, 2, 4]
    assert [nit for nit, _ in sharpness.values] == [1, 3, 5]
    for i in marked:
        exact = np.linalg.eigvalsh(dense(net, seen[i], X, y, lam))[-1]
        assert result.history[i]["sharpness"] == pytest.approx(exact, rel=1e-6)


def test_sharpness_works_as_a_minimize_callback_on_an_objective():
    net, params, X, y, lam = problem("sigmoid-softmax-ce-lam")
    objective = flatnn.Objective(net, X, y, lam)
    sharpness = curvature.Sharpness(objective)
    result = flatnn.minimize(
        objective, params, method="L-BFGS-B", options={"maxiter": 3}, callback=sharpness
    )
    assert all("sharpness" in entry for entry in result.history)
    assert len(sharpness.values) == len(result.history) >= 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"which": "middle"}, ValueError, "which must be 'top' or 'bottom'"),
        ({"curvature": "fisher"}, ValueError, "curvature must be"),
        ({"k": 0}, ValueError, "k must be an integer"),
        ({"k": 1.5}, TypeError, "k must be an integer"),
        ({"subset": 0}, ValueError, "subset must be"),
    ],
)
def test_bad_arguments_name_what_was_expected(kwargs, error, match):
    net, params, X, y, lam = problem("tanh-softmax-ce")
    with pytest.raises(error, match=match):
        curvature.eigs(net, params, X, y, lam, **kwargs)


def test_bad_calls():
    net, params, X, y, lam = problem("tanh-softmax-ce")
    objective = flatnn.Objective(net, X, y, lam)
    with pytest.raises(TypeError, match="needs X and y"):
        curvature.eigs(net, params)
    with pytest.raises(TypeError, match="carries its own data"):
        curvature.eigs(objective, params, X, y)
    with pytest.raises(ValueError, match="params has 3 entries"):
        curvature.eigs(net, np.zeros(3), X, y)
    with pytest.raises(ValueError, match="method must be"):
        curvature.trace(net, params, X, y, method="exact")
    with pytest.raises(ValueError, match="n_products must be"):
        curvature.trace(net, params, X, y, n_products=2)
    with pytest.raises(TypeError, match="flatnn.Network or an objective"):
        curvature.trace("net", params)


def test_edge_of_stability_quick_run_writes_into_its_folder(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "experiments" / "edge_of_stability.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--every", "4", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(script.parent.parent)},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path}" in proc.stdout
    record = json.loads((tmp_path / "edge_of_stability.json").read_text())
    (run,) = record["runs"]
    assert run["eta"] == 0.5 and run["threshold"] == 4.0
    assert len(run["loss"]) == 12
    assert run["sharpness_steps"] == [1, 5, 9]
    assert all(value > 0 for value in run["sharpness"])
    assert "Figure 1" in (tmp_path / "edge_of_stability.md").read_text()


def test_cli_prints_the_top_eigenvalues_and_the_trace(tmp_path, capsys):
    from flatnn.cli import main

    net = flatnn.Network((784, 12, 10))
    params = net.init(0)
    path = tmp_path / "model.npz"
    flatnn.save(path, net, params, dataset="mnist", lam=0.5)
    code = main(["curvature", str(path), "--subset", "300", "-k", "2", "--seed", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    splits = flatnn.datasets.load_mnist()
    X, y = splits.X_train, splits.y_train
    values, _ = curvature.eigs(net, params, X, y, 0.5, k=2, rng=3, subset=300)
    total = curvature.trace(net, params, X, y, 0.5, rng=3, subset=300)
    assert "(300 of 50000 samples, seed 3), lam 0.5" in out
    assert f"top 2 eigenvalues of the Hessian: {values[0]:.6g}, {values[1]:.6g}" in out
    assert f"trace (Hutch++, 100 products): {total:.6g}" in out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--trace-products", "2"], "--trace-products must be at least 3"),
        (["-k", "0"], "-k"),
        (["--curvature", "fisher"], "--curvature"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, match):
    from flatnn.cli import main

    net = flatnn.Network((784, 4, 10))
    path = tmp_path / "model.npz"
    flatnn.save(path, net, net.init(0), dataset="mnist")
    code = main(["curvature", str(path), "--subset", "50", *extra])
    _, err = capsys.readouterr()
    assert code == 2
    assert match in err and "Traceback" not in err


def test_a_subset_keeps_the_sample_weights_of_its_rows():
    net, params, X, y, lam = problem("tanh-softmax-ce", m=60)
    plain = flatnn.Objective(net, X, y, lam)
    doubled = flatnn.Objective(net, X, y, lam, sample_weight=np.full(60, 2.0))
    skewed = flatnn.Objective(net, X, y, lam, sample_weight=np.linspace(0.1, 3.0, 60))
    a, _ = curvature.eigs(plain, params, subset=20, rng=4)
    b, _ = curvature.eigs(doubled, params, subset=20, rng=4)
    c, _ = curvature.eigs(skewed, params, subset=20, rng=4)
    assert rel(b, a) < 1e-10  # only the weights' ratios matter
    assert rel(c, a) > 1e-6
