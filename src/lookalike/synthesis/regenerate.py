"""One lookalike candidate: a face's identity regions regenerated from a donor.

:func:`regenerate` chains the transplant primitives of :mod:`lookalike.synthesis.transplant` for one face
and one choice of (donor, regions, morph strength); the closed loop in :mod:`lookalike.pipeline.lookalike`
tries several choices and keeps the least change that hides the person.

1. The target's landmarks are morphed toward the donor's shape in the chosen regions (shape carries
   identity: eye spacing, nose length, lip shape), and the target's own face is warped onto that
   geometry, so even pixels no donor replaces follow the new shape.
2. The donor is warped onto the same geometry, colour-matched to the reshaped target region by region,
   and blended in over the chosen regions with a multi-band blend.
3. What carries no identity comes back from the target: its fine texture and grain (``detail``), its
   irises and gaze, and an open mouth's interior (teeth, tongue).

Everything happens in a window around the face; pixels outside it are never touched.

>>> from skimage.data import astronaut
>>> from lookalike.pipeline import detect
>>> from lookalike.synthesis.bank import default_bank
>>> image = astronaut()
>>> face = detect(image)[0]
>>> donor, donor_landmarks = default_bank().donor_image(0)
>>> candidate = regenerate(image, face.landmarks, donor, donor_landmarks, ("nose", "mouth"), morph=0.5)
>>> candidate.image.shape[2], 0.0 < float(candidate.mask.mean()) < 0.5
(3, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from lookalike.landmarks.geometry import interocular, mouth_opening
from lookalike.landmarks.regions import region_mask
from lookalike.saliency.regions import SALIENCY_REGIONS, region_labels, vertex_labels
from lookalike.synthesis.transplant import (MAX_MORPH, laplacian_blend, match_colour, morph_landmarks,
                                            reinject_detail, warp_to_landmarks)

__all__ = ["MAX_MORPH", "Regeneration", "RegenerationConfig", "face_box_window", "regenerate"]


@dataclass(frozen=True)
class RegenerationConfig:
    """How a candidate is synthesised; sizes are fractions of the face's inter-ocular distance.

    margin : window around the landmarks' box, as a fraction of the box's size on each side.
    feather : softness of the blend mask's edge.
    detail : sigma separating the target's fine texture (given back) from the donor's structure.
    detail_amount : how much of the target's fine texture comes back (1: all of it).
    keep_gaze : keep the target's irises (where it looks is expression, not identity).
    keep_open_mouth : keep the inside of an open mouth (teeth, tongue) when it is open more than
        ``open_mouth`` inter-ocular units and the donor's opens within ``open_mouth`` of as wide.
    shading : 0 matches the donor's colour to the target region by region (cheeks, nose, lips keep the
        person's own shading); 1 uses one set of statistics for the whole face, so only the overall skin
        tone and lighting come from the person; in between, a mix. The person's shading carries identity
        for recognizers, so the stronger styles raise it; the donor's own shading then shows more (a
        prototype's hairline or strand of hair on the forehead, for instance), so only the last ones do.
    """

    margin: float = 0.35
    feather: float = 0.06
    detail: float = 0.025
    detail_amount: float = 0.8
    keep_gaze: bool = True
    keep_open_mouth: bool = True
    open_mouth: float = 0.06
    shading: float = 0.0


@dataclass(frozen=True)
class Regeneration:
    """A candidate for one face, in its window ``box`` = (x0, y0, x1, y1) of the image.

    ``image`` is the window's new pixels (RGB uint8); ``mask`` (float32, window-sized) is 1 where they
    differ from the original's and feathers to 0 (the changed-pixel mask a report and SSIM use).
    ``landmarks`` (478, 3) is the face's new geometry, in image pixels.
    """

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    regions: tuple[str, ...]
    morph: float
    landmarks: np.ndarray

    def paste(self, image: np.ndarray) -> np.ndarray:
        """A copy of the full RGB ``image`` with this candidate's window in place."""
        out = image.copy()
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.image
        return out


def face_box_window(shape: tuple[int, ...], landmarks: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the landmarks' box grown by ``margin`` of its size on each side, inside the image."""
    height, width = shape[:2]
    points = np.asarray(landmarks, np.float64)[:, :2]
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad_x, pad_y = margin * (x1 - x0), margin * (y1 - y0)
    return (max(0, int(np.floor(x0 - pad_x))), max(0, int(np.floor(y0 - pad_y))),
            min(width, int(np.ceil(x1 + pad_x)) + 1), min(height, int(np.ceil(y1 + pad_y)) + 1))


def regenerate(image: np.ndarray, landmarks: np.ndarray, donor: np.ndarray, donor_landmarks: np.ndarray,
               regions: Sequence[str], morph: float, *, outline: bool = False,
               config: RegenerationConfig | None = None) -> Regeneration:
    """The face with ``landmarks`` (478, image pixels) with ``regions`` regenerated from ``donor``.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    landmarks : (478, 3) the target face's landmarks.
    donor, donor_landmarks : the donor's RGB image and its landmarks in it (a bank crop, for instance).
    regions : names from :data:`~lookalike.saliency.regions.SALIENCY_REGIONS` to take from the donor;
        they are also the regions whose shape is morphed.
    morph : in [0, 2], how far the shape of those regions moves toward the donor's; above 1 it moves
        past the donor's, away from the person (a caricature of the difference).
    outline : let the face outline move too (stronger, but the jaw line then moves against the
        untouched neck and background; off by default).
    """
    config = config or RegenerationConfig()
    unknown = sorted(set(regions) - set(SALIENCY_REGIONS))
    if unknown:
        raise ValueError(f"unknown regions {unknown}; choose from {', '.join(SALIENCY_REGIONS)}")
    if not 0.0 <= morph <= MAX_MORPH:
        raise ValueError(f"morph must be in [0, {MAX_MORPH:g}], got {morph}")
    target = np.asarray(landmarks, np.float32)
    box = face_box_window(image.shape, target, config.margin)
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    shape = crop.shape[:2]
    local = target.copy()
    local[:, :2] -= (x0, y0)
    unit = max(interocular(local), 1.0)
    chosen = [SALIENCY_REGIONS.index(r) for r in regions]

    # 1. geometry: the chosen regions' vertices move toward the donor's shape; the target follows.
    geometry, base = local, crop
    if morph > 0 and chosen:
        weights = np.isin(vertex_labels(), chosen).astype(np.float64)
        geometry = morph_landmarks(local, donor_landmarks, morph, vertex_weights=weights,
                                   oval_weight=1.0 if outline else 0.0)
        reshaped, covered = warp_to_landmarks(crop, local, geometry, shape)
        base = np.where(covered[..., None] > 0, reshaped, crop)
    labels = region_labels(shape, geometry)
    if base is not crop:
        # The person's own far side of a turned head has no pixels to move (the nose hides them): paint it
        # in from around rather than leave the unmoved original there, whose edges would show as streaks.
        hidden = (labels >= 0) & (covered == 0)
        if hidden.any():
            base = cv2.inpaint(base, hidden.astype(np.uint8), 3, cv2.INPAINT_TELEA)

    # 2. the donor's pixels on that geometry, in the target's colours, over the chosen regions
    warped, coverage = warp_to_landmarks(donor, donor_landmarks, geometry, shape)
    # Where the donor cannot supply a chosen region (its side of a turned head, a squeezed triangle), its
    # neighbours are painted in: left to the target, the slivers would show the person's own features
    # stretched onto the new geometry as bright or dark streaks.
    holes = np.isin(labels, chosen) & (coverage == 0)
    if holes.any() and coverage.any():
        warped = cv2.inpaint(warped, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA)
        coverage = np.maximum(coverage, holes.astype(np.float32))
    stats = np.where(coverage > 0, labels, -1).astype(np.int16)
    matched = match_colour(warped, base, stats, shading=config.shading)
    overlay = np.where(coverage[..., None] > 0, matched, base)
    hard = (np.isin(labels, chosen) & (coverage > 0)).astype(np.float32)
    keep = _kept(shape, geometry, local, np.asarray(donor_landmarks, np.float32), unit, config)
    if keep is not None:
        hard *= 1.0 - keep
    # erode first so the feathered edge stays inside the donor's coverage
    feather = config.feather * unit
    radius = max(int(round(feather)), 1)
    hard = cv2.erode(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    soft = np.minimum(cv2.GaussianBlur(hard, (0, 0), feather / 2), coverage) if hard.any() else hard
    blended = laplacian_blend(base, overlay, soft) if soft.any() else base.copy()

    # 3. the target's own fine texture back under the donor's pixels
    result = reinject_detail(blended, base, soft, sigma=config.detail * unit, amount=config.detail_amount)
    changed = (result != crop).any(axis=-1).astype(np.float32)
    mask = np.maximum(changed, soft)
    moved = geometry.copy()
    moved[:, :2] += (x0, y0)
    return Regeneration(image=result, mask=mask, box=box, regions=tuple(regions), morph=float(morph), landmarks=moved)


def _kept(shape: tuple[int, int], geometry: np.ndarray, original: np.ndarray, donor: np.ndarray, unit: float,
          config: RegenerationConfig) -> np.ndarray | None:
    """Where the target's own pixels stay: irises (gaze) and an open mouth's interior, on the new geometry.

    The interior is kept only when the donor's mouth opens about as wide: stretched into a much wider
    opening, the target's teeth and shadow would show as a dark hole between the donor's lips.
    """
    names = []
    if config.keep_gaze:
        names += ["right_iris", "left_iris"]
    target_open, donor_open = mouth_opening(original), mouth_opening(donor)
    if config.keep_open_mouth and target_open > config.open_mouth and abs(donor_open - target_open) <= config.open_mouth:
        names.append("mouth_interior")
    if not names:
        return None
    return region_mask(shape, geometry, names, feather=0.03 * unit)
