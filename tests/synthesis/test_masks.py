from __future__ import annotations

import numpy as np

from lookalike.synthesis import Ellipse, apply_classic, ellipse_mask, face_ellipse
from lookalike.types import Face

KEYPOINTS = np.array([[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]], np.float32)


def test_box_ellipse_reaches_above_the_box_for_the_forehead():
    face = Face(np.array([30, 40, 70, 90], np.float32), 0.9, KEYPOINTS)
    e = face_ellipse(face)
    x0, y0, x1, y1 = e.bounds()
    assert y0 < 40 - 5 and y1 >= 88 and x0 <= 30 and x1 >= 70


def test_untrusted_landmarks_fall_back_to_the_box():
    face = Face(
        np.array([30, 40, 70, 90], np.float32),
        0.9,
        KEYPOINTS,
        landmarks=np.random.default_rng(0).uniform(300, 320, (478, 3)).astype(np.float32),
    )
    e = face_ellipse(face)
    assert all(e.contains(x, y) for x, y in KEYPOINTS)


def test_mask_is_one_inside_and_fades_outside():
    e = Ellipse(50, 50, 20, 30, 15)
    hard = ellipse_mask((100, 100), [e])
    soft = ellipse_mask((100, 100), [e], feather=4)
    inside = hard >= 1.0
    assert inside.sum() > 1500 and (soft[inside] == 1.0).all()
    assert soft.sum() > hard.sum() and soft[0, 0] == 0


def test_classic_methods_touch_only_the_ellipse_region():
    image = np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    e = Ellipse(60, 60, 15, 20, 0)
    for method in ("blur", "pixelate", "solid"):
        out = apply_classic(image, [e], method)
        assert np.array_equal(out[:20], image[:20]) or method == "blur"
        assert not np.array_equal(out[55:65, 55:65], image[55:65, 55:65])
    solid = apply_classic(image, [e], "solid")
    assert (solid[60, 60] == 0).all()
