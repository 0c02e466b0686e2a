"""The transplant primitives: warp, landmark alignment and morph, colour match, multi-band blend, detail."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lookalike.imaging import gaussian_blur
from lookalike.landmarks import region_mask
from lookalike.landmarks.partition import SALIENCY_REGIONS, region_labels, vertex_labels
from lookalike.landmarks.regions import REGIONS
from lookalike.synthesis.transplant import (
    STABLE_INDICES,
    align_landmarks,
    laplacian_blend,
    laplacian_reach,
    match_colour,
    morph_landmarks,
    reinject_detail,
    warp_to_landmarks,
)


@pytest.fixture(scope="module")
def face(astronaut):
    from lookalike.faces import detect

    return detect(astronaut)[0]


@pytest.fixture(scope="module")
def mirrored(astronaut):
    from lookalike.faces import detect

    image = np.ascontiguousarray(np.fliplr(astronaut))
    return image, detect(image)[0]


@pytest.fixture(scope="module")
def oval(astronaut, face):
    return region_mask(astronaut.shape, face.landmarks, ["face_oval"]) > 0.5


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


# ------------------------------------------------------------------------------------------------ warp


def test_warp_mesh_is_consistently_oriented_and_closes_the_openings(face):
    from lookalike.synthesis.transplant import _signed_areas, _warp_mesh

    triangles, _ = _warp_mesh()
    directed = [(int(a), int(b)) for t in triangles for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))]
    assert len(set(directed)) == len(directed)  # neighbours run each shared edge in opposite directions
    for name in ("right_eye", "left_eye", "mouth_interior"):  # every outline edge now borders two triangles
        loop = REGIONS[name].indices
        for a, b in zip(loop, loop[1:] + loop[:1]):
            assert ((a, b) in directed) and ((b, a) in directed), (name, a, b)
    areas = _signed_areas(face.landmarks[:, :2].astype(np.float64), triangles)
    assert (areas > 0).mean() > 0.98 or (areas < 0).mean() > 0.98
    assert np.abs(areas[np.sign(areas) != np.sign(areas.sum())]).max() < 2  # only slivers fold


def test_warping_a_face_onto_its_own_landmarks_reproduces_it(astronaut, face, oval):
    warped, coverage = warp_to_landmarks(astronaut, face.landmarks, face.landmarks, astronaut.shape[:2])
    covered = coverage > 0
    assert warped.shape == astronaut.shape and warped.dtype == np.uint8 and coverage.dtype == np.float32
    assert covered[oval].mean() > 0.97
    assert np.abs(warped.astype(int) - astronaut)[covered].mean() < 1.0
    assert (warped[~covered] == 0).all()


def test_a_window_of_the_warp_equals_the_same_crop_of_the_full_warp(astronaut, face):
    full, full_cov = warp_to_landmarks(astronaut, face.landmarks, face.landmarks, astronaut.shape[:2])
    window, window_cov = warp_to_landmarks(astronaut, face.landmarks, face.landmarks, (150, 120), offset=(160, 50))
    np.testing.assert_array_equal(window_cov, full_cov[50:200, 160:280])
    assert np.abs(window.astype(int) - full[50:200, 160:280]).max() <= 1


def test_a_half_size_donor_is_scaled_back_up(astronaut, face, oval):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    donor_landmarks = face.landmarks.copy()
    # pixel centres: x_small = (x + 0.5) / 2 - 0.5
    donor_landmarks[:, :2] = (face.landmarks[:, :2] + 0.5) / 2 - 0.5
    warped, coverage = warp_to_landmarks(small, donor_landmarks, face.landmarks, astronaut.shape[:2])
    expected = cv2.resize(small, (512, 512), interpolation=cv2.INTER_LINEAR)
    covered = coverage > 0
    assert covered[oval].mean() > 0.97
    assert np.abs(warped.astype(int) - expected)[covered].mean() < 2.0


def test_the_mirrored_face_lands_on_the_originals_landmarks(astronaut, face, mirrored, oval):
    image, other = mirrored
    warped, coverage = warp_to_landmarks(image, other.landmarks, face.landmarks, astronaut.shape[:2])
    covered = coverage > 0
    assert covered[oval].mean() > 0.97
    for opening in ("right_eye", "left_eye", "mouth_interior"):  # the holes of the mesh are filled too
        inside = region_mask(astronaut.shape, face.landmarks, [opening]) > 0.5
        assert covered[inside].mean() > 0.97, opening
    # Patches around landmarks of the warp show what the donor shows around the same landmarks (more
    # so than what the original shows there: the mirror is a near-twin, so the margin is modest).
    to_donor, to_original = [], []
    for index in (33, 133, 362, 263, 1, 61, 291, 13, 14):
        x, y = np.round(face.landmarks[index, :2]).astype(int)
        u, v = np.round(other.landmarks[index, :2]).astype(int)
        ours = warped[y - 6 : y + 7, x - 6 : x + 7].astype(float).ravel()
        to_donor.append(np.corrcoef(ours, image[v - 6 : v + 7, u - 6 : u + 7].astype(float).ravel())[0, 1])
        to_original.append(np.corrcoef(ours, astronaut[y - 6 : y + 7, x - 6 : x + 7].astype(float).ravel())[0, 1])
    assert min(to_donor) > 0.7 and np.mean(to_donor) > 0.85
    assert np.mean(to_donor) > np.mean(to_original) + 0.05
    # Re-detected, the composed face has the original's geometry, not the mirror's (faces 20+ px apart).
    from lookalike.faces import detect

    composed = np.where(covered[..., None], warped, astronaut)
    found = detect(composed)[0]
    assert np.abs(face.landmarks[:, 0] - other.landmarks[:, 0]).mean() > 20
    # (the detector's five keypoints wander a few px between near-identical images; the dense mesh less)
    assert np.linalg.norm(found.keypoints - face.keypoints, axis=1).max() < 6.0
    assert np.linalg.norm(found.landmarks[:, :2] - face.landmarks[:, :2], axis=1).mean() < 1.5


def test_a_closed_donor_eye_is_not_smeared_over_an_open_one(astronaut, face):
    donor = face.landmarks.copy()
    loop = REGIONS["right_eye"].indices
    half = len(loop) // 2
    lower, upper = loop[1:half], loop[:half:-1]  # lid points between the corners, corner to corner
    donor[list(upper), :2] = donor[list(lower), :2]  # the upper lid shuts onto the lower one
    warped, coverage = warp_to_landmarks(astronaut, donor, face.landmarks, astronaut.shape[:2])
    right = region_mask(astronaut.shape, face.landmarks, ["right_eye"]) > 0.5
    left = region_mask(astronaut.shape, face.landmarks, ["left_eye"]) > 0.5
    assert coverage[right].mean() < 0.3
    assert coverage[left].mean() > 0.97


def test_a_turned_target_draws_only_its_visible_surface(astronaut, face):
    # Turn the landmarks 50 degrees about a vertical axis through the face: the far cheek folds over.
    points = face.landmarks.astype(np.float64)
    centre = points[:, :2].mean(axis=0)
    angle = np.radians(50)
    turned = points.copy()
    turned[:, 0] = centre[0] + (points[:, 0] - centre[0]) * np.cos(angle) + points[:, 2] * np.sin(angle)
    turned[:, 2] = -(points[:, 0] - centre[0]) * np.sin(angle) + points[:, 2] * np.cos(angle)
    warped, coverage = warp_to_landmarks(astronaut, face.landmarks, turned, astronaut.shape[:2])
    hull = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, np.round(cv2.convexHull(turned[:468, :2].astype(np.float32))).astype(np.int32), 1)
    assert coverage.sum() > 0.8 * hull.sum()
    assert coverage[cv2.dilate(hull, np.ones((3, 3), np.uint8)) == 0].sum() == 0
    assert np.isfinite(warped).all()


# ----------------------------------------------------------------------------------- align and morph


def _similar(points: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    angle = np.radians(angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    out = points.astype(np.float64).copy()
    out[:, :2] = scale * points[:, :2] @ rotation.T + np.asarray(shift)
    out[:, 2] = points[:, 2] * scale
    return out


def test_align_recovers_a_known_similarity(face):
    moved = _similar(face.landmarks, 20.0, 1.3, (15.0, -8.0))
    np.testing.assert_allclose(align_landmarks(moved, face.landmarks), face.landmarks, atol=1e-2)
    # Expression elsewhere (an opened mouth) does not disturb the fit on the stable points.
    mouth = list(REGIONS["lips"].indices + REGIONS["mouth_interior"].indices)
    assert not set(mouth) & set(STABLE_INDICES)
    moved[mouth, 1] += 12
    aligned = align_landmarks(moved, face.landmarks)
    np.testing.assert_allclose(aligned[list(STABLE_INDICES)], face.landmarks[list(STABLE_INDICES)], atol=1e-2)


def test_align_never_mirrors(face):
    flipped = face.landmarks.copy()
    flipped[:, 0] = -flipped[:, 0]
    aligned = align_landmarks(flipped, face.landmarks)
    assert np.abs(aligned[:, :2] - face.landmarks[:, :2]).mean() > 5  # a reflection would fit it exactly


def _exaggerated_donor(target: np.ndarray, other: np.ndarray) -> np.ndarray:
    # The mirrored astronaut is nearly the same shape (0.5 px apart): exaggerate the difference 5x so the
    # morph has a visible distance to cover.
    aligned = align_landmarks(other, target)
    return (aligned + (aligned - target) * 4).astype(np.float32)


def test_morph_strength_interpolates_between_target_and_aligned_donor(face, mirrored):
    target = face.landmarks
    donor = _exaggerated_donor(target, mirrored[1].landmarks)
    aligned = align_landmarks(donor, target, in_depth=True)
    np.testing.assert_allclose(morph_landmarks(target, donor, 0.0), target, atol=1e-4)
    full = morph_landmarks(target, donor, 1.0, vertex_weights=np.ones(478), keep_expression=False)
    np.testing.assert_allclose(full[:468], aligned[:468], atol=1e-3)
    half = morph_landmarks(target, donor, 0.5, keep_expression=False)
    np.testing.assert_allclose(half[:468], (target[:468] + aligned[:468]) / 2, atol=1e-3)
    gap = np.linalg.norm(aligned[:468, :2] - target[:468, :2], axis=1)
    assert gap.mean() > 1.5  # a different shape, so the checks above have something to check


def test_morph_moves_shape_not_head_pose(face):
    from scipy.spatial.transform import Rotation

    target = face.landmarks.astype(np.float64)
    centre = target[:468].mean(axis=0)
    turned = Rotation.from_euler("yx", [20, -10], degrees=True).as_matrix()
    donor = 0.7 * (target - centre) @ turned.T + centre + 15  # the same face, turned, smaller and moved
    flat = align_landmarks(donor, target)  # in the image plane only, the turn looks like another shape
    assert np.linalg.norm(flat[:468, :2] - target[:468, :2], axis=1).mean() > 3
    morphed = morph_landmarks(target, donor, 1.8)
    assert np.linalg.norm(morphed[:468, :2] - target[:468, :2], axis=1).max() < 1e-3 * face.width


_UPPER_INNER = [191, 80, 81, 82, 13, 312, 311, 310, 415]  # corner to corner, paired with:
_LOWER_INNER = [95, 88, 178, 87, 14, 317, 402, 318, 324]


def _gaps(points: np.ndarray) -> np.ndarray:
    """The nine inner-lip gaps, lower edge minus upper, in 3-D."""
    return points[_LOWER_INNER, :3] - points[_UPPER_INNER, :3]


def _opened(landmarks: np.ndarray, drop: float) -> np.ndarray:
    """The face with its jaw dropped by up to ``drop`` pixels: everything below the line of the mouth
    corners and above the chin moves down, most under the middle of the mouth."""
    out = landmarks.astype(np.float64).copy()
    left, right = out[78, :2], out[308, :2]
    centre, half = (left + right) / 2, np.linalg.norm(right - left) / 2
    x, y = out[:468, 0], out[:468, 1]
    middle = (out[_UPPER_INNER, :2] + out[_LOWER_INNER, :2]) / 2  # the line between the lips
    line = np.concatenate([[left], middle, [right]])
    line = line[np.argsort(line[:, 0])]
    below = y > np.interp(x, line[:, 0], line[:, 1])
    profile = np.clip(1.0 - ((x - centre[0]) / (1.5 * half)) ** 2, 0.0, 1.0) * (y <= out[152, 1])
    out[:468, 1] += drop * profile * below
    return out


@pytest.mark.parametrize("turn", [0.0, 25.0])
def test_morph_keeps_the_mouth_as_open_and_as_smiling_as_it_was(face, mirrored, turn):
    from scipy.spatial.transform import Rotation

    from lookalike.synthesis.transplant import _corner_weights

    unit = face.width
    closed = face.landmarks.astype(np.float64)
    other = _exaggerated_donor(closed, mirrored[1].landmarks).astype(np.float64)
    smiling = other.copy()
    smiling[:468] -= _corner_weights().sum(axis=0)[:, None] * [0.0, 0.1 * unit, 0.0]  # its corners rise
    centre = closed[:468].mean(axis=0)
    rotation = Rotation.from_euler("y", turn, degrees=True).as_matrix()
    turned = lambda p: (p - centre) @ rotation.T + centre  # noqa: E731
    cases = [
        (closed, _opened(smiling, 0.2 * unit)),  # a closed mouth given a wide open, smiling donor
        (_opened(closed, 0.2 * unit), smiling),
    ]  # and the other way round
    for target, donor in ((turned(t), turned(d)) for t, d in cases):
        for strength in (1.0, 1.8):
            kept = morph_landmarks(target, donor, strength)
            changed = morph_landmarks(target, donor, strength, keep_expression=False)
            np.testing.assert_allclose(_gaps(kept), _gaps(target), atol=1e-3 * unit)  # all nine pairs
            assert np.abs(_gaps(changed) - _gaps(target)).max() > 0.15 * unit  # what it would have been
            assert (_gaps(kept)[:, 1] > -1e-3 * unit).all()  # the lips never cross
            np.testing.assert_allclose(_corner_lift(kept, target), _corner_lift(target, target), atol=1e-3 * unit)
            assert np.abs(_corner_lift(changed, target) - _corner_lift(target, target)).max() > 0.08 * unit
            # the nose, the upper lip's inner edge above the middle and the eyes move as without it
            still = [1, 2, 164, 97, 326, 33, 133, 362, 263]
            np.testing.assert_allclose(kept[still], changed[still], atol=1e-6)
            # and the shape of the lips still moves toward the donor's
            lips = list(REGIONS["lips"].indices)
            assert np.linalg.norm(kept[lips, :2] - target[lips, :2], axis=1).mean() > 0.5


def _corner_lift(points: np.ndarray, face: np.ndarray) -> np.ndarray:
    """How far below the lips' middle each mouth corner is, in 3-D along ``face``'s eyes-to-mouth line."""
    eyes = face[[33, 133, 362, 263], :3].mean(axis=0)
    down = face[[13, 14], :3].mean(axis=0) - eyes
    down /= np.linalg.norm(down)
    return (points[[61, 291], :3] - points[[13, 14], :3].mean(axis=0)) @ down


def test_only_the_lower_lip_and_the_mouth_corners_are_moved_for_the_expression():
    from lookalike.synthesis.transplant import _corner_weights, _lower_lip_weights

    lower = _lower_lip_weights()
    assert lower[_LOWER_INNER].min() == 1 and lower[[17, 14]].min() == 1  # the whole lower lip
    assert lower[_UPPER_INNER + [0, 11, 12, 164, 2, 1, 152, 33, 263]].max() == 0  # not the upper lip, nose, chin tip
    assert _corner_weights()[:, [13, 14, 0, 17]].max() == 0  # a corner's lift leaves the lips' middle


def test_alignment_in_depth_needs_depth(face):
    with pytest.raises(ValueError, match="in_depth needs x, y and z"):
        align_landmarks(face.landmarks[:, :2], face.landmarks, in_depth=True)


def test_morph_leaves_zero_weight_vertices_and_tapers_into_the_weighted_ones(face, mirrored):
    target = face.landmarks
    donor = _exaggerated_donor(target, mirrored[1].landmarks)
    labels = vertex_labels()
    weights = np.isin(labels, [SALIENCY_REGIONS.index("nose"), SALIENCY_REGIONS.index("mouth")]).astype(float)
    out = morph_landmarks(target, donor, 1.0, vertex_weights=weights, keep_expression=False)
    still = weights == 0
    still[468:] = False  # irises follow their eyes (weight 0 here too, and their eyes do not move)
    np.testing.assert_array_equal(out[still], target[still])
    np.testing.assert_allclose(out[468:], target[468:], atol=1e-3)
    moved = np.linalg.norm(out[:, :2] - target[:, :2], axis=1)
    assert moved[weights > 0].mean() > 1.0
    # A vertex of the nose next to the cheek moves less than one deep inside: the taper.
    aligned = align_landmarks(donor, target, in_depth=True)
    share = moved / np.maximum(np.linalg.norm(aligned[:, :2] - target[:, :2], axis=1), 1e-6)
    assert share[1] > 0.99  # nose tip, deep in the weighted area
    border = [v for v in np.flatnonzero(weights[:468]) if any(weights[n] == 0 for n in _neighbours(v))]
    assert share[border].max() < 0.9


def _neighbours(vertex: int) -> frozenset[int]:
    from lookalike.landmarks.mesh import mesh_neighbours

    return mesh_neighbours()[vertex]


def _in_eye_frame(points: np.ndarray, corners: tuple[int, int]) -> np.ndarray:
    """Coordinates of points in the frame of an eye's two corners (invariant to any similarity)."""
    origin, axis = points[corners[0], :2], points[corners[1], :2] - points[corners[0], :2]
    normal = np.array([-axis[1], axis[0]])
    rel = points[:, :2] - origin
    return np.stack([rel @ axis, rel @ normal], axis=1) / (axis @ axis)


def test_irises_move_with_their_eye_and_keep_the_gaze(face):
    target = face.landmarks.astype(np.float64)
    donor = target.copy()
    eye = list(REGIONS["right_eye"].indices)
    centre = target[eye, :2].mean(axis=0)
    donor[eye, :2] = centre + (target[eye, :2] - centre) * 1.3 + [0.0, -3.0]  # a larger, higher eye
    weights = np.isin(np.arange(478), eye).astype(float)
    out = morph_landmarks(target, donor, 1.0, vertex_weights=weights, taper=0)
    iris = list(range(468, 473))
    assert np.linalg.norm(out[iris, :2] - target[iris, :2], axis=1).min() > 1.0  # the iris moved
    np.testing.assert_allclose(_in_eye_frame(out, (33, 133))[iris], _in_eye_frame(target, (33, 133))[iris], atol=1e-3)
    np.testing.assert_array_equal(out[473:], target[473:].astype(np.float32))  # the other iris stays


def test_per_vertex_strength_and_pinned_oval(face, mirrored):
    target = face.landmarks
    donor = _exaggerated_donor(target, mirrored[1].landmarks)
    strength = np.zeros(478)
    strength[:234] = 1.0
    out = morph_landmarks(target, donor, strength, taper=0)
    np.testing.assert_array_equal(out[234:468], target[234:468])
    pinned = morph_landmarks(target, donor, 1.0, oval_weight=0.0)
    from lookalike.landmarks.regions import FACE_OVAL

    np.testing.assert_array_equal(pinned[list(FACE_OVAL)], target[list(FACE_OVAL)])
    assert np.abs(pinned[1] - target[1]).max() > 0  # the inside still moves


# --------------------------------------------------------------------------------------------- colour


def _region_means(image: np.ndarray, labels: np.ndarray, min_pixels: int = 50) -> dict[int, np.ndarray]:
    lab = _lab(image)
    return {
        int(r): lab[labels == r].mean(axis=0)
        for r in np.unique(labels[labels >= 0])
        if (labels == r).sum() >= min_pixels
    }


def test_a_tinted_darkened_copy_is_matched_back_region_by_region(astronaut, face):
    labels = region_labels(astronaut.shape, face.landmarks)
    tinted = np.clip(astronaut * np.array([0.7, 0.85, 1.1]) - 10, 0, 255).astype(np.uint8)
    out = match_colour(tinted, astronaut, labels)
    assert out.dtype == np.uint8 and out.shape == astronaut.shape
    before, after, want = (_region_means(x, labels) for x in (tinted, out, astronaut))
    assert len(want) >= 10
    for region, mean in want.items():
        assert np.abs(before[region] - mean).max() > 5  # the tint is real
        assert np.abs(after[region] - mean).max() < 2.5, (SALIENCY_REGIONS[region], after[region], mean)


def test_shading_one_transfers_only_the_whole_faces_colour(astronaut, face):
    labels = region_labels(astronaut.shape, face.landmarks)
    nose = SALIENCY_REGIONS.index("nose")
    shaded = astronaut.astype(np.float32)
    shaded[labels == nose] *= 0.7  # the source has its own, darker nose
    shaded = shaded.astype(np.uint8)
    want = _region_means(astronaut, labels)
    regional = _region_means(match_colour(shaded, astronaut, labels), labels)
    whole_out = match_colour(shaded, astronaut, labels, shading=1.0)
    whole = _region_means(whole_out, labels)
    assert want[nose][0] - whole[nose][0] > 10  # the source's darker nose stays darker
    # region by region, the reference's nose mostly comes back (the smoothed correction spills a little)
    assert abs(regional[nose][0] - want[nose][0]) < 0.5 * (want[nose][0] - whole[nose][0])
    face_lab = _lab(whole_out)[labels >= 0].mean(axis=0)
    assert np.abs(face_lab - _lab(astronaut)[labels >= 0].mean(axis=0)).max() < 2.5  # overall colour matched
    with pytest.raises(ValueError, match="shading"):
        match_colour(shaded, astronaut, labels, shading=1.5)


def _border_and_inside(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    face = labels >= 0
    grown = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8))
    shrunk = cv2.erode(labels.astype(np.float32), np.ones((3, 3), np.uint8))
    border = face & (cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & (grown != shrunk)
    inside = (
        face
        & (cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
        & ~(cv2.dilate(border.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    )
    return border, inside


def _gradient(image: np.ndarray) -> np.ndarray:
    lightness = _lab(image)[..., 0]
    return np.hypot(cv2.Sobel(lightness, cv2.CV_32F, 1, 0), cv2.Sobel(lightness, cv2.CV_32F, 0, 1))


def test_uneven_light_is_matched_without_seams_at_region_borders(astronaut, face):
    labels = region_labels(astronaut.shape, face.landmarks)
    # Light falling off across the face makes each region's correction different.
    ramp = np.linspace(0.45, 1.25, astronaut.shape[1])[None, :, None]
    lit = np.clip(astronaut * ramp, 0, 255).astype(np.uint8)
    border, inside = _border_and_inside(labels)
    assert border.sum() > 300 and inside.sum() > 2000
    reference = _gradient(astronaut)

    def seam(image: np.ndarray) -> float:
        # Excess gradient at region borders over the original's, relative to the same excess inside.
        excess = _gradient(image) - reference
        return float(np.abs(excess[border]).mean() / max(np.abs(excess[inside]).mean(), 1e-6))

    smooth = match_colour(lit, astronaut, labels)
    hard = match_colour(lit, astronaut, labels, smooth=0)
    assert seam(smooth) < 1.5
    assert seam(hard) > 1.8  # the check can see seams: the unsmoothed transfer has them (measured 2.7 vs 1.0)
    # and the result is still close to the original, region by region
    after, want = _region_means(smooth, labels), _region_means(astronaut, labels)
    assert max(np.abs(after[r] - want[r]).max() for r in want) < 5


def test_a_region_too_small_takes_the_whole_face_statistics(astronaut, face):
    labels = region_labels(astronaut.shape, face.landmarks)
    tinted = np.clip(astronaut * 0.8, 0, 255).astype(np.uint8)
    everything_small = match_colour(tinted, astronaut, labels, min_pixels=10**9, smooth=0)
    as_one = match_colour(tinted, astronaut, np.where(labels >= 0, 0, -1).astype(np.int16), smooth=0)
    np.testing.assert_array_equal(everything_small, as_one)


# --------------------------------------------------------------------------------------------- blend


def _soft_oval(astronaut: np.ndarray, face) -> np.ndarray:
    return region_mask(astronaut.shape, face.landmarks, ["face_oval"], feather=4.0)


def test_blend_leaves_everything_beyond_the_reach_bit_identical(astronaut, face, mirrored):
    mask = _soft_oval(astronaut, face)
    overlay = 255 - mirrored[0]  # as different as can be, everywhere
    for levels in (None, 2, 4):
        out = laplacian_blend(astronaut, overlay, mask, levels=levels)
        distance = cv2.distanceTransform((mask <= 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        reach = laplacian_reach(levels or 3)
        changed = (out != astronaut).any(axis=2)
        assert changed.any()
        assert distance[changed].max() <= reach, levels
        np.testing.assert_array_equal(out[distance > reach], astronaut[distance > reach])


def test_blend_inside_a_full_mask_is_the_overlay(astronaut, face, mirrored):
    mask = region_mask(astronaut.shape, face.landmarks, ["face_oval"])
    mask = (mask > 0.5).astype(np.float32)
    overlay = mirrored[0]
    levels = 3
    out = laplacian_blend(astronaut, overlay, mask, levels=levels)
    inside = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    deep = inside > laplacian_reach(levels) / 2
    assert deep.sum() > 500
    assert np.abs(out.astype(int) - overlay)[deep].max() <= 1
    assert np.abs(out.astype(int) - overlay)[mask > 0].mean() < np.abs(astronaut.astype(int) - overlay)[mask > 0].mean()


def test_blend_handles_the_image_border_floats_and_empty_masks(astronaut):
    base = astronaut[:200, :200]
    overlay = np.full_like(base, 30)
    mask = np.zeros((200, 200), np.float32)
    mask[:80, :60] = 1.0  # touches the top and left borders
    out = laplacian_blend(base, overlay, mask)
    assert out.shape == base.shape and out.dtype == np.uint8
    assert np.abs(out[:40, :20].astype(int) - 30).max() <= 1
    np.testing.assert_array_equal(out[:, 190:], base[:, 190:])
    floats = laplacian_blend(base.astype(np.float32) / 255, overlay.astype(np.float32) / 255, mask)
    assert floats.dtype == np.float32 and np.isfinite(floats).all()
    empty = laplacian_blend(base, overlay, np.zeros((200, 200), np.float32))
    np.testing.assert_array_equal(empty, base)
    assert empty is not base
    grey = laplacian_blend(base[..., 0], overlay[..., 0], mask)
    assert grey.shape == (200, 200) and np.abs(grey[:40, :20].astype(int) - 30).max() <= 1


# -------------------------------------------------------------------------------------------- detail


def _detail_energy(image: np.ndarray, where: np.ndarray, sigma: float = 3.0) -> float:
    grey = image.astype(np.float32).mean(axis=2)
    high = grey - gaussian_blur(grey, sigma)
    return float((high[where] ** 2).mean())


def test_detail_of_the_original_comes_back_over_a_smooth_face(astronaut, face, oval):
    smooth = gaussian_blur(astronaut, 3.0)
    mask = region_mask(astronaut.shape, face.landmarks, ["face_oval"], feather=2.0)
    out = reinject_detail(smooth, astronaut, mask, sigma=3.0)
    inner = mask > 0.99
    want, had, got = (_detail_energy(x, inner) for x in (astronaut, smooth, out))
    assert had < 0.3 * want
    assert 0.8 * want < got < 1.2 * want
    # the low frequencies stay the result's: the blurred output equals the blurred input
    low_out, low_smooth = (gaussian_blur(x.astype(np.float32), 6.0) for x in (out, smooth))
    assert np.abs(low_out - low_smooth)[inner].mean() < 1.5
    np.testing.assert_array_equal(out[mask == 0], smooth[mask == 0])
    half = reinject_detail(smooth, astronaut, mask, sigma=3.0, amount=0.5)
    assert had < _detail_energy(half, inner) < got
