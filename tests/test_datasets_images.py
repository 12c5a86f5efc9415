"""Images as model inputs: colour to grey, any size fitted as MNIST digits are, shape checks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data

from flatnn.datasets import images, load_mnist
from flatnn.datasets.captcha import CELL_SHAPE


def centre_of_mass(img):
    ys, xs = np.indices(img.shape)
    return (img * ys).sum() / img.sum(), (img * xs).sum() / img.sum()


def test_rgb_is_converted_to_grey_with_the_luma_weights(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rgb = np.zeros((5, 7, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[2, 3] = (10, 250, 30)
    Image.fromarray(rgb, "RGB").save(tmp_path / "c.png")
    Image.fromarray(rgb, "RGB").save(tmp_path / "c.jpg", quality=100)
    grey = images.read_any_image(tmp_path / "c.png")
    assert grey.shape == (5, 7)
    np.testing.assert_allclose(grey[0, 0], round(0.299 * 200) / 255, atol=1 / 255)
    np.testing.assert_allclose(
        grey[2, 3], (0.299 * 10 + 0.587 * 250 + 0.114 * 30) / 255, atol=1 / 255
    )
    assert images.read_any_image(tmp_path / "c.jpg").shape == (5, 7)


def test_read_any_image_refuses_what_is_not_an_image(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        images.read_any_image(tmp_path / "x.png")


def test_resize_averages_areas():
    img = np.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(images.resize(img, (2, 2)), [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_allclose(images.resize(img, (8, 8))[::2, ::2], img)
    assert images.resize(np.ones((49, 16)), (20, 7)).shape == (20, 7)


def test_fit_mnist_puts_the_ink_in_a_20_box_centred_by_mass():
    img = np.zeros((120, 90))
    img[10:70, 20:50] = 1.0  # a 60 x 30 bar off-centre
    field = images.fit_mnist(img)
    rows = np.flatnonzero(field.max(axis=1) > 0)
    cols = np.flatnonzero(field.max(axis=0) > 0)
    assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == (20, 10)
    cy, cx = centre_of_mass(field)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert images.fit_mnist(np.zeros((5, 5))).sum() == 0


def test_fit_mnist_gives_back_mnist_digits_enlarged_three_times():
    digits = load_mnist(shared_data(), train=False).X_test[:20].reshape(-1, 28, 28)
    for digit in digits:
        big = np.kron(digit, np.ones((3, 3)))  # an 84 x 84 scan of the same digit
        fitted = images.fit_mnist(big)
        assert np.corrcoef(fitted.ravel(), digit.ravel())[0, 1] > 0.95


def test_image_row_takes_the_models_shape_as_is_and_fits_other_sizes():
    img = np.random.default_rng(0).random((28, 28))
    row, resized = images.image_row(img, (28, 28))
    np.testing.assert_array_equal(row, img.ravel()) and not resized
    row, resized = images.image_row(np.ones((49, 16)), (28, 28))
    assert resized and row.shape == (784,)


@pytest.mark.parametrize(
    ("size", "shape", "pattern"),
    [
        ((1, 784), (28, 28), "1x784 .*a strip rather than a picture"),
        ((784, 1), (28, 28), "strip"),
        ((13, 20), CELL_SHAPE, r"13x20 .* 20x13 .*transposed\?"),
        ((30, 20), CELL_SHAPE, "takes 20x13 .* images only"),
        ((49, 16), (28, 28), None),
    ],
)
def test_image_row_refuses_strips_transposed_cells_and_other_sizes(size, shape, pattern):
    img = np.zeros(size)
    if pattern is None:  # fitted, not refused
        assert images.image_row(img, shape)[1]
        return
    with pytest.raises(ValueError, match=pattern):
        images.image_row(img, shape, name="probe.png")


def test_model_image_shape():
    assert images.model_image_shape(784, "mnist") == (28, 28)
    assert images.model_image_shape(260, "captcha") == tuple(CELL_SHAPE)
    assert images.model_image_shape(64) == (8, 8)
    assert images.model_image_shape(10) is None
    assert images.model_image_shape(4) is None  # 2 x 2: features, not a picture
