"""The measurements the evaluation harness is made of: pure functions of arrays, faces and embeddings.

Geometry is measured on the 478 FaceMesh landmarks and expressed in units of the original face's
inter-ocular distance (iris centre to iris centre), so figures compare across face sizes.

>>> import numpy as np
>>> points = np.zeros((478, 3), np.float32)
>>> points[IRIS_CENTRES[0], :2], points[IRIS_CENTRES[1], :2] = (40, 50), (80, 50)
>>> interocular(points)
40.0
>>> moved = points.copy(); moved[:, 0] += 4
>>> round(landmark_displacement(points, moved), 3)
0.1
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from lookalike.landmarks.geometry import EYELIDS, INNER_LIPS, IRIS_CENTRES, eye_opening, interocular, mouth_opening  # noqa: F401  (re-exported)
from lookalike.types import Face

#: PSNR reported when two regions are identical (the true value is infinite, which JSON cannot hold).
PSNR_IDENTICAL = 100.0

#: SSIM window side (skimage's default); pixels whose window touches the face region are not "outside".
SSIM_WINDOW = 7


def landmark_displacement(original: np.ndarray, anonymized: np.ndarray) -> float:
    """Mean 2-D displacement of the 478 landmarks, in original inter-ocular distances (lower: geometry kept)."""
    shift = np.linalg.norm(np.asarray(anonymized, np.float64)[:, :2] - np.asarray(original, np.float64)[:, :2], axis=1)
    return float(shift.mean() / max(interocular(original), 1e-6))


def pose_error(original: Face, anonymized: Face) -> float | None:
    """Mean absolute difference of yaw, pitch and roll, degrees (None without both poses)."""
    if original.pose is None or anonymized.pose is None:
        return None
    a, b = original.pose, anonymized.pose
    return float(np.mean([abs(a.yaw - b.yaw), abs(a.pitch - b.pitch), abs(_wrap(a.roll - b.roll))]))


def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes.

    >>> box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10]))
    0.3333333333333333
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pair_faces(originals: list[Face], candidates: list[Face], min_iou: float = 0.3) -> list[int | None]:
    """For each original face, the index of the candidate face at the same place (or None).

    Pairs are made greedily from the highest overlap down, each candidate used at most once.

    >>> f = lambda *box: Face(np.array(box, np.float32), 1.0, np.zeros((5, 2), np.float32))
    >>> pair_faces([f(0, 0, 10, 10), f(50, 50, 60, 60)], [f(51, 50, 61, 60), f(100, 100, 110, 110)])
    [None, 0]
    """
    overlaps = sorted(
        ((box_iou(o.box, c.box), i, j) for i, o in enumerate(originals) for j, c in enumerate(candidates)), reverse=True
    )
    pairs: list[int | None] = [None] * len(originals)
    used: set[int] = set()
    for iou, i, j in overlaps:
        if iou < min_iou:
            break
        if pairs[i] is None and j not in used:
            pairs[i] = j
            used.add(j)
    return pairs


def ssim_map(original: np.ndarray, anonymized: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of the grey versions of two RGB uint8 images (1 where they agree).

    Computed only around the pixels that differ: where two SSIM windows hold the same pixels the
    value is exactly 1, so the rest of the map is filled with 1.

    >>> a = np.zeros((64, 64, 3), np.uint8); b = a.copy(); b[30:34, 30:34] = 255
    >>> m = ssim_map(a, b)
    >>> float(m[0, 0]), float(m[32, 32]) < 0.5
    (1.0, True)
    """
    grey = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (original, anonymized)]
    full = np.ones(grey[0].shape, np.float64)
    differs = grey[0] != grey[1]
    rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    if not len(rows):
        return full
    h, w = full.shape
    pad = 2 * SSIM_WINDOW  # the windows touching a changed pixel, plus room for skimage's border handling
    y0, x0 = max(rows[0] - pad, 0), max(cols[0] - pad, 0)
    y1, x1 = min(rows[-1] + pad + 1, h), min(cols[-1] + pad + 1, w)
    if min(y1 - y0, x1 - x0) < SSIM_WINDOW:
        y0, x0, y1, x1 = 0, 0, h, w
    _, part = structural_similarity(
        grey[0][y0:y1, x0:x1], grey[1][y0:y1, x0:x1], data_range=255, win_size=SSIM_WINDOW, full=True
    )
    # skimage's map is unreliable within half a window of the crop edge; keep it only where the crop is
    # not the image edge or it is (the image edge is handled the same way as on the full image)
    m = SSIM_WINDOW // 2
    top, left = (0 if y0 == 0 else m), (0 if x0 == 0 else m)
    bottom, right = (y1 - y0) - (0 if y1 == h else m), (x1 - x0) - (0 if x1 == w else m)
    full[y0 + top : y0 + bottom, x0 + left : x0 + right] = part[top:bottom, left:right]
    return full


def outside_region(face_region: np.ndarray) -> np.ndarray:
    """Pixels whose whole SSIM window lies outside ``face_region`` (a boolean or 0..1 mask)."""
    grown = cv2.dilate((np.asarray(face_region) > 0).astype(np.uint8), np.ones((SSIM_WINDOW, SSIM_WINDOW), np.uint8))
    return grown == 0


def psnr(original: np.ndarray, anonymized: np.ndarray, where: np.ndarray) -> float | None:
    """PSNR in dB over the pixels in ``where`` (all channels); PSNR_IDENTICAL when equal, None when empty."""
    if not where.any():
        return None
    diff = original[where].astype(np.float64) - anonymized[where].astype(np.float64)
    mse = float(np.mean(diff**2))
    if mse == 0.0:
        return PSNR_IDENTICAL
    return min(PSNR_IDENTICAL, 10.0 * math.log10(255.0**2 / mse))


def retrieval_rank(distances_to_gallery: np.ndarray, own_index: int) -> int:
    """Rank of the own original among all gallery faces by distance (1: it is the nearest).

    Ties count against the method: a gallery face exactly as near as the original does not push it down.

    >>> retrieval_rank(np.array([0.5, 0.2, 0.9]), own_index=0)
    2
    """
    d = np.asarray(distances_to_gallery, np.float64)
    return int(np.sum(d < d[own_index])) + 1
