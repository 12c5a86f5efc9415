"""Reading grayscale images as float arrays: PGM parsed here, other formats through Pillow.

:func:`read_image` is what ``flatnn predict`` uses to turn an image file into a
network's input row; :func:`light_background` tells dark-on-light images from
MNIST's light-on-dark ones.
"""

from __future__ import annotations

import io as _bytes_io
import math
import warnings

import numpy as np

from flatnn.datasets.idx import read_regular_file

__all__ = ["read_image", "light_background"]


def read_image(path, n_pixels=None):
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
            img = Image.open(_bytes_io.BytesIO(content))
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
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"{path}: refused, the image declares too many pixels ({_message(exc)})"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable image ({_message(exc)})") from None
    if n_pixels is not None and width * height != n_pixels:
        raise ValueError(_size_mismatch(path, width, height, n_pixels))
    if pixels is None:
        raise ValueError(f"{path}: the image is {mode}; expected grayscale (mode L)")
    return pixels


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


def light_background(img):
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
