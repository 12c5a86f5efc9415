"""flatnn predict on images of any size and colour: fitted as MNIST digits, or refused."""

from __future__ import annotations

import numpy as np
import pytest

import flatnn
from flatnn import cli

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def digit_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = flatnn.Network((784, 10))
    flatnn.save("mnist.npz", net, net.init(0), dataset="mnist", class_names=list("0123456789"))
    return "mnist.npz"


def test_an_rgb_photo_of_any_size_is_greyed_resized_and_said_so(digit_model, capsys):
    rgb = np.full((200, 150, 3), 255, np.uint8)
    rgb[40:160, 60:90] = (20, 40, 200)  # a blue stroke on white paper
    Image.fromarray(rgb).save("photo.jpg")
    assert cli.main(["predict", digit_model, "photo.jpg", "--top-k", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("photo.jpg: ") and line.count("(") >= 3
    assert "[inverted: light background]" in line and "[resized from 200x150 and centred]" in line


@pytest.mark.parametrize(("size", "pattern"), [((1, 784), "a strip"), ((784, 1), "a strip")])
def test_a_strip_with_the_right_pixel_count_is_refused(digit_model, capsys, size, pattern):
    Image.fromarray(np.zeros(size, np.uint8)).save("strip.png")
    assert cli.main(["predict", digit_model, "strip.png"]) == 2
    err = capsys.readouterr().err
    assert pattern in err and err.count("\n") == 1


def test_a_transposed_captcha_cell_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    net = flatnn.Network((260, 36))
    flatnn.save("captcha.npz", net, net.init(0), dataset="captcha")
    Image.fromarray(np.zeros((13, 20), np.uint8)).save("cell.png")
    Image.fromarray(np.zeros((20, 13), np.uint8)).save("good.png")
    assert cli.main(["predict", "captcha.npz", "cell.png", "good.png"]) == 2
    captured = capsys.readouterr()
    assert "13x20 (rows x columns), the model's images are 20x13" in captured.err
    assert captured.out.startswith("good.png: ")


def test_an_estimator_trained_on_labels_3_and_7_prints_3_and_7(tmp_path, monkeypatch, capsys):
    datasets = pytest.importorskip("sklearn.datasets")
    from flatnn.sklearn import MLPClassifier

    monkeypatch.chdir(tmp_path)
    digits = datasets.load_digits()  # 8 x 8 images, grey levels 0-16
    keep = np.isin(digits.target, [3, 7])
    X, y = digits.data[keep] / 16.0, digits.target[keep]
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y)
    est.save("est.npz")
    for name, row in (("three.png", X[y == 3][0]), ("seven.png", X[y == 7][0])):
        Image.fromarray((row.reshape(8, 8) * 255).astype(np.uint8)).save(name)
    capsys.readouterr()
    assert cli.main(["predict", "est.npz", "three.png", "seven.png", "--no-invert"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["3", "7"]
