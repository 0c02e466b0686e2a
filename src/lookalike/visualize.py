"""Pictures that show what was found: boxes, keypoints, dense landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from lookalike.types import Face

_KEYPOINT_COLOURS = ((255, 64, 64), (64, 160, 255), (255, 220, 0), (255, 64, 255), (0, 220, 120))


def draw_faces(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of an RGB image with each face's box, score, 5 keypoints and 478 landmarks drawn.

    >>> import numpy as np
    >>> draw_faces(np.zeros((10, 10, 3), np.uint8), []).shape
    (10, 10, 3)
    """
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 600))
    for face in faces:
        size = max(face.width, face.height)
        dot = max(1, round(size / 150))
        if face.landmarks is not None:
            for x, y in face.landmarks[:, :2]:
                cv2.circle(out, (int(round(x)), int(round(y))), dot, (0, 255, 255), -1, cv2.LINE_AA)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), thickness, cv2.LINE_AA)
        for (x, y), colour in zip(face.keypoints, _KEYPOINT_COLOURS):
            cv2.circle(out, (int(round(x)), int(round(y))), dot * 2 + 1, colour, -1, cv2.LINE_AA)
        label = f"{face.score:.2f}"
        scale = max(0.4, size / 250)
        cv2.putText(
            out, label, (x0, max(y0 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 0), thickness, cv2.LINE_AA
        )
    return out
