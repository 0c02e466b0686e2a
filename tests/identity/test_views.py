"""Attacker views: each cuts the face its own way, and the original is seen the same way."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.identity import available_recognizers, get_recognizer, resolve_steering
from lookalike.identity.views import VIEWS, View, view_embeddings


@pytest.fixture(scope="module")
def face(astronaut):
    from lookalike.faces import detect

    return detect(astronaut)[0]


def test_a_view_moves_the_box_and_keypoints_or_drops_them(face):
    same = View("aligned").face(face)
    assert same is face
    loose = View("loose", box_scale=1.2, shift=0.1).face(face)
    width = face.box[2] - face.box[0]
    assert (loose.box[2] - loose.box[0]) == pytest.approx(1.2 * width, rel=1e-4)
    assert loose.keypoints.mean(axis=0)[0] > face.keypoints.mean(axis=0)[0] + 0.05 * width
    assert np.isnan(View("box", keypoints=False).face(face).keypoints).all()


@pytest.mark.parametrize("name", available_recognizers())
def test_each_view_of_the_person_is_still_the_person_seen_that_way(astronaut, face, name):
    recognizer = get_recognizer(name)
    embeddings = view_embeddings(recognizer, astronaut, face, astronaut)
    assert embeddings.shape == (len(VIEWS), recognizer.embedding_size)
    assert np.all(recognizer.distance(embeddings[1:], embeddings[0]) > 1e-4)  # each view cuts differently
    brighter = np.clip(astronaut.astype(np.float32) * 1.08, 0, 255).astype(np.uint8)
    again = view_embeddings(recognizer, brighter, face, brighter)
    for view, mine, other in zip(VIEWS, embeddings, again):  # a view is a way to cut, not another person
        assert recognizer.distance(mine, other) < recognizer.threshold, view.name


def test_steering_names_resolve_and_bad_ones_are_refused():
    assert resolve_steering("all") == available_recognizers()
    assert resolve_steering("dlib+facenet") == ("dlib", "facenet")
    with pytest.raises(ValueError, match="steer"):
        resolve_steering("dlib+nobody")
    with pytest.raises(ValueError, match="steer"):
        resolve_steering("")
