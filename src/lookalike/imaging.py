"""Small image operations every layer shares: blur, blend under a mask, the boxes of a mask, clamp a box.

They sit below input/output, detection and synthesis alike, so none of those borrows from another.

>>> import numpy as np
>>> clamp_box((-5, 2, 40, 12), (10, 30))
(0, 2, 30, 10)
"""

from __future__ import annotations

import cv2
import numpy as np


def gaussian_blur(patch: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; large sigmas run on a downscaled copy, which is equivalent and far faster."""
    factor = max(1.0, sigma / 4.0)
    height, width = patch.shape[:2]
    if factor > 1.0:
        small = cv2.resize(
            patch, (max(1, round(width / factor)), max(1, round(height / factor))), interpolation=cv2.INTER_AREA
        )
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(patch, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)


def blend_under_mask(base: np.ndarray, overlay: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``base * (1 - mask) + overlay * mask`` in ``base``'s dtype; exact ``base`` wherever the mask is 0.

    >>> blend_under_mask(np.zeros((1, 2), np.uint8), np.full((1, 2), 200, np.uint8), np.array([[0.0, 0.5]]))
    array([[  0, 100]], dtype=uint8)
    """
    weight = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if base.ndim == 3:
        weight = weight[:, :, None]
    blended = base.astype(np.float32) * (1.0 - weight) + overlay.astype(np.float32) * weight
    out = np.rint(blended).astype(base.dtype)
    untouched = mask <= 0
    out[untouched] = base[untouched]
    return out


def mask_regions(mask: np.ndarray) -> list[tuple[slice, slice]]:
    """Bounding boxes (row and column slices) of the connected non-zero parts of a mask.

    Work confined to these boxes costs in proportion to the faces, not to the whole picture.
    """
    if mask.ndim != 2 or mask.size == 0:  # OpenCV crashes the process on an empty array
        return []
    count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    return [(slice(y, y + h), slice(x, x + w)) for x, y, w, h, _ in stats[1:count]]


def clamp_box(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` (left, top, right, bottom; right and bottom exclusive) cut to an image of ``shape``."""
    height, width = shape[:2]
    left, top, right, bottom = box
    return max(0, left), max(0, top), min(width, right), min(height, bottom)
