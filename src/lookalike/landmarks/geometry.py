"""Measures of a face's geometry on the 478 FaceMesh landmarks, in inter-ocular units.

>>> import numpy as np
>>> points = np.zeros((478, 3), np.float32)
>>> points[IRIS_CENTRES[0], :2], points[IRIS_CENTRES[1], :2] = (40, 50), (80, 50)
>>> points[INNER_LIPS[1], :2] = (0, 10)
>>> interocular(points), mouth_opening(points)
(40.0, 0.25)
"""

from __future__ import annotations

import numpy as np

#: FaceMesh indices of the two iris centres (subject's right, left).
IRIS_CENTRES = (468, 473)
#: Upper and lower inner-lip midpoints.
INNER_LIPS = (13, 14)
#: Upper and lower eyelid midpoints of each eye.
EYELIDS = ((159, 145), (386, 374))


def interocular(landmarks: np.ndarray) -> float:
    """Distance between the iris centres, pixels."""
    a, b = (np.asarray(landmarks[i, :2], np.float64) for i in IRIS_CENTRES)
    return float(np.linalg.norm(a - b))


def mouth_opening(landmarks: np.ndarray, unit: float | None = None) -> float:
    """Gap between the inner lips, in ``unit`` pixels (default: this face's inter-ocular distance)."""
    top, bottom = (np.asarray(landmarks[i, :2], np.float64) for i in INNER_LIPS)
    return float(np.linalg.norm(top - bottom) / max(unit or interocular(landmarks), 1e-6))


def eye_opening(landmarks: np.ndarray, unit: float | None = None) -> float:
    """Mean eyelid gap of both eyes, in ``unit`` pixels (default: this face's inter-ocular distance)."""
    gaps = [
        np.linalg.norm(np.asarray(landmarks[a, :2], np.float64) - np.asarray(landmarks[b, :2], np.float64))
        for a, b in EYELIDS
    ]
    return float(np.mean(gaps) / max(unit or interocular(landmarks), 1e-6))
