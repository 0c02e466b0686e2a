"""The pure measurements: geometry, pairing, pixel similarity and ranks."""

import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from lookalike.evaluation import metrics
from lookalike.types import Face


def _face(*box) -> Face:
    return Face(np.array(box, np.float32), 1.0, np.zeros((5, 2), np.float32))


def _mesh(mouth_gap: float = 0.0) -> np.ndarray:
    points = np.random.default_rng(1).uniform(0, 100, (478, 3)).astype(np.float32)
    points[metrics.IRIS_CENTRES[0], :2], points[metrics.IRIS_CENTRES[1], :2] = (30, 40), (70, 40)
    points[metrics.INNER_LIPS[0], :2], points[metrics.INNER_LIPS[1], :2] = (50, 70), (50, 70 + mouth_gap)
    return points


def test_landmark_displacement_is_relative_to_the_eye_distance():
    points = _mesh()
    assert metrics.landmark_displacement(points, points) == 0.0
    moved = points.copy()
    moved[:, 1] += 8.0  # 8 px with eyes 40 px apart
    assert metrics.landmark_displacement(points, moved) == pytest.approx(0.2)


def test_mouth_opening_in_eye_distances():
    assert metrics.mouth_opening(_mesh(0.0)) == 0.0
    assert metrics.mouth_opening(_mesh(10.0)) == pytest.approx(0.25)


def test_pairing_takes_the_best_overlap_once():
    originals = [_face(0, 0, 100, 100), _face(200, 0, 300, 100)]
    found = [_face(205, 5, 305, 105), _face(5, 0, 105, 100), _face(0, 0, 95, 100)]
    assert metrics.pair_faces(originals, found) == [2, 0]
    assert metrics.pair_faces(originals, []) == [None, None]
    assert metrics.pair_faces(originals, [_face(500, 500, 600, 600)]) == [None, None]


def test_ssim_map_matches_a_full_computation(astronaut):
    changed = astronaut.copy()
    changed[100:180, 150:260] = cv2.GaussianBlur(changed[100:180, 150:260], (0, 0), 6)
    changed[0:4, 500:512] = 0  # a change at the image corner too
    grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (astronaut, changed)]
    _, full = structural_similarity(grey[0], grey[1], data_range=255, win_size=7, full=True)
    fast = metrics.ssim_map(astronaut, changed)
    np.testing.assert_allclose(fast, full, atol=1e-9)
    assert metrics.ssim_map(astronaut, astronaut.copy()).min() == 1.0


def test_outside_region_keeps_ssim_windows_clear_of_the_face():
    region = np.zeros((50, 50), bool)
    region[20:30, 20:30] = True
    outside = metrics.outside_region(region)
    assert not outside[17:33, 17:33].any()  # within half a window of the face
    assert outside[:16].all() and outside[34:].all()


def test_psnr_outside():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    everywhere = np.ones((10, 10), bool)
    assert metrics.psnr(a, b, everywhere) == metrics.PSNR_IDENTICAL
    b[:] = 16  # mse 256 -> 10 log10(255^2 / 256)
    assert metrics.psnr(a, b, everywhere) == pytest.approx(10 * np.log10(255**2 / 256))
    assert metrics.psnr(a, b, np.zeros((10, 10), bool)) is None


def test_retrieval_rank_counts_ties_against_the_method():
    assert metrics.retrieval_rank(np.array([0.3, 0.5, 0.1]), own_index=0) == 2
    assert metrics.retrieval_rank(np.array([0.3, 0.3, 0.9]), own_index=1) == 1
    assert metrics.retrieval_rank(np.array([0.9, 0.1, 0.2]), own_index=0) == 3


def test_pose_error_needs_both_poses():
    from lookalike.types import HeadPose

    a, b = _face(0, 0, 10, 10), _face(0, 0, 10, 10)
    assert metrics.pose_error(a, b) is None
    a.pose, b.pose = HeadPose(10, 0, 179), HeadPose(4, 3, -178)
    assert metrics.pose_error(a, b) == pytest.approx((6 + 3 + 3) / 3)


def test_every_reported_metric_is_documented_with_its_direction():
    from pathlib import Path

    from lookalike.evaluation import METRICS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for name, (better, _) in METRICS.items():
        assert f"| `{name}` | {better} |" in docs, name
