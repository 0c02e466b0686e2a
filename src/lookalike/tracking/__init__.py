"""Faces followed through a clip: tracks, their predicted places, scene cuts, landmark smoothing.

Plain geometry: no model is loaded here and nothing above (:mod:`lookalike.pipeline`) is imported.
"""

from lookalike.tracking.smoothing import smooth_landmarks
from lookalike.tracking.tracks import (
    Observation,
    Track,
    associate,
    box_calibration,
    cosine_distance,
    face_from_landmarks,
    iou,
    is_scene_cut,
    thumbnail,
)

__all__ = [
    "Observation",
    "Track",
    "associate",
    "box_calibration",
    "cosine_distance",
    "face_from_landmarks",
    "iou",
    "is_scene_cut",
    "smooth_landmarks",
    "thumbnail",
]
