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
