"""lookalike: natural face anonymization.

>>> import lookalike
>>> from skimage.data import astronaut
>>> result = lookalike.anonymize(astronaut(), method="blur")
>>> [f.status for f in result.faces]
['anonymized']
"""

from lookalike._version import __version__
from lookalike.errors import ImageError, LookalikeError
from lookalike.faces import detect
from lookalike.identity import available_recognizers, get_recognizer
from lookalike.io import load_image, save_image
from lookalike.pipeline import AnonymizationResult, AnonymizeConfig, VideoAnonymizer, anonymize, anonymize_frames
from lookalike.types import Face, HeadPose

__all__ = [
    "__version__",
    "AnonymizationResult",
    "AnonymizeConfig",
    "Face",
    "HeadPose",
    "ImageError",
    "LookalikeError",
    "VideoAnonymizer",
    "anonymize",
    "anonymize_frames",
    "available_recognizers",
    "detect",
    "get_recognizer",
    "load_image",
    "save_image",
]
