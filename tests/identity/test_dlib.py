from __future__ import annotations

import numpy as np

from lookalike.detection import detect_faces
from lookalike.identity import get_recognizer


def test_same_face_is_within_and_a_destroyed_face_beyond_the_threshold(astronaut):
    dlib = get_recognizer("dlib")
    face = detect_faces(astronaut)[0]
    original = dlib.embed(astronaut, face)
    brighter = np.clip(astronaut.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    assert dlib.distance(original, dlib.embed(brighter, face)) < dlib.threshold
    x0, y0, x1, y1 = (int(v) for v in face.box)
    covered = astronaut.copy()
    covered[y0:y1, x0:x1] = 0
    assert dlib.distance(original, dlib.embed(covered, face)) > dlib.threshold


def test_aligned_chip_and_batch_embedding(astronaut):
    dlib = get_recognizer("dlib")
    face = detect_faces(astronaut)[0]
    chip = dlib.align(astronaut, face)
    assert chip.shape == (150, 150, 3)
    batch = dlib.embed_aligned(np.stack([chip, chip[:, ::-1]]))
    assert batch.shape == (2, 128)
    assert np.allclose(dlib.distance(batch, batch), 0)


def test_different_people_are_beyond_the_threshold(omi_faces):
    from lookalike.io import load_image

    dlib = get_recognizer("dlib")
    embeddings = []
    for name in ("0001.jpg", "0002.jpg", "0003.jpg", "0004.jpg"):
        rgb = load_image(omi_faces / name).rgb
        embeddings.append(dlib.embed(rgb, detect_faces(rgb)[0]))
    distances = [dlib.distance(a, b) for i, a in enumerate(embeddings) for b in embeddings[i + 1 :]]
    assert min(distances) > 0.45 and np.mean(distances) > dlib.threshold
