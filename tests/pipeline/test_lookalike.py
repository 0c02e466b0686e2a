"""The lookalike method: closed loop, records, fail-closed fallbacks, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lookalike.donors import default_bank
from lookalike.faces import detect
from lookalike.identity import available_recognizers
from lookalike.identity.views import CHECKED_VIEWS
from lookalike.pipeline import anonymize
from lookalike.pipeline.lookalike import MIN_FACE, LookalikeRecord, lookalike_face
from lookalike.pipeline.privacy import PRIVACY_LEVELS, get_privacy
from lookalike.synthesis.regenerate import MAX_MORPH


@pytest.fixture(scope="module")
def face(astronaut):
    return detect(astronaut)[0]


@pytest.fixture(scope="module")
def outcome(astronaut, face):
    return lookalike_face(astronaut, face)


def _whole_face_candidates(astronaut, face, donors=(0,)):
    """The face measured for the loop, and one whole-face candidate per bank donor index in ``donors``."""
    from lookalike.donors import default_bank
    from lookalike.landmarks import SALIENCY_REGIONS
    from lookalike.pipeline.lookalike import _measure
    from lookalike.synthesis.regenerate import regenerate

    target = _measure(astronaut, astronaut, face, saliency=False)
    bank = default_bank()
    return target, [
        regenerate(target.window, target.face.landmarks, *bank.donor_image(i), SALIENCY_REGIONS, 1.0) for i in donors
    ]


def _blurred(target, candidates, check, record=None):
    """The blurred-lookalike fallback on ``candidates`` of the measured ``target``, under ``check``."""
    from lookalike.pipeline.lookalike import _blurred_lookalike, _Job

    job = _Job(target.window, target.reference, target.face, check, record or LookalikeRecord(), 1.3, target)
    return _blurred_lookalike(job, target, candidates)


def _counting_check(calls: list, passes_on):
    """A FaceNet-only check that notes each call in ``calls`` and passes when ``passes_on(len(calls))``."""
    from lookalike.identity.crowd import default_crowd
    from lookalike.pipeline.lookalike import _Check

    class Counting(_Check):
        def passes(self, name, probe, original):
            calls.append(name)
            return passes_on(len(calls))

        def passes_views(self, image, views):
            return True, {}  # the other views agree with whatever ``passes`` said

    return Counting(default_crowd(), ("facenet",), 5, 1.0)


def test_the_face_becomes_a_lookalike_no_recognizer_matches(outcome):
    record = outcome.record
    assert record.reached is True
    assert record.fallback is None
    assert record.donor in default_bank().names
    assert record.privacy == "medium" and record.k == PRIVACY_LEVELS["medium"].k
    for name in ("dlib", "facenet"):
        measured = record.recognizers[name]
        assert measured["distance"] > measured["threshold"] and not measured["match"]
        assert measured["rank"] >= record.k and measured["retrieval_rank"] >= record.k
    for name in record.steer:  # and under every attacker view, the worst of which is recorded
        worst = record.views[name]
        assert worst["view"] in [view.name for view in CHECKED_VIEWS]
        assert min(worst["rank"], worst["retrieval_rank"]) >= record.k
    # a lookalike, not a stranger: perceptually closer than unrelated faces (0.5)
    assert record.perceptual_similarity > 0.7
    assert set(record.regions) and 0.0 < record.morph <= MAX_MORPH


def test_only_the_face_window_changes_and_the_mask_covers_every_change(astronaut, outcome):
    x0, y0, x1, y1 = outcome.box
    before = astronaut[y0:y1, x0:x1]
    changed = (outcome.image != before).any(axis=-1)
    assert changed.mean() > 0.05
    assert np.all(outcome.mask[changed] == 1.0)


def test_same_seed_same_result(astronaut, face, outcome):
    again = lookalike_face(astronaut, face)
    assert np.array_equal(again.image, outcome.image)
    assert again.record.donor == outcome.record.donor


def test_a_replay_of_the_chosen_face_is_the_loops_result_and_passes_its_check(astronaut, face, outcome):
    # a clip replays the loop's record on every frame, and checks the replay: on the very face the loop
    # chose for, the replay is the loop's lookalike and is measured as the loop measured it (else a
    # lookalike that passed at the edge of the level fails its own replay, and its track is blurred)
    from lookalike.pipeline.lookalike import replay_lookalike

    replayed = replay_lookalike(astronaut, face, outcome.record.to_dict(), check=True)
    assert replayed.box == outcome.box and np.array_equal(replayed.image, outcome.image)
    assert replayed.record.reached is True and replayed.record.replayed
    for name in outcome.record.steer:
        assert replayed.record.recognizers[name]["rank"] == outcome.record.recognizers[name]["rank"]
        assert replayed.record.views[name] == outcome.record.views[name]


def test_an_unreachable_level_fails_closed_to_blur_or_solid(astronaut, face):
    result = lookalike_face(astronaut, face, privacy="low", target_distance=3.0)
    record = result.record
    # the whole-face fallbacks, not a blurred lookalike: no blur of a lookalike reaches three thresholds
    assert record.fallback.startswith(("blur (sigma", "solid ("))
    assert "no lookalike reached the level" in record.fallback
    # the solid fill is the last resort: nothing further exists, so the record says whether it reached
    assert record.reached in (True, False)
    x0, y0, x1, y1 = result.box
    assert (result.image != astronaut[y0:y1, x0:x1]).any(axis=-1).mean() > 0.2


def test_the_whole_face_fallback_follows_the_mask_scale(astronaut, face):
    from lookalike.identity.crowd import default_crowd
    from lookalike.pipeline.lookalike import _Check, _fallbacks, _Job

    check = _Check(default_crowd(), ("facenet",), 1, 1.0)
    areas = []
    for scale in (1.3, 2.0):
        outcome = _fallbacks(_Job(astronaut, astronaut, face, check, LookalikeRecord(), scale), reason="a test")
        areas.append(int((outcome.mask > 0.5).sum()))
    assert areas[1] > 1.8 * areas[0]  # (2.0 / 1.3) ** 2 = 2.4 as much ellipse


def test_the_closest_lookalike_is_blurred_until_it_passes(astronaut, face):
    from lookalike.identity import get_recognizer
    from lookalike.identity.crowd import default_crowd
    from lookalike.pipeline.lookalike import _Check, _embed

    target, (candidate,) = _whole_face_candidates(astronaut, face)
    facenet = get_recognizer("facenet")
    probe = _embed(candidate.paste(target.window), target.face, target.reference, ("facenet",))["facenet"]
    unblurred = float(facenet.distance(probe, target.embeddings["facenet"]))

    class FartherThanTheCandidate(_Check):  # passes only what moved further than the unblurred candidate
        def passes(self, name, probe, original):
            return float(facenet.distance(probe, original)) > unblurred + 0.01

    record = LookalikeRecord()
    found = _blurred(target, [candidate], FartherThanTheCandidate(default_crowd(), ("facenet",), 5, 1.0), record)
    assert found is not None and found[1] == 0
    outcome = found[0]
    assert record.fallback.startswith("blurred lookalike") and record.reached
    changed = (outcome.image != target.window).any(axis=-1)
    assert np.all(outcome.mask[changed] == 1.0)
    assert record.recognizers["facenet"]["distance"] > unblurred
    never = _blurred(target, [candidate], _Check(default_crowd(), ("facenet",), 5, 100.0))
    assert never is None  # nothing passes: the caller goes on to the whole-face blur


def test_progress_ranks_failing_candidates_by_their_crowd_ranks(astronaut, face):
    from lookalike.identity.crowd import default_crowd
    from lookalike.pipeline.lookalike import _Check, _measure

    crowd = default_crowd()
    check = _Check(crowd, ("dlib", "facenet"), 10, 1.0)
    original = _measure(astronaut, astronaut, face, saliency=False).embeddings
    assert check.progress(original, original) == 0.0  # the person itself: hidden among nobody
    strangers = {name: crowd.embeddings[name][0] for name in ("dlib", "facenet")}
    assert 0.0 < check.progress(strangers, original) <= 2.0  # capped at 1 per steering recognizer
    only_facenet = {"facenet": strangers["facenet"]}  # dlib never asked: it adds nothing
    assert check.progress(only_facenet, original) == _Check(crowd, ("facenet",), 10, 1.0).progress(strangers, original)


@pytest.mark.parametrize("sharp_face", [False, True], ids=["face blurred too", "face kept sharp"])
def test_the_blur_reaches_around_the_face_when_the_face_alone_is_not_enough(astronaut, face, sharp_face):
    from lookalike.landmarks import region_labels
    from lookalike.synthesis.blurred import LOOKALIKE_BLURS

    target, (candidate,) = _whole_face_candidates(astronaut, face)
    first_around = next(
        i for i, step in enumerate(LOOKALIKE_BLURS) if step.around > 0 and (step.face == 0) == sharp_face
    )
    passes_on_the_first_blur_around = _counting_check([], lambda count: count > first_around)

    record = LookalikeRecord()
    found = _blurred(target, [candidate], passes_on_the_first_blur_around, record)
    assert found is not None
    outcome = found[0]
    assert "around it" in record.fallback
    changed = (outcome.image != candidate.paste(target.window)).any(axis=-1)
    labels = region_labels(changed.shape, candidate.landmarks)
    assert changed[labels < 0].mean() > 0.2  # hair and background near the face are blurred too
    inner = cv2.erode((labels >= 0).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    if sharp_face:
        assert "unblurred" in record.fallback and not changed[inner].any()
    else:
        assert changed[inner].mean() > 0.5
    assert np.all(outcome.mask[(outcome.image != target.window).any(axis=-1)] == 1.0)
    edge = np.zeros(changed.shape, bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    assert not changed[edge].any()  # it fades out before the window ends: no straight seam


def test_strong_blurs_keep_the_donors_eyes_brows_and_mouth_sharp(astronaut, face):
    from lookalike.landmarks import SALIENCY_REGIONS, region_labels
    from lookalike.synthesis.blurred import LOOKALIKE_BLURS

    target, (candidate,) = _whole_face_candidates(astronaut, face)
    first_sharp = next(i for i, step in enumerate(LOOKALIKE_BLURS) if step.sharp_features)
    # every blur before the sharp-feature ones is weaker: they are the last resort before the face is lost
    assert all(step.face < LOOKALIKE_BLURS[first_sharp].face for step in LOOKALIKE_BLURS[:first_sharp])
    passes_on_the_first_sharp_features = _counting_check([], lambda count: count > first_sharp)

    record = LookalikeRecord()
    found = _blurred(target, [candidate], passes_on_the_first_sharp_features, record)
    assert found is not None and "but for its eyes, brows and mouth" in record.fallback
    window = candidate.paste(target.window)
    changed = np.abs(found[0].image.astype(int) - window).max(axis=-1) > 8
    labels = region_labels(changed.shape, candidate.landmarks)
    eyes = np.isin(labels, [SALIENCY_REGIONS.index(r) for r in ("right_eye", "left_eye")])
    cheeks = np.isin(labels, [SALIENCY_REGIONS.index(r) for r in ("right_cheek", "left_cheek", "forehead")])
    assert changed[eyes].mean() < 0.1 and changed[cheeks].mean() > 0.3


def test_the_blurred_fallback_tries_each_blur_on_every_candidate_before_the_next(astronaut, face):
    from lookalike.synthesis.blurred import LOOKALIKE_BLURS

    target, candidates = _whole_face_candidates(astronaut, face, donors=(0, 1))
    calls = []

    record = LookalikeRecord()
    found = _blurred(target, candidates, _counting_check(calls, lambda count: count == 2), record)
    # the second try is the first blur on the second candidate, not the second blur on the first
    assert found is not None and found[1] == 1 and len(calls) == 2
    assert f"sigma {LOOKALIKE_BLURS[0].face:g} of the face width;" in record.fallback
    calls = []
    assert _blurred(target, candidates, _counting_check(calls, lambda count: False)) is None
    assert len(calls) == 2 * len(LOOKALIKE_BLURS)  # every blur on both candidates


def test_a_tiny_face_is_blurred_and_recorded(astronaut):
    small = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)
    canvas = np.full((200, 200, 3), 128, np.uint8)
    canvas[50:146, 50:146] = small
    faces = detect(canvas, threshold=0.3)
    assert faces and faces[0].width < MIN_FACE
    result = lookalike_face(canvas, faces[0])
    assert result.record.fallback.startswith(("blur", "solid"))
    assert "px wide" in result.record.fallback or "landmarks" in result.record.fallback
    x0, y0, x1, y1 = result.box
    assert (result.image != canvas[y0:y1, x0:x1]).any()


def test_anonymize_api_and_records(astronaut, face, outcome):
    result = anonymize(astronaut, method="lookalike", faces=[face])
    assert result.image.shape == astronaut.shape
    record = result.faces[0].to_dict()
    assert record["method"] == "lookalike" and record["lookalike"]["donor"] == outcome.record.donor
    assert set(record["verification"]) == set(available_recognizers())
    outside = result.mask == 0
    assert np.array_equal(result.image[outside], astronaut[outside])
    x0, y0, x1, y1 = outcome.box
    assert np.array_equal(result.image[y0:y1, x0:x1], outcome.image)  # the API composes what the loop made


def test_grey_images_are_anonymized(astronaut, face):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    result = anonymize(grey, method="lookalike", faces=[face], privacy="low")
    assert result.image.shape == grey.shape and result.image.dtype == grey.dtype
    assert result.faces[0].lookalike.recognizers
    assert (result.image != grey).any()


def test_unknown_privacy_is_refused():
    with pytest.raises(ValueError, match="unknown privacy level"):
        get_privacy("extreme")


def test_benchmark_variants_of_the_lookalike_method():
    from lookalike.evaluation import variant
    from lookalike.evaluation import variants as variants_of

    variants = variants_of("lookalike")
    assert [v.label for v in variants] == ["lookalike low", "lookalike medium", "lookalike high"]
    held_out = variants[1].steered("dlib")
    assert held_out.label == "lookalike medium (steer dlib)" and held_out.steered_by == ("dlib",)
    assert held_out.config().steer == "dlib" and held_out.config().privacy == "medium"
    assert variants[1].steered("both").steered_by == ("dlib", "facenet")
    assert variants[1].steered("all").label == "lookalike medium"  # the default names no steering
    assert variants[1].steered("facenet+dlib").steered_by == ("facenet", "dlib")
    with pytest.raises(Exception, match="does not steer"):
        variant("blur", 0.1).steered("dlib")


def test_a_seed_picks_among_equal_donors_and_repeats(astronaut, face):
    first = lookalike_face(astronaut, face, privacy="low", seed=7)
    again = lookalike_face(astronaut, face, privacy="low", seed=7)
    assert again.record.donor == first.record.donor
    assert np.array_equal(again.image, first.image)
    from lookalike.donors import choose_donors
    from lookalike.pipeline.lookalike import _measure, load_bank

    target = _measure(astronaut, astronaut, face, saliency=False)
    band = get_privacy("low").band
    orders = {
        tuple(
            d.name
            for d, _ in choose_donors(target.reference, target.face, target.embeddings, load_bank(), band, seed=s)[:4]
        )
        for s in range(6)
    }
    assert len(orders) > 1  # seeds really reorder the equally suitable donors


def test_a_crowd_without_a_steering_recognizer_is_refused(astronaut, face):
    from lookalike.identity.crowd import ReferenceCrowd
    from lookalike.pipeline.lookalike import load_crowd

    full = load_crowd()
    dlib_only = ReferenceCrowd(full.names, {"dlib": full.embeddings["dlib"]})
    with pytest.raises(ValueError, match="no facenet, mobileface embeddings"):
        lookalike_face(astronaut, face, crowd=dlib_only)
    with pytest.raises(ValueError, match="target_distance"):
        lookalike_face(astronaut, face, target_distance=0.8)


def test_the_swap_baseline_replaces_the_face_unchecked(astronaut, face):
    result = anonymize(astronaut, method="swap", faces=[face])
    record = result.faces[0]
    assert record.method == "swap" and record.lookalike.reached is None
    assert record.lookalike.donor in default_bank().names and record.fallback is None
    assert set(record.lookalike.recognizers) == set(available_recognizers())  # measured, though not checked


def test_the_checked_swap_baseline_swaps_whole_faces_under_the_same_check(astronaut, face):
    from lookalike.landmarks import SALIENCY_REGIONS
    from lookalike.pipeline.privacy import checked_swap_level, get_privacy

    medium = get_privacy("medium")
    level = checked_swap_level(medium)
    assert level.k == medium.k and level.band == medium.band
    assert [step[:3] for step in level.schedule] == [(1.0, 1.0, "strong")]
    assert level.schedule[0][3] == sum(step[3] for step in medium.schedule)  # as many candidates
    result = anonymize(astronaut, method="checked-swap", faces=[face])
    record = result.faces[0].lookalike
    assert result.faces[0].method == "checked-swap" and record.privacy == "medium (checked swap)"
    assert record.k == 10 and record.steer == list(available_recognizers()) and record.reached
    assert record.style == "strong" and record.morph == 1.0 and set(record.regions) == set(SALIENCY_REGIONS)


def test_a_face_cut_by_the_image_border_is_still_anonymized(astronaut, face):
    x0 = int(face.box[0] + 0.4 * face.width)
    cut = np.ascontiguousarray(astronaut[:, x0:])
    faces = detect(cut)
    assert faces
    result = anonymize(cut, method="lookalike", faces=faces[:1])
    record = result.faces[0]
    x, y, w, h = (int(v) for v in (faces[0].box[0], faces[0].box[1], faces[0].width, faces[0].height))
    region = (slice(max(y, 0), y + h), slice(max(x, 0), x + w))
    assert (result.image[region] != cut[region]).any()  # never left untouched
    assert record.lookalike.reached is True or record.fallback is not None


def test_overlapping_faces_are_measured_against_the_untouched_image(astronaut, face):
    shifted = face.translated(face.width * 0.3, 0)  # the same face moved right, as a second overlapping face
    result = anonymize(astronaut, method="lookalike", faces=[face, shifted], privacy="low")
    assert len(result.faces) == 2
    for record in result.faces:
        assert record.lookalike.recognizers
        assert record.lookalike.reached is True or record.fallback is not None


def test_a_stronger_whole_face_blur_comes_before_the_solid_fill(astronaut, face):
    from lookalike.pipeline.lookalike import WHOLE_FACE_BLURS, _fallbacks, _Job

    calls: list = []
    second_blur = _counting_check(calls, lambda count: count == 2)  # only the second blur passes
    outcome = _fallbacks(_Job(astronaut, astronaut, face, second_blur, LookalikeRecord(attempts=0), 1.3), reason="test")
    assert outcome.record.fallback.startswith(f"blur (sigma {WHOLE_FACE_BLURS[1]:g} of the face width")
    assert outcome.record.reached is True
    never = _fallbacks(
        _Job(astronaut, astronaut, face, _counting_check([], lambda count: False), LookalikeRecord(attempts=0), 1.3),
        reason="test",
    )
    assert never.record.fallback == "solid (test)" and never.record.reached is False


def test_the_high_level_checks_every_attacker_view(astronaut, face):
    from lookalike.identity.crowd import default_crowd
    from lookalike.identity.views import VIEWS, views_named
    from lookalike.pipeline.lookalike import _Check, _measure

    high, medium = get_privacy("high"), get_privacy("medium")
    assert set(high.views) == {view.name for view in VIEWS} and "box" not in medium.views
    checked = views_named(high.views)
    target = _measure(astronaut, astronaut, face, saliency=False, checked=checked)
    assert len(target.views.original("mobileface")) == len(VIEWS)
    passed, worst = _Check(default_crowd(), ("mobileface",), 1, 1.0, checked).passes_views(target.window, target.views)
    assert not passed and worst["mobileface"]["view"] in high.views  # the person itself, seen every way
