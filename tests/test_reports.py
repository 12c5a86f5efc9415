"""flatnn.reports: learning-curve plots, held-out captcha scores, parameter lookup."""

import numpy as np
import pytest

import flatnn
from flatnn.reports import plots, scores


@pytest.mark.parametrize("sizes", [(3, 4, 2), (5, 7, 6, 1)])
def test_locate_parameter_agrees_with_unpack(sizes):
    net = flatnn.Network(sizes)
    params = np.arange(net.n_params, dtype=np.float64)
    thetas = net.unpack(params)
    for index in range(net.n_params):
        layer, row, column = scores.locate_parameter(net, index)
        assert thetas[layer][row, column] == index


def test_locate_parameter_refuses_an_index_outside_the_vector():
    net = flatnn.Network((3, 4, 2))
    with pytest.raises(ValueError, match=r"\[0, 26\), got 26"):
        scores.locate_parameter(net, net.n_params)


def test_captcha_heldout_scores_on_a_few_captchas():
    pytest.importorskip("captcha")
    net = flatnn.Network((260, 8, 36), hidden="relu")
    params = net.init(0)
    got = scores.captcha_heldout_scores(net, params, limit=10)
    assert got["heldout_captchas"] == 3  # ceil(10 / 4)
    held = flatnn.datasets.load_captcha_heldout(3)
    predicted = net.predict(params, held.X)
    assert got["heldout_accuracy"] == pytest.approx(np.mean(predicted == held.y))
    whole = flatnn.datasets.whole_captcha_accuracy(held.y, predicted)
    assert got["heldout_captcha_accuracy"] == whole


def test_learning_curves_are_a_png_written_whole(tmp_path):
    pytest.importorskip("matplotlib")
    history = [
        {"epoch": e, "fun": 1.0 / (e + 1), "val_cost": 1.2 / (e + 1), "val_accuracy": 0.5 + e / 10}
        for e in range(3)
    ]
    history = [dict(h, train_accuracy=0.6) for h in history]
    path = tmp_path / "curves.png"
    plots.write_learning_curves(path, history)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_learning_curves_of_scipy_iterations(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "it.png"
    plots.write_learning_curves(path, [{"nit": i + 1, "fun": 2.0 - i} for i in range(2)])
    assert path.stat().st_size > 0


def test_versions_name_numpy_scipy_and_the_blas():
    import platform

    import scipy

    from flatnn.reports import environment

    got = environment.versions()
    assert got["flatnn"] == flatnn.__version__ and got["NumPy"] == np.__version__
    assert got["SciPy"] == scipy.__version__ and got["Python"] == platform.python_version()
    for blas in environment.blas_libraries():
        assert f"{blas['name']} {blas['version']}" in got["BLAS"]
    assert got["BLAS"]


def test_outputs_on_one_path_are_refused(tmp_path):
    from flatnn.reports.outputs import Output, check_outputs

    model = str(tmp_path / "m.png")
    with pytest.raises(ValueError, match="also the model's path"):
        check_outputs(
            [
                Output("the model", model, True, "--out PATH"),
                Output("the plot", str(tmp_path / "." / "m.png"), False, "--plot FILE"),
            ]
        )


def test_only_named_outputs_may_replace_a_file(tmp_path):
    from flatnn.reports.outputs import Output, check_outputs

    existing = tmp_path / "old.png"
    existing.write_bytes(b"keep me")
    derived = Output("the plot", str(existing), False, "--plot FILE")
    with pytest.raises(ValueError, match="exists and the plot would replace it"):
        check_outputs([derived])
    named = Output("the plot", str(existing), True, "--plot FILE")
    assert check_outputs([named]) == [named]
    assert check_outputs([Output("the model", str(tmp_path / "new.npz"), False, "")]) == []
    with pytest.raises(ValueError, match="is a folder"):
        check_outputs([Output("the model", str(tmp_path), True, "--out PATH")])
    assert existing.read_bytes() == b"keep me"
