"""Captcha characters: 4-character captchas cut into 20 x 13 character cells.

The seeds' toy example trains a 260-200-200-36 network on the characters of 60
captchas. That data is not available, so this module renders equivalent
captchas with the ``captcha`` package (``pip install flatnn[captcha]``), a real
captcha renderer: a TrueType font at random sizes, each character randomly
shifted, rotated by up to 30 degrees and warped by a random quadrilateral
transform, random colours, noise dots, a noise arc, and smoothing.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Sequence

import attrs
import numpy as np
from numpy.typing import ArrayLike

from flatnn.base import checks

__all__ = ["CAPTCHA_CHARS", "CELL_SHAPE", "CaptchaSet", "load_captcha", "whole_captcha_accuracy"]

#: The 36 classes: label k is ``CAPTCHA_CHARS[k]`` ('0'-'9' are 0-9, 'a'-'z' are 10-35).
CAPTCHA_CHARS = string.digits + string.ascii_lowercase

#: (rows, columns) of one character cell; a cell flattens to 260 features.
CELL_SHAPE = (20, 13)

CHARS_PER_CAPTCHA = 4

# The rendered image: the captcha package's default size.
_WIDTH, _HEIGHT = 160, 60

# The captcha package draws its randomness from a module it imported (``secrets``
# from 0.7 on, ``random`` in 0.6), so determinism means swapping that module-level
# name for a seeded generator while rendering. The lock keeps two threads of ours
# from swapping it at once.
_RENDER_LOCK = threading.Lock()


class _SeededSource(random.Random):
    """A seeded ``random.Random`` that also offers the ``secrets`` functions the renderer calls."""

    def randbelow(self, n: int) -> int:
        return self.randrange(n)

    def randbits(self, k: int) -> int:
        return self.getrandbits(k)


@attrs.frozen(kw_only=True, eq=False, repr=False)
class CaptchaSet:
    """Character cells of rendered captchas, with labels and the captcha texts.

    Attributes
    ----------
    X : numpy.ndarray of float64, shape (4 * n_captchas, 260)
        One character cell per row, 20 rows x 13 columns flattened in C order;
        0 is the lightest pixel of the cell (background), 1 its darkest (ink). Rows ``4*i .. 4*i+3``
        are the characters of ``texts[i]``, left to right.
    y : numpy.ndarray of int64, shape (4 * n_captchas,)
        Labels 0-35: ``CAPTCHA_CHARS[y[j]]`` is the character in row j.
    texts : tuple of str, length n_captchas
        The 4-character text of each captcha.
    class_names : tuple of str
        The 36 characters ``'0' .. '9', 'a' .. 'z'``.
    """

    X: np.ndarray
    y: np.ndarray
    texts: tuple[str, ...]
    class_names: tuple[str, ...] = tuple(CAPTCHA_CHARS)

    @property
    def n_captchas(self) -> int:
        """Number of captchas."""
        return len(self.texts)

    def __repr__(self) -> str:
        return (
            f"CaptchaSet(n_captchas={self.n_captchas}, X={self.X.shape}, "
            f"n_classes={len(self.class_names)})"
        )


def load_captcha(
    n_captchas: int = 60,
    *,
    rng: int | np.random.Generator | None = 0,
    fonts: Sequence[str] | None = None,
) -> CaptchaSet:
    """Render `n_captchas` random 4-character captchas and cut them into labelled character cells.

    Each captcha is rendered at 160 x 60 pixels by the ``captcha`` package's
    ``ImageCaptcha`` with its fonts, warping and noise. Two of its random
    choices are switched off so that each character can be cut out exactly:
    the random blank glyphs it may insert between characters, and the random
    overlap of neighbouring characters. The renderer then lays the characters
    out left to right, and since the width of each drawn character is
    recorded, each cell is the full box that its character was pasted into
    (rotation and warping happen inside that box; noise dots and the noise
    arc cross it). That box, about 30 x 55 pixels, is shrunk by area
    averaging to 13 x 20 - the aspect ratio of a character - so every cell
    holds one whole character, roughly centred, and nothing of its
    neighbours: the network learns characters, not a segmentation. Gray
    levels are then rescaled per cell so that its lightest pixel is 0 and its
    darkest 1, as the random colours would otherwise make contrast vary.

    Parameters
    ----------
    n_captchas : int, default 60
        Number of captchas; the set has ``4 * n_captchas`` characters.
    rng : int or numpy.random.Generator, default 0
        Seed of the texts and of the rendering. The same seed gives the same
        set (for a given version of ``captcha`` and Pillow); use different
        seeds for training and test sets.
    fonts : sequence of str, optional
        TrueType font files; default the package's built-in DroidSansMono.

    Returns
    -------
    CaptchaSet
        ``X (4 * n_captchas, 260)`` in [0, 1], ``y (4 * n_captchas,)`` int64
        in 0-35, the texts and the 36 class names.

    Raises
    ------
    ImportError
        If the ``captcha`` package (and Pillow) is not installed.
    """
    n_captchas = checks.integer(n_captchas, "n_captchas", 0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        seed = int(rng)  # an int is the seed itself, so that seed 1 is the same set everywhere
    elif rng is None or isinstance(rng, np.random.Generator):
        seed = int(np.random.default_rng(rng).integers(2**63))
    else:
        raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")

    renderer_module, renderer = _renderer(fonts)
    source = _SeededSource(seed)
    n_cells = CHARS_PER_CAPTCHA * n_captchas
    X = np.empty((n_cells, CELL_SHAPE[0] * CELL_SHAPE[1]), dtype=np.float64)
    texts = []
    with _RENDER_LOCK:
        saved = {
            name: getattr(renderer_module, name)
            for name in ("secrets", "random")
            if hasattr(renderer_module, name)
        }
        for name in saved:
            setattr(renderer_module, name, source)
        try:
            for i in range(n_captchas):
                text = "".join(source.choice(CAPTCHA_CHARS) for _ in range(CHARS_PER_CAPTCHA))
                texts.append(text)
                X[CHARS_PER_CAPTCHA * i : CHARS_PER_CAPTCHA * (i + 1)] = _render_cells(
                    renderer, text
                )
        finally:
            for name, module in saved.items():
                setattr(renderer_module, name, module)
    y = np.array([CAPTCHA_CHARS.index(c) for text in texts for c in text], dtype=np.int64)
    return CaptchaSet(X=X, y=y, texts=tuple(texts))


def whole_captcha_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of captchas whose four characters are all predicted right.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (4 * n_captchas,)
        Labels, four consecutive entries per captcha (as in ``CaptchaSet.y``).

    Returns
    -------
    float
        ``mean over captchas of all(y_pred[4i:4i+4] == y_true[4i:4i+4])``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must have the same shape (m,), got {y_true.shape} and "
            f"{y_pred.shape}"
        )
    if y_true.shape[0] % CHARS_PER_CAPTCHA or y_true.shape[0] == 0:
        raise ValueError(
            f"expected a positive multiple of {CHARS_PER_CAPTCHA} labels, got {y_true.shape[0]}"
        )
    right = (y_true == y_pred).reshape(-1, CHARS_PER_CAPTCHA)
    return float(right.all(axis=1).mean())


_RENDERERS: dict = {}


def _renderer(fonts):
    """The ``captcha.image`` module and a renderer that records where it drew each character."""
    try:
        import captcha.image as module
        import PIL.Image  # noqa: F401 - the renderer needs Pillow; fail here with the hint
    except ImportError as e:
        raise ImportError(
            f"load_captcha needs the 'captcha' and 'Pillow' packages ({e}); "
            f"install them with: pip install flatnn[captcha]"
        ) from None
    key = tuple(fonts) if fonts is not None else None
    if key in _RENDERERS:
        return module, _RENDERERS[key]

    class Recording(module.ImageCaptcha):
        # The renderer inserts a blank glyph when random() > word_space_probability:
        # 1.0 means never. word_offset_dx = 0 stops neighbours from overlapping.
        word_space_probability = 1.0
        word_offset_dx = 0.0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.drawn_sizes = []

        def _draw_character(self, c, draw, color):
            im = super()._draw_character(c, draw, color)
            self.drawn_sizes.append(im.size)
            return im

    renderer = Recording(
        width=_WIDTH, height=_HEIGHT, fonts=list(fonts) if fonts is not None else None
    )
    _RENDERERS[key] = renderer
    return module, renderer


def _render_cells(renderer, text: str) -> np.ndarray:
    """Render `text` and return its character cells, shape (4, 260)."""
    from PIL import Image

    renderer.drawn_sizes = []
    image = renderer.generate_image(text).convert("L")
    sizes = renderer.drawn_sizes
    if len(sizes) != len(text):
        raise RuntimeError(
            f"the captcha renderer drew {len(sizes)} glyphs for {text!r}; this version of the "
            f"'captcha' package lays text out differently from what load_captcha expects "
            f"(captcha>=0.6)"
        )
    # Where create_captcha_image pasted each glyph: from 10% of the average glyph
    # width on, side by side, each centred vertically; the strip is then squeezed
    # to the image width if it is wider.
    text_width = sum(w for w, _ in sizes)
    x = int(int(text_width / len(text)) * 0.1)
    scale = _WIDTH / max(text_width, _WIDTH)
    cells = np.empty((len(text), CELL_SHAPE[0] * CELL_SHAPE[1]))
    for j, (w, h) in enumerate(sizes):
        top = int((_HEIGHT - h) / 2)
        box = (
            max(0, round(x * scale)),
            max(0, top),
            min(_WIDTH, max(round((x + w) * scale), round(x * scale) + 1)),
            min(_HEIGHT, top + h),
        )
        cell = image.resize((CELL_SHAPE[1], CELL_SHAPE[0]), Image.Resampling.BOX, box=box)
        values = np.asarray(cell, dtype=np.float64)
        lo, hi = values.min(), values.max()
        cells[j] = ((hi - values) / max(hi - lo, 1.0)).ravel()
        x += w
    return cells
