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
>>> from lookalike.faces import detect
>>> from lookalike.donors.bank import default_bank
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

from lookalike.imaging import clamp_box
from lookalike.landmarks.geometry import interocular, mouth_opening
from lookalike.landmarks.partition import SALIENCY_REGIONS, region_labels, vertex_labels
from lookalike.landmarks.regions import region_mask
from lookalike.synthesis.transplant import (
    MAX_MORPH,
    laplacian_blend,
    match_colour,
    morph_landmarks,
    reinject_detail,
    warp_to_landmarks,
)

__all__ = [
    "MAX_MORPH",
    "OCCLUDABLE",
    "Regeneration",
    "RegenerationConfig",
    "face_box_window",
    "is_monochrome",
    "frames",
    "occluders",
    "regenerate",
    "with_chroma_of",
]


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
    keep_occluders : what lies in front of the person's skin (hair over the forehead or cheeks, glasses
        frames and arms, a beard) stays where it is, in front of the new face, and what lies in front
        of the donor's skin (its fringe, its glasses) is never brought (:func:`occluders`).
    eyewear : the person wears glasses: their frames (:func:`frames`) stay in front of the new eyes too.
    """

    margin: float = 0.35
    feather: float = 0.06
    detail: float = 0.025
    detail_amount: float = 0.8
    keep_gaze: bool = True
    keep_open_mouth: bool = True
    open_mouth: float = 0.06
    shading: float = 0.0
    keep_occluders: bool = True
    eyewear: bool = False


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
    points = np.asarray(landmarks, np.float64)[:, :2]
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad_x, pad_y = margin * (x1 - x0), margin * (y1 - y0)
    grown = (
        int(np.floor(x0 - pad_x)),
        int(np.floor(y0 - pad_y)),
        int(np.ceil(x1 + pad_x)) + 1,
        int(np.ceil(y1 + pad_y)) + 1,
    )
    return clamp_box(grown, shape)


def regenerate(
    image: np.ndarray,
    landmarks: np.ndarray,
    donor: np.ndarray,
    donor_landmarks: np.ndarray,
    regions: Sequence[str],
    morph: float,
    *,
    outline: bool = False,
    config: RegenerationConfig | None = None,
    donor_occluders: np.ndarray | None = None,
) -> Regeneration:
    """The face with ``landmarks`` (478, image pixels) with ``regions`` regenerated from ``donor``.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    landmarks : (478, 3) the target face's landmarks.
    donor, donor_landmarks : the donor's RGB image and its landmarks in it (a bank crop, for instance).
    regions : names from :data:`~lookalike.landmarks.partition.SALIENCY_REGIONS` to take from the donor;
        they are also the regions whose shape is morphed.
    morph : in [0, 2], how far the shape of those regions moves toward the donor's; above 1 it moves
        past the donor's, away from the person (a caricature of the difference).
    outline : let the face outline move too (stronger, but the jaw line then moves against the
        untouched neck and background; off by default).
    donor_occluders : :func:`occluders` of the donor when already known (a video replays one donor on
        every frame); found here otherwise.
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
    shape = (crop.shape[0], crop.shape[1])
    local = target.copy()
    local[:, :2] -= (x0, y0)
    unit = max(interocular(local), 1.0)
    chosen = [SALIENCY_REGIONS.index(r) for r in regions]

    # 1. geometry: the chosen regions' vertices move toward the donor's shape; the target follows.
    geometry, base = local, crop
    if morph > 0 and chosen:
        weights = np.isin(vertex_labels(), chosen).astype(np.float64)
        geometry = morph_landmarks(
            local, donor_landmarks, morph, vertex_weights=weights, oval_weight=1.0 if outline else 0.0
        )
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
    if config.keep_occluders:
        # the donor's hair strands or frames over its skin are not brought: those pixels come from the person
        if donor_occluders is None:
            donor_occluders = occluders(donor, donor_landmarks)
        if donor_occluders.any():
            coverage = coverage * (1.0 - _warp_mask(donor_occluders, donor_landmarks, geometry, shape))
    stats = np.where(coverage > 0.5, labels, -1).astype(np.int16)
    matched = match_colour(warped, base, stats, shading=config.shading)
    overlay = np.where(coverage[..., None] > 0, matched, base)
    hard = (np.isin(labels, chosen) & (coverage > 0)).astype(np.float32)
    keep = _kept(shape, geometry, local, np.asarray(donor_landmarks, np.float32), unit, config)
    if keep is not None:
        hard *= 1.0 - keep
    if config.keep_occluders:
        # The person's hair over the face, glasses frames and beard stay in front of the new face: they
        # come from the person's own pixels on the new geometry (so a fringe or a frame follows the
        # forehead and eyes it lies on), and the multi-band blend joins them to the donor's skin.
        mine = occluders(crop, local)
        if config.eyewear:
            mine |= frames(crop, local, mine)
        if mine.any():
            hard *= 1.0 - (_warp_mask(mine, local, geometry, shape) if base is not crop else mine.astype(np.float32))
    # erode first so the feathered edge stays inside the donor's coverage
    feather = config.feather * unit
    radius = max(int(round(feather)), 1)
    hard = cv2.erode(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    soft = np.minimum(cv2.GaussianBlur(hard, (0, 0), feather / 2), coverage) if hard.any() else hard
    blended = laplacian_blend(base, overlay, soft) if soft.any() else base.copy()

    # 3. the target's own fine texture back under the donor's pixels
    result = reinject_detail(blended, base, soft, sigma=config.detail * unit, amount=config.detail_amount)
    if is_monochrome(crop):
        result = with_chroma_of(result, base)

    changed = (result != crop).any(axis=-1).astype(np.float32)
    mask = np.maximum(changed, soft)
    moved = geometry.copy()
    moved[:, :2] += (x0, y0)
    return Regeneration(image=result, mask=mask, box=box, regions=tuple(regions), morph=float(morph), landmarks=moved)


#: A picture is monochrome when almost none of it has colour (chroma, the CIELAB a*, b* distance from
#: neutral grey, above :data:`_COLOURED` in OpenCV's 8-bit units, on fewer than 5% of its lit pixels), or
#: when its colour has one hue (sepia, cyanotype): the chroma-weighted circular spread of hue angles under
#: :data:`MONOCHROME_HUE_SPREAD` degrees. Skin against any background, or skin against lips, eyes and
#: hair, spreads far wider.
MONOCHROME_HUE_SPREAD = 6.0
_COLOURED = 4.0


def is_monochrome(image: np.ndarray) -> bool:
    """Whether an RGB uint8 picture is grey or a single tint (sepia, cyanotype...), by its hues.

    >>> grey = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(8, axis=0)
    >>> sepia = (grey * np.array([1.0, 0.85, 0.65])).astype(np.uint8)
    >>> from skimage.data import astronaut
    >>> is_monochrome(grey), is_monochrome(sepia), is_monochrome(astronaut())
    (True, True, False)
    """
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    lit = (lab[:, 0] > 20) & (lab[:, 0] < 235)  # chroma is undefined near black and white
    a, b = lab[lit, 1] - 128.0, lab[lit, 2] - 128.0
    chroma = np.hypot(a, b)
    coloured = chroma > _COLOURED
    if coloured.sum() < 0.05 * max(len(chroma), 1):
        return True
    weights = chroma[coloured]
    resultant = (
        np.hypot((weights * a[coloured] / chroma[coloured]).sum(), (weights * b[coloured] / chroma[coloured]).sum())
        / weights.sum()
    )
    spread = np.degrees(np.sqrt(-2.0 * np.log(max(resultant, 1e-12))))  # circular standard deviation
    return bool(spread < MONOCHROME_HUE_SPREAD)


def with_chroma_of(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image``'s lightness with ``reference``'s chroma (CIELAB a*, b*): a face in a grey or tinted photo
    keeps the photo's colour, whatever colour the donor was."""
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB)
    lab[..., 1:] = cv2.cvtColor(np.ascontiguousarray(reference), cv2.COLOR_RGB2LAB)[..., 1:]
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


#: Regions where anything that is not skin is in front of the face: hair, glasses, a beard. Eyes, brows,
#: nose (nostrils) and mouth are not skin either, but they are the features to change.
OCCLUDABLE = ("forehead", "right_cheek", "left_cheek", "chin", "right_jaw", "left_jaw")
#: Regions whose pixels describe the face's skin colour.
_SKIN_SAMPLE = ("right_cheek", "left_cheek", "forehead")


def occluders(image: np.ndarray, landmarks: np.ndarray, *, tolerance: float = 4.0) -> np.ndarray:
    """(H, W) bool: pixels of the face's skin regions (:data:`OCCLUDABLE`) that are not skin.

    The face's skin colour is learnt from its cheeks and forehead (CIELAB median and spread, robust to
    what covers part of them); a pixel whose colour is more than ``tolerance`` spreads away (lightness
    counted at half weight: shading is not an occluder), or that is far darker than the skin, is hair,
    a frame or a beard. Specks (pores, moles) are dropped; strands and frames are kept whole.

    >>> from skimage.data import astronaut
    >>> from lookalike.faces import detect
    >>> image = astronaut()
    >>> landmarks = detect(image)[0].landmarks
    >>> bare = occluders(image, landmarks)
    >>> fringe = image.copy()
    >>> x, y = landmarks[151, :2].astype(int)   # a dark strand across the middle of the forehead
    >>> fringe[y - 4:y + 4, x - 20:x + 20] = (40, 30, 20)
    >>> int(occluders(fringe, landmarks).sum() - bare.sum()) > 200
    True
    """
    shape = image.shape[:2]
    labels = region_labels(shape, landmarks)
    sample = np.isin(labels, [SALIENCY_REGIONS.index(r) for r in _SKIN_SAMPLE])
    where = np.isin(labels, [SALIENCY_REGIONS.index(r) for r in OCCLUDABLE])
    if sample.sum() < 50 or not where.any():
        return np.zeros(shape, bool)
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    skin = lab[sample]
    centre = np.median(skin, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(skin - centre), axis=0), (6.0, 2.0, 2.0))
    z = (lab - centre) / spread
    distance = np.sqrt((0.5 * z[..., 0]) ** 2 + z[..., 1] ** 2 + z[..., 2] ** 2)
    unit = max(float(np.sqrt(where.sum())) / 20.0, 1.0)  # about a twentieth of the face's side
    # Not on the face's outline: there the mesh's last ring holds background and hair beside the face,
    # and kept in place they would draw the old outline beside a moved one.
    inset = max(int(round(0.8 * unit)), 1)
    where = cv2.erode(where.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1,) * 2)) > 0
    # Far darker than the skin is hair, on the forehead (a fringe); lower down it may be a deep shadow.
    dark = (lab[..., 0] < 0.55 * centre[0]) & (labels == SALIENCY_REGIONS.index("forehead"))
    found = (where & ((distance > tolerance) | dark)).astype(np.uint8)
    radius = max(int(round(0.15 * unit)), 1)
    found = cv2.morphologyEx(found, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    count, component, stats, _ = cv2.connectedComponentsWithStats(found, connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < unit * unit)
    small = small[small > 0]
    if small.size:
        found[np.isin(component, small)] = 0
    return found.astype(bool)


def frames(image: np.ndarray, landmarks: np.ndarray, outside: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: a pair of glasses' frames around and between the eyes.

    Thin dark lines (a morphological black-hat of the lightness, thinner than a tenth of the eyes'
    distance) over the eyes, brows and nose bridge, kept where they are long (rims and the bridge run
    across most of an eye) or join what ``outside`` (:func:`occluders`) already found around the eyes
    (the arms at the temples): lashes and creases are short and stand alone.
    """
    shape = image.shape[:2]
    unit = max(interocular(landmarks), 1.0)
    labels = region_labels(shape, landmarks)
    band = np.isin(
        labels,
        [SALIENCY_REGIONS.index(r) for r in ("right_eye", "left_eye", "nose", "right_cheek", "left_cheek", "forehead")],
    ).astype(np.uint8)
    grow = max(int(round(0.1 * unit)), 1)
    band = cv2.dilate(band, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)) > 0
    lightness = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB)[..., 0]
    size = max(int(round(0.1 * unit)) | 1, 3)
    hat = cv2.morphologyEx(lightness, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    thin = (band & (hat > 18)).astype(np.uint8)
    count, component, stats, _ = cv2.connectedComponentsWithStats(thin, connectivity=8)
    if count <= 1:
        return np.zeros(shape, bool)
    long = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) > 0.45 * unit
    joined = np.zeros(count, bool)
    if outside is not None and outside.any():
        near = cv2.dilate(outside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        joined[np.unique(component[near & (thin > 0)])] = True
    keep = long | joined
    keep[0] = False
    return keep[component]


def _warp_mask(mask: np.ndarray, landmarks: np.ndarray, geometry: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask on a face with ``landmarks`` moved onto ``geometry`` (float32, 0..1, ``shape``)."""
    planes = np.repeat(mask.astype(np.uint8)[..., None] * 255, 3, axis=2)  # the warp takes 3-channel images
    return warp_to_landmarks(planes, landmarks, geometry, shape)[0][..., 0].astype(np.float32) / 255.0


def _kept(
    shape: tuple[int, int],
    geometry: np.ndarray,
    original: np.ndarray,
    donor: np.ndarray,
    unit: float,
    config: RegenerationConfig,
) -> np.ndarray | None:
    """Where the target's own pixels stay: irises (gaze) and an open mouth's interior, on the new geometry.

    The interior is kept only when the donor's mouth opens about as wide: stretched into a much wider
    opening, the target's teeth and shadow would show as a dark hole between the donor's lips.
    """
    names = []
    if config.keep_gaze:
        names += ["right_iris", "left_iris"]
    target_open, donor_open = mouth_opening(original), mouth_opening(donor)
    if (
        config.keep_open_mouth
        and target_open > config.open_mouth
        and abs(donor_open - target_open) <= config.open_mouth
    ):
        names.append("mouth_interior")
    if not names:
        return None
    return region_mask(shape, geometry, names, feather=0.03 * unit)
