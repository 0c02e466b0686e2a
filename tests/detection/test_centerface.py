"""CenterFace detector: astronaut, multi-scale canvas, rotations, input formats, degenerate images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from lookalike.detection import CenterFaceDetector, DetectorConfig, detect_faces
from lookalike.detection.centerface import MODEL_PATH, nms
from lookalike.types import Face

pytestmark = pytest.mark.skipif(not MODEL_PATH.exists(), reason="run scripts/make_centerface_model.py first")

# Astronaut face: box about x 182..270, y 58..178; the crop keeps some head and background around it.
CROP_Y, CROP_X = slice(28, 208), slice(150, 302)
FACE_IN_CROP = (32.0, 30.0, 120.0, 150.0)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def detector() -> CenterFaceDetector:
    return CenterFaceDetector()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_astronaut_one_face_with_plausible_keypoints(astronaut: np.ndarray) -> None:
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert isinstance(f, Face) and f.landmarks is None and f.rotation == 0
    assert f.box.dtype == np.float32 and f.keypoints.shape == (5, 2)
    assert iou(f.box, np.array([182, 58, 270, 178])) > 0.7
    right_eye, left_eye, nose, mouth_r, mouth_l = f.keypoints
    assert right_eye[0] < left_eye[0]  # subject's right eye on the image's left
    assert 185 < right_eye[0] < 225 and 85 < right_eye[1] < 120
    assert 230 < left_eye[0] < 265 and 85 < left_eye[1] < 120
    assert right_eye[1] < nose[1] < mouth_r[1] and mouth_r[0] < mouth_l[0]
    assert f.box[0] <= nose[0] <= f.box[2]


def _canvas(crop: np.ndarray, sizes: list[int], hw: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, list]:
    """Paste the crop resized so the face is ``size`` px wide, on a grid, over a tiled busy background."""
    rng = np.random.default_rng(seed)
    H, W = hw
    bg = skimage.data.coffee()
    canvas = np.tile(bg, (H // bg.shape[0] + 1, W // bg.shape[1] + 1, 1))[:H, :W].copy()
    fw = FACE_IN_CROP[2] - FACE_IN_CROP[0]
    truth = []
    x, y, row_h = 20, 20, 0
    for size in sizes:
        f = size / fw
        c = cv2.resize(crop, (round(crop.shape[1] * f), round(crop.shape[0] * f)), interpolation=cv2.INTER_AREA)
        if x + c.shape[1] > W - 20:
            x, y, row_h = 20, y + row_h + 30, 0
        assert y + c.shape[0] < H, "canvas too small"
        canvas[y : y + c.shape[0], x : x + c.shape[1]] = c
        truth.append(
            (
                size,
                np.array(
                    [x + FACE_IN_CROP[0] * f, y + FACE_IN_CROP[1] * f, x + FACE_IN_CROP[2] * f, y + FACE_IN_CROP[3] * f]
                ),
            )
        )
        x += c.shape[1] + int(rng.integers(20, 60))
        row_h = max(row_h, c.shape[0])
    return canvas, truth


def test_multi_face_canvas_recall(astronaut: np.ndarray, detector: CenterFaceDetector) -> None:
    crop = astronaut[CROP_Y, CROP_X]
    sizes = [24] * 6 + [32] * 5 + [48] * 4 + [64] * 3 + [96, 96, 128, 160, 200]
    canvas, truth = _canvas(crop, sizes, (2000, 3000))
    faces = detector(canvas)
    found = [any(iou(f.box, box) > 0.4 for f in faces) for _, box in truth]
    small = [ok for (s, _), ok in zip(truth, found) if s < 32]
    large = [ok for (s, _), ok in zip(truth, found) if s >= 32]
    assert all(large), [s for (s, _), ok in zip(truth, found) if not ok]
    assert sum(small) >= 0.6 * len(small)
    false = [f for f in faces if not any(iou(f.box, box) > 0.2 for _, box in truth)]
    assert len(false) <= 2, [(f.box, f.score) for f in false]
    # sorted by area, largest first
    areas = [f.width * f.height for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_small_image_upscaled_pass(astronaut: np.ndarray) -> None:
    # A 24 px face in a 200 px image: only the 2x pass finds it reliably.
    crop = astronaut[CROP_Y, CROP_X]
    f = 24 / (FACE_IN_CROP[2] - FACE_IN_CROP[0])
    small = cv2.resize(crop, (round(crop.shape[1] * f), round(crop.shape[0] * f)), interpolation=cv2.INTER_AREA)
    img = np.full((200, 200, 3), 120, np.uint8)
    img[80 : 80 + small.shape[0], 90 : 90 + small.shape[1]] = small
    faces = detect_faces(img)
    assert len(faces) == 1
    assert 15 < faces[0].width < 40


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotated_astronaut(astronaut: np.ndarray, k: int) -> None:
    img = np.rot90(astronaut, k)
    det = CenterFaceDetector(DetectorConfig(rotations=(0, 90, 180, 270)))
    faces = det(img)
    assert len(faces) == 1
    f = faces[0]
    assert f.rotation == (360 - 90 * k) % 360
    H, W = img.shape[:2]
    # The true box, turned like the image.
    corners = np.array([[182, 58], [270, 178]], np.float64)
    for _ in range(k):  # np.rot90 k=1 maps (x, y) -> (y, W_prev - x)
        corners = np.stack([corners[:, 1], astronaut.shape[1] - corners[:, 0]], axis=1)
    want = np.concatenate([corners.min(0), corners.max(0)])
    assert iou(f.box, want) > 0.7
    # Keypoints are mapped back: both eyes are inside the box, and eyes are farther from the mouth than nose.
    assert np.all((f.keypoints >= f.box[:2] - 2) & (f.keypoints <= f.box[2:] + 2))


def test_rotation_beats_upright_guess_on_upside_down(astronaut: np.ndarray) -> None:
    # Upright-only CenterFace sometimes still fires on an upside-down face (score ~0.6, keypoints in the wrong
    # semantic order); with rotations the 180-degree pass wins NMS with its much higher score.
    img = np.rot90(astronaut, 2)
    faces = CenterFaceDetector(DetectorConfig(rotations=(0, 180)))(img)
    assert len(faces) == 1 and faces[0].rotation == 180 and faces[0].score > 0.85
    right_eye, left_eye = faces[0].keypoints[:2]
    assert right_eye[0] > left_eye[0]  # upside down: the subject's right eye is on the image's right


def test_grayscale_and_rgba(astronaut: np.ndarray) -> None:
    gray = (astronaut @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    assert len(detect_faces(gray)) == 1
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    faces = detect_faces(rgba)
    assert len(faces) == 1 and iou(faces[0].box, detect_faces(astronaut)[0].box) > 0.99


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (7, 19, 3), (31, 31), (64, 48, 3), (1000, 1000, 3)])
def test_blank_and_tiny_images(shape: tuple[int, ...]) -> None:
    assert detect_faces(np.zeros(shape, np.uint8)) == []
    if 0 not in shape:
        assert detect_faces(np.full(shape, 255, np.uint8)) == []


def test_boxes_clipped_to_image(astronaut: np.ndarray) -> None:
    # Cut the face in half at the left edge: the box must not leave the image.
    img = np.ascontiguousarray(astronaut[:, 225:])
    for f in detect_faces(img, DetectorConfig(score_threshold=0.2)):
        assert f.box[0] >= 0 and f.box[1] >= 0 and f.box[2] <= img.shape[1] and f.box[3] <= img.shape[0]


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DetectorConfig(rotations=(45,))
    with pytest.raises(ValueError):
        DetectorConfig(rotations=())


def test_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.3).tolist() == [1, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0), 0.3).tolist() == []


def test_face_filling_the_image(astronaut: np.ndarray) -> None:
    # A 700 px face: beyond what one CenterFace pass sizes correctly; the coarse level must report it whole.
    crop = astronaut[CROP_Y, CROP_X]
    f = 700 / (FACE_IN_CROP[2] - FACE_IN_CROP[0])
    big = cv2.resize(crop, (round(crop.shape[1] * f), round(crop.shape[0] * f)), interpolation=cv2.INTER_LINEAR)
    faces = detect_faces(big)
    assert len(faces) == 1
    want = np.array(FACE_IN_CROP) * f
    assert iou(faces[0].box, want) > 0.5


def test_tiles_cover_with_overlap() -> None:
    from lookalike.detection.centerface import _tiles

    for length, tile, ov in [(3000, 1024, 100), (1025, 1024, 60), (9000, 1024, 400), (500, 1024, 50)]:
        t = _tiles(length, tile, ov)
        assert t[0][0] == 0 and t[-1][1] == length
        assert all(b - a <= tile for a, b in t)
        assert all(t[i][1] - t[i + 1][0] >= min(ov, tile // 2) for i in range(len(t) - 1))
