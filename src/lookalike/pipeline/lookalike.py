"""The lookalike method: each face becomes a lookalike that recognizers no longer take for the person.

For every face, a closed loop (see ``docs/design.md``):

1. measure it: every recognizer's embeddings, its perceptual embedding and attributes, and (for levels
   that regenerate only part of the face) its identity saliency (FaceNet occlusion);
2. choose donors from the bank (:func:`~lookalike.donors.choose_donors`): inside the privacy level's
   perceptual band and compatible in gender, age, skin, pose and mouth state, then, as spares, donors
   found by relaxing those rules one at a time (each donor's record says how it matched);
3. try candidates from the least change up (:attr:`~lookalike.pipeline.privacy.PrivacyLevel.schedule`:
   the most identity-carrying regions first, then more regions and a stronger shape morph, then a style
   that keeps less of the person), several donors per step, and keep the first one the steering
   recognizers no longer match: for each, the anonymized face must be farther from the original than
   its verification threshold (times ``target_distance``) and than at least ``k`` faces of the
   reference crowd, both ways (the original's rank among the crowd seen from the anonymized face, and
   the anonymized face's among the crowd seen from the original);
4. fail closed: no candidate passes, the :data:`BLURRED_CANDIDATES` closest ones (by crowd rank) are
   blurred (:data:`~lookalike.synthesis.blurred.LOOKALIKE_BLURS`), lightly first, inside the face and
   then also around it, the strong blurs keeping eyes, brows and mouth sharp (still a face to a viewer
   and, mostly, to a detector); none of those passes, a strong blur of the whole face; still matched, a
   solid fill. The record (:class:`LookalikeRecord`) says which.

Candidates are embedded at the original face's alignment (an attacker knows where the face was), the
cheapest recognizer first, the others only for candidates it passes; a candidate every recognizer passes
is then seen under the attacker views the loop checks (:data:`~lookalike.identity.views.CHECKED_VIEWS`)
and kept only if it passes under the worst of them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, NamedTuple

import numpy as np

from lookalike.assets import load_asset
from lookalike.donors import Donor, DonorBank, choose_donors, default_bank, reported_gaps
from lookalike.donors.prototypes import EYEWEAR_THRESHOLD, eyewear_score
from lookalike.identity import available_recognizers, get_recognizer, resolve_steering
from lookalike.identity.crowd import SAME_FACE, ReferenceCrowd, default_crowd
from lookalike.identity.views import CHECKED_VIEWS, View, view_embeddings, views_named
from lookalike.imaging import blend_under_mask, clamp_box
from lookalike.landmarks.partition import CANONICAL_ORDER, FEATURE_OF, SALIENCY_REGIONS, region_labels
from lookalike.perception import face_features, load_model, similarity
from lookalike.pipeline.privacy import DEFAULT_PRIVACY, PRIVACY_LEVELS, STYLES, PrivacyLevel, get_privacy
from lookalike.saliency import IdentitySaliency, identity_saliency, select_regions
from lookalike.synthesis import ClassicParams, apply_classic, ellipse_mask, face_ellipse
from lookalike.synthesis.blurred import LOOKALIKE_BLURS, BlurredLookalike, LookalikeBlur
from lookalike.synthesis.masks import DEFAULT_MASK_SCALE, Ellipse
from lookalike.synthesis.regenerate import Regeneration, RegenerationConfig, face_box_window, regenerate
from lookalike.types import Face

#: How the recognizers to steer on are named: see :func:`~lookalike.identity.resolve_steering`.
Steer = str
#: Every recognizer shipped: each face is measured (and its record reports) with all of them.
RECOGNIZERS = available_recognizers()

#: Candidates synthesised and checked together (one FaceNet batch).
BATCH = 2

#: Faces narrower than this (pixels) are not regenerated: there is too little face to transplant onto,
#: so they go straight to the blur fallback (recorded).
MIN_FACE = 40

#: How many of the closest failing candidates the blurred fallback tries at each blur, closest first: the
#: one nearest to passing unblurred is not always the one a light blur takes past the level.
BLURRED_CANDIDATES = 3

#: The whole-face blurs tried before a solid fill, sigmas as fractions of the face width. A black disc is
#: what a viewer notices first; on development faces (0401-0410, 0447) the stronger blur passed the
#: check for one of the three faces the first one left to the fill.
WHOLE_FACE_BLURS = (0.2, 0.4)

#: Relative cost of one embedding (measured on this project's 2-core CPU: mobileface 15 ms, FaceNet 120 ms,
#: dlib 132 ms per face), for the screening order.
_SCREENING_COST = {"mobileface": 0.1, "facenet": 0.9, "dlib": 1.0}


@dataclass
class LookalikeRecord:
    """What the loop did to one face: one schema, every field set or None whatever happened to the face.

    privacy, steer, k, target_distance: what was asked. donor, donor_match, donor_similarity, donor_gaps:
    the donor of the lookalike kept (blurred or not), how strictly it matched and what a relaxed match
    gave up (:func:`~lookalike.donors.reported_gaps`). regions, morph, style, attempts: how it was made
    and after how many candidates. eyewear: whether the person wears glasses. saliency: whether the
    face's identity saliency was computed. fallback: what replaced the lookalike and why (None: the
    lookalike itself). reached: whether the level was reached. recognizers: each recognizer's distance,
    threshold, match and crowd ranks on the pixels written. views: the worst attacker view per steering
    recognizer. perceptual_similarity: how alike the result looks to the person (PerFace), and
    perceptual_similarity_error why it could not be measured. seconds: the face's time. replayed: the
    face was anonymized by replaying another frame's record (:func:`replay_lookalike`, video).
    """

    privacy: str | None = None
    steer: list[str] | None = None
    k: int | None = None
    target_distance: float | None = None
    donor: str | None = None
    donor_match: str | None = None
    donor_similarity: float | None = None
    donor_gaps: dict[str, float] | None = None
    regions: list[str] | None = None
    morph: float | None = None
    style: str | None = None
    attempts: int | None = None
    eyewear: bool | None = None
    saliency: str | None = None
    fallback: str | None = None
    reached: bool | None = None
    recognizers: dict[str, dict] | None = None
    views: dict[str, dict] | None = None
    perceptual_similarity: float | None = None
    perceptual_similarity_error: str | None = None
    seconds: float | None = None
    replayed: bool | None = None

    def to_dict(self) -> dict:
        """The record as the face's report shows it (``perceptual_similarity_error`` and ``replayed`` only
        when set)."""
        out = asdict(self)
        for optional in ("perceptual_similarity_error", "replayed"):
            if out[optional] is None:
                del out[optional]
        return out

    def keep_candidate(self, donor: Donor, match: str, candidate: Regeneration, style: str) -> None:
        """What the record says about the lookalike kept (blurred or not): its donor and how it was made."""
        self.donor, self.donor_match, self.donor_similarity = donor.name, match, round(donor.similarity, 4)
        self.donor_gaps = reported_gaps(donor)
        self.regions, self.morph, self.style = list(candidate.regions), candidate.morph, style


@dataclass
class LookalikeOutcome:
    """What the loop did to one face: the new pixels (``image`` for ``box`` of the image, ``mask`` where
    they differ) and the record."""

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    record: LookalikeRecord = field(default_factory=LookalikeRecord)


def load_bank(path: str | None = None) -> DonorBank:
    """The donor bank at ``path`` (default: the shipped one), loaded once per process."""
    return default_bank() if path is None else load_asset(DonorBank.load, path)


def load_crowd(path: str | None = None) -> ReferenceCrowd:
    """The reference crowd at ``path`` (default: the shipped one), loaded once per process."""
    return default_crowd() if path is None else load_asset(ReferenceCrowd.load, path)


class _Views:
    """One face's original, and candidates for it, seen under the attacker views the loop checks (the
    privacy level's; :data:`~lookalike.identity.views.CHECKED_VIEWS` by default), per recognizer; the
    original embedded on first use."""

    def __init__(self, face: Face, reference: np.ndarray, views: tuple[View, ...] = CHECKED_VIEWS) -> None:
        self.face, self.reference, self.views = face, reference, views
        self._originals: dict[str, np.ndarray] = {}

    def original(self, name: str) -> np.ndarray:
        if name not in self._originals:
            self._originals[name] = view_embeddings(
                get_recognizer(name), self.reference, self.face, self.reference, self.views
            )
        return self._originals[name]

    def probe(self, name: str, image: np.ndarray) -> np.ndarray:
        return view_embeddings(get_recognizer(name), image, self.face, self.reference, self.views)


@dataclass
class _Target:
    """One face measured once: its context window, every recognizer's embeddings, its saliency (if needed)."""

    face: Face  # in window coordinates
    window: np.ndarray  # the pixels to change (earlier faces of the image already anonymized)
    reference: np.ndarray  # the same window of the untouched image: identity is measured against it
    offset: tuple[int, int]
    embeddings: dict[str, np.ndarray]
    saliency: IdentitySaliency | None
    checked: tuple[View, ...] = CHECKED_VIEWS  # the attacker views every candidate is checked under
    views: _Views = field(init=False)

    def __post_init__(self) -> None:
        self.views = _Views(self.face, self.reference, self.checked)

    @property
    def landmarks(self) -> np.ndarray:
        """The face's dense landmarks, window coordinates: only a face that has them is measured."""
        assert self.face.landmarks is not None
        return self.face.landmarks


class _Check:
    """The steering rule: rank >= k both ways and distance beyond threshold for every steering recognizer."""

    def __init__(
        self,
        crowd: ReferenceCrowd,
        steering: tuple[str, ...],
        k: int,
        target_distance: float,
        views: tuple[View, ...] = CHECKED_VIEWS,
    ) -> None:
        self.crowd, self.steering, self.k, self.factor, self.views = crowd, steering, k, target_distance, views
        #: the steering recognizers in the order a candidate is screened: the cheapest first (mobileface
        #: embeds in about a tenth of FaceNet's or dlib's time), so most failing candidates cost little
        self.screening = tuple(sorted(steering, key=lambda n: _SCREENING_COST.get(n, 1.0)))

    def passes(self, name: str, probe: np.ndarray, original: np.ndarray) -> bool:
        if get_recognizer(name).matches(probe, original, self.factor):
            return False
        if name not in self.crowd.recognizers:
            return False  # no evidence is no protection
        return (
            self.crowd.rank(probe, original, name) >= self.k
            and self.crowd.retrieval_rank(probe, original, name) >= self.k
        )

    def passes_views(self, image: np.ndarray, views: _Views) -> tuple[bool, dict]:
        """Whether ``image`` (a candidate window) passes for every steering recognizer under *every*
        attacker view, the original seen the same way each time; and the worst view per recognizer
        measured (the first recognizer to fail ends the search).

        Each view must be beyond the threshold and hidden among k crowd faces both ways: a candidate
        that only one pipeline lets go is what an attacker with another pipeline finds.
        """
        worst: dict[str, dict] = {}
        for name in self.screening:
            recognizer = get_recognizer(name)
            probes, originals = views.probe(name, image), views.original(name)
            entries = []
            for view, probe, original in zip(views.views, probes, originals):
                distance = float(recognizer.distance(probe, original))
                rank = self.crowd.rank(probe, original, name)
                retrieval = self.crowd.retrieval_rank(probe, original, name)
                entries.append((min(rank, retrieval), distance, view.name, rank, retrieval))
            low, distance, view_name, rank, retrieval = min(entries)
            nearest = min(e[1] for e in entries)
            worst[name] = {
                "view": view_name,
                "distance": round(distance, 4),
                "rank": rank,
                "retrieval_rank": retrieval,
                "nearest_distance": round(nearest, 4),
            }
            if low < self.k or recognizer.matches_distance(nearest, self.factor):
                return False, worst
        return True, worst

    def progress(self, probes: dict[str, np.ndarray], originals: dict[str, np.ndarray]) -> float:
        """How close a failing candidate came: the smallest of its crowd ranks (both ways) over the steering
        recognizers it was measured with, divided by k, capped at 1 per recognizer and then summed over
        the recognizers (a candidate dlib was never asked about scores lower)."""
        total = 0.0
        for name in self.steering:
            if name not in probes:
                continue
            ranks = (
                self.crowd.rank(probes[name], originals[name], name),
                self.crowd.retrieval_rank(probes[name], originals[name], name),
            )
            total += min(min(ranks) / max(self.k, 1), 1.0)
        return total

    def describe(self, probes: dict[str, np.ndarray], originals: dict[str, np.ndarray]) -> dict:
        out = {}
        for name in RECOGNIZERS:
            if name not in probes:
                continue
            recognizer = get_recognizer(name)
            distance = float(recognizer.distance(probes[name], originals[name]))
            entry: dict[str, Any] = {
                "distance": round(distance, 4),
                "threshold": recognizer.threshold,
                "match": recognizer.matches_distance(distance),
                "steered": name in self.steering,
            }
            if name in self.crowd.recognizers:
                entry.update(self.crowd.ranks({name: probes[name]}, {name: originals[name]})[name])
                others = self.crowd.distances(originals[name], name)
                others = others[others > SAME_FACE * recognizer.threshold]  # not copies of the face itself
                entry["crowd_nearest"] = round(float(others.min()), 4) if others.size else None
            out[name] = entry
        return out


@dataclass
class _Job:
    """One face on its way through the loop: where it is, what it is checked against, its record.

    ``image``: the image as the faces before this one left it; ``original``: the untouched image (identity
    is measured against the person, not an edit); ``face`` in image coordinates; ``target``: the face
    measured (None for a face that cannot be regenerated); ``mask_scale``: the face ellipse of the
    whole-face fallbacks is the face oval's enlarged by this.
    """

    image: np.ndarray
    original: np.ndarray
    face: Face
    check: _Check
    record: LookalikeRecord
    mask_scale: float
    target: _Target | None = None


class _Tried(NamedTuple):
    """A candidate that failed the check, kept for the blurred fallback."""

    progress: float  #: :meth:`_Check.progress`
    order: int
    donor: Donor
    match: str
    candidate: Regeneration
    style: str


def lookalike_face(
    image: np.ndarray,
    face: Face,
    *,
    privacy: str | PrivacyLevel = DEFAULT_PRIVACY,
    steer: Steer = "all",
    target_distance: float = 1.0,
    seed: int = 0,
    bank: DonorBank | None = None,
    crowd: ReferenceCrowd | None = None,
    original: np.ndarray | None = None,
    mask_scale: float = DEFAULT_MASK_SCALE,
) -> LookalikeOutcome:
    """Anonymize one face of an RGB uint8 image with a lookalike (see the module docstring).

    ``target_distance`` (at least 1) scales every steering recognizer's verification threshold (expert
    setting: 1.2 asks for 20% beyond the threshold). ``seed`` picks among equally suitable donors; the
    same seed gives the same result. ``original``: the untouched image when ``image`` already has other
    faces anonymized (overlapping faces), so identity is measured against the person, not an edit.
    ``mask_scale``: the face ellipse of the whole-face fallbacks is the face oval's enlarged by this.
    """
    started = time.perf_counter()
    level = privacy if isinstance(privacy, PrivacyLevel) else get_privacy(privacy)
    steering = resolve_steering(steer)
    if target_distance < 1.0:
        raise ValueError(
            f"target_distance must be at least 1 (below, a matched face would pass), got {target_distance}"
        )
    bank = bank if bank is not None else load_bank()
    crowd = crowd if crowd is not None else load_crowd()
    missing = [n for n in steering if n not in crowd.recognizers]
    if missing:
        raise ValueError(
            f"the reference crowd has no {', '.join(missing)} embeddings; build one with every steering recognizer"
        )
    record = LookalikeRecord(privacy=level.name, steer=list(steering), k=level.k, target_distance=target_distance)
    check = _Check(crowd, steering, level.k, target_distance, views_named(level.views))
    job = _Job(image, image if original is None else original, face, check, record, mask_scale)
    problem = _unsuitable(face)
    if problem is not None:
        outcome = _fallbacks(job, reason=problem)
    else:
        job.target = _measure(image, job.original, face, saliency=level.needs_saliency, checked=check.views)
        outcome = _loop(job, level, bank, seed)
    outcome.record.seconds = round(time.perf_counter() - started, 3)
    return outcome


def swap_face(
    image: np.ndarray,
    face: Face,
    *,
    seed: int = 0,
    bank: DonorBank | None = None,
    crowd: ReferenceCrowd | None = None,
    original: np.ndarray | None = None,
    mask_scale: float = DEFAULT_MASK_SCALE,
) -> LookalikeOutcome:
    """The full-swap baseline: the whole face regenerated from the first suitable donor, without a loop.

    What classic face replacement does; there for comparison (``--method swap``). Nothing checks that the
    person is hidden, though the record measures it. A face that cannot be swapped is blurred.
    """
    started = time.perf_counter()
    bank = bank if bank is not None else load_bank()
    crowd = crowd if crowd is not None else load_crowd()
    job = _Job(
        image,
        image if original is None else original,
        face,
        _Check(crowd, (), 0, 1.0),
        LookalikeRecord(steer=[]),
        mask_scale,
    )
    problem = _unsuitable(face)
    target = job.target = _measure(image, job.original, face, saliency=False) if problem is None else None
    donors = (
        choose_donors(
            target.reference,
            target.face,
            target.embeddings,
            bank,
            get_privacy(DEFAULT_PRIVACY).band,
            seed=seed,
            limit=1,
        )
        if target
        else []
    )
    candidate = None
    if target is not None and donors:
        donor, match = donors[0]
        donor_image, donor_landmarks = bank.donor_image(donor.name)
        candidate = regenerate(
            target.window,
            target.landmarks,
            donor_image,
            donor_landmarks,
            SALIENCY_REGIONS,
            1.0,
            outline=True,
            config=RegenerationConfig(**STYLES["strong"][0]),
            donor_occluders=bank.donor_occluders(donor.name),
        )
        if _covers_face(candidate, target):
            job.record.keep_candidate(donor, match, candidate, "strong")
            job.record.attempts = 1
        else:
            candidate, problem = None, "the donor covers too little of the face (turned head)"
    if target is None or candidate is None:
        outcome = _fallbacks(job, reason=problem or "no compatible donor in the bank")
        outcome.record.reached = None  # nothing was asked of the swap
    else:
        outcome = _finish(
            job, target, candidate.paste(target.window), candidate.mask, candidate.box, {}, geometry_of=candidate
        )
    outcome.record.seconds = round(time.perf_counter() - started, 3)
    return outcome


# --------------------------------------------------------------------------------------------- loop


def _loop(job: _Job, level: PrivacyLevel, bank: DonorBank, seed: int) -> LookalikeOutcome:
    """Step by step of the level's schedule (least change first), each step with its donors in one batch."""
    target, check, record = job.target, job.check, job.record
    assert target is not None
    donors = choose_donors(
        target.reference, target.face, target.embeddings, bank, level.band, seed=seed, limit=level.most_donors
    )
    record.saliency = (
        "computed"
        if target.saliency is not None
        else "not needed (the level regenerates the whole face)"
        if not level.needs_saliency
        else "unavailable: canonical order"
    )
    attempts = 0
    closest: list[_Tried] = []  # the failing candidates the fallback blurs, closest to passing first
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    # Glasses: the person's fine detail would bring the frames back as ghosts over the donor's eyes, so
    # none of it is given back (the donor's eyes come without glasses).
    eyewear = _wears_glasses(target)
    record.eyewear = eyewear
    for strength, morph, style, count in level.schedule:
        if target.saliency is not None:
            regions = tuple(select_regions(target.saliency, strength))
        else:
            regions = _canonical(CANONICAL_ORDER, FEATURE_OF, strength)
        options, outline = STYLES[style]
        if eyewear:
            options = {**options, "detail_amount": 0.0, "eyewear": True}
        # donors in small batches: most faces pass with one of the first, and each candidate costs a synthesis
        for start in range(0, min(count, len(donors)), BATCH):
            batch = []
            for donor, match in donors[start : min(count, start + BATCH)]:
                if donor.name not in images:
                    images[donor.name] = bank.donor_image(donor.name)
                donor_image, donor_landmarks = images[donor.name]
                batch.append(
                    (
                        donor,
                        match,
                        regenerate(
                            target.window,
                            target.landmarks,
                            donor_image,
                            donor_landmarks,
                            regions,
                            morph,
                            outline=outline,
                            config=RegenerationConfig(**options),
                            donor_occluders=bank.donor_occluders(donor.name),
                        ),
                    )
                )
            attempts += len(batch)
            passing, probes, worst = _first_passing(target, [c for _, _, c in batch], check)
            if passing is not None:
                donor, match, candidate = batch[passing]
                record.keep_candidate(donor, match, candidate, style)
                record.attempts, record.fallback, record.reached, record.views = attempts, None, True, worst
                return _finish(
                    job,
                    target,
                    candidate.paste(target.window),
                    candidate.mask,
                    candidate.box,
                    probes[passing],
                    geometry_of=candidate,
                )
            for i, ((donor, match, candidate), probe) in enumerate(zip(batch, probes)):
                closest.append(
                    _Tried(
                        check.progress(probe, target.embeddings),
                        attempts - len(batch) + i,
                        donor,
                        match,
                        candidate,
                        style,
                    )
                )
            # ties go to the earlier (least changed) candidate
            closest = sorted(closest, key=lambda c: (-c.progress, c.order))[:BLURRED_CANDIDATES]
    record.attempts = attempts
    reason = "no lookalike reached the level" if donors else f"no compatible donor among the bank's {len(bank)}"
    if closest:
        found = _blurred_lookalike(job, target, [c.candidate for c in closest])
        if found is not None:
            outcome, which = found
            kept = closest[which]
            record.keep_candidate(kept.donor, kept.match, kept.candidate, kept.style)
            return outcome
    return _fallbacks(job, reason=reason)


def _first_passing(
    target: _Target, candidates: list[Regeneration], check: _Check
) -> tuple[int | None, list[dict[str, np.ndarray]], dict]:
    """The index of the first candidate every steering recognizer passes under every attacker view (None
    if none does), every candidate's embeddings so far (cheapest recognizer first; the next only for
    candidates the first passes), and the worst views of the candidate kept.

    The loop's own alignment screens first (cheap, and most candidates fail there); only candidates that
    pass it are seen under the other views.
    """
    images = [c.paste(target.window) for c in candidates]
    probes: list[dict[str, np.ndarray]] = [{} for _ in candidates]
    alive = list(range(len(candidates)))
    for name in check.screening:
        recognizer = get_recognizer(name)
        if not alive:
            break
        chips = np.stack([recognizer.align(images[i], target.face, reference=target.reference) for i in alive])
        for i, e in zip(alive, recognizer.embed_aligned(chips)):
            probes[i][name] = e
        alive = [i for i in alive if check.passes(name, probes[i][name], target.embeddings[name])]
    for i in alive:
        ok, worst = check.passes_views(images[i], target.views)
        if ok:
            return i, probes, worst
    return None, probes, {}


def _blurred_lookalike(
    job: _Job, target: _Target, candidates: list[Regeneration]
) -> tuple[LookalikeOutcome, int] | None:
    """The closest candidates, blurred more and more (:data:`~lookalike.synthesis.blurred.LOOKALIKE_BLURS`,
    each blur tried on every candidate before the next), until the check passes: the outcome and which
    candidate it is."""
    check = job.check
    prepared = [BlurredLookalike(target.window, candidate, target.face.width) for candidate in candidates]
    for step in LOOKALIKE_BLURS:
        for which, blurred in enumerate(prepared):
            out, weight = blurred.blur(step)
            probes: dict[str, np.ndarray] = {}
            for name in check.screening:
                probes.update(_embed(out, target.face, target.reference, (name,)))
                if not check.passes(name, probes[name], target.embeddings[name]):
                    break
            else:
                passed, worst = check.passes_views(out, target.views)
                if not passed:
                    continue
                job.record.fallback = f"blurred lookalike ({step.describe()}; no lookalike reached the level unblurred)"
                job.record.reached, job.record.views = True, worst
                whole = (0, 0, out.shape[1], out.shape[0])
                return _finish(
                    job, target, out, np.maximum(blurred.changed, weight), whole, probes, geometry_of=blurred.candidate
                ), which
    return None


def _fallbacks(job: _Job, reason: str) -> LookalikeOutcome:
    """A strong blur over the face ellipse (the face oval's enlarged by the job's ``mask_scale``), a
    stronger one (:data:`WHOLE_FACE_BLURS`), then a solid fill, until the check passes.

    The check measures against the job's ``original`` (the untouched image).
    """
    image, face, check, record, target = job.image, job.face, job.check, job.record, job.target
    whole = _WholeFace(image, face, job.mask_scale)
    x0, y0, x1, y1 = whole.box
    reference = np.ascontiguousarray(job.original[y0:y1, x0:x1])
    local = face.translated(-x0, -y0)
    originals = _embed(reference, local, reference) if target is None else target.embeddings
    views = target.views if target is not None else _Views(local, reference, check.views)
    steps = [("blur", sigma) for sigma in WHOLE_FACE_BLURS] + [("solid", 0.0)]
    for method, sigma in steps:
        out = whole.treated(method, sigma)
        probes = _embed(out, local, reference)
        reached = all(check.passes(n, probes[n], originals[n]) for n in check.steering)
        worst: dict = {}
        if reached:
            reached, worst = check.passes_views(out, views)
        if reached:
            break
    how = f"{method} (sigma {sigma:g} of the face width; {reason})" if sigma else f"{method} ({reason})"
    record.fallback, record.regions, record.reached, record.views = how, [], reached, worst
    record.attempts = record.attempts or 0
    record.recognizers = check.describe(probes, originals)
    return LookalikeOutcome(out, whole.mask, whole.box, record)


def _finish(
    job: _Job,
    target: _Target,
    window: np.ndarray,
    mask: np.ndarray,
    box_in_window: tuple[int, int, int, int],
    probes: dict[str, np.ndarray],
    geometry_of: Regeneration | None = None,
) -> LookalikeOutcome:
    """Embeddings the steering did not need are measured for the record; perceptual similarity too."""
    record = job.record
    missing = tuple(n for n in RECOGNIZERS if n not in probes)
    if missing:
        probes = {**probes, **_embed(window, target.face, target.reference, missing)}
    record.recognizers = job.check.describe(probes, target.embeddings)
    try:
        model = load_model()
        after_face = target.face if geometry_of is None else replace(target.face, landmarks=geometry_of.landmarks)
        before = face_features(target.reference, target.face, target.embeddings).parts
        after = face_features(window, after_face, probes).parts
        embedded = model.embed({k: np.stack([before[k], after[k]]) for k in before})
        record.perceptual_similarity = round(float(similarity(embedded[0], embedded[1])), 4)
    except Exception as exc:  # noqa: BLE001 - the similarity is a report, never a reason to fail
        record.perceptual_similarity = None
        record.perceptual_similarity_error = f"{type(exc).__name__}: {exc}"
    x0, y0 = target.offset
    height, width = window.shape[:2]
    changed = (window != target.window).any(axis=-1)  # against what was there, so the mask covers every edit
    full_mask = np.zeros((height, width), np.float32)
    bx0, by0, bx1, by1 = box_in_window
    full_mask[by0:by1, bx0:bx1] = mask
    full_mask[changed] = 1.0
    return LookalikeOutcome(window, full_mask, (x0, y0, x0 + width, y0 + height), record)


# ------------------------------------------------------------------------------------------ helpers


def _embed(
    image: np.ndarray, face: Face, reference: np.ndarray, names: tuple[str, ...] = RECOGNIZERS
) -> dict[str, np.ndarray]:
    """The recognizers' embeddings of ``face`` in ``image``, aligned as in ``reference`` (the original)."""
    out = {}
    for name in names:
        recognizer = get_recognizer(name)
        out[name] = recognizer.embed_aligned(recognizer.align(image, face, reference=reference)[None])[0]
    return out


def _wears_glasses(target: _Target) -> bool:
    return bool(eyewear_score(target.reference, target.landmarks) > EYEWEAR_THRESHOLD)


def _unsuitable(face: Face) -> str | None:
    if face.landmarks is None:
        return "no dense landmarks (profile, occluded or too small a face)"
    if face.width < MIN_FACE:
        return f"face is {face.width:.0f} px wide; below {MIN_FACE} px there is too little face to regenerate"
    return None


def _measure(
    image: np.ndarray,
    original: np.ndarray,
    face: Face,
    saliency: bool = True,
    checked: tuple[View, ...] = CHECKED_VIEWS,
) -> _Target:
    assert face.landmarks is not None
    x0, y0, x1, y1 = face_box_window(image.shape, face.landmarks, 0.6)
    window = np.ascontiguousarray(image[y0:y1, x0:x1])
    reference = window if original is image else np.ascontiguousarray(original[y0:y1, x0:x1])
    local = face.translated(-x0, -y0)
    embeddings = {n: get_recognizer(n).embed(reference, local) for n in RECOGNIZERS}
    found = identity_saliency(reference, local, "facenet", "occlusion") if saliency else None
    usable = found if found is not None and found.status != "skipped" else None
    return _Target(local, window, reference, (x0, y0), embeddings, usable, checked)


def _covers_face(candidate: Regeneration, target: _Target) -> bool:
    """Whether a whole-face candidate really replaced most of the face (a turned head can defeat the donor)."""
    x0, y0, x1, y1 = candidate.box
    inside = region_labels(candidate.image.shape, target.landmarks, offset=(x0, y0)) >= 0
    return bool(inside.any() and (candidate.mask[inside] > 0.5).mean() > 0.6)


def _canonical(order: tuple[str, ...], feature_of: dict[str, str], strength: float) -> tuple[str, ...]:
    features = list(dict.fromkeys(feature_of[r] for r in order))
    count = max(1, int(np.ceil(strength * len(features))))
    chosen = set(features[:count])
    return tuple(r for r in order if feature_of[r] in chosen)


def _ellipse_box(shape: tuple[int, ...], ellipse: Ellipse, feather: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = ellipse.bounds()
    pad = 3 * feather + 2
    return clamp_box((int(x0 - pad), int(y0 - pad), int(x1 + pad) + 1, int(y1 + pad) + 1), shape)


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# ------------------------------------------------------------------------------------------- replay


def replay_lookalike(
    image: np.ndarray,
    face: Face,
    record: dict,
    *,
    bank: DonorBank | None = None,
    crowd: ReferenceCrowd | None = None,
    original: np.ndarray | None = None,
    mask_scale: float = DEFAULT_MASK_SCALE,
    check: bool = False,
) -> LookalikeOutcome:
    """``face`` anonymized as ``record`` (the :meth:`LookalikeRecord.to_dict` of what :func:`lookalike_face`
    or :func:`swap_face` returned for the same person in another image: an earlier frame of a clip) says,
    with no donor search and no loop: the same donor, regions, morph, style and blur on this face's
    landmarks, or the same whole-face fallback. A person keeps one lookalike through a clip, at the cost
    of one synthesis per frame.

    A face without landmarks, or a record that kept no donor, gets the whole-face blur or fill the record
    names (the strongest blur if it names none). With ``check``, the record's steering recognizers measure
    the result against ``original`` under the level's views, as the loop would; the returned record's
    ``reached`` and ``recognizers`` say how it went (nothing is escalated here: the caller decides).
    """
    original = image if original is None else original
    fallback = record.get("fallback") or ""
    known = {f.name for f in fields(LookalikeRecord)}
    out_record = LookalikeRecord(**{k: v for k, v in record.items() if k in known})
    out_record.replayed = True
    whole = _whole_face_step(fallback)
    landmarks = face.landmarks
    outcome: LookalikeOutcome
    if landmarks is None or record.get("donor") is None or whole is not None:
        method, sigma = whole or ("blur", WHOLE_FACE_BLURS[-1])
        outcome = _classic_outcome(image, face, method, sigma, mask_scale)
        outcome.record = out_record
    else:
        bank = bank if bank is not None else load_bank()
        donor_image, donor_landmarks = bank.donor_image(record["donor"])
        options, outline = STYLES[record.get("style") or "natural"]
        if record.get("eyewear"):
            options = {**options, "detail_amount": 0.0, "eyewear": True}
        x0, y0, x1, y1 = face_box_window(image.shape, landmarks, 0.6)
        window = np.ascontiguousarray(image[y0:y1, x0:x1])
        local = face.translated(-x0, -y0)
        assert local.landmarks is not None
        candidate = regenerate(
            window,
            local.landmarks,
            donor_image,
            donor_landmarks,
            tuple(record["regions"]),
            float(record["morph"]),
            outline=outline,
            config=RegenerationConfig(**options),
            donor_occluders=bank.donor_occluders(record["donor"]),
        )
        step = _blur_step(fallback)
        if step is not None:
            blurred = BlurredLookalike(window, candidate, local.width)
            pixels, weight = blurred.blur(step)
            mask = np.maximum(blurred.changed, weight)
        else:
            pixels = candidate.paste(window)
            mask = np.zeros(window.shape[:2], np.float32)
            bx0, by0, bx1, by1 = candidate.box
            mask[by0:by1, bx0:bx1] = candidate.mask
        mask[(pixels != window).any(axis=-1)] = 1.0
        outcome = LookalikeOutcome(pixels, mask, (x0, y0, x1, y1), out_record)
    if check and record.get("steer"):
        _replay_check(outcome, image, original, face, record, crowd)
    return outcome


def _whole_face_step(fallback: str) -> tuple[str, float] | None:
    """The whole-face fallback a record's ``fallback`` names, as (method, sigma), or None."""
    if fallback.startswith("solid"):
        return ("solid", 0.0)
    for sigma in WHOLE_FACE_BLURS:
        if fallback.startswith(f"blur (sigma {sigma:g} "):
            return ("blur", sigma)
    return None


def _blur_step(fallback: str) -> LookalikeBlur | None:
    """The blur of the blurred-lookalike fallback a record's ``fallback`` names, or None."""
    if not fallback.startswith("blurred lookalike ("):
        return None
    for step in LOOKALIKE_BLURS:
        if fallback.startswith(f"blurred lookalike ({step.describe()}; "):
            return step
    return LOOKALIKE_BLURS[-1]  # not recognised: the strongest


class _WholeFace:
    """The whole-face fallbacks' ground: the face ellipse (the face oval's enlarged by ``mask_scale``), the
    window it changes, the window's pixels and the feathered ellipse mask in it."""

    def __init__(self, image: np.ndarray, face: Face, mask_scale: float) -> None:
        self.image = image
        self.ellipse = face_ellipse(face, mask_scale)
        corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]], np.float32)
        feather = 0.08 * self.ellipse.a
        self.box = _union(face_box_window(image.shape, corners, 0.6), _ellipse_box(image.shape, self.ellipse, feather))
        x0, y0, x1, y1 = self.box
        self.crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        self.mask = ellipse_mask(image.shape, [self.ellipse], feather=feather)[y0:y1, x0:x1]

    def treated(self, method: str, sigma: float) -> np.ndarray:
        """The window with the ellipse blurred (``sigma`` of the face width) or filled (``solid``)."""
        x0, y0, x1, y1 = self.box
        params = ClassicParams(blur_sigma=sigma) if sigma else ClassicParams()  # a solid fill has no sigma
        treated = apply_classic(self.image, [self.ellipse], method, params)[y0:y1, x0:x1]
        return blend_under_mask(self.crop, treated, self.mask)


def _classic_outcome(image: np.ndarray, face: Face, method: str, sigma: float, mask_scale: float) -> LookalikeOutcome:
    """A whole-face blur or fill over the face ellipse, as :func:`_fallbacks` makes it."""
    whole = _WholeFace(image, face, mask_scale)
    return LookalikeOutcome(whole.treated(method, sigma), whole.mask, whole.box)


def _replay_check(
    outcome: LookalikeOutcome,
    image: np.ndarray,
    original: np.ndarray,
    face: Face,
    record: dict,
    crowd: ReferenceCrowd | None,
) -> None:
    """The loop's check (distance beyond the threshold, k crowd faces both ways, the level's views) on a
    replayed face, measured in the window around it; fills ``reached``, ``views`` and ``recognizers``."""
    crowd = crowd if crowd is not None else load_crowd()
    level = PRIVACY_LEVELS.get(str(record.get("privacy", "")).split(" (")[0])
    views = views_named(level.views) if level is not None else CHECKED_VIEWS
    check = _Check(
        crowd,
        resolve_steering("+".join(record["steer"])),
        int(record.get("k") or 1),
        float(record.get("target_distance") or 1.0),
        views,
    )
    # the window the loop measured its candidates in (around the landmarks), so a replay of the very face
    # the loop chose for is measured as the loop measured it; grown to hold every changed pixel
    corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]], np.float32)
    around = face.landmarks if face.landmarks is not None else corners
    x0, y0, x1, y1 = _union(face_box_window(image.shape, around, 0.6), outcome.box)
    pasted = image.copy()
    ox0, oy0, ox1, oy1 = outcome.box
    pasted[oy0:oy1, ox0:ox1] = outcome.image
    window = np.ascontiguousarray(pasted[y0:y1, x0:x1])
    reference = np.ascontiguousarray(original[y0:y1, x0:x1])
    local = face.translated(-x0, -y0)
    originals = _embed(reference, local, reference)
    probes = _embed(window, local, reference)
    reached = all(check.passes(n, probes[n], originals[n]) for n in check.steering)
    worst: dict = {}
    if reached:
        reached, worst = check.passes_views(window, _Views(local, reference, check.views))
    outcome.record.reached, outcome.record.views = reached, worst
    outcome.record.recognizers = check.describe(probes, originals)
