"""Named facial regions on the 478-point FaceMesh topology, as polygons and masks.

Each region is a list of landmark indices plus how to turn them into an area: ``"loop"`` when the
indices already go round the outline in order, ``"hull"`` when the convex hull of the points is the
region. Some regions subtract others (the jaw region excludes the lips). Left and right are the
subject's: the subject's right eye is on the image's left in a frontal photo.

>>> import numpy as np
>>> points = np.random.default_rng(0).uniform(100, 200, size=(478, 3)).astype(np.float32)
>>> region_mask((300, 300), points, ["nose"]).shape
(300, 300)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    indices: tuple[int, ...]
    kind: str = "loop"  # "loop" or "hull"
    minus: tuple[str, ...] = ()


FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)

REGIONS: dict[str, Region] = {
    "face_oval": Region(FACE_OVAL),
    "right_eye": Region((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)),
    "left_eye": Region((263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)),
    "right_eyebrow": Region((70, 63, 105, 66, 107, 55, 65, 52, 53, 46)),
    "left_eyebrow": Region((300, 293, 334, 296, 336, 285, 295, 282, 283, 276)),
    "right_iris": Region((469, 470, 471, 472), kind="hull"),
    "left_iris": Region((474, 475, 476, 477), kind="hull"),
    "nose": Region(
        (
            168,
            6,
            197,
            195,
            5,
            4,
            1,
            19,
            94,
            2,
            98,
            97,
            326,
            327,
            294,
            64,
            48,
            278,
            219,
            439,
            115,
            344,
            188,
            412,
            245,
            465,
            122,
            351,
        ),
        kind="hull",
    ),
    "lips": Region(
        (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185),
        minus=("mouth_interior",),
    ),
    "mouth_interior": Region(
        (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
    ),
    "right_cheek": Region(
        (234, 227, 116, 117, 118, 119, 120, 100, 142, 203, 206, 216, 212, 214, 192, 213, 147, 187, 123, 137, 93, 132),
        kind="hull",
    ),
    "left_cheek": Region(
        (454, 447, 345, 346, 347, 348, 349, 329, 371, 423, 426, 436, 432, 434, 416, 433, 376, 411, 352, 366, 323, 361),
        kind="hull",
    ),
    "forehead": Region(
        (10, 338, 297, 332, 284, 251, 301, 293, 334, 296, 336, 9, 107, 66, 105, 63, 71, 21, 54, 103, 67, 109),
        kind="hull",
        minus=("right_eyebrow", "left_eyebrow"),
    ),
    "jaw": Region(
        (93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323),
        minus=("lips", "mouth_interior", "nose"),
    ),
}

REGION_NAMES: tuple[str, ...] = tuple(REGIONS)


def region_polygon(landmarks: np.ndarray, name: str) -> np.ndarray:
    """(K, 2) float32 outline of one named region in image coordinates."""
    region = _region(name)
    points = np.asarray(landmarks, np.float32)[list(region.indices), :2]
    if region.kind == "hull":
        points = cv2.convexHull(points).reshape(-1, 2)
    return points


def region_mask(
    shape: tuple[int, ...], landmarks: np.ndarray, names: Iterable[str], feather: float = 0.0
) -> np.ndarray:
    """Float32 mask (H, W) in [0, 1] covering the union of the named regions.

    ``feather`` is the Gaussian sigma, in pixels, that softens the edge.
    """
    height, width = shape[:2]
    mask = np.zeros((height, width), np.uint8)
    for name in names:
        region_mask_u8 = np.zeros_like(mask)
        _fill(region_mask_u8, region_polygon(landmarks, name))
        for other in _region(name).minus:
            hole = np.zeros_like(mask)
            _fill(hole, region_polygon(landmarks, other))
            region_mask_u8[hole > 0] = 0
        mask = np.maximum(mask, region_mask_u8)
    out = mask.astype(np.float32) / 255.0
    if feather > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=feather)
    return out


def _fill(mask: np.ndarray, polygon: np.ndarray) -> None:
    # 4 fractional bits keep sub-pixel accuracy for small faces
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)


def _region(name: str) -> Region:
    try:
        return REGIONS[name]
    except KeyError:
        raise ValueError(f"unknown region {name!r}; known regions: {', '.join(REGION_NAMES)}") from None
