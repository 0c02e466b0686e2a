"""identity_saliency, identity_mask and their statuses for difficult faces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lookalike.landmarks import FEATURE_OF, FEATURES, SALIENCY_REGIONS
from lookalike.saliency import (
    face_window,
    identity_mask,
    identity_saliency,
    resolve_methods,
    select_regions,
)
from lookalike.types import HeadPose


@pytest.fixture(scope="module")
def face(astronaut):
    from lookalike.faces import detect

    return detect(astronaut)[0]


@pytest.fixture(scope="module")
def gradient(astronaut, face):
    return identity_saliency(astronaut, face, "facenet", "gradient")


@pytest.fixture(scope="module")
def occlusion(astronaut, face):
    return identity_saliency(astronaut, face, "dlib", "occlusion")


def test_saliency_ranks_regions_by_identity_per_area(gradient, occlusion):
    for saliency in (gradient, occlusion):
        assert saliency.status == "computed" and saliency.reason is None
        assert sorted(saliency.ranking) == sorted(SALIENCY_REGIONS)
        assert sum(r.share for r in saliency.regions) == pytest.approx(1.0)
        features = list(dict.fromkeys(FEATURE_OF[n] for n in saliency.ranking))
        assert sorted(features) == sorted(FEATURES)  # each feature's regions are ranked together
        densities = [
            sum(r.share for r in saliency.regions if FEATURE_OF[r.name] == f)
            / sum(r.area for r in saliency.regions if FEATURE_OF[r.name] == f)
            for f in features
        ]
        assert densities == sorted(densities, reverse=True)
        assert sum(r.area for r in saliency.regions) == pytest.approx(1.0)
    # Occlusion scores are identity shifts in the recognizer's own units.
    assert 0 < occlusion.regions[0].score < 1.5 and occlusion.total_shift == {}
    assert 0 < gradient.total_shift["facenet"] <= 2.0
    assert occlusion.methods == {"dlib": "occlusion"} and gradient.methods == {"facenet": "gradient"}


@pytest.mark.parametrize("which", ["gradient", "occlusion"])
def test_top_ranked_regions_move_identity_more_than_the_bottom_ones(astronaut, face, gradient, occlusion, which):
    """The claim saliency makes, checked on the recognizer it was computed with: neutralising the top
    regions moves the embedding further than neutralising as many pixels of the lowest-ranked regions."""
    from lookalike.identity import get_recognizer

    saliency = gradient if which == "gradient" else occlusion
    recognizer = get_recognizer(saliency.recognizers[0])
    window = face_window(astronaut, face)

    def shift(names):
        chips = np.stack(
            [recognizer.align(v, window.face, reference=window.crop) for v in (window.crop, window.neutralized(names))]
        )
        e = recognizer.embed_aligned(chips)
        return float(recognizer.distance(e[0], e[1]))

    def take(regions, area):
        chosen, total = [], 0.0
        for r in regions:
            if total >= area:
                break
            chosen.append(r.name)
            total += r.area
        return chosen, total

    top, top_area = take(saliency.regions, 0.25)
    bottom, bottom_area = take(saliency.regions[::-1], top_area)
    assert bottom_area >= top_area * 0.9
    assert shift(top) > shift(bottom) * 1.3


def test_mask_grows_with_strength_and_adapts_to_the_face(gradient, astronaut):
    assert identity_mask(gradient, 0.0).max() == 0.0
    previous = np.zeros(astronaut.shape[:2], np.float32)
    for strength in (0.2, 0.5, 0.8, 1.0):
        chosen = select_regions(gradient, strength)
        assert sum(r.share for r in gradient.regions if r.name in chosen) >= strength - 1e-6
        mask = identity_mask(gradient, strength)
        assert mask.shape == astronaut.shape[:2] and mask.dtype == np.float32
        assert (mask >= previous - 1e-6).all()
        previous = mask
    assert previous.sum() > 5 * identity_mask(gradient, 0.2).sum()
    assert (previous > 0.5).sum() >= (gradient.label_map() >= 0).sum()
    crop = identity_mask(gradient, 0.5, crop=True)
    x0, y0, x1, y1 = gradient.window
    assert crop.shape == (y1 - y0, x1 - x0)
    with pytest.raises(ValueError, match="strength"):
        identity_mask(gradient, 1.5)


def test_a_face_whose_identity_is_concentrated_needs_fewer_regions(gradient):
    concentrated = dataclasses.replace(
        gradient,
        regions=[
            dataclasses.replace(r, share=0.9 if i == 0 else 0.1 / (len(gradient.regions) - 1))
            for i, r in enumerate(gradient.regions)
        ],
    )
    chosen = select_regions(concentrated, 0.5)
    assert set(chosen) == set(FEATURES[FEATURE_OF[gradient.regions[0].name]])  # one feature, both sides
    assert len(select_regions(gradient, 0.5)) > len(chosen)


def test_pixel_map_is_image_aligned(gradient, astronaut, face):
    pixel_map = gradient.pixel_map()
    assert pixel_map.shape == astronaut.shape[:2]
    assert 0.0 <= pixel_map.min() and pixel_map.max() == pytest.approx(1.0)
    x0, y0, x1, y1 = (int(v) for v in face.box)
    inside = pixel_map[y0:y1, x0:x1].mean()
    assert inside > 5 * max(pixel_map[:, : max(1, x0 - 60)].mean(), 1e-6)


def test_both_recognizers_average_their_shares(astronaut, face, occlusion):
    both = identity_saliency(astronaut, face, "both")
    facenet = identity_saliency(astronaut, face, "facenet")
    assert both.methods == {"dlib": "occlusion", "facenet": "occlusion"}
    for region in both.regions:
        expected = (occlusion.per_recognizer["dlib"][region.name] + facenet.per_recognizer["facenet"][region.name]) / 2
        assert region.share == pytest.approx(expected, abs=1e-6)


def test_saliency_is_deterministic(astronaut, face, gradient):
    again = identity_saliency(astronaut, face, "facenet", "gradient")
    assert again.ranking == gradient.ranking
    np.testing.assert_allclose([r.share for r in again.regions], [r.share for r in gradient.regions], atol=1e-6)


def test_impossible_choices_are_refused():
    with pytest.raises(ValueError, match="differentiable"):
        resolve_methods("dlib", "gradient")
    with pytest.raises(ValueError, match="unknown recognizer"):
        resolve_methods("arcface", "occlusion")
    with pytest.raises(ValueError, match="unknown saliency method"):
        resolve_methods("facenet", "lime")
    with pytest.raises(ValueError, match="differentiable"):
        resolve_methods("both", "gradient")


def test_greedy_occlusion_measures_features_after_the_ones_chosen(astronaut, face, occlusion):
    from lookalike.saliency import SaliencyConfig

    greedy = identity_saliency(astronaut, face, "dlib", "occlusion", SaliencyConfig(greedy_steps=3))
    assert greedy.status == "computed"
    features = list(dict.fromkeys(FEATURE_OF[n] for n in greedy.ranking))
    assert len(features) == len(FEATURES)
    first = FEATURE_OF[greedy.ranking[0]]
    assert first == FEATURE_OF[occlusion.ranking[0]]  # the first choice is the same measurement
    assert sum(r.share for r in greedy.regions) == pytest.approx(1.0)
    # later features are scored as marginal shifts once the first is gone, so their scores change
    assert greedy.per_recognizer["dlib"] != occlusion.per_recognizer["dlib"]


def test_difficult_faces_get_a_status_not_a_crash(astronaut, face):
    no_mesh = dataclasses.replace(face, landmarks=None)
    result = identity_saliency(astronaut, no_mesh)
    assert result.status == "skipped" and "landmarks" in result.reason
    with pytest.raises(ValueError, match="no saliency"):
        identity_mask(result, 0.5)
    assert result.to_dict()["regions"] == []

    tiny = dataclasses.replace(face, box=np.array([10, 10, 20, 22], np.float32))
    assert identity_saliency(astronaut, tiny).status == "skipped"

    profile = dataclasses.replace(face, pose=HeadPose(yaw=70.0, pitch=0.0, roll=0.0))
    result = identity_saliency(astronaut, profile)
    assert result.status == "degraded" and "profile" in result.reason
    assert len(result.regions) == len(SALIENCY_REGIONS)


def test_a_face_cut_by_the_image_border_is_degraded(astronaut, face):
    from lookalike.faces import detect

    x_mid = int(face.center[0])
    half = np.ascontiguousarray(astronaut[:, x_mid - 10 :])
    found = detect(half)
    assert found, "the half face should still be detected"
    result = identity_saliency(half, found[0])
    assert result.status == "degraded" and "outside the image" in result.reason
    assert identity_mask(result, 1.0).shape == half.shape[:2]


def test_small_faces_are_computed_but_degraded(astronaut):
    import cv2

    from lookalike.faces import detect

    small = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
    faces = detect(small)
    assert faces
    result = identity_saliency(small, faces[0])
    assert result.status == "degraded" and "px wide" in result.reason
    assert identity_mask(result, 0.5).max() > 0


def test_facenet_variants_composed_on_the_chip_match_the_window_edit(astronaut, face):
    """Composing neutralised variants after the warp is the same edit as neutralising, then warping."""
    from lookalike.identity import get_recognizer
    from lookalike.saliency.core import _variant_chips

    recognizer = get_recognizer("facenet")
    window = face_window(astronaut, face)
    variants = [[]] + [list(regions) for regions in FEATURES.values()]
    composed = _variant_chips(window, recognizer, variants).astype(np.float32)
    reference = np.stack([recognizer.align(window.neutralized(v), window.face) for v in variants]).astype(np.float32)
    assert composed.shape == reference.shape
    assert np.abs(composed[0] - reference[0]).max() <= 1  # the unchanged face: only rounding
    changed = np.abs(composed - composed[0]).mean(axis=(1, 2, 3))[1:]
    assert np.all(changed > 0.5)  # every variant really neutralises something
    discrepancy = np.abs(composed - reference).mean(axis=(1, 2, 3))[1:]
    assert np.all(discrepancy < 0.2 * changed), (discrepancy, changed)  # region edges differ by a pixel
    embeddings = recognizer.embed_aligned(composed.astype(np.uint8))
    expected = recognizer.embed_aligned(reference.astype(np.uint8))
    shifts = recognizer.distance(embeddings[0][None], embeddings[1:])
    reference_shifts = recognizer.distance(expected[0][None], expected[1:])
    assert list(np.argsort(shifts)[-3:]) == list(np.argsort(reference_shifts)[-3:])
