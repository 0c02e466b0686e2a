"""Head pose from the 3-D FaceMesh landmarks.

FaceMesh gives each point a depth on roughly the scale of x and y (weak perspective), so the face's
own axes can be read straight off the mesh: across the eyes, and from forehead to chin. Their rotation
relative to the camera is the head pose. Sign conventions, as a viewer sees the image: yaw > 0 when the
face turns toward the image's right, pitch > 0 when it looks up, roll > 0 when it tilts clockwise.
"""

from __future__ import annotations

import math

import numpy as np

from lookalike.types import HeadPose

_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN = 33, 263, 10, 152


def head_pose(landmarks: np.ndarray) -> HeadPose:
    """Yaw, pitch and roll in degrees from (478, 3) landmarks.

    >>> import numpy as np
    >>> points = np.zeros((478, 3), np.float32)
    >>> points[33], points[263], points[10], points[152] = (0, 0, 0), (10, 0, 0), (5, -8, 0), (5, 12, 0)
    >>> head_pose(points)
    HeadPose(yaw=0.0, pitch=0.0, roll=0.0)
    """
    p = np.asarray(landmarks, np.float64)
    x_axis = _unit(p[_LEFT_EYE_OUTER] - p[_RIGHT_EYE_OUTER])
    down = p[_CHIN] - p[_FOREHEAD]
    y_axis = _unit(down - np.dot(down, x_axis) * x_axis)
    yaw = math.degrees(math.atan2(x_axis[2], math.hypot(x_axis[0], x_axis[1])))
    pitch = math.degrees(math.atan2(-y_axis[2], math.hypot(y_axis[0], y_axis[1])))
    roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    return HeadPose(yaw=round(yaw, 2) + 0.0, pitch=round(pitch, 2) + 0.0, roll=round(roll, 2) + 0.0)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v
