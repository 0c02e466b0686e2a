from __future__ import annotations

import cv2
import numpy as np
import pytest

from lookalike.detection import detect_faces
from lookalike.landmarks import REGION_NAMES, add_landmarks, head_pose, region_mask, region_polygon


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    faces = add_landmarks(astronaut, detect_faces(astronaut))
    assert len(faces) == 1
    return faces[0]


def test_478_landmarks_in_image_coordinates_agree_with_the_detector(astronaut_face):
    points = astronaut_face.landmarks
    assert points.shape == (478, 3) and points.dtype == np.float32
    x0, y0, x1, y1 = astronaut_face.box
    inside = (points[:, 0] > x0 - 30) & (points[:, 0] < x1 + 30) & (points[:, 1] > y0 - 40) & (points[:, 1] < y1 + 20)
    assert inside.all()
    right_eye = points[[33, 133], :2].mean(axis=0)
    assert np.linalg.norm(right_eye - astronaut_face.keypoints[0]) < 0.15 * astronaut_face.width
    iris = points[468, :2]  # refined landmarks include the irises
    assert np.linalg.norm(iris - astronaut_face.keypoints[0]) < 0.15 * astronaut_face.width


def test_astronaut_faces_the_camera(astronaut_face):
    pose = astronaut_face.pose
    assert abs(pose.yaw) < 12 and abs(pose.pitch) < 20 and abs(pose.roll) < 10


def test_roll_follows_an_in_plane_rotation(astronaut):
    centre = (astronaut.shape[1] / 2, astronaut.shape[0] / 2)
    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D(centre, -25, 1.0), astronaut.shape[1::-1])
    faces = add_landmarks(rotated, detect_faces(rotated))
    assert faces and faces[0].pose is not None
    assert 15 < faces[0].pose.roll - head_pose(add_landmarks(astronaut, detect_faces(astronaut))[0].landmarks).roll < 35


def test_mirroring_flips_the_sign_of_yaw(astronaut):
    turned = cv2.warpPerspective(
        astronaut, np.array([[1.0, 0, 0], [0, 1.0, 0], [0.0009, 0, 1]]), astronaut.shape[1::-1]
    )
    a = add_landmarks(turned, detect_faces(turned))[0].pose
    mirrored = np.ascontiguousarray(turned[:, ::-1])
    b = add_landmarks(mirrored, detect_faces(mirrored))[0].pose
    assert np.sign(a.yaw) == -np.sign(b.yaw) and abs(a.yaw + b.yaw) < 5


def test_every_named_region_is_a_non_empty_part_of_the_face(astronaut_face, astronaut):
    oval = region_mask(astronaut.shape, astronaut_face.landmarks, ["face_oval"]) > 0.5
    for name in REGION_NAMES:
        mask = region_mask(astronaut.shape, astronaut_face.landmarks, [name]) > 0.5
        assert mask.sum() > 10, name
        if name not in ("forehead",):
            assert (mask & ~oval).sum() < 0.1 * mask.sum(), name
    eyes = region_mask(astronaut.shape, astronaut_face.landmarks, ["right_eye", "left_eye"]) > 0.5
    nose = region_mask(astronaut.shape, astronaut_face.landmarks, ["nose"]) > 0.5
    assert not (eyes & nose).any()
    lips = region_mask(astronaut.shape, astronaut_face.landmarks, ["lips"]) > 0.5
    interior = region_mask(astronaut.shape, astronaut_face.landmarks, ["mouth_interior"]) > 0.5
    assert (lips & interior).sum() < 0.05 * interior.sum() + 5


def test_regions_reject_unknown_names(astronaut_face):
    with pytest.raises(ValueError, match="unknown region 'ears'"):
        region_polygon(astronaut_face.landmarks, "ears")


def test_tiny_face_gets_no_landmarks_and_a_note(astronaut):
    small = cv2.resize(astronaut, (48, 48), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((200, 200, 3), np.uint8)
    canvas[50:98, 50:98] = small
    faces = detect_faces(canvas)
    for face in add_landmarks(canvas, faces):
        assert face.landmarks is not None or face.notes
