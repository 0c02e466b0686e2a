"""Dense 478-point landmarks (with irises) from mediapipe's FaceMesh, run on each detected face.

FaceMesh finds its own face in whatever it is given, so each detected face is cut out first: a square
crop around the box, turned so the eyes are level (this is what lets a tilted or sideways face be
meshed), then the points are mapped back into image coordinates. A mesh whose eyes land far from the
detector's eye keypoints belongs to another face and is rejected.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.landmarks.pose import head_pose
from lookalike.types import Face

_RIGHT_EYE_CENTRE = (33, 133)  # outer and inner corner of the subject's right eye
_LEFT_EYE_CENTRE = (263, 362)


@dataclass(frozen=True)
class LandmarkConfig:
    """How faces are cut out for FaceMesh.

    crop_scale: crop side as a multiple of the larger box side (FaceMesh's own detector wants context).
    crop_size: side in pixels of the crop FaceMesh sees.
    min_face: faces narrower than this (pixels) get no landmarks.
    max_eye_error: a mesh is rejected when its eye centres are farther than this fraction of the box
        width from the detector's eye keypoints.
    """

    crop_scale: float = 2.0
    crop_size: int = 256
    min_face: float = 12.0
    max_eye_error: float = 0.35


class FaceMeshLandmarker:
    """Lazily created, thread-safe wrapper around ``mediapipe.solutions.face_mesh.FaceMesh``.

    >>> from skimage.data import astronaut
    >>> from lookalike.detection import detect_faces
    >>> image = astronaut()
    >>> faces = FaceMeshLandmarker().add_landmarks(image, detect_faces(image))
    >>> faces[0].landmarks.shape
    (478, 3)
    """

    def __init__(self, config: LandmarkConfig | None = None):
        self.config = config or LandmarkConfig()
        self._mesh = None
        self._warm = False
        self._lock = threading.Lock()

    def _model(self):
        if self._mesh is None:
            with _quiet_native_stderr():
                import mediapipe as mp

                self._mesh = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=2, refine_landmarks=True, min_detection_confidence=0.3
                )
        return self._mesh

    def landmarks(self, image: np.ndarray, face: Face) -> np.ndarray | None:
        """(478, 3) float32 landmarks of one face in image coordinates, or None if not found."""
        cfg = self.config
        if min(face.width, face.height) < cfg.min_face:
            return None
        matrix = _crop_matrix(face, cfg.crop_scale, cfg.crop_size)
        # warp from a window around the face: cheaper, and OpenCV refuses sources of 32767 px or more
        reach = 0.75 * cfg.crop_scale * max(face.width, face.height) + 2
        x0, y0 = (max(int(v - reach), 0) for v in face.center)
        x1, y1 = (
            min(int(face.center[0] + reach) + 1, image.shape[1]),
            min(int(face.center[1] + reach) + 1, image.shape[0]),
        )
        window = matrix.copy()
        window[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
        crop = cv2.warpAffine(
            np.ascontiguousarray(image[y0:y1, x0:x1]),
            window,
            (cfg.crop_size, cfg.crop_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        with self._lock:
            # the first call prints mediapipe's C++ start-up warnings, which say nothing to our users
            with _quiet_native_stderr() if not self._warm else contextlib.nullcontext():
                result = self._model().process(np.ascontiguousarray(crop))
            self._warm = True
        if not result.multi_face_landmarks:
            return None
        inverse = cv2.invertAffineTransform(matrix)
        scale = math.hypot(inverse[0, 0], inverse[1, 0])
        best, best_error = None, math.inf
        for mesh in result.multi_face_landmarks:
            pts = np.array([(p.x, p.y, p.z) for p in mesh.landmark], np.float32) * cfg.crop_size
            xy = pts[:, :2] @ inverse[:, :2].T + inverse[:, 2]
            points = np.concatenate([xy, pts[:, 2:] * scale], axis=1).astype(np.float32)
            error = _eye_error(points, face)
            if error < best_error:
                best, best_error = points, error
        if best is None or best_error > cfg.max_eye_error * face.width:
            return None
        return best

    def add_landmarks(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Fill ``landmarks`` and ``pose`` of each face in place (None where FaceMesh fails); returns faces."""
        for face in faces:
            face.landmarks = self.landmarks(image, face)
            if face.landmarks is None:
                face.notes.append("no dense landmarks (face too small, occluded or in profile)")
                face.pose = None
            else:
                face.pose = head_pose(face.landmarks)
        return faces


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 (where mediapipe's C++ logging writes) for the duration."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _crop_matrix(face: Face, crop_scale: float, crop_size: int) -> np.ndarray:
    """Image -> crop affine matrix: square around the face, eyes level, face centred."""
    angle = face.eye_angle
    side = crop_scale * max(face.width, face.height)
    centre = tuple(float(v) for v in face.center)
    matrix = cv2.getRotationMatrix2D(centre, angle, crop_size / side)
    matrix[:, 2] += np.array([crop_size / 2 - centre[0], crop_size / 2 - centre[1]])
    return matrix


def _eye_error(points: np.ndarray, face: Face) -> float:
    right = points[list(_RIGHT_EYE_CENTRE), :2].mean(axis=0)
    left = points[list(_LEFT_EYE_CENTRE), :2].mean(axis=0)
    return float(max(np.linalg.norm(right - face.keypoints[0]), np.linalg.norm(left - face.keypoints[1])))


_DEFAULT: FaceMeshLandmarker | None = None


def default_landmarker() -> FaceMeshLandmarker:
    """The process-wide landmarker with default settings (created on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = FaceMeshLandmarker()
    return _DEFAULT


def add_landmarks(image: np.ndarray, faces: list[Face]) -> list[Face]:
    """Dense landmarks and head pose for each face, with the default landmarker."""
    return default_landmarker().add_landmarks(image, faces)
