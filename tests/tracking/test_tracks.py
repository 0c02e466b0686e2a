"""Tracks: linking, prediction, scene cuts and smoothing, on plain geometry (no model)."""

from __future__ import annotations

import numpy as np

from lookalike.tracking import (
    Observation,
    Track,
    associate,
    face_from_landmarks,
    is_scene_cut,
    smooth_landmarks,
    thumbnail,
)
from lookalike.types import Face


def _face(x: float, y: float = 50.0, size: float = 40.0) -> Face:
    kp = np.array([[x - 8, y - 5], [x + 8, y - 5], [x, y + 2], [x - 6, y + 10], [x + 6, y + 10]], np.float32)
    return Face(np.array([x - size / 2, y - size / 2, x + size / 2, y + size / 2], np.float32), 0.9, kp)


def test_a_track_predicts_constant_motion_forwards_and_backwards():
    track = Track(0)
    for frame, x in ((10, 100.0), (11, 104.0)):
        face = _face(x)
        face.landmarks = np.zeros((478, 3), np.float32) + [x, 50.0, 0.0]
        track.add(Observation(frame, face, "detected"))
    ahead = track.predict(13).center[0]
    behind = track.predict(8).center[0]
    assert 104 < ahead <= 112 and 92 <= behind < 100  # damped, but in the direction of motion


def test_crossing_faces_keep_their_identities():
    # predictions have drifted onto each other's detections; the embeddings tell them apart
    a, b = np.eye(4)[0], np.eye(4)[1]
    predicted = [_face(100), _face(110)]
    detections = [_face(101), _face(109)]  # each near the other track's prediction
    matched, lost, new = associate(
        predicted, detections, track_embeddings=[a, b], detection_embeddings=[b, a], identity_threshold=0.4
    )
    assert sorted(matched) == [(0, 1), (1, 0)] and not lost and not new
    # without identities, geometry alone swaps them
    matched, _, _ = associate(predicted, detections)
    assert sorted(matched) == [(0, 0), (1, 1)]


def test_a_far_detection_is_a_new_face_unless_clearly_the_same_person():
    a = np.eye(4)[0]
    matched, lost, new = associate([_face(100)], [_face(300)])
    assert not matched and lost == [0] and new == [0]
    matched, _, _ = associate(
        [_face(100)], [_face(300)], track_embeddings=[a], detection_embeddings=[a + 0.01], identity_threshold=0.4
    )
    assert matched == [(0, 0)]


def test_scene_cuts_are_hard_changes_of_the_whole_picture():
    rng = np.random.default_rng(0)
    shot = rng.integers(0, 255, (90, 160, 3), np.uint8)
    moved = np.roll(shot, 3, axis=1)
    other = (255 - shot) // 2
    assert not is_scene_cut(thumbnail(shot), thumbnail(moved))
    assert is_scene_cut(thumbnail(shot), thumbnail(other))
    assert not is_scene_cut(None, thumbnail(shot))


def test_smoothing_has_no_lag_on_steady_motion_and_reduces_jitter():
    rng = np.random.default_rng(1)
    truth = {f: np.full((478, 3), 3.0 * f, np.float32) for f in range(11)}
    assert np.allclose(smooth_landmarks(truth, 5, radius=2), truth[5], atol=1e-4)
    noisy = {f: p + rng.normal(0, 1.0, p.shape).astype(np.float32) for f, p in truth.items()}
    raw = np.abs(noisy[5] - truth[5]).mean()
    smoothed = np.abs(smooth_landmarks(noisy, 5, radius=2) - truth[5]).mean()
    assert smoothed < 0.7 * raw
    # a sudden jump ends the window: the new place is followed at once
    jump = dict(truth)
    jump[6] = truth[6] + 50
    assert np.allclose(
        smooth_landmarks(jump, 5, radius=2, max_step=10.0),
        smooth_landmarks({f: truth[f] for f in range(3, 6)}, 5, radius=2),
        atol=1e-4,
    )


def test_landmarks_give_a_face_with_the_detector_keypoints():
    landmarks = np.zeros((478, 3), np.float32)
    landmarks[:, :2] = np.random.default_rng(2).uniform(40, 80, (478, 2))
    face = face_from_landmarks(landmarks, None)
    assert face.keypoints.shape == (5, 2) and face.landmarks is landmarks or np.allclose(face.landmarks, landmarks)
    assert face.box[0] >= 40 and face.box[2] <= 80
