from __future__ import annotations

import numpy as np
import pytest

import lookalike
from lookalike.pipeline import AnonymizeConfig, anonymize


@pytest.mark.parametrize("method", ["blur", "pixelate", "solid"])
def test_each_method_changes_the_face_and_nothing_outside_the_mask(astronaut, method):
    result = anonymize(astronaut, method=method)
    assert len(result.faces) == 1
    record = result.faces[0]
    assert record.method == method and record.status == "anonymized"
    face = record.face
    cx, cy = (int(v) for v in face.center)
    assert (
        np.abs(
            result.image[cy - 10 : cy + 10, cx - 10 : cx + 10].astype(int)
            - astronaut[cy - 10 : cy + 10, cx - 10 : cx + 10]
        ).mean()
        > 10
    )
    outside = result.mask <= 0
    assert np.array_equal(result.image[outside], astronaut[outside])
    assert result.mask.max() == 1.0


def test_mask_covers_forehead_and_chin(astronaut):
    result = anonymize(astronaut, method="solid")
    points = result.faces[0].face.landmarks
    for index in (10, 152, 234, 454):  # forehead top, chin, both face sides
        x, y = points[index, :2]
        assert result.mask[int(y), int(x)] == 1.0, index


def test_mask_scale_grows_the_mask(astronaut):
    small = anonymize(astronaut, method="solid", mask_scale=1.0).mask.sum()
    large = anonymize(astronaut, method="solid", mask_scale=1.6).mask.sum()
    assert large > 2.0 * small


def test_every_face_of_a_group_is_anonymized(group_image):
    image, placements = group_image
    result = anonymize(image, method="solid")
    assert len(result.faces) == len(placements)
    for x, y, width in placements:
        # the centre of each portrait's face is now the fill colour
        fx, fy = x + int(width * 0.48), y + int(width * 0.5)
        assert result.image[fy, fx].max() == 0, (x, y, width)


def test_image_without_faces_is_returned_unchanged():
    blank = np.full((120, 160, 3), 200, np.uint8)
    result = anonymize(blank)
    assert result.faces == [] and np.array_equal(result.image, blank) and result.mask.max() == 0


def test_grey_rgba_and_16bit_arrays_keep_shape_dtype_and_alpha(astronaut):
    grey = astronaut.mean(axis=2).astype(np.uint8)
    out = anonymize(grey).image
    assert out.shape == grey.shape and out.dtype == np.uint8
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 77, np.uint8)])
    out = anonymize(rgba).image
    assert out.shape == rgba.shape and (out[:, :, 3] == 77).all()
    deep = astronaut.astype(np.uint16) * 257
    result = anonymize(deep)
    assert result.image.dtype == np.uint16 and np.array_equal(result.image[result.mask <= 0], deep[result.mask <= 0])


def test_default_blur_defeats_dlib_on_the_same_photo(astronaut):
    result = anonymize(astronaut, config=AnonymizeConfig(verify=("dlib",)))
    check = result.faces[0].verification["dlib"]
    assert check["match"] is False and check["distance"] > check["threshold"]


def test_records_serialise(astronaut):
    record = anonymize(astronaut).to_dict()["faces"][0]
    assert set(record) >= {"box", "score", "keypoints", "pose", "mask", "method", "status"}
    assert "landmarks" not in record
    assert len(lookalike.anonymize(astronaut).faces[0].to_dict(with_landmarks=True)["landmarks"]) == 478


def test_bad_options_are_refused(astronaut):
    with pytest.raises(ValueError):
        anonymize(astronaut, method="swirl")
    with pytest.raises(ValueError):
        anonymize(astronaut, mask_scale=-1)


def test_detect_api_returns_landmarks_and_pose(astronaut):
    faces = lookalike.detect(astronaut)
    assert len(faces) == 1 and faces[0].landmarks.shape == (478, 3) and faces[0].pose is not None


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_faces_are_anonymized_by_default(astronaut, turns):
    turned = np.ascontiguousarray(np.rot90(astronaut, turns))
    result = anonymize(turned, method="solid")
    assert len(result.faces) == 1
    assert result.faces[0].face.landmarks is not None  # the mesh follows the face's own orientation
    cx, cy = (int(v) for v in result.faces[0].face.center)
    assert turned[cy, cx].max() > 0 and result.image[cy, cx].max() == 0


def test_a_face_still_matched_after_a_weak_method_falls_back_to_solid(astronaut):
    weak = anonymize(astronaut, method="blur", blur_sigma=0.005, verify=("dlib",))
    record = weak.faces[0]
    assert record.fallback and record.fallback.startswith("solid")
    assert record.verification["dlib"]["match"] is False
    cx, cy = (int(v) for v in record.face.center)
    assert weak.image[cy, cx].max() == 0  # the fill colour


def test_a_face_in_a_very_wide_panorama(astronaut):
    panorama = np.zeros((300, 33000, 3), np.uint8)
    panorama[:, 20000:20300] = astronaut[100:400, 100:400]
    result = anonymize(panorama, method="solid")
    assert len(result.faces) == 1 and result.faces[0].face.landmarks is not None
