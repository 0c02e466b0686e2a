"""regenerate: one lookalike candidate from a donor."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.donors import default_bank
from lookalike.landmarks import SALIENCY_REGIONS
from lookalike.landmarks.regions import region_mask
from lookalike.synthesis.regenerate import RegenerationConfig, face_box_window, regenerate


@pytest.fixture(scope="module")
def face(astronaut):
    from lookalike.faces import detect

    return detect(astronaut)[0]


@pytest.fixture(scope="module")
def donor():
    return default_bank().donor_image(0)


def test_only_the_window_and_the_masked_pixels_change(astronaut, face, donor):
    candidate = regenerate(astronaut, face.landmarks, *donor, ("nose", "mouth"), morph=0.5)
    x0, y0, x1, y1 = candidate.box
    assert (x0, y0, x1, y1) == face_box_window(astronaut.shape, face.landmarks, RegenerationConfig().margin)
    pasted = candidate.paste(astronaut)
    outside = np.ones(astronaut.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(pasted[outside], astronaut[outside])
    changed = (candidate.image != astronaut[y0:y1, x0:x1]).any(axis=-1)
    assert changed.any() and np.all(candidate.mask[changed] == 1.0)
    assert candidate.regions == ("nose", "mouth") and candidate.landmarks.shape == (478, 3)


def test_more_regions_change_more_of_the_face(astronaut, face, donor):
    small = regenerate(astronaut, face.landmarks, *donor, ("nose",), morph=0.0)
    whole = regenerate(astronaut, face.landmarks, *donor, SALIENCY_REGIONS, morph=1.0)
    assert (whole.mask > 0).sum() > 3 * (small.mask > 0).sum()


def test_nothing_asked_changes_nothing(astronaut, face, donor):
    candidate = regenerate(astronaut, face.landmarks, *donor, (), morph=0.0)
    x0, y0, x1, y1 = candidate.box
    assert np.array_equal(candidate.image, astronaut[y0:y1, x0:x1])
    assert not candidate.mask.any()


def test_the_targets_irises_are_kept_unless_asked_not_to(astronaut, face, donor):
    eyes = ("right_eye", "left_eye")
    kept = regenerate(astronaut, face.landmarks, *donor, eyes, morph=0.0)
    replaced = regenerate(
        astronaut, face.landmarks, *donor, eyes, morph=0.0, config=RegenerationConfig(keep_gaze=False)
    )
    x0, y0, x1, y1 = kept.box
    local = face.landmarks.copy()
    local[:, :2] -= (x0, y0)
    irises = region_mask(kept.image.shape, local, ["right_iris", "left_iris"]) > 0.99
    original = astronaut[y0:y1, x0:x1].astype(int)
    assert (
        np.abs(kept.image[irises].astype(int) - original[irises]).mean()
        < 0.5 * np.abs(replaced.image[irises].astype(int) - original[irises]).mean()
    )


def test_bad_arguments_are_refused(astronaut, face, donor):
    with pytest.raises(ValueError, match="unknown regions"):
        regenerate(astronaut, face.landmarks, *donor, ("ears",), morph=0.5)
    with pytest.raises(ValueError, match="morph"):
        regenerate(astronaut, face.landmarks, *donor, ("nose",), morph=2.5)
    with pytest.raises(ValueError, match="shading"):
        regenerate(astronaut, face.landmarks, *donor, ("nose",), morph=0.5, config=RegenerationConfig(shading=1.5))


def test_a_morph_past_one_moves_the_shape_past_the_donors(astronaut, face, donor):
    def moved(morph):
        candidate = regenerate(astronaut, face.landmarks, *donor, SALIENCY_REGIONS, morph=morph)
        return np.linalg.norm(candidate.landmarks[:468, :2] - face.landmarks[:468, :2], axis=1).mean()

    at_donor, past = moved(1.0), moved(1.8)
    assert at_donor > 1.0 and past > 1.5 * at_donor


def test_a_face_in_a_grey_or_tinted_photo_keeps_the_photo_colour(astronaut, face, donor):
    import cv2

    from lookalike.synthesis.regenerate import is_monochrome

    grey = cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    sepia = np.clip(grey * np.array([1.0, 0.86, 0.66]), 0, 255).astype(np.uint8)
    for photo in (grey, sepia):
        assert is_monochrome(photo)
        candidate = regenerate(photo, face.landmarks, *donor, SALIENCY_REGIONS, morph=1.0)
        assert is_monochrome(candidate.image), "the donor's colour came in"
    spread = regenerate(grey, face.landmarks, *donor, SALIENCY_REGIONS, morph=1.0).image.astype(int)
    assert np.abs(spread - spread.mean(axis=2, keepdims=True)).max() <= 2  # grey: the channels agree
    assert not is_monochrome(regenerate(astronaut, face.landmarks, *donor, SALIENCY_REGIONS, morph=1.0).image)


def test_what_covers_the_person_s_skin_stays_in_front_of_the_new_face(astronaut, face, donor):
    from lookalike.synthesis.regenerate import occluders

    fringe = astronaut.copy()
    x, y = face.landmarks[151, :2].astype(int)  # a dark strand across the middle of the forehead
    fringe[y - 3 : y + 3, x - 25 : x + 25] = (35, 25, 15)
    strand = occluders(fringe, face.landmarks) & ~occluders(astronaut, face.landmarks)
    assert strand.sum() > 150
    kept = regenerate(fringe, face.landmarks, *donor, SALIENCY_REGIONS, morph=0.0)
    lost = regenerate(
        fringe, face.landmarks, *donor, SALIENCY_REGIONS, morph=0.0, config=RegenerationConfig(keep_occluders=False)
    )
    x0, y0, _, _ = kept.box
    rows, cols = np.nonzero(strand)
    window_rows, window_cols = rows - y0, cols - x0
    darkness = lambda c: float(c.image[window_rows, window_cols].mean())  # noqa: E731
    assert darkness(kept) < 70 < darkness(lost)  # the strand is still there, over the donor's skin
