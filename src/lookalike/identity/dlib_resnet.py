"""dlib's ResNet face recognizer (128-D, 99.38% on LFW, "same person" at Euclidean distance <= 0.6).

Weights come from the installed ``face_recognition_models`` package. Its ``__init__`` imports
``pkg_resources``, which new setuptools no longer ship, so the model files are found through the
package's import spec instead of importing it.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from lookalike.identity.base import ThresholdVerification
from lookalike.types import Face

CHIP_SIZE = 150
CHIP_PADDING = 0.25


@lru_cache(maxsize=1)
def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the face_recognition_models package is not installed (pip install face_recognition_models)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class DlibRecognizer(ThresholdVerification):
    """dlib ResNet embeddings, aligned with dlib's 5-point shape predictor inside the detector's box.

    >>> from skimage.data import astronaut
    >>> from lookalike.detection import detect_faces
    >>> image = astronaut()
    >>> rec = DlibRecognizer()
    >>> e = rec.embed(image, detect_faces(image)[0])
    >>> e.shape, float(rec.distance(e, e))
    ((128,), 0.0)
    """

    name = "dlib"
    threshold = 0.6
    embedding_size = 128

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._predictor = None
        self._model = None

    def _load(self):
        if self._model is None:
            import dlib

            folder = _models_dir()
            self._predictor = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
            self._model = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        return self._predictor, self._model

    def align(self, image: np.ndarray, face: Face, reference: np.ndarray | None = None) -> np.ndarray:
        """150x150 RGB chip, as dlib's model was trained on (5-point alignment, padding 0.25).

        The five points are found by dlib's shape predictor inside the face box, on ``reference`` when
        given (the original of an edited image, so both are cut out with the same geometry).
        """
        import dlib

        predictor, _ = self._load()
        x0, y0, x1, y1 = (float(v) for v in face.box)
        image = np.ascontiguousarray(image)
        geometry = image if reference is None else np.ascontiguousarray(reference)
        with self._lock:
            shape = predictor(geometry, dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))))
            chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.asarray(chip, np.uint8)

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        _, model = self._load()
        chips = [np.ascontiguousarray(c, dtype=np.uint8) for c in crops]
        if not chips:
            return np.zeros((0, self.embedding_size), np.float32)
        with self._lock:
            vectors = model.compute_face_descriptor(chips)
        return np.asarray([np.asarray(v) for v in vectors], np.float32)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        return self.embed_aligned(self.align(image, face)[None])[0]

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        """Euclidean distance, the measure dlib's 0.6 threshold is defined on."""
        d = np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1)
        return float(d) if np.ndim(d) == 0 else d
