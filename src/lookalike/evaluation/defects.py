"""Defect counters: what a viewer flags in an edited face, measured without a viewer.

Each counter compares the anonymized face with its original at the same pixels, so a face that is
naturally busy (a beard, a fringe, strong light) is not counted against the method:

- ``seam``: edge energy added on the skin, chin and jaw and just outside the face outline, relative to the
  original's there (0: none added, as for an untouched face or a blur; seams, patches, outlines and
  foreign texture add it); the eyes, brows, nose and mouth are left out;
- ``hair``: share of the forehead and cheek skin that is much darker than the person's skin (strands or a
  band of a donor's fringe), anonymized minus original (0: none added);
- ``frames``: for a face with glasses, how much of the frames' evidence across the bridge of the nose is
  kept (1: all; 0: frames gone while arms stay at the temples);
- ``contours``: strong edges crossed walking outward through the cheek and jaw outline that the original
  has nowhere near, per outline point (above 0: a second jaw line or outline).

The fallback kind of a face comes from the method's own record, not from pixels (see
:func:`fallback_kind`).

>>> import numpy as np
>>> from skimage.data import astronaut
>>> from lookalike.faces import detect
>>> image = astronaut()
>>> defects = face_defects(image, image.copy(), detect(image)[0])
>>> defects.seam, defects.hair, defects.contours   # nothing changed: nothing added
(0.0, 0.0, 0.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from lookalike.donors.prototypes import EYEWEAR_THRESHOLD, eyewear_score
from lookalike.imaging import clamp_box
from lookalike.landmarks import SALIENCY_REGIONS, region_labels
from lookalike.landmarks.regions import FACE_OVAL
from lookalike.types import Face

#: Hair-like skin: at least this much darker (CIELAB L, 0-100) than the median of the person's skin.
HAIR_DARKER = 25.0
#: ... and textured: local standard deviation of L* (5x5) above this (a flat fill is not hair).
HAIR_TEXTURE = 2.0
#: An edge crossed along an outline normal: intensity step at least this big (8-bit grey levels per pixel).
CONTOUR_STEP = 6.0
#: How far the outline walk reaches inside and outside the face outline, in face widths.
CONTOUR_REACH = 0.12

_SKIN = tuple(SALIENCY_REGIONS.index(r) for r in ("forehead", "right_cheek", "left_cheek"))
#: Where a natural face has no strong edge of its own: skin, chin and jaw.
_SEAMLESS = _SKIN + tuple(SALIENCY_REGIONS.index(r) for r in ("chin", "right_jaw", "left_jaw"))
#: The cheek-to-jaw part of the face oval (indices into FACE_OVAL): the outline a morph moves.
_LOWER_OVAL = FACE_OVAL[6:31]


#: The counters, by name (the fields of :class:`Defects`).
DEFECTS = ("seam", "hair", "frames", "contours")


@dataclass(frozen=True)
class Defects:
    """The counters of one face (None: not measurable for this face, e.g. no glasses for ``frames``)."""

    seam: float | None
    hair: float | None
    frames: float | None
    contours: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {k: None if v is None else round(float(v), 4) for k, v in asdict(self).items()}


def face_defects(original: np.ndarray, anonymized: np.ndarray, face: Face) -> Defects:
    """The defect counters of ``face`` (found in the RGB ``original``) in the RGB ``anonymized`` image."""
    landmarks = face.landmarks
    if landmarks is None:
        return Defects(None, None, None, None)
    x0, y0, x1, y1 = _window(face, original.shape)
    before = np.ascontiguousarray(original[y0:y1, x0:x1])
    after = np.ascontiguousarray(anonymized[y0:y1, x0:x1])
    points: np.ndarray = landmarks[:, :2] - np.array([x0, y0], np.float32)
    labels = region_labels(before.shape, landmarks, offset=(x0, y0))
    return Defects(
        seam=_seam(before, after, labels, face.width),
        hair=_hair(before, after, labels),
        frames=_frames(original, anonymized, landmarks),
        contours=_contours(before, after, points, face.width),
    )


def fallback_kind(fallback: str | None) -> str:
    """The kind of a face record's ``fallback`` text: "none", "blurred lookalike", "blur" or "solid".

    >>> fallback_kind(None), fallback_kind("blur (sigma 0.2 of the face width; no donor)")
    ('none', 'blur')
    """
    if not fallback:
        return "none"
    for kind in ("blurred lookalike", "blur", "solid"):
        if fallback.startswith(kind):
            return kind
    return "other"


def _window(face: Face, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    pad = 0.5 * max(x1 - x0, y1 - y0)
    return clamp_box(
        (int(np.floor(x0 - pad)), int(np.floor(y0 - pad)), int(np.ceil(x1 + pad)), int(np.ceil(y1 + pad))), shape
    )


def _gradient(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))


def _seam(before: np.ndarray, after: np.ndarray, labels: np.ndarray, width: float) -> float | None:
    """Edge energy the anonymized face adds on the skin and just outside the outline (where seams, patches
    and outlines show), relative to the original's edge energy there; the eyes, brows, nose and mouth,
    whose edges any face has, are left out."""
    inside = np.isin(labels, _SEAMLESS)
    grow = max(int(round(0.1 * width)), 1)
    near = cv2.dilate((labels >= 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    band = inside | ((near > 0) & (labels < 0))
    if band.sum() < 50:
        return None
    old, new = _gradient(before)[band], _gradient(after)[band]
    return float(np.maximum(new - old, 0.0).mean() / max(float(old.mean()), 1.0))


def _hair(before: np.ndarray, after: np.ndarray, labels: np.ndarray) -> float | None:
    skin = np.isin(labels, _SKIN)
    if skin.sum() < 50:
        return None
    lightness = [
        cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32) * (100.0 / 255.0) for image in (before, after)
    ]
    reference = float(np.median(lightness[0][skin]))
    shares = []
    for lum in lightness:
        # hair is dark and textured; a flat dark fill (a solid fallback) is not hair, and its kind is on record
        texture = np.sqrt(np.maximum(cv2.blur(lum * lum, (5, 5)) - cv2.blur(lum, (5, 5)) ** 2, 0.0))
        shares.append(float(((lum < reference - HAIR_DARKER) & (texture > HAIR_TEXTURE))[skin].mean()))
    return max(shares[1] - shares[0], 0.0)


def _frames(original: np.ndarray, anonymized: np.ndarray, landmarks: np.ndarray) -> float | None:
    worn = eyewear_score(original, landmarks)
    if not np.isfinite(worn) or worn <= EYEWEAR_THRESHOLD:
        return None
    return float(np.clip(eyewear_score(anonymized, landmarks) / worn, 0.0, 2.0))


def _contours(before: np.ndarray, after: np.ndarray, points: np.ndarray, width: float) -> float | None:
    oval = points[list(_LOWER_OVAL)]
    centre = points[list(FACE_OVAL)].mean(axis=0)
    reach = max(CONTOUR_REACH * width, 4.0)
    steps = np.arange(-reach, reach + 1.0, 1.0, dtype=np.float32)
    greys = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) for image in (before, after)]
    new_edges = 0
    for i, point in enumerate(oval):
        tangent = oval[min(i + 1, len(oval) - 1)] - oval[max(i - 1, 0)]
        normal = np.array([tangent[1], -tangent[0]], np.float32)
        normal /= max(float(np.hypot(*normal)), 1e-6)
        if normal @ (point - centre) < 0:
            normal = -normal  # outward
        xs = (point[0] + steps * normal[0]).astype(np.float32)[None]
        ys = (point[1] + steps * normal[1]).astype(np.float32)[None]
        old, new = (
            _edges(cv2.remap(grey, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]) for grey in greys
        )
        new_edges += sum(bool(old.size == 0 or np.abs(old - position).min() > 3) for position in new)
    return float(new_edges / len(oval))


def _edges(profile: np.ndarray) -> np.ndarray:
    """Positions of the separate intensity steps of at least :data:`CONTOUR_STEP` along a profile."""
    step = np.abs(np.diff(cv2.GaussianBlur(profile[None], (0, 0), 1.0)[0]))
    peaks = np.flatnonzero((step[1:-1] >= CONTOUR_STEP) & (step[1:-1] >= step[:-2]) & (step[1:-1] >= step[2:])) + 1
    if peaks.size < 2:
        return peaks
    keep = np.concatenate([[True], np.diff(peaks) > 3])  # a thin line's two sides are one edge
    return peaks[keep]
