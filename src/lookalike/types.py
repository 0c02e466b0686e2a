"""Plain data passed between the pipeline stages.

Coordinates are always in pixels of the full image, x to the right and y down, as float32 arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

#: Order of the five keypoints every detector returns.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
"""The subject's right eye is on the image's left in a frontal photo: index 0 has the smaller x."""


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees: yaw (left/right turn), pitch (up/down), roll (in-plane tilt)."""

    yaw: float
    pitch: float
    roll: float

    def as_dict(self) -> dict[str, float]:
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2)}


@dataclass
class Face:
    """One detected face.

    Attributes
    ----------
    box : (4,) float32, x0, y0, x1, y1.
    score : detector confidence in [0, 1].
    keypoints : (5, 2) float32, in the order of :data:`KEYPOINT_NAMES`.
    landmarks : (478, 3) float32 dense FaceMesh landmarks (x, y in pixels, z relative depth in pixels), or None
        when they could not be computed (for instance a face too small or seen in profile).
    pose : head pose estimated from the landmarks, or None.
    rotation : how many degrees (0, 90, 180, 270, counter-clockwise) the image had to be turned for the
        detector to find this face; 0 for upright faces.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    pose: HeadPose | None = None
    rotation: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def eye_angle(self) -> float:
        """In-plane angle of the line from the right to the left eye keypoint, degrees (0: eyes level)."""
        right_eye, left_eye = self.keypoints[0], self.keypoints[1]
        return math.degrees(math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0])))

    def translated(self, dx: float, dy: float) -> "Face":
        """A copy moved by (dx, dy) pixels: box, keypoints and landmarks (a face cut out of its image with
        ``translated(-x0, -y0)``, put back with ``translated(x0, y0)``).

        >>> face = Face(np.array([10, 10, 50, 60], np.float32), 0.9, np.zeros((5, 2), np.float32))
        >>> face.translated(-10, -5).box.tolist()
        [0.0, 5.0, 40.0, 55.0]
        """
        offset = np.array([dx, dy], np.float32)
        landmarks = None if self.landmarks is None else self.landmarks.copy()
        if landmarks is not None:
            landmarks[:, :2] += offset
        return replace(
            self,
            box=self.box + np.tile(offset, 2),
            keypoints=self.keypoints + offset,
            landmarks=landmarks,
            notes=list(self.notes),
        )

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], np.float32)

    def to_dict(self, with_landmarks: bool = True) -> dict:
        """JSON-friendly view with rounded numbers."""
        out: dict = {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": {
                n: [round(float(x), 1), round(float(y), 1)] for n, (x, y) in zip(KEYPOINT_NAMES, self.keypoints)
            },
            "rotation": self.rotation,
            "pose": self.pose.as_dict() if self.pose else None,
        }
        if with_landmarks:
            out["landmarks"] = None if self.landmarks is None else np.round(self.landmarks, 1).tolist()
        if self.notes:
            out["notes"] = list(self.notes)
        return out
