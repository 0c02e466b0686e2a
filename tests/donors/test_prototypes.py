"""k-anonymous prototypes: grouping rules, the greedy grouping, gaze, the eyewear check and averaging."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from lookalike.donors.canonical import CANONICAL_STABLE, apply_similarity, canonical_transform, warp_similarity
from lookalike.donors.prototypes import (
    EYEWEAR_THRESHOLD,
    FaceTraits,
    GroupRules,
    average_faces,
    compatible_pairs,
    eyewear_score,
    gaze,
    group_faces,
)
from lookalike.synthesis.transplant import STABLE_INDICES


@pytest.fixture(scope="module")
def face(astronaut):
    from lookalike.faces import detect

    return detect(astronaut)[0]


def _traits(n: int, rng: np.random.Generator, **override) -> FaceTraits:
    """n faces that every default rule allows together, with embeddings spread around one direction."""
    e = np.zeros((n, 8))
    e[:, 0] = 1.0
    e[:, 1:] = rng.normal(0, 0.15, (n, 7))
    fields = dict(
        embeddings=(e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32),
        age=np.full(n, 30.0),
        gender=np.full(n, 20.0),
        skin=np.full(n, 20.0),
        pose=np.zeros((n, 3)),
        mouth=np.zeros(n),
        gaze=np.zeros((n, 2)),
    )
    fields.update(override)
    return FaceTraits(**fields)


# ------------------------------------------------------------------------------------- grouping


def test_each_rule_separates_faces():
    rng = np.random.default_rng(0)
    base = _traits(2, rng)
    assert compatible_pairs(base, GroupRules())[0, 1]
    cases = {
        "gender side": dict(gender=np.array([45.0, 55.0])),
        "age group": dict(age=np.array([30.0, 40.0])),  # young vs middle (bound 35)
        "skin": dict(skin=np.array([10.0, 26.0])),
        "pose": dict(pose=np.array([[0, 0, 0], [0, 16, 0]], float)),
        "mouth state": dict(mouth=np.array([0.0, 0.1])),
        "open mouths apart": dict(mouth=np.array([0.1, 0.19])),
        "unknown mouth": dict(mouth=np.array([0.0, np.nan])),
        "gaze": dict(gaze=np.array([[0.0, 0.0], [0.13, 0.0]])),
        "similarity": dict(embeddings=np.eye(2, 8, dtype=np.float32)),  # similarity 0.5
    }
    for name, override in cases.items():
        pairs = compatible_pairs(_traits(2, rng, **override), GroupRules())
        assert not pairs[0, 1] and not pairs[1, 0], name
        assert not pairs.diagonal().any()
    open_close = _traits(2, rng, mouth=np.array([0.1, 0.15]))
    assert compatible_pairs(open_close, GroupRules())[0, 1]
    assert not compatible_pairs(open_close, GroupRules(mouth="closed"))[0, 1]
    assert compatible_pairs(_traits(2, rng, skin=np.array([10.0, 26.0])), GroupRules(max_skin_gap=None))[0, 1]


def test_groups_are_disjoint_complete_and_mutually_compatible():
    rng = np.random.default_rng(1)
    n = 60
    traits = _traits(
        n,
        rng,
        gender=rng.choice([20.0, 80.0], n),
        age=rng.choice([25.0, 45.0], n),
        skin=rng.uniform(10, 40, n),
        pose=np.c_[rng.uniform(-20, 20, (n, 2)), np.zeros(n)],
        mouth=rng.choice([0.0, 0.12], n),
    )
    rules = GroupRules(k=3)
    groups = group_faces(traits, rules)
    assert groups, "some groups must form"
    pairs = compatible_pairs(traits, rules)
    used = [i for g in groups for i in g]
    assert len(used) == len(set(used))  # each face in at most one group
    for group in groups:
        assert len(group) == 3 and group == sorted(group)
        assert all(pairs[a, b] for a, b in itertools.combinations(group, 2))


def test_hardest_face_is_served_first_and_unusable_faces_are_left_out():
    rng = np.random.default_rng(2)
    # a chain 1 - 0 - 2 - 3 of compatible pairs (gaze 0.1 apart is allowed, 0.2 is not): pairing 0 with 2
    # would strand 1 and 3; serving the faces with one option first pairs everyone
    traits = _traits(
        4,
        rng,
        embeddings=np.tile(np.eye(1, 8, dtype=np.float32), (4, 1)),
        gaze=np.array([[0.0, 0], [-0.1, 0], [0.1, 0], [0.2, 0]]),
    )
    assert group_faces(traits, GroupRules(k=2)) == [[0, 1], [2, 3]]
    groups = group_faces(traits, GroupRules(k=2), usable=np.array([True, False, True, True]))
    assert groups and all(1 not in g for g in groups)
    assert group_faces(traits, GroupRules(k=5)) == []
    with pytest.raises(ValueError):
        GroupRules(k=1)


# ----------------------------------------------------------------------------------------- gaze


def test_gaze_is_small_for_a_frontal_look_and_mirrors_with_the_image(astronaut, face):
    from lookalike.faces import detect

    mine = gaze(face.landmarks)
    assert np.abs(mine).max() < 0.15
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    theirs = gaze(detect(mirrored)[0].landmarks)
    assert abs(theirs[0] + mine[0]) < 0.04 and abs(theirs[1] - mine[1]) < 0.04


# -------------------------------------------------------------------------------------- eyewear


def _draw_glasses(image: np.ndarray, landmarks: np.ndarray, colour=(20, 20, 20)) -> np.ndarray:
    out = image.copy()
    p = landmarks[:, :2]
    unit = float(np.hypot(*(p[468] - p[473])))
    thickness = max(2, round(unit / 20))
    for outer, inner in ((33, 133), (263, 362)):
        centre = (p[outer] + p[inner]) / 2
        axes = (int(0.42 * unit), int(0.28 * unit))
        cv2.ellipse(out, tuple(int(v) for v in centre), axes, 0, 0, 360, colour, thickness, cv2.LINE_AA)
    bridge_y = int(p[168, 1] + 0.05 * unit)
    cv2.line(
        out,
        (int(p[133, 0] - 0.05 * unit), bridge_y),
        (int(p[362, 0] + 0.05 * unit), bridge_y),
        colour,
        thickness,
        cv2.LINE_AA,
    )
    return out


def test_eyewear_score_separates_drawn_glasses(astronaut, face):
    plain = eyewear_score(astronaut, face.landmarks)
    glasses = eyewear_score(_draw_glasses(astronaut, face.landmarks), face.landmarks)
    blue = eyewear_score(_draw_glasses(astronaut, face.landmarks, (20, 30, 140)), face.landmarks)
    assert plain < EYEWEAR_THRESHOLD < glasses
    assert blue > EYEWEAR_THRESHOLD


def test_eyewear_score_on_labelled_omi_faces(omi_faces):
    """A few OMI faces (1-600) labelled by eye: 3 and 48 wear glasses, 31 sunglasses; 1, 2 and 4 none."""
    from lookalike.faces import detect
    from lookalike.io.images import load_image

    labels = {3: True, 31: True, 48: True, 1: False, 2: False, 4: False}
    for number, wears in labels.items():
        image = load_image(omi_faces / f"{number:04d}.jpg").rgb
        score = eyewear_score(image, detect(image)[0].landmarks)
        assert (score > EYEWEAR_THRESHOLD) == wears, (number, score)


# ------------------------------------------------------------------------------------ averaging


def test_average_of_one_face_is_its_aligned_crop(astronaut, face):
    size = 256
    average, mean = average_faces([astronaut], [face.landmarks], size)
    matrix = canonical_transform(face.landmarks, size)
    np.testing.assert_allclose(mean, apply_similarity(matrix, face.landmarks), atol=1e-3)
    crop = warp_similarity(astronaut, matrix, size)
    from lookalike.landmarks import region_mask

    oval = region_mask((size, size), mean, ["face_oval"]) > 0.5
    assert np.abs(average.astype(int) - crop)[oval].mean() < 3.0
    # the stable points sit on the canonical frame
    assert np.abs(mean[list(STABLE_INDICES), :2] / size - CANONICAL_STABLE).max() < 0.03


def test_average_takes_the_mean_of_members_and_of_their_geometry(astronaut, face):
    size = 256
    darker = np.clip(astronaut.astype(int) - 30, 0, 255).astype(np.uint8)
    lighter = np.clip(astronaut.astype(int) + 30, 0, 255).astype(np.uint8)
    # a second "member": the same picture shrunk and moved, with its landmarks moved alike
    matrix = np.array([[0.8, 0.0, 40.0], [0.0, 0.8, 30.0]])
    moved = cv2.warpAffine(lighter, matrix, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    moved_landmarks = apply_similarity(matrix, face.landmarks)
    average, mean = average_faces([darker, moved], [face.landmarks, moved_landmarks], size)
    reference, _ = average_faces([astronaut], [face.landmarks], size)
    from lookalike.landmarks import region_mask

    oval = region_mask((size, size), mean, ["face_oval"]) > 0.5
    assert abs(float(average[oval].mean()) - float(reference[oval].mean())) < 4.0  # -30 and +30 cancel
    assert np.abs(average.astype(int) - reference)[oval].mean() < 8.0
    assert average.shape == (size, size, 3) and average.dtype == np.uint8
    with pytest.raises(ValueError):
        average_faces([astronaut], [], size)


def test_average_has_no_black_borders_where_photos_end(astronaut, face):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    points = face.landmarks.copy()
    points[:, :2] = (points[:, :2] + 0.5) / 2 - 0.5
    # a tight crop: the canonical frame reaches beyond it
    crop = np.ascontiguousarray(np.clip(small[40:200, 50:200], 40, 255))  # no black of its own
    points[:, 0] -= 50
    points[:, 1] -= 40
    average, _ = average_faces([crop], [points], 256)
    assert average.min() >= 35
