"""The canonical frame of donor crops: where a face's stable landmarks go in a square crop, and the
similarity warps in and out of it (shared by the bank and the prototypes averaged into it).

>>> from skimage.data import astronaut
>>> from lookalike.faces import detect
>>> image = astronaut()
>>> landmarks = detect(image)[0].landmarks
>>> matrix = canonical_transform(landmarks, 256)             # image -> 256 x 256 canonical crop
>>> crop = warp_similarity(image, matrix, 256)
>>> placed = apply_similarity(matrix, landmarks)[list(STABLE_INDICES), :2] / 256
>>> crop.shape, bool(np.abs(placed - CANONICAL_STABLE).max() < 0.05)
((256, 256, 3), True)
"""

from __future__ import annotations

import cv2
import numpy as np

from lookalike.synthesis.transplant import STABLE_INDICES, similarity_fit

#: Where the :data:`~lookalike.synthesis.transplant.STABLE_INDICES` landmarks go in the canonical frame,
#: as fractions of the crop's side (x right, y down), in that order. They are the mean of OMI faces 1-600
#: after generalized Procrustes alignment, made left-right symmetric, scaled so that the mean face oval
#: runs from 15% to 83% of the height (forehead top to chin) and centred: the whole face with a margin
#: of hair and background. The inter-ocular distance is 0.258 of the side (66 px in a 256 crop).
CANONICAL_STABLE = np.array(
    [
        (0.3192, 0.3627),
        (0.4298, 0.3707),
        (0.5702, 0.3707),
        (0.6808, 0.3627),  # eye corners 33, 133, 362, 263
        (0.5, 0.3495),
        (0.5, 0.3814),
        (0.5, 0.4111),
        (0.5, 0.4386),  # nose bridge 168, 6, 197, 195
        (0.5, 0.15),
        (0.4224, 0.1521),
        (0.3569, 0.1633),
        (0.2960, 0.1873),
        (0.2562, 0.2241),
        (0.2309, 0.2703),
        (0.2174, 0.3199),
        (0.2124, 0.3817),
        (0.2145, 0.4409),  # upper oval 10 ... 234
        (0.5776, 0.1521),
        (0.6431, 0.1633),
        (0.7040, 0.1873),
        (0.7438, 0.2241),
        (0.7691, 0.2703),
        (0.7826, 0.3199),
        (0.7876, 0.3817),
        (0.7855, 0.4409),  # upper oval 338 ... 454
    ],
    np.float64,
)
CANONICAL_STABLE.flags.writeable = False


def canonical_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) similarity taking image pixels to the canonical frame of a ``size`` x ``size`` crop.

    Least-squares (Umeyama) fit of the face's stable landmarks onto :data:`CANONICAL_STABLE` (no
    reflection). Pixel centres are integer coordinates on both sides, as ``cv2.warpAffine`` has them.
    """
    source = np.asarray(landmarks, np.float64)[list(STABLE_INDICES), :2]
    scale, rotation, translation = similarity_fit(source, CANONICAL_STABLE * size)
    return np.hstack([scale * rotation, translation[:, None]])


def apply_similarity(matrix: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (N, 3) moved by a (2, 3) similarity; z is scaled like x and y. Returns float32.

    >>> m = np.array([[2.0, 0, 1], [0, 2.0, -1]])
    >>> apply_similarity(m, np.array([[1.0, 1.0, 3.0]])).tolist()
    [[3.0, 1.0, 6.0]]
    """
    matrix = np.asarray(matrix, np.float64)
    points = np.asarray(landmarks, np.float64)
    out = points.copy()
    out[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    out[:, 2] = points[:, 2] * np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return out.astype(np.float32)


def warp_similarity(image: np.ndarray, matrix: np.ndarray, size: int, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """``image`` warped by a (2, 3) similarity into a ``size`` x ``size`` crop, anti-aliased when shrinking.

    A bilinear warp that shrinks skips pixels (aliasing); shrinking is done first with area averaging
    (``cv2.INTER_AREA``), then the rest of the similarity is applied. Beyond the image's edge the edge
    pixels are repeated (``border``, an OpenCV border mode): streaks, but no black wedges and no
    mirrored chin for a detector to trip on.
    """
    matrix = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    image = np.ascontiguousarray(image)
    if scale < 0.8:
        height, width = image.shape[:2]
        small = cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        fx, fy = small.shape[1] / width, small.shape[0] / height
        # pixel centres: x_small = (x + 0.5) * f - 0.5, so x = (x_small + 0.5) / f - 0.5
        back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        matrix = matrix @ back
        image = small
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
