"""The defect counters find the defects viewers flag, drawn onto an untouched face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lookalike.evaluation.defects import face_defects, fallback_kind
from lookalike.faces import detect
from lookalike.landmarks.regions import FACE_OVAL


@pytest.fixture(scope="module")
def face(astronaut):
    return detect(astronaut)[0]


def _oval(face) -> np.ndarray:
    return face.landmarks[list(FACE_OVAL), :2].astype(np.int32)


def test_a_face_pasted_brighter_adds_a_seam_and_a_blur_does_not(astronaut, face):
    mask = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_oval(face)], 1)
    pasted = astronaut.copy()
    pasted[mask > 0] = np.clip(pasted[mask > 0].astype(int) + 40, 0, 255).astype(np.uint8)
    assert face_defects(astronaut, pasted, face).seam > 0.1
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 6)[..., None]
    blurred = (astronaut * (1 - soft) + cv2.GaussianBlur(astronaut, (0, 0), 8) * soft).astype(np.uint8)
    assert face_defects(astronaut, blurred, face).seam < 0.05


def test_dark_strands_on_the_forehead_count_as_hair(astronaut, face):
    strands = astronaut.copy()
    points = face.landmarks[:, :2]
    top = points[10]  # forehead top
    brow = points[9]
    for dx in range(-40, 41, 8):
        cv2.line(strands, (int(top[0] + dx), int(top[1])), (int(brow[0] + dx // 2), int(brow[1])), (20, 15, 10), 2)
    defects = face_defects(astronaut, strands, face)
    assert defects.hair > 0.02
    assert face_defects(astronaut, astronaut.copy(), face).hair == 0.0


def test_frames_removed_from_a_face_with_glasses_are_counted(astronaut, face):
    points = face.landmarks[:, :2]
    glasses = astronaut.copy()
    for centre in (points[468], points[473]):
        cv2.circle(glasses, (int(centre[0]), int(centre[1])), 22, (10, 10, 10), 3)
    cv2.line(glasses, tuple(int(v) for v in points[133]), tuple(int(v) for v in points[362]), (10, 10, 10), 3)
    kept = face_defects(glasses, glasses.copy(), face).frames
    gone = face_defects(glasses, astronaut, face).frames
    assert kept == pytest.approx(1.0) and gone < 0.5
    assert face_defects(astronaut, astronaut, face).frames is None  # no glasses: nothing to keep


def test_a_second_jaw_line_is_counted(astronaut, face):
    oval = face.landmarks[list(FACE_OVAL), :2]
    centre = oval.mean(axis=0)
    outside = (centre + (oval - centre) * 1.15).astype(np.int32)
    doubled = astronaut.copy()
    cv2.polylines(doubled, [outside[6:31]], False, (40, 30, 30), 2)
    assert face_defects(astronaut, doubled, face).contours > 0.25
    assert face_defects(astronaut, astronaut.copy(), face).contours == 0.0


def test_fallback_kinds():
    assert fallback_kind("blurred lookalike (sigma 0.02 of the face width; ...)") == "blurred lookalike"
    assert fallback_kind("solid (no compatible donor)") == "solid"
    assert fallback_kind(None) == "none"
