"""k-anonymous prototype donors: averages of k look-alike faces, none of which is one person.

A transplanted donor face carries the identity of whoever it came from. Averaging k faces first
(warping each onto the group's mean landmarks, then averaging the pixels) gives a donor whose every
face pixel is the mean of k different people: the result is a plausible face but belongs to none of
them, and anything read from it (identity, shape, colour) is shared by at least k people. That is the
k-anonymity of the donor (Newton, Sweeney & Malin 2005 "k-Same"): a recognizer that matches a
prototype can at best narrow it to its k members. The members must still look alike, or the average
is a blend of strangers with doubled features, so groups are formed from perceptually close and
compatible faces (:class:`GroupRules`), each face used in at most one group.

The visual cost: averaging removes what is not aligned across members, so pores, wrinkles, stubble,
freckles and sensor grain are smoothed away (averages look younger and airbrushed), and thin details
that differ in position (teeth, eyelashes, stray hair) fade. The transplant step puts the target's own
high frequencies back (:func:`~lookalike.synthesis.transplant.reinject_detail`) for exactly this reason.
Outside the face mesh (hair, background) members are only similarity-aligned, so that part of a
prototype crop is a soft blend of k heads: it is context for the detector, not donor material.

Eyewear: glasses of one member leave ghost frames in an average, so faces with eyewear are kept out
(:func:`eyewear_score`, a measured bridge-of-the-nose check; see its docstring for its accuracy).

>>> import numpy as np
>>> rules = GroupRules(k=2, min_similarity=0.0)
>>> e = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], np.float32)
>>> faces = FaceTraits(e / np.linalg.norm(e, axis=1, keepdims=True), age=np.full(4, 30.0),
...                    gender=np.full(4, 20.0), skin=np.full(4, 20.0), pose=np.zeros((4, 3)),
...                    mouth=np.zeros(4), gaze=np.zeros((4, 2)))
>>> group_faces(faces, rules)
[[0, 1], [2, 3]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from lookalike.donors.canonical import apply_similarity, canonical_transform, warp_similarity
from lookalike.donors.pool import age_group
from lookalike.synthesis.transplant import laplacian_blend, warp_to_landmarks

__all__ = [
    "EYEWEAR_THRESHOLD",
    "FaceTraits",
    "GroupRules",
    "average_faces",
    "compatible_pairs",
    "eyewear_score",
    "gaze",
    "group_faces",
]

#: :func:`eyewear_score` above this: the face wears glasses (see the function for how it was measured).
EYEWEAR_THRESHOLD = 20.0

#: The working frame of the eyewear check: faces are similarity-aligned to a crop of this size
#: (inter-ocular distance ~116 px), so the line widths the check looks for are fixed in pixels.
_EYEWEAR_FRAME = 448


@dataclass(frozen=True)
class GroupRules:
    """Which faces may be averaged together; ``None`` switches a tolerance off.

    All members of a group must pairwise satisfy every rule (the defaults were chosen by looking at
    averages of OMI faces 1-600, the loosest groups first):

    - the same perceived gender side (predicted gender >= 50) and the same age group
      (:data:`~lookalike.donors.pool.AGE_BOUNDS`): a blend across them looks like neither;
    - ``max_skin_gap`` 15 rating units of predicted skin colour, as donor choice allows;
    - ``max_pose_gap`` 15 degrees of yaw and of pitch: each member is warped onto the mean landmarks,
      but a turned head shows parts of the face (a cheek, the side of the nose) the others hide. At 10
      degrees half as many groups form (30 against 69 of OMI 1-600) and the averages look no better;
    - the same mouth state (inner-lip gap above ``mouth_threshold`` is open; 0.06 as in donor choice),
      and for open mouths a gap within ``max_mouth_gap`` so that teeth overlap instead of doubling.
      ``mouth="closed"`` makes prototypes of closed mouths only (the cleanest averages, but about a third
      as many, and donor choice needs open-mouth donors for smiling targets);
    - ``max_gaze_gap`` 0.12 eye widths of iris position (:func:`gaze`), or the irises double (OMI's
      5th-95th percentile of horizontal gaze spans 0.15);
    - perceptual similarity (0..1) of at least ``min_similarity``: 0.8 is above OMI's median pair
      (0.71); the median group's least similar pair is at 0.89. Raising it to 0.9 halves the groups.
    """

    k: int = 4
    max_skin_gap: float | None = 15.0
    max_pose_gap: float | None = 15.0
    mouth_threshold: float = 0.06
    max_mouth_gap: float | None = 0.08
    max_gaze_gap: float | None = 0.12
    min_similarity: float = 0.8
    mouth: Literal["same", "closed"] = "same"

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError(f"a prototype averages at least 2 faces, got k={self.k}")
        if self.mouth not in ("same", "closed"):
            raise ValueError(f"mouth must be 'same' or 'closed', got {self.mouth!r}")


@dataclass
class FaceTraits:
    """What grouping knows of N faces: perceptual unit embeddings (N, d), predicted ``age``, ``gender`` and
    ``skin`` ratings (N,), ``pose`` (N, 3) degrees, ``mouth`` (N,) inner-lip gap and ``gaze`` (N, 2)."""

    embeddings: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    skin: np.ndarray
    pose: np.ndarray
    mouth: np.ndarray
    gaze: np.ndarray

    def __len__(self) -> int:
        return len(self.embeddings)


def compatible_pairs(faces: FaceTraits, rules: GroupRules) -> np.ndarray:
    """(N, N) bool: which pairs of faces ``rules`` allow in one group (the diagonal is False).

    Unknown values (NaN pose, mouth or gaze) are incompatible: a face that cannot be checked is left out.
    """
    n = len(faces)
    ok = np.ones((n, n), bool)

    def within(values: np.ndarray, tolerance: float | None) -> np.ndarray:
        values = np.asarray(values, np.float64).reshape(n, -1)
        if tolerance is None:
            return np.ones((n, n), bool)
        with np.errstate(invalid="ignore"):
            return (np.abs(values[:, None, :] - values[None, :, :]) <= tolerance).all(axis=2)

    male = np.asarray(faces.gender) >= 50
    groups = age_group(faces.age)
    ok &= (male[:, None] == male[None]) & (groups[:, None] == groups[None])
    ok &= within(faces.skin, rules.max_skin_gap)
    ok &= within(np.asarray(faces.pose)[:, :2], rules.max_pose_gap)
    ok &= within(faces.gaze, rules.max_gaze_gap)
    mouth = np.asarray(faces.mouth, np.float64)
    open_ = mouth > rules.mouth_threshold
    ok &= (open_[:, None] == open_[None]) & ~np.isnan(mouth)[:, None] & ~np.isnan(mouth)[None]
    if rules.mouth == "closed":
        ok &= ~open_[:, None] & ~open_[None]
    elif rules.max_mouth_gap is not None:
        ok &= ~(open_[:, None] & open_[None]) | within(mouth, rules.max_mouth_gap)
    similarity = (1.0 + faces.embeddings.astype(np.float64) @ faces.embeddings.T.astype(np.float64)) / 2.0
    ok &= similarity >= rules.min_similarity
    np.fill_diagonal(ok, False)
    return ok


def group_faces(
    faces: FaceTraits, rules: GroupRules = GroupRules(), usable: np.ndarray | None = None
) -> list[list[int]]:
    """Disjoint groups of ``rules.k`` mutually compatible faces, each as close together as the greedy allows.

    Greedy, hardest face first: the unassigned face with the fewest compatible unassigned partners
    seeds a group (a face with many options can wait; one with few must be served before its partners
    are taken), which then grows by the candidate compatible with every member whose lowest
    perceptual similarity to the members is highest (complete linkage). A seed that cannot complete a
    group is not tried again (it may still join a later group). Deterministic: ties go to the lower index.

    ``usable`` (N,) bool leaves faces out (eyewear, for instance). Returns groups of row indices, each
    sorted, in the order they were formed.
    """
    n = len(faces)
    k = rules.k
    usable = np.ones(n, bool) if usable is None else np.asarray(usable, bool).copy()
    pairs = compatible_pairs(faces, rules) & usable[:, None] & usable[None]
    similarity = faces.embeddings.astype(np.float64) @ faces.embeddings.T.astype(np.float64)
    free = usable.copy()
    tried = ~usable
    groups: list[list[int]] = []
    while True:
        options = (pairs & free[None]).sum(axis=1)
        seeds = np.flatnonzero(free & ~tried & (options >= k - 1))
        if len(seeds) == 0:
            break
        seed = int(seeds[np.argmin(options[seeds])])  # argmin takes the first: the lowest index
        tried[seed] = True
        group = [seed]
        candidates = np.flatnonzero(pairs[seed] & free)
        while len(group) < k:
            candidates = candidates[pairs[candidates][:, group].all(axis=1)]
            if len(candidates) == 0:
                break
            worst = similarity[np.ix_(candidates, group)].min(axis=1)
            best = int(candidates[np.argmax(worst)])
            group.append(best)
            candidates = candidates[candidates != best]
        if len(group) == k:
            free[group] = False
            groups.append(sorted(group))
    return groups


# ------------------------------------------------------------------------------------------ gaze


def gaze(landmarks: np.ndarray) -> np.ndarray:
    """(2,) where the irises sit in the eyes, in eye widths: horizontal (toward the subject's left) and
    vertical (down), averaged over both eyes; about (0, 0) looking straight ahead.

    >>> points = np.zeros((478, 3))
    >>> points[[33, 133, 362, 263], 0] = [0, 10, 20, 30]
    >>> points[468, :2], points[473, :2] = (6, 1), (26, 1)   # both irises 1 px toward the subject's left, 1 px down
    >>> gaze(points).round(2).tolist()
    [0.1, 0.1]
    """
    p = np.asarray(landmarks, np.float64)[:, :2]
    out = []
    for outer, inner, iris, toward_left in ((33, 133, 468, 1.0), (263, 362, 473, -1.0)):
        axis = p[inner] - p[outer]
        width = max(float(np.hypot(*axis)), 1e-6)
        along = axis / width * (1.0 if toward_left > 0 else -1.0)  # unit vector to the subject's left
        down = np.array([-along[1], along[0]])  # image y grows downward
        offset = p[iris] - (p[inner] + p[outer]) / 2
        out.append([float(offset @ along) / width, float(offset @ down) / width])
    return np.mean(out, axis=0)


# --------------------------------------------------------------------------------------- eyewear


def eyewear_score(image: np.ndarray, landmarks: np.ndarray) -> float:
    """How strongly a thin horizontal line crosses the bridge of the nose between the eyes: glasses.

    The face is similarity-aligned to a fixed frame; in the patch between the inner eye corners (middle
    half of the gap, from a quarter inter-ocular distance above the bridge point 168 to just below point
    6), each column's CIELAB profile minus its vertical blur (sigma 5% of the inter-ocular distance) is
    taken, the median over columns kept per row (a frame crosses the whole patch; a wrinkle or a brow
    hair does not), and the largest absolute value per channel summed over L, a and b (8-bit Lab units).

    Measured on OMI faces 1-360, labelled by eye from contact sheets with doubtful ones zoomed (69 of 360
    wear glasses or sunglasses). The threshold was set on faces 1-240 (recall 38/42, false alarms 8/198)
    and checked on faces 241-360: recall 25/27, false alarms 3/93; over all 360, 91% of eyewear is caught
    and 3.8% of faces without it are flagged. Misses are rimless and thin metal frames (the faint ghosts
    they leave in an average are the least harmful); false alarms are frown lines and shadows at the
    bridge of the nose. Pale frames on light skin can also pass (a drawn pale-yellow frame on the
    astronaut scores 10).

    >>> from skimage.data import astronaut
    >>> from lookalike.faces import detect
    >>> image = astronaut()
    >>> eyewear_score(image, detect(image)[0].landmarks) < EYEWEAR_THRESHOLD
    True
    """
    matrix = canonical_transform(landmarks, _EYEWEAR_FRAME)
    crop = warp_similarity(image, matrix, _EYEWEAR_FRAME)
    points = apply_similarity(matrix, landmarks)[:, :2]
    lab = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2LAB).astype(np.float32)
    unit = float(np.hypot(*(points[468] - points[473])))
    gap = points[362, 0] - points[133, 0]
    x0, x1 = int(round(points[133, 0] + 0.25 * gap)), int(round(points[362, 0] - 0.25 * gap))
    y0, y1 = int(round(points[168, 1] - 0.25 * unit)), int(round(points[6, 1] + 0.1 * unit))
    patch = lab[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
    if patch.shape[0] < 5 or patch.shape[1] < 2:
        return float("nan")
    base = cv2.GaussianBlur(patch, (1, 0), sigmaX=0.1, sigmaY=0.05 * unit)
    shared = np.median(patch - base, axis=1)  # (rows, 3)
    return float(np.abs(shared).max(axis=0).sum())


# --------------------------------------------------------------------------------------- averaging


def average_faces(
    images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The average of faces in the canonical frame (:func:`~lookalike.donors.bank.canonical_transform`).

    Each face's landmarks are similarity-aligned on the stable points to the canonical frame and
    averaged (the group's mean landmarks); each face is then warped onto the mean landmarks
    (:func:`~lookalike.synthesis.transplant.warp_to_landmarks`) and the warped faces averaged pixel by
    pixel. Only pixels every member covers are taken from that average; elsewhere (hair, background,
    pixels a member's warp left uncovered) the similarity-aligned images are averaged instead, and the two
    are joined with a multi-band blend. Every face pixel is thus a mean of all members; off the face,
    where a member's photo does not reach, the others' pixels (or a smooth fill) stand in.

    Parameters
    ----------
    images : RGB uint8 images, one face each.
    landmarks : their (478, 3) landmarks in image pixels.
    size : side of the square output.

    Returns
    -------
    average : (size, size, 3) uint8.
    mean_landmarks : (478, 3) float32 in the output's pixels.
    """
    if len(images) != len(landmarks) or not images:
        raise ValueError("give as many images as landmark sets, at least one")
    matrices = [canonical_transform(points, size) for points in landmarks]
    mean = np.mean([apply_similarity(m, points) for m, points in zip(matrices, landmarks)], axis=0).astype(np.float32)
    context = np.zeros((size, size, 3), np.float64)
    inside = np.zeros((size, size), np.float64)
    face = np.zeros((size, size, 3), np.float64)
    count = np.zeros((size, size), np.int32)
    for image, points, matrix in zip(images, landmarks, matrices):
        # Only real pixels enter the context average (repeated or mirrored borders would stack into
        # streaks and phantom chins where a member's photo ends), and each photo fades out toward its
        # edge, so the others take over without a seam.
        valid = warp_similarity(np.full(image.shape[:2], 255, np.uint8), matrix, size, cv2.BORDER_CONSTANT) > 250
        ramp = cv2.distanceTransform(valid.astype(np.uint8), cv2.DIST_L2, 3)
        weight = np.clip(ramp / (size / 16), 0.0, 1.0)
        context += warp_similarity(image, matrix, size, cv2.BORDER_CONSTANT) * weight[..., None]
        inside += weight
        warped, coverage = warp_to_landmarks(image, points, mean, (size, size))
        face += warped
        count += coverage > 0
    context = _fill_holes(context, inside)
    full = count == len(images)
    face_u8 = np.where(
        full[..., None], np.clip(np.round(face / np.maximum(count, 1)[..., None]), 0, 255), context
    ).astype(np.uint8)
    # A soft edge a little inside the fully covered area: the join falls on skin, not on the mesh border.
    inner = cv2.erode(full.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, size // 128))
    weight = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), max(size / 128, 1.0)) * full
    return laplacian_blend(context, face_u8, weight), mean


def _fill_holes(total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``total / weight`` as uint8; where the weights add up to less than 1 (few or no photos reach), a wide
    normalized blur of the rest makes up the difference, so holes fill smoothly."""
    reached = weight > 1e-6
    mean = total / np.where(reached, weight, 1.0)[..., None]
    if (weight < 1).any():
        sigma = total.shape[0] / 16
        norm = cv2.GaussianBlur(reached.astype(np.float32), (0, 0), sigma)
        fill = cv2.GaussianBlur((mean * reached[..., None]).astype(np.float32), (0, 0), sigma)
        fill = fill / np.maximum(norm, 1e-6)[..., None]
        missing = np.clip(1.0 - weight, 0.0, 1.0)[..., None]
        mean = (total + missing * fill) / (weight[..., None] + missing)
    return np.clip(np.round(mean), 0, 255).astype(np.uint8)
