"""Identity distance between the main faces of two images, under each recognizer."""

from __future__ import annotations

from pathlib import Path

from lookalike.faces import main_face
from lookalike.identity import get_recognizer


def compare_main_faces(path_a: str | Path, path_b: str | Path, recognizers: tuple[str, ...]) -> list[dict]:
    """One row per recognizer: distance, threshold and verdict (``same``) for the largest face of each image.

    Raises :class:`~lookalike.faces.NoFaceError` (an :class:`~lookalike.errors.ImageError`) naming the
    file when an image has no face.
    """
    faces = [main_face(path, landmarks=False) for path in (path_a, path_b)]  # recognizers align on keypoints
    rows = []
    for name in recognizers:
        recognizer = get_recognizer(name)
        a, b = (recognizer.embed(rgb, face) for rgb, face in faces)
        distance = float(recognizer.distance(a, b))
        rows.append(
            {
                "recognizer": name,
                "distance": round(distance, 4),
                "threshold": recognizer.threshold,
                "same": recognizer.matches_distance(distance),
            }
        )
    return rows
