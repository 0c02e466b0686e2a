"""Identity distance between the main faces of two images, under each recognizer."""
from __future__ import annotations

from pathlib import Path

from lookalike.errors import ImageError
from lookalike.identity import get_recognizer
from lookalike.io.images import load_image


def compare_main_faces(path_a: str | Path, path_b: str | Path, recognizers: tuple[str, ...]) -> list[dict]:
    """One row per recognizer: distance, threshold and verdict (``same``) for the largest face of each image.

    Raises :class:`~lookalike.errors.ImageError` naming the file when an image has no face.
    """
    from lookalike.detection import detect_faces

    faces = []
    for path in (path_a, path_b):
        image = load_image(path)
        found = detect_faces(image.rgb)
        if not found:
            raise ImageError(path, "no face found")
        faces.append((image.rgb, found[0]))
    rows = []
    for name in recognizers:
        recognizer = get_recognizer(name)
        a, b = (recognizer.embed(rgb, face) for rgb, face in faces)
        distance = float(recognizer.distance(a, b))
        rows.append({"recognizer": name, "distance": round(distance, 4), "threshold": recognizer.threshold,
                     "same": distance <= recognizer.threshold})
    return rows
