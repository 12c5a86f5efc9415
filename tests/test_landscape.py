"""flatnn.landscape: the cost along a line and on a filter-normalised plane."""

import numpy as np
import pytest

import flatnn
from flatnn import landscape


def problem(seed=0):
    net = flatnn.Network((4, 6, 3), hidden="relu")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 4))
    y = rng.integers(0, 3, 30)
    return net, net.init(rng), X, y, 0.2


def test_line_goes_from_one_vector_to_the_other():
    net, p0, X, y, lam = problem()
    p1 = flatnn.minimize(net, p0, X, y, lam, options={"maxiter": 30}).x
    alphas, costs = landscape.line(net, p0, p1, X, y, lam)
    assert alphas.shape == costs.shape == (51,)
    assert alphas[0] == 0.0 and alphas[-1] == 1.0
    assert costs[0] == pytest.approx(net.cost(p0, X, y, lam), rel=1e-12)
    assert costs[-1] == pytest.approx(net.cost(p1, X, y, lam), rel=1e-12)
    mid = net.cost((p0 + p1) / 2, X, y, lam)
    assert costs[25] == pytest.approx(mid, rel=1e-12)
    # an objective gives the same numbers, at points of one's choice
    points = np.array([-0.5, 0.25, 1.5])
    a2, c2 = landscape.line(flatnn.Objective(net, X, y, lam), p0, p1, alphas=points)
    assert np.array_equal(a2, points)
    assert c2[1] == pytest.approx(net.cost(0.75 * p0 + 0.25 * p1, X, y, lam), rel=1e-12)


def test_filter_normalized_direction_matches_each_row_norm():
    net, p, X, y, lam = problem()
    d = landscape.filter_normalized_direction(net, p, rng=3)
    assert d.shape == (net.n_params,)
    for row_d, row_p in zip(net.unpack(d), net.unpack(p)):
        np.testing.assert_allclose(
            np.linalg.norm(row_d, axis=1), np.linalg.norm(row_p, axis=1), rtol=1e-12
        )
    assert np.array_equal(d, landscape.filter_normalized_direction(net, p, rng=3))
    assert not np.array_equal(d, landscape.filter_normalized_direction(net, p, rng=4))


def test_plane_is_centred_on_params_and_follows_the_directions():
    net, p, X, y, lam = problem()
    d1 = landscape.filter_normalized_direction(net, p, rng=1)
    d2 = landscape.filter_normalized_direction(net, p, rng=2)
    a, b, costs = landscape.plane(net, p, X, y, lam, directions=(d1, d2), span=0.5, n_points=5)
    assert a.shape == b.shape == (5,) and costs.shape == (5, 5)
    np.testing.assert_allclose(a, [-0.5, -0.25, 0.0, 0.25, 0.5])
    assert costs[2, 2] == pytest.approx(net.cost(p, X, y, lam), rel=1e-12)
    assert costs[0, 3] == pytest.approx(net.cost(p - 0.5 * d1 + 0.25 * d2, X, y, lam), rel=1e-12)
    # random directions: seeded, through a Network or a flatnn.Objective alike
    _, _, c1 = landscape.plane(net, p, X, y, lam, n_points=3, rng=7)
    _, _, c2 = landscape.plane(flatnn.Objective(net, X, y, lam), p, n_points=3, rng=7)
    assert np.array_equal(c1, c2)
    assert c1[1, 1] == costs[2, 2]


def test_an_overflowing_point_is_inf_not_an_error():
    net, p, X, y, lam = problem()
    _, costs = landscape.line(net, p, p * 1e300, X, y, lam, alphas=[0.0, 1.0])
    assert np.isfinite(costs[0]) and costs[1] == np.inf


def test_plots_write_files(tmp_path):
    pytest.importorskip("matplotlib")
    net, p, X, y, lam = problem()
    alphas, costs = landscape.line(net, p, np.zeros_like(p), X, y, lam, alphas=[0, 0.5, 1])
    landscape.plot_line(alphas, costs, tmp_path / "line.png", label="to zero")
    a, b, grid = landscape.plane(net, p, X, y, lam, n_points=4, rng=0)
    landscape.plot_plane(a, b, grid, tmp_path / "plane.png")
    assert (tmp_path / "line.png").stat().st_size > 0
    assert (tmp_path / "plane.png").stat().st_size > 0


def test_bad_arguments():
    net, p, X, y, lam = problem()
    with pytest.raises(TypeError, match="needs X and y"):
        landscape.line(net, p, p)
    with pytest.raises(ValueError, match="params_to has 2 entries"):
        landscape.line(net, p, np.zeros(2), X, y)
    with pytest.raises(ValueError, match="alphas must be a 1-D array"):
        landscape.line(net, p, p, X, y, alphas=[[0.0]])
    with pytest.raises(ValueError, match="n_points must be an integer"):
        landscape.plane(net, p, X, y, n_points=1)
    with pytest.raises(ValueError, match="span must be"):
        landscape.plane(net, p, X, y, span=0)
    with pytest.raises(ValueError, match="directions must be a pair"):
        landscape.plane(net, p, X, y, directions=(p,))
    with pytest.raises(TypeError, match="net must be a flatnn.Network"):
        landscape.filter_normalized_direction("net", p)


def test_monotone_interpolation_quick_run_writes_into_its_folder(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "experiments" / "monotone_interpolation.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(script.parent.parent)},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path}" in proc.stdout
    record = json.loads((tmp_path / "monotone_interpolation.json").read_text())
    assert [c["optimizer"][:3] for c in record["curves"]] == ["SGD", "L-B"]
    for curve in record["curves"]:
        alphas, train = np.array(curve["alphas"]), np.array(curve["train"])
        assert alphas.shape == train.shape == (36,)
        # training lowered the cost: the line ends below where it starts
        assert train[np.argmin(abs(alphas - 1))] < train[np.argmin(abs(alphas))]
    assert "linear path experiment" in (tmp_path / "monotone_interpolation.md").read_text()
