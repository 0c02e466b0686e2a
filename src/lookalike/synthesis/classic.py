"""Classic anonymization inside elliptic face masks: Gaussian blur, pixelation, solid fill.

Strengths are relative to the face, so a face gets the same treatment at any resolution. The defaults
are deliberately strong: a light blur (sigma = face width / 40) leaves people recognizable to face
recognition (see the baselines in ``docs/benchmarks.md``); check any weaker setting with
``verify=("dlib", "facenet")``.

>>> import numpy as np
>>> from lookalike.synthesis.masks import Ellipse
>>> image = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
>>> out = apply_classic(image, [Ellipse(50, 50, 20, 30, 0)], "pixelate")
>>> out.shape, bool((out[0, 0] == image[0, 0]).all())
((100, 100, 3), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.imaging import gaussian_blur
from lookalike.synthesis.masks import Ellipse

CLASSIC_METHODS = ("blur", "pixelate", "solid")


@dataclass(frozen=True)
class ClassicParams:
    """Strength of each classic method, relative to the face ellipse's width (2a).

    blur_sigma: Gaussian sigma as a fraction of the face width.
    pixel_blocks: number of blocks across the face width.
    fill_color: RGB colour of the solid fill.
    """

    blur_sigma: float = 0.15
    pixel_blocks: int = 8
    fill_color: tuple[int, int, int] = (0, 0, 0)


def apply_classic(
    image: np.ndarray, ellipses: list[Ellipse], method: str, params: ClassicParams | None = None
) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with each ellipse's bounding region treated by ``method``.

    The result is meant to be blended in under :func:`~lookalike.synthesis.masks.ellipse_mask`; outside
    the ellipses' bounding boxes the pixels are the input's.
    """
    if method not in CLASSIC_METHODS:
        raise ValueError(f"unknown classic method {method!r}; choose one of {', '.join(CLASSIC_METHODS)}")
    params = params or ClassicParams()
    out = image.copy()
    for ellipse in ellipses:
        face_width = 2.0 * max(ellipse.a, ellipse.b * 0.75)
        if method == "blur":
            sigma = max(params.blur_sigma * face_width, 0.5)
            roi = _roi(ellipse, out.shape, margin=3.0 * sigma)
            if roi is not None:
                out[roi] = gaussian_blur(out[roi], sigma)
        elif method == "pixelate":
            roi = _roi(ellipse, out.shape, margin=0.0)
            if roi is not None:
                block = max(face_width / params.pixel_blocks, 2.0)
                out[roi] = _pixelate(out[roi], block)
        else:
            roi = _roi(ellipse, out.shape, margin=1.0)
            if roi is not None:
                out[roi] = np.array(params.fill_color, np.uint8)
    return out


def _roi(ellipse: Ellipse, shape: tuple[int, ...], margin: float) -> tuple[slice, slice] | None:
    x0, y0, x1, y1 = ellipse.bounds()
    left, top = max(int(math.floor(x0 - margin)), 0), max(int(math.floor(y0 - margin)), 0)
    right, bottom = min(int(math.ceil(x1 + margin)) + 1, shape[1]), min(int(math.ceil(y1 + margin)) + 1, shape[0])
    if right <= left or bottom <= top:
        return None
    return slice(top, bottom), slice(left, right)


def _pixelate(patch: np.ndarray, block: float) -> np.ndarray:
    height, width = patch.shape[:2]
    small = cv2.resize(
        patch, (max(1, round(width / block)), max(1, round(height / block))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
