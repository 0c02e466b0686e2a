"""Perceptual face similarity (PerFace): a metric learned from human judgments.

Identity embeddings answer "same person or not"; this metric answers "how alike do two faces look to
people". It is a small head over both recognizers' embeddings, the normalised landmark shape and
skin/hair/lip colour statistics, trained on triplets of human judgments (:mod:`.triplets`). The head
shipped with the package was trained on triplets derived from OMI's human attribute ratings (faces
0001-0600; see ``models/LICENSE-perface-omi.txt``), which is human-grounded but not the same as direct
similarity judgments.

>>> from skimage.data import astronaut
>>> from lookalike.faces import detect
>>> image = astronaut()
>>> face = detect(image)[0]
>>> round(perceptual_similarity(image, face, image[:, ::-1].copy(), detect(image[:, ::-1].copy())[0]), 1) >= 0.9
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.assets import load_asset
from lookalike.perception.features import EXTRAS, PARTS, FaceFeatures, FeatureError, face_features
from lookalike.perception.model import PerceptionModel, similarity
from lookalike.types import Face

#: The head shipped with the package (made by ``lookalike perception train``, see the README).
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "perface_omi.npz"


def load_model(path: str | Path | None = None) -> PerceptionModel:
    """A trained head (default: the shipped one), loaded once per process."""
    path = Path(path) if path else DEFAULT_MODEL
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no perception model here (train one with `lookalike perception train`)")
    return load_asset(PerceptionModel.load, path)


def embed_face(image: np.ndarray, face: Face, model: PerceptionModel | None = None) -> np.ndarray:
    """The perceptual embedding (unit vector) of one face of an RGB uint8 image."""
    model = model or load_model()
    parts = face_features(image, face).parts
    return model.embed({k: v[None] for k, v in parts.items()})[0]


def perceptual_similarity(
    image_a: np.ndarray, face_a: Face, image_b: np.ndarray, face_b: Face, model: PerceptionModel | None = None
) -> float:
    """How alike two faces look, 0..1 (1: the same look; 0.5: unrelated; see :func:`.model.similarity`)."""
    return float(similarity(embed_face(image_a, face_a, model), embed_face(image_b, face_b, model)))


__all__ = [
    "DEFAULT_MODEL",
    "EXTRAS",
    "PARTS",
    "FaceFeatures",
    "FeatureError",
    "PerceptionModel",
    "embed_face",
    "face_features",
    "load_model",
    "perceptual_similarity",
    "similarity",
]
