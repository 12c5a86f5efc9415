"""Images as network inputs: reading (PGM here, other formats through Pillow), grey
conversion, and fitting any size to a model's input as MNIST's digits were made.

:func:`read_image` reads a grayscale image of a known size;
:func:`read_any_image` reads any image (colour converted to grey with the ITU-R
601 luma weights ``0.299 R + 0.587 G + 0.114 B``). :func:`light_background` tells
dark-on-light images from MNIST's light-on-dark ones. :func:`fit_mnist` resizes
and centres a light-on-dark image the way the MNIST digits were prepared: the
ink's bounding box scaled (aspect kept) to fit a 20 × 20 box, placed in a 28 × 28
field with its centre of mass at pixel (14, 14). :func:`image_row` turns an
image into a model's input row: the model's own image shape as is, any other
size fitted for a 28 × 28 digit model, and an error for a model whose images
have a fixed size (the captcha cells) or for a strip that is no picture.
"""

from __future__ import annotations

import io as _bytes_io
import math
import os
import warnings
from typing import Any

import numpy as np

from flatnn.datasets.idx import read_regular_file

__all__ = [
    "DIGIT_BOX",
    "DIGIT_FIELD",
    "MIN_SIDE",
    "fit_mnist",
    "image_row",
    "light_background",
    "model_image_shape",
    "read_any_image",
    "read_image",
    "resize",
]

DIGIT_FIELD = 28
"""MNIST's image side: digits sit in a 28 × 28 field."""

DIGIT_BOX = 20
"""MNIST's digit box: the ink is scaled to fit 20 × 20, aspect kept."""

MIN_SIDE = 8
"""Images with a side shorter than this are refused by :func:`image_row` (not a picture)."""

MAX_IMAGE_PIXELS = 50_000_000
"""The most pixels :func:`read_any_image` decodes."""


def read_image(path: str | os.PathLike, n_pixels: int | None = None) -> np.ndarray:
    """Read a grayscale image as floats in [0, 1], shape (height, width).

    PGM (``P2`` ASCII or ``P5`` binary, 8 or 16 bit) is parsed here; other
    formats (PNG, ...) go through Pillow. Colour images are refused, and so is
    anything that is not a regular file. With ``n_pixels``, an image whose
    header declares another size is refused before its pixels are decoded (a
    PNG declaring 40000x40000 pixels is never inflated).

    Parameters
    ----------
    path : str or path-like
    n_pixels : int, optional
        The number of pixels the caller needs (a model's input size).

    Returns
    -------
    ndarray, shape (height, width), float64

    Raises
    ------
    ValueError
        When the file is not a grayscale image flatnn can read, or has another
        number of pixels than ``n_pixels``; the message starts with ``path``.
    ImportError
        When a format other than PGM needs Pillow and it is not installed.
    OSError
        When the file cannot be read (FileNotFoundError when it is missing).
    """
    # Images are small; this bound keeps a huge file from being read whole.
    max_bytes = None if n_pixels is None else 8 * n_pixels + (1 << 20)
    content = read_regular_file(path, max_bytes=max_bytes)
    if content[:2] in (b"P2", b"P5"):
        return _read_pgm(content, path, n_pixels)
    if content[:2] in (b"P1", b"P3", b"P4", b"P6"):
        raise ValueError(
            f"{path}: a {content[:2].decode()} Netpbm image is not grayscale PGM (P2/P5)"
        )
    img = _pillow_image(content, path)
    try:
        with img:
            width, height = img.size
            mode, pixels = img.mode, None
            if n_pixels is None or width * height == n_pixels:  # else decode nothing
                if mode in ("L", "1"):
                    pixels = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
                elif mode in ("I;16", "I;16B", "I;16L"):
                    pixels = np.asarray(img, dtype=np.float64) / 65535.0
                elif mode == "I":
                    a = np.asarray(img, dtype=np.float64)
                    pixels = a / (65535.0 if a.max() > 255 else 255.0)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable image ({_message(exc)})") from None
    if n_pixels is not None and width * height != n_pixels:
        raise ValueError(_size_mismatch(path, width, height, n_pixels))
    if pixels is None:
        raise ValueError(f"{path}: the image is {mode}; expected grayscale (mode L)")
    return pixels


def _pillow_image(content: bytes, path: object) -> Any:
    """The image in ``content`` opened by Pillow (not decoded yet); one ValueError for a
    file Pillow cannot open or one declaring too many pixels, ImportError without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            f"{path}: reading this format needs Pillow (pip install "
            f"'flatnn[images]'); PGM images are read without it"
        ) from None
    try:
        with warnings.catch_warnings():
            # Pillow warns, then refuses, when a header declares a huge image; both are
            # a plain error here, with no warning printed.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(_bytes_io.BytesIO(content))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"{path}: refused, the image declares too many pixels ({_message(exc)})"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable image ({_message(exc)})") from None


def _size_mismatch(path, width, height, n_pixels):
    side = math.isqrt(n_pixels)
    want = f"{side}x{side}" if side * side == n_pixels else f"{n_pixels} pixels"
    return f"{path}: the image is {width}x{height}; the model takes {want} grayscale images"


def _read_pgm(content, path, n_pixels=None):
    magic = content[:2]
    tokens, pos = [], 2
    while len(tokens) < 3:  # width, height, maxval, with # comments between
        while pos < len(content) and content[pos : pos + 1].isspace():
            pos += 1
        if content[pos : pos + 1] == b"#":
            end = content.find(b"\n", pos)
            pos = len(content) if end < 0 else end + 1
            continue
        start = pos
        while (
            pos < len(content)
            and not content[pos : pos + 1].isspace()
            and content[pos : pos + 1] != b"#"
        ):
            pos += 1
        if start == pos:
            raise ValueError(f"{path}: truncated PGM header")
        tokens.append(content[start:pos])
    # Plain decimal digits only (int() would also take "-5", "+5" and "1_0"); at
    # most 9, so that width * height stays an honest size.
    if not all(t.isdigit() and len(t) <= 9 for t in tokens):
        raise ValueError(
            f"{path}: bad PGM header {b' '.join(tokens)!r}: expected width, height "
            f"and maxval as decimal numbers"
        )
    width, height, maxval = (int(t) for t in tokens)
    if width < 1 or height < 1 or not 0 < maxval < 65536:
        raise ValueError(
            f"{path}: bad PGM header (width {width}, height {height}, maxval {maxval})"
        )
    if n_pixels is not None and width * height != n_pixels:
        raise ValueError(_size_mismatch(path, width, height, n_pixels))
    n = width * height
    if magic == b"P5":
        body = content[pos + 1 :]  # exactly one whitespace byte after maxval
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        if len(body) < n * dtype.itemsize:
            raise ValueError(
                f"{path}: truncated PGM: {len(body)} bytes of pixels, expected {n * dtype.itemsize}"
            )
        pixels = np.frombuffer(body, dtype=dtype, count=n)
    else:
        words = content[pos:].split(maxsplit=n)[:n]
        if len(words) < n:
            raise ValueError(f"{path}: truncated PGM: {len(words)} pixels, expected {n}")
        for i, w in enumerate(words):
            # a pixel is 0 .. maxval: no sign, no 20-digit number
            if not w.isdigit() or len(w) > 5:
                raise ValueError(
                    f"{path}: pixel {i} is {w[:20].decode('latin-1')!r}; a P2 PGM "
                    f"holds decimal values 0 to maxval {maxval}"
                )
        pixels = np.array(words, dtype=np.int64)
    if pixels.max() > maxval:
        raise ValueError(f"{path}: a pixel exceeds the PGM maxval {maxval}")
    return pixels.reshape(height, width).astype(np.float64) / maxval


def light_background(img: np.ndarray) -> bool:
    """True when the image's outer frame is mostly light: dark ink on white paper.

    ``img`` is a 2-D array in [0, 1], as :func:`read_image` returns.

    MNIST digits are white on black and never touch the border, so the frame's
    mean gray level tells the two polarities apart.
    """
    if min(img.shape) < 3:
        return False
    frame = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])
    return float(frame.mean()) > 0.5


def _message(exc):
    text = str(exc).strip()
    return text or type(exc).__name__


def read_any_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read any image as grey levels in [0, 1], shape (height, width).

    Grayscale PGM is parsed here; other formats (PNG, JPEG, ...) go through
    Pillow, colour converted to grey (``0.299 R + 0.587 G + 0.114 B``), an alpha
    channel dropped. An image declaring more than ``max_pixels`` is refused
    before it is decoded.

    Raises
    ------
    ValueError
        When the file is not an image flatnn can read; the message starts with ``path``.
    ImportError
        When a format other than PGM needs Pillow and it is not installed.
    """
    content = read_regular_file(path, max_bytes=8 * max_pixels + (1 << 20))
    if content[:2] in (b"P2", b"P5"):
        return _read_pgm(content, path)
    img = _pillow_image(content, path)
    try:
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise ValueError(f"{path}: {width}x{height} pixels, more than {max_pixels}")
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(img, dtype=np.float64)
                return a / (65535.0 if a.max() > 255 else 255.0)
            return np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable image ({_message(exc)})") from None


def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: each output pixel averages the input it covers (area)."""
    edges_out = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges_out[:-1, None], edges_out[1:, None]
    left, right = np.arange(n_in)[None, :], np.arange(1, n_in + 1)[None, :]
    overlap = np.clip(np.minimum(hi, right) - np.maximum(lo, left), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D image to ``shape`` by area averaging (each output pixel is the
    mean of the input area it covers; enlarging repeats pixels)."""
    rows = _resample_matrix(img.shape[0], shape[0])
    cols = _resample_matrix(img.shape[1], shape[1])
    return rows @ img @ cols.T


def fit_mnist(img: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Fit a light-on-dark image into MNIST's 28 × 28 field, as the digits were made.

    The bounding box of the pixels above ``threshold`` times the image's
    maximum is cropped, scaled (aspect kept) so that its longer side is 20, and
    placed in a 28 × 28 field with its centre of mass at pixel (14, 14) as in MNIST's own
    digits, shifted whole pixels and kept inside the field.

    Parameters
    ----------
    img : ndarray, shape (height, width)
        Grey levels in [0, 1], ink light on a dark background.
    threshold : float, default 0.05

    Returns
    -------
    ndarray, shape (28, 28), float64 in [0, 1]
    """
    img = np.asarray(img, dtype=np.float64)
    field = np.zeros((DIGIT_FIELD, DIGIT_FIELD))
    peak = float(img.max()) if img.size else 0.0
    if peak <= 0:
        return field  # a blank image stays blank
    ink_rows = np.flatnonzero((img > threshold * peak).any(axis=1))
    ink_cols = np.flatnonzero((img > threshold * peak).any(axis=0))
    crop = img[ink_rows[0] : ink_rows[-1] + 1, ink_cols[0] : ink_cols[-1] + 1]
    h, w = crop.shape
    scale = DIGIT_BOX / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    digit = np.clip(resize(crop, new), 0.0, 1.0)
    mass = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(new[0])) / mass
    cx = (digit.sum(axis=0) @ np.arange(new[1])) / mass
    centre = DIGIT_FIELD / 2  # MNIST's centres of mass sit at pixel (14, 14), measured
    top = int(np.clip(round(centre - cy), 0, DIGIT_FIELD - new[0]))
    left = int(np.clip(round(centre - cx), 0, DIGIT_FIELD - new[1]))
    field[top : top + new[0], left : left + new[1]] = digit
    return field


def model_image_shape(n_inputs: int, dataset: str | None = None) -> tuple[int, int] | None:
    """The image shape a model of ``n_inputs`` takes, from its data set or a square size.

    ``mnist`` and ``fashion-mnist``: (28, 28); ``captcha``: the character cell
    (:data:`flatnn.datasets.captcha.CELL_SHAPE`); otherwise a square of side at
    least :data:`MIN_SIDE` when ``n_inputs`` is one, else None (not an image model).
    """
    if dataset == "captcha":
        from flatnn.datasets.captcha import CELL_SHAPE

        return tuple(CELL_SHAPE)  # type: ignore[return-value]
    side = math.isqrt(n_inputs)
    if side * side == n_inputs and side >= MIN_SIDE:
        return (side, side)
    return None


def image_row(
    img: np.ndarray, shape: tuple[int, int], *, fit: bool = True, name: str = "image"
) -> tuple[np.ndarray, bool]:
    """A model's input row from a light-on-dark image: ``(row, resized)``.

    An image of the model's ``shape`` is used as is. For a 28 × 28 digit model
    (``fit=True``), another size is fitted with :func:`fit_mnist` (``resized``
    True). Anything else is refused: a model with another image shape (the
    captcha cells) takes its own size only, and an image with a side shorter
    than :data:`MIN_SIDE` is a strip of pixels, not a picture (a 1 × 784 row is
    not a digit, even with the right pixel count).

    Returns
    -------
    row : ndarray, shape (shape[0] * shape[1],)
    resized : bool

    Raises
    ------
    ValueError
        Naming ``name``, the image's size and the size expected.
    """
    h, w = img.shape
    if (h, w) == tuple(shape):
        return img.reshape(-1), False
    want = f"{shape[0]}x{shape[1]} (rows x columns)"
    if (w, h) == tuple(shape):
        raise ValueError(
            f"{name}: the image is {h}x{w} (rows x columns), the model's images are {want}: "
            f"transposed?"
        )
    if min(h, w) < MIN_SIDE:
        raise ValueError(
            f"{name}: the image is {h}x{w} (rows x columns), a strip rather than a picture; "
            f"the model takes {want} images"
        )
    if fit and tuple(shape) == (DIGIT_FIELD, DIGIT_FIELD):
        return fit_mnist(img).reshape(-1), True
    raise ValueError(
        f"{name}: the image is {h}x{w} (rows x columns); the model takes {want} images only"
    )
