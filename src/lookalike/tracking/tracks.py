"""Faces linked across the frames of a clip: one :class:`Track` per person and shot.

Detections are linked to tracks by box overlap with each track's predicted position (constant velocity
from its last sure positions) and, when given, by an identity embedding, so two faces crossing keep their
tracks and a face that leaves and comes back can get its old track again (and so its old lookalike).
Between detections a track is followed by its dense landmarks (a face's landmarks found again around its
predicted position are as good as a detection); where neither finds it, its predicted position stands in
(recorded as ``predicted``, with the reason), so a face the detector misses is still covered.

This module is plain geometry on :class:`~lookalike.types.Face` objects and arrays; the models that find
faces and landmarks are called by the caller (:mod:`lookalike.pipeline.video`).

>>> a = np.array([0, 0, 10, 10], np.float32)
>>> round(iou(a, a + 5), 3)
0.143
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lookalike.types import Face

#: Landmark indices (FaceMesh) giving the detector's five keypoints, in :data:`~lookalike.types.KEYPOINT_NAMES`
#: order (eyes as the mean of their two corners).
_KEYPOINT_LANDMARKS = ((33, 133), (263, 362), (1,), (61,), (291,))

#: How an observation of a track came about.
SOURCES = ("detected", "tracked", "predicted", "backfilled")


@dataclass
class Observation:
    """Where a track's face is in one frame, and how that is known.

    source: ``detected`` (the face detector found it), ``tracked`` (its landmarks were found again at its
    predicted place between detections), ``backfilled`` (found by landmarks in a frame before its first
    detection, following it backwards), ``predicted`` (found by nothing: the place it was expected;
    ``reason`` says why).
    """

    frame: int
    face: Face
    source: str
    reason: str | None = None

    @property
    def sure(self) -> bool:
        """Whether the face was seen in this frame with dense landmarks (not only predicted)."""
        return self.source != "predicted" and self.face.landmarks is not None


@dataclass
class Track:
    """One person in one shot (or across a short absence): every frame's observation of them."""

    id: int
    observations: dict[int, Observation] = field(default_factory=dict)
    embedding: np.ndarray | None = None
    #: consecutive frames (up to the newest) where the face was predicted only
    misses: int = 0
    #: the detector's box relative to the landmarks' box (see :func:`box_calibration`)
    calibration: np.ndarray | None = None
    ended: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> int:
        return min(self.observations)

    @property
    def last(self) -> int:
        return max(self.observations)

    def add(self, observation: Observation) -> None:
        self.observations[observation.frame] = observation
        if observation.frame >= self.last:
            self.misses = 0 if observation.sure else self.misses + 1

    def predict(self, frame: int) -> Face:
        """The face's expected place in ``frame``: constant velocity from the two nearest sure observations
        on the side of ``frame`` they lie (damped; the last place if only one is known). Landmarks move
        with the box; the score is the last one's."""
        before = frame > self.first
        known = sorted(
            (f for f, o in self.observations.items() if o.sure and ((f < frame) if before else (f > frame))),
            reverse=before,
        )
        if not known:
            nearest = min(self.observations, key=lambda f: abs(f - frame))
            return _copy(self.observations[nearest].face)
        a = self.observations[known[0]].face
        if len(known) < 2:
            return _copy(a)
        b = self.observations[known[1]].face
        steps = (frame - known[0]) / float(known[0] - known[1])
        velocity = (a.box - b.box) * min(steps, 20.0) * 0.8  # (a face hidden behind another keeps going)
        shift = (velocity[:2] + velocity[2:]) / 2
        moved = a.translated(float(shift[0]), float(shift[1]))
        # the size changes as it did, within half to twice the last size (a zoom, not a collapse)
        size = np.array([a.width, a.height], np.float32)
        new_size = np.clip(size + (velocity[2:] - velocity[:2]), 0.5 * size, 2.0 * size)
        centre = (moved.box[:2] + moved.box[2:]) / 2
        moved.box = np.concatenate([centre - new_size / 2, centre + new_size / 2]).astype(np.float32)
        return moved


def _copy(face: Face) -> Face:
    return face.translated(0.0, 0.0)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = float(w * h)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def box_calibration(face: Face) -> np.ndarray | None:
    """The detector's box as offsets from the landmarks' box, in units of its size: lets a face found by
    landmarks alone get a box like the detector's (the mask of a box-only face, the next prediction)."""
    if face.landmarks is None:
        return None
    lo, hi = face.landmarks[:, :2].min(axis=0), face.landmarks[:, :2].max(axis=0)
    size = np.maximum(hi - lo, 1.0)
    return ((face.box - np.concatenate([lo, hi])) / np.tile(size, 2)).astype(np.float32)


def face_from_landmarks(
    landmarks: np.ndarray, calibration: np.ndarray | None, score: float = 1.0, like: Face | None = None
) -> Face:
    """A :class:`Face` for landmarks found without the detector: keypoints from the landmarks, box from
    their extent (calibrated to the detector's box when a calibration is known)."""
    points = np.asarray(landmarks, np.float32)
    keypoints = np.stack([points[list(ids), :2].mean(axis=0) for ids in _KEYPOINT_LANDMARKS]).astype(np.float32)
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    box = np.concatenate([lo, hi])
    if calibration is not None:
        box = box + calibration * np.tile(np.maximum(hi - lo, 1.0), 2)
    base = like if like is not None else Face(box.astype(np.float32), score, keypoints)
    return replace(
        base, box=box.astype(np.float32), keypoints=keypoints, landmarks=points, score=float(score), notes=[]
    )


def associate(
    predicted: list[Face],
    detections: list[Face],
    *,
    track_embeddings: list[np.ndarray | None] | None = None,
    detection_embeddings: list[np.ndarray | None] | None = None,
    min_iou: float = 0.15,
    identity_threshold: float | None = None,
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Link detections to tracks: (track, detection) pairs, unmatched tracks, unmatched detections.

    Greedy on a cost that adds the boxes' disagreement (1 - IoU) to the identity distance (cosine) in
    units of ``identity_threshold`` when both embeddings are known; a pair whose boxes overlap less than
    ``min_iou`` is linked only if their centres are within half a face width *and* (when known) their
    identities agree, or if their identities are clearly the same (under 0.7 of the threshold: a face
    found again after its prediction drifted, behind another face for a while). Two faces crossing overlap
    each other's predictions; the identity term keeps them apart.
    """
    pairs: list[tuple[float, int, int]] = []
    for t, p in enumerate(predicted):
        for d, det in enumerate(detections):
            overlap = iou(p.box, det.box)
            distance = float(np.linalg.norm(p.center - det.center)) / max(p.width, det.width, 1.0)
            identity = None
            if identity_threshold and track_embeddings and detection_embeddings:
                a, b = track_embeddings[t], detection_embeddings[d]
                if a is not None and b is not None:
                    identity = cosine_distance(a, b) / identity_threshold
            same_person = identity is not None and identity < 0.7
            if overlap < min_iou and not same_person and (distance > 0.5 or (identity is not None and identity > 1.0)):
                continue
            if identity is not None and identity > 1.6 and overlap < 0.5:
                continue  # clearly someone else, and not clearly in the same place
            cost = (1.0 - overlap) + (0.5 * min(identity, 3.0) if identity is not None else 0.0)
            pairs.append((cost, t, d))
    pairs.sort()
    used_t, used_d, matched = set(), set(), []
    for _, t, d in pairs:
        if t in used_t or d in used_d:
            continue
        used_t.add(t)
        used_d.add(d)
        matched.append((t, d))
    return (
        matched,
        [t for t in range(len(predicted)) if t not in used_t],
        [d for d in range(len(detections)) if d not in used_d],
    )


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cos(a, b)."""
    return float(1.0 - np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A tiny colour picture of a frame for :func:`is_scene_cut`."""
    import cv2

    return cv2.resize(rgb, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


def is_scene_cut(previous: np.ndarray | None, current: np.ndarray, threshold: float = 0.25) -> bool:
    """Whether two consecutive frames' thumbnails belong to different shots: their colour histograms differ
    by more than ``threshold`` (half the L1 distance of the normalised per-channel histograms, averaged:
    0 same, 1 disjoint) *and* the pictures differ on average by more than 6% of the range. A pan or a
    face moving changes the picture but hardly its histogram; a lighting change shifts the histogram of
    a picture that otherwise stays put.

    >>> a = np.zeros((18, 32, 3), np.float32)
    >>> is_scene_cut(a, a + 200), is_scene_cut(a, a + 1)
    (True, False)
    """
    if previous is None:
        return False
    spreads = []
    for channel in range(previous.shape[2]):
        h1, _ = np.histogram(previous[..., channel], bins=16, range=(0, 256))
        h2, _ = np.histogram(current[..., channel], bins=16, range=(0, 256))
        spreads.append(0.5 * float(np.abs(h1 / h1.sum() - h2 / h2.sum()).sum()))
    change = float(np.abs(previous - current).mean()) / 255.0
    return float(np.mean(spreads)) > threshold and change > 0.06
