"""The interface every face recognizer implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from lookalike.types import Face


@runtime_checkable
class Recognizer(Protocol):
    """A face recognition model: image + face -> identity embedding, and a verification rule.

    ``distance(a, b) <= threshold`` means "same person" for this recognizer.
    """

    name: str
    threshold: float
    embedding_size: int

    def align(self, image: np.ndarray, face: Face, reference: np.ndarray | None = None) -> np.ndarray:
        """The aligned RGB uint8 crop this model embeds (its own size and template).

        ``reference``: an image of the same size whose face geometry decides the alignment, for cutting an
        edited image (an anonymized one) exactly where its original was cut.
        """
        ...

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 aligned crops -> (N, embedding_size) float32 embeddings."""
        ...

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """Embedding of one face of an RGB uint8 image."""
        ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        """Identity distance between embeddings (broadcasts over leading axes)."""
        ...

    def matches(self, a: np.ndarray, b: np.ndarray, factor: float = 1.0) -> bool:
        """Whether two embeddings are the same person to this recognizer (``factor`` scales the threshold)."""
        ...

    def matches_distance(self, distance: float, factor: float = 1.0) -> bool:
        """Whether a distance is "same person": ``distance <= threshold * factor``."""
        ...


class ThresholdVerification:
    """The verification rule every recognizer here shares: "same person" when the distance is at most the
    threshold (times ``factor``, for callers that ask for a margin).

    >>> class Toy(ThresholdVerification):
    ...     threshold = 0.5
    ...     def distance(self, a, b): return abs(a - b)
    >>> Toy().matches(0.1, 0.5), Toy().matches(0.1, 0.7), Toy().matches(0.1, 0.7, factor=1.5)
    (True, False, True)
    """

    threshold: float

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        raise NotImplementedError

    def matches_distance(self, distance: float, factor: float = 1.0) -> bool:
        return bool(distance <= self.threshold * factor)

    def matches(self, a: np.ndarray, b: np.ndarray, factor: float = 1.0) -> bool:
        return self.matches_distance(float(self.distance(a, b)), factor)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """1 - cosine similarity, broadcast over leading axes (float for one pair, float32 array otherwise).

    >>> cosine_distance(np.array([1.0, 0.0]), np.array([[0.0, 2.0], [3.0, 0.0]])).tolist()
    [1.0, 0.0]
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    d = 1.0 - cos
    return float(d) if np.ndim(d) == 0 else d.astype(np.float32)


def embed_in_batches(network, standardize, crops: np.ndarray, batch_size: int, embedding_size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 crops (or one crop) -> (N, embedding_size) float32, through ``network`` (a
    tensor -> tensor callable) in batches of ``batch_size``, each batch prepared by ``standardize``."""
    import torch

    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch_size):
            out.append(network(standardize(crops[i : i + batch_size])).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, embedding_size), np.float32)
