"""Elliptic face masks that cover the whole face, forehead and chin included.

With dense landmarks the ellipse is fitted to the face oval (hairline to chin); without them it is
derived from the detector's box, which stops at the brows, so it is stretched upward to reach the
forehead. ``scale`` enlarges both axes around the centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.landmarks.regions import FACE_OVAL
from lookalike.types import Face


@dataclass(frozen=True)
class Ellipse:
    """Centre (x, y), semi-axes (a along the rotated x axis, b along the rotated y axis), angle in degrees."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    def scaled(self, factor: float) -> "Ellipse":
        return Ellipse(self.cx, self.cy, self.a * factor, self.b * factor, self.angle)

    def bounds(self) -> tuple[float, float, float, float]:
        """Axis-aligned box x0, y0, x1, y1 that contains the ellipse."""
        t = math.radians(self.angle)
        half_w = math.hypot(self.a * math.cos(t), self.b * math.sin(t))
        half_h = math.hypot(self.a * math.sin(t), self.b * math.cos(t))
        return self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h

    def contains(self, x: float, y: float) -> bool:
        t = math.radians(self.angle)
        dx, dy = x - self.cx, y - self.cy
        u, v = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
        return (u / max(self.a, 1e-6)) ** 2 + (v / max(self.b, 1e-6)) ** 2 <= 1.0

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 1) for k, v in vars(self).items()}


#: How much the face ellipse is enlarged by default to become the mask (``--mask-scale``): enough to
#: cover the hair line and jaw of a frontal face.
DEFAULT_MASK_SCALE = 1.3


def face_ellipse(face: Face, scale: float = 1.0) -> Ellipse:
    """The ellipse that covers ``face``, enlarged by ``scale``.

    >>> import numpy as np
    >>> from lookalike.types import Face
    >>> kp = np.array([[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]], np.float32)
    >>> e = face_ellipse(Face(np.array([30, 35, 70, 85], np.float32), 0.9, kp))
    >>> round(e.cx), round(e.a), round(e.b)
    (50, 21, 31)
    """
    if face.landmarks is not None:
        oval = face.landmarks[list(FACE_OVAL), :2].astype(np.float32)
        (cx, cy), (width, height), angle = cv2.fitEllipse(oval)
        ellipse = Ellipse(cx, cy, width / 2, height / 2, angle)
        if all(ellipse.contains(x, y) for x, y in face.keypoints):
            return ellipse.scaled(scale)
        # a mesh that does not enclose the detector's own keypoints is not trusted to place the mask
    return _box_ellipse(face).scaled(scale)


def _box_ellipse(face: Face) -> Ellipse:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    width, height = x1 - x0, y1 - y0
    roll = face.eye_angle
    # the box stops near the brows: move the centre up and lengthen the vertical axis to the hairline
    up = np.array([math.sin(math.radians(roll)), -math.cos(math.radians(roll))])
    cx, cy = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + up * 0.08 * height
    return Ellipse(float(cx), float(cy), 0.52 * width, 0.62 * height, roll)


def ellipse_mask(shape: tuple[int, ...], ellipses: list[Ellipse], feather: float = 0.0) -> np.ndarray:
    """Float32 (H, W) mask, 1 inside every ellipse and fading to 0 over about ``2 * feather`` pixels outside.

    The fade lies outside the ellipse, so everything the ellipse covers is fully replaced.
    """
    height, width = shape[:2]
    mask = np.zeros((height, width), np.float32)
    margin = int(math.ceil(3 * feather)) + 2
    for e in ellipses:
        x0, y0, x1, y1 = e.bounds()
        left, top = max(int(x0) - margin, 0), max(int(y0) - margin, 0)
        right, bottom = min(int(math.ceil(x1)) + margin, width), min(int(math.ceil(y1)) + margin, height)
        if right <= left or bottom <= top:
            continue
        hard = np.zeros((bottom - top, right - left), np.float32)
        cv2.ellipse(hard, ((e.cx - left, e.cy - top), (2 * e.a, 2 * e.b), e.angle), 1.0, -1, cv2.LINE_AA)
        if feather > 0:
            hard = np.maximum(hard, np.clip(2.0 * cv2.GaussianBlur(hard, (0, 0), sigmaX=feather), 0.0, 1.0))
        roi = mask[top:bottom, left:right]
        np.maximum(roi, hard, out=roi)
    return mask
