"""What the perceptual metric sees of a face: both recognizers' embeddings, the shape of the face, and
low-level appearance (skin, hair and lip colour).

Shape is the 478 landmarks (x, y) brought into a common frame by a similarity transform (position,
scale and in-plane rotation removed), in inter-ocular units. Appearance is the mean and spread of the
CIELAB colour of named regions, read from the image under the region masks.

>>> from skimage.data import astronaut
>>> from lookalike.faces import detect
>>> image = astronaut()
>>> features = face_features(image, detect(image)[0])
>>> {name: part.shape for name, part in features.parts.items()}
{'dlib': (128,), 'facenet': (512,), 'shape': (956,), 'appearance': (24,), 'pose': (3,), 'mouth': (1,)}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from lookalike.identity import get_recognizer
from lookalike.landmarks import region_mask
from lookalike.landmarks.geometry import IRIS_CENTRES, mouth_opening
from lookalike.landmarks.regions import FACE_OVAL
from lookalike.types import Face

#: Feature parts in the order the metric concatenates them.
PARTS = ("dlib", "facenet", "shape", "appearance")
#: Also kept for each face, for donor compatibility rather than for the metric: head pose
#: (yaw, pitch, roll in degrees) and mouth opening (inner-lip gap in inter-ocular distances).
EXTRAS = ("pose", "mouth")

#: Regions whose colour is measured: skin (cheeks, forehead), lips, and hair (a band above the forehead).
COLOUR_REGIONS = ("skin", "lips", "hair", "eyes")


@dataclass
class FaceFeatures:
    """The parts of one face's feature vector (see :data:`PARTS`)."""

    parts: dict[str, np.ndarray]

    def vector(self) -> np.ndarray:
        return np.concatenate([self.parts[name] for name in PARTS]).astype(np.float32)


class FeatureError(ValueError):
    """A face that cannot be described (no dense landmarks: too small, profile)."""


def face_features(image: np.ndarray, face: Face, embeddings: Mapping[str, np.ndarray] | None = None) -> FaceFeatures:
    """The features of one face of an RGB uint8 image; the face needs its dense landmarks.

    ``embeddings``: the recognizers' embeddings of this face when the caller has them already.
    """
    if face.landmarks is None:
        raise FeatureError("no dense landmarks for this face (too small, or seen in profile)")
    known = embeddings or {}
    parts = {
        name: np.asarray(known[name] if name in known else get_recognizer(name).embed(image, face), np.float32)
        for name in ("dlib", "facenet")
    }
    parts["shape"] = normalized_shape(face.landmarks)
    parts["appearance"] = appearance(image, face.landmarks)
    pose = face.pose
    parts["pose"] = np.array([pose.yaw, pose.pitch, pose.roll] if pose else [np.nan] * 3, np.float32)
    parts["mouth"] = np.array([mouth_opening(face.landmarks)], np.float32)
    return FaceFeatures(parts)


def normalized_shape(landmarks: np.ndarray) -> np.ndarray:
    """(956,) landmark x, y with position, scale and roll removed: eyes on a level line, one unit apart.

    >>> points = np.random.default_rng(0).normal(size=(478, 3))
    >>> moved = points.copy(); moved[:, :2] = 3 * points[:, :2] + 7
    >>> bool(np.allclose(normalized_shape(points), normalized_shape(moved)))
    True
    """
    p = np.asarray(landmarks, np.float64)[:, :2]
    right, left = p[IRIS_CENTRES[0]], p[IRIS_CENTRES[1]]
    axis = left - right
    scale = max(float(np.hypot(*axis)), 1e-6)
    angle = np.arctan2(axis[1], axis[0])
    rotation = np.array([[np.cos(-angle), -np.sin(-angle)], [np.sin(-angle), np.cos(-angle)]])
    centred = (p - (right + left) / 2) @ rotation.T / scale
    return centred.reshape(-1).astype(np.float32)


def appearance(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(24,) CIELAB mean and standard deviation of skin, lips, hair and eyes (L, a, b each, 0..1 scale)."""
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32) / 255.0
    out = []
    for name in COLOUR_REGIONS:
        mask = _colour_mask(image.shape, landmarks, name)
        pixels = lab[mask]
        if len(pixels) < 10:  # region outside the image: no evidence, neutral values
            out += [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]
            continue
        out += list(pixels.mean(axis=0)) + list(pixels.std(axis=0))
    return np.asarray(out, np.float32)


def _colour_mask(shape: tuple[int, ...], landmarks: np.ndarray, name: str) -> np.ndarray:
    if name == "skin":
        return region_mask(shape, landmarks, ["right_cheek", "left_cheek", "forehead"]) > 0.5
    if name == "lips":
        return region_mask(shape, landmarks, ["lips"]) > 0.5
    if name == "eyes":
        return region_mask(shape, landmarks, ["right_iris", "left_iris"]) > 0.5
    return _hair_band(shape, landmarks)


def _hair_band(shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """The band just outside the upper face oval, where hair (or a hairline) is."""
    oval = np.asarray(landmarks, np.float32)[list(FACE_OVAL), :2]
    centre = oval.mean(axis=0)
    top = oval[oval[:, 1] <= np.median(oval[:, 1])]  # the upper half of the outline, left to right
    top = top[np.argsort(top[:, 0])]
    outer = centre + (top - centre) * 1.35
    inner = centre + (top - centre) * 1.05
    band = np.zeros(shape[:2], np.uint8)
    polygon = np.concatenate([outer, inner[::-1]])
    cv2.fillPoly(band, [np.round(polygon).astype(np.int32)], 1)
    return band > 0
