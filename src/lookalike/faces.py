"""Faces found in an image: the detector's boxes and keypoints, with dense landmarks and head pose.

The one place every layer above (identity's crowd, perception's datasets, the donor bank, the pipeline,
evaluation and the command line) finds faces, so none of them reaches up to the pipeline for it.

>>> from skimage.data import astronaut
>>> faces = detect(astronaut())
>>> len(faces), faces[0].landmarks.shape
(1, (478, 3))
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from lookalike.detection import DetectorConfig, detect_faces
from lookalike.errors import ImageError
from lookalike.io.images import DEFAULT_MAX_PIXELS, image_from_array, load_image
from lookalike.landmarks import add_landmarks
from lookalike.types import Face

#: How hard to look for turned faces; see :func:`detector_config`.
Rotations = Literal["off", "coarse", "full"]
ROTATIONS: dict[str, tuple[int, ...]] = {"off": (0,), "coarse": (0, 180), "full": (0, 90, 180, 270)}


class NoFaceError(ImageError):
    """An image in which a face was needed has none.

    >>> str(NoFaceError("a.jpg"))
    'a.jpg: no face found'
    """

    def __init__(self, path: str | Path | None) -> None:
        super().__init__(path, "no face found")


def detector_config(threshold: float | None = None, rotations: Rotations = "coarse") -> DetectorConfig:
    """The detector's settings for a confidence ``threshold`` (None: the detector's default) and a search
    for turned faces: "off" searches upright only; "coarse" also the picture turned upside down; "full"
    all four quarter turns as thoroughly as upright (about 4x the time)."""
    options: dict = {"rotations": ROTATIONS[rotations], "rotated_tiles": rotations == "full"}
    if threshold is not None:  # an explicit choice applies to every pass, rotated ones included
        options["score_threshold"] = threshold
        options["rotated_score_threshold"] = threshold
    return DetectorConfig(**options)


def detect(
    image: np.ndarray, *, threshold: float | None = None, rotations: Rotations = "coarse", landmarks: bool = True
) -> list[Face]:
    """Every face in an RGB (or grey/RGBA) image, largest first: box, score, 5 keypoints and, with
    ``landmarks``, 478 dense landmarks and head pose."""
    rgb = image if _is_rgb8(image) else image_from_array(image).rgb  # refuses arrays without pixels too
    faces = detect_faces(rgb, detector_config(threshold, rotations))
    return add_landmarks(rgb, faces) if landmarks else faces


def _is_rgb8(image: np.ndarray) -> bool:
    """A contiguous RGB uint8 array with pixels: the detector takes it as it is (no working copy of a large
    photo, which ``anonymize`` hands over already converted)."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
        and image.flags.c_contiguous
    )


def main_face(
    path: str | Path, *, landmarks: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, Face]:
    """The RGB pixels of the image file at ``path`` and its main face (the detector's first).

    Raises :class:`NoFaceError` when the image has no face, :class:`~lookalike.errors.ImageError` when it
    cannot be read.
    """
    rgb = load_image(path, max_pixels=max_pixels).rgb
    faces = detect(rgb, landmarks=landmarks)
    if not faces:
        raise NoFaceError(path)
    return rgb, faces[0]
