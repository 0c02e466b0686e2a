"""The lookalike method: each face becomes a lookalike that recognizers no longer take for the person.

For every face, a closed loop (see ``../shared/DESIGN.md``):

1. measure it: every recognizer's embeddings, its perceptual embedding and attributes, and (for levels
   that regenerate only part of the face) its identity saliency (FaceNet occlusion);
2. choose donors from the bank (:func:`choose_donors`): inside the privacy level's perceptual band and
   compatible in gender, age, skin, pose and mouth state, then, as spares, donors found by relaxing
   those rules one at a time (each donor's record says how it matched);
3. try candidates from the least change up (:attr:`PrivacyLevel.schedule`: the most identity-carrying
   regions first, then more regions and a stronger shape morph, then a style that keeps less of the
   person), several donors per step, and keep the first one the steering recognizers no longer match:
   for each, the anonymized face must be farther from the original than its verification threshold
   (times ``target_distance``) and than at least ``k`` faces of the reference crowd, both ways (the
   original's rank among the crowd seen from the anonymized face, and the anonymized face's among the
   crowd seen from the original);
4. fail closed: no candidate passes, the :data:`BLURRED_CANDIDATES` closest ones (by crowd rank) are
   blurred, lightly first, inside the face and then also around it, the strong blurs keeping eyes,
   brows and mouth sharp (still a face to a viewer and, mostly, to a detector); none of those passes, a
   strong blur of the whole face; still matched, a solid fill. The record says which.

Candidates are embedded at the original face's alignment (an attacker knows where the face was), the
cheapest recognizer first, the others only for candidates it passes; a candidate every recognizer passes
is then seen under the attacker views the loop checks (:data:`~lookalike.identity.views.CHECKED_VIEWS`)
and kept only if it passes under the worst of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lookalike.identity import available_recognizers, resolve_steering
from lookalike.identity.crowd import SAME_FACE
from lookalike.identity.views import CHECKED_VIEWS, view_embeddings
from lookalike.synthesis.masks import DEFAULT_MASK_SCALE
from lookalike.types import Face

if TYPE_CHECKING:
    from lookalike.perception.donors import Donor
    from lookalike.saliency import IdentitySaliency

#: How the recognizers to steer on are named: see :func:`~lookalike.identity.resolve_steering`.
Steer = str
#: Every recognizer shipped: each face is measured (and its record reports) with all of them.
RECOGNIZERS = available_recognizers()


@dataclass(frozen=True)
class PrivacyLevel:
    """What a privacy level asks of every face.

    k : the anonymized face must be no nearer to its original than k reference-crowd faces are (and the
        original no nearer to it than k crowd faces), for every steering recognizer.
    band : perceptual similarity band of donors (higher: more alike; 0.5 is unrelated).
    schedule : the steps tried, in order: (strength, morph, style, donors), where strength is the share of
        the face's identity (by saliency) whose regions are regenerated (1: the whole face), morph the
        shape morph toward the donor (above 1: past the donor's shape, up to
        :data:`~lookalike.synthesis.regenerate.MAX_MORPH`), style one of :data:`STYLES`, and donors how
        many of the best donors are tried at that step (:data:`BATCH` at a time).
    """

    name: str
    k: int
    band: tuple[float, float]
    schedule: tuple[tuple[float, float, str, int], ...]
    description: str = ""


PRIVACY_LEVELS: dict[str, PrivacyLevel] = {
    "low": PrivacyLevel("low", 1, (0.80, 0.98), ((0.6, 0.5, "natural", 2), (1.0, 1.0, "natural", 2),
                                                 (1.0, 1.0, "strong", 6)),
                        description="no recognizer takes the face for the person, and the person is not the "
                                    "nearest of the crowd (k = 1)"),
    "medium": PrivacyLevel("medium", 10, (0.70, 0.97), ((1.0, 1.0, "natural", 2), (1.0, 1.0, "strong", 4),
                                                       (1.0, 1.4, "stronger", 6), (1.0, 1.8, "strongest", 6)),
                           description="hidden among at least 10 crowd faces for each recognizer (default)"),
    "high": PrivacyLevel("high", 20, (0.60, 0.95), ((1.0, 1.0, "strong", 4), (1.0, 1.4, "stronger", 6),
                                                   (1.0, 1.8, "strongest", 8)),
                         description="hidden among at least 20 crowd faces for each recognizer"),
}
#: How a candidate is synthesised (:class:`~lookalike.synthesis.regenerate.RegenerationConfig` options, and
#: whether the face outline moves). "natural" gives back the target's fine texture and gaze; "strong"
#: keeps less of the target (texture and irises carry some identity for recognizers) and moves the
#: outline too; "stronger" also takes much of the donor's shading (its colour is matched to the face as
#: a whole more than region by region: the person's shading carries identity) and "strongest" all of it;
#: both are meant for shape morphs past the donor's.
_STRONG = {"detail_amount": 0.3, "keep_gaze": False, "feather": 0.03}
STYLES = {
    "natural": ({}, False),
    "strong": (_STRONG, True),
    "stronger": ({**_STRONG, "shading": 0.6}, True),
    "strongest": ({**_STRONG, "shading": 1.0}, True),
}
DEFAULT_PRIVACY = "medium"

#: Candidates synthesised and checked together (one FaceNet batch).
BATCH = 2

#: Faces narrower than this (pixels) are not regenerated: there is too little face to transplant onto,
#: so they go straight to the blur fallback (recorded).
MIN_FACE = 40


@dataclass
class LookalikeOutcome:
    """What the loop did to one face: the new pixels (``image`` for ``box`` of the image, ``mask`` where
    they differ) and the record."""

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    record: dict = field(default_factory=dict)


@dataclass
class _Target:
    """One face measured once: its context window, both recognizers' embeddings, its saliency (if needed)."""

    face: Face  # in window coordinates
    window: np.ndarray  # the pixels to change (earlier faces of the image already anonymized)
    reference: np.ndarray  # the same window of the untouched image: identity is measured against it
    offset: tuple[int, int]
    embeddings: dict[str, np.ndarray]
    saliency: "IdentitySaliency | None"
    views: "_Views | None" = None

    def __post_init__(self) -> None:
        if self.views is None:
            self.views = _Views(self.face, self.reference)


class _Views:
    """One face's original, and candidates for it, seen under the attacker views the loop checks
    (:data:`~lookalike.identity.views.CHECKED_VIEWS`), per recognizer; the original embedded on first use."""

    def __init__(self, face: Face, reference: np.ndarray) -> None:
        self.face, self.reference = face, reference
        self._originals: dict[str, np.ndarray] = {}

    def original(self, name: str) -> np.ndarray:
        from lookalike.identity import get_recognizer

        if name not in self._originals:
            self._originals[name] = view_embeddings(get_recognizer(name), self.reference, self.face, self.reference,
                                                    CHECKED_VIEWS)
        return self._originals[name]

    def probe(self, name: str, image: np.ndarray) -> np.ndarray:
        from lookalike.identity import get_recognizer

        return view_embeddings(get_recognizer(name), image, self.face, self.reference, CHECKED_VIEWS)


def lookalike_face(image: np.ndarray, face: Face, *, privacy: str | PrivacyLevel = DEFAULT_PRIVACY, steer: Steer = "all",
                   target_distance: float = 1.0, seed: int = 0, bank=None, crowd=None,
                   original: np.ndarray | None = None, mask_scale: float = DEFAULT_MASK_SCALE) -> LookalikeOutcome:
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
        raise ValueError(f"target_distance must be at least 1 (below, a matched face would pass), got {target_distance}")
    bank = bank if bank is not None else load_bank()
    crowd = crowd if crowd is not None else load_crowd()
    missing = [n for n in steering if n not in crowd.recognizers]
    if missing:
        raise ValueError(f"the reference crowd has no {', '.join(missing)} embeddings; build one with every steering recognizer")
    record = _new_record(privacy=level.name, steer=list(steering), k=level.k, target_distance=target_distance)
    check = _Check(crowd, steering, level.k, target_distance)
    original = image if original is None else original

    problem = _unsuitable(face)
    if problem is not None:
        outcome = _fallbacks(image, original, face, None, check, record, reason=problem, mask_scale=mask_scale)
    else:
        target = _measure(image, original, face, saliency=_needs_saliency(level))
        outcome = _loop(image, original, face, target, level, check, bank, seed, record, mask_scale)
    outcome.record["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


def _new_record(**fields) -> dict:
    """Every record has the same keys, set or None, whatever happened to the face."""
    record = dict.fromkeys(("privacy", "steer", "k", "target_distance", "donor", "donor_match", "donor_similarity",
                            "donor_gaps", "regions", "morph", "style", "attempts", "eyewear", "saliency", "fallback", "reached",
                            "recognizers", "views", "perceptual_similarity"))
    record.update(fields)
    return record


def load_bank(path: str | None = None):
    """The donor bank at ``path`` (default: the shipped one), loaded once per process."""
    from lookalike.synthesis.bank import DonorBank, default_bank

    return default_bank() if path is None else _cached(DonorBank, path)


def load_crowd(path: str | None = None):
    """The reference crowd at ``path`` (default: the shipped one), loaded once per process."""
    from lookalike.identity.crowd import ReferenceCrowd, default_crowd

    return default_crowd() if path is None else _cached(ReferenceCrowd, path)


@lru_cache(maxsize=8)
def _cached(kind, path: str):
    return kind.load(path)


def swap_face(image: np.ndarray, face: Face, *, seed: int = 0, bank=None, crowd=None,
              original: np.ndarray | None = None, mask_scale: float = DEFAULT_MASK_SCALE) -> LookalikeOutcome:
    """The full-swap baseline: the whole face regenerated from the first suitable donor, without a loop.

    What classic face replacement does; there for comparison (``--method swap``). Nothing checks that the
    person is hidden, though the record measures it. A face that cannot be swapped is blurred.
    """
    from lookalike.synthesis.regenerate import RegenerationConfig, regenerate
    from lookalike.saliency.regions import SALIENCY_REGIONS

    started = time.perf_counter()
    bank = bank if bank is not None else load_bank()
    crowd = crowd if crowd is not None else load_crowd()
    record = _new_record(steer=[])
    check = _Check(crowd, (), 0, 1.0)
    original = image if original is None else original
    problem = _unsuitable(face)
    target = _measure(image, original, face, saliency=False) if problem is None else None
    donors = choose_donors(target, bank, get_privacy(DEFAULT_PRIVACY), seed, limit=1) if target else []
    candidate = None
    if donors:
        donor, match = donors[0]
        donor_image, donor_landmarks = bank.donor_image(donor.name)
        candidate = regenerate(target.window, target.face.landmarks, donor_image, donor_landmarks, SALIENCY_REGIONS,
                               1.0, outline=True, config=RegenerationConfig(**STYLES["strong"][0]))
        if _covers_face(candidate, target):
            record.update(donor_match=match, donor=donor.name, donor_similarity=round(donor.similarity, 4),
                          donor_gaps=_gaps(donor), regions=list(SALIENCY_REGIONS), morph=1.0, style="strong", attempts=1)
        else:
            candidate, problem = None, "the donor covers too little of the face (turned head)"
    if candidate is None:
        outcome = _fallbacks(image, original, face, target, check, record,
                             reason=problem or "no compatible donor in the bank", mask_scale=mask_scale)
        outcome.record["reached"] = None  # nothing was asked of the swap
    else:
        outcome = _finish(target, candidate.paste(target.window), candidate.mask, candidate.box, {}, check, record,
                          geometry_of=candidate)
    outcome.record["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


def checked_swap_level(level: PrivacyLevel) -> PrivacyLevel:
    """The checked full-swap baseline at ``level``: the same check, number of candidates and fallbacks,
    but every candidate is the whole face from one donor as :func:`swap_face` makes it (no partial
    change, no stronger styles). Comparing it with the level itself is comparing at equal protection.

    >>> checked_swap_level(get_privacy("medium")).schedule
    ((1.0, 1.0, 'strong', 18),)
    """
    tried = sum(count for *_, count in level.schedule)
    return replace(level, name=f"{level.name} (checked swap)", schedule=((1.0, 1.0, "strong", tried),),
                   description=f"full swaps from up to {tried} donors, checked as at {level.name}")


def get_privacy(name: str) -> PrivacyLevel:
    try:
        return PRIVACY_LEVELS[name]
    except KeyError:
        raise ValueError(f"unknown privacy level {name!r}; choose from {', '.join(PRIVACY_LEVELS)}") from None


# --------------------------------------------------------------------------------------------- loop


#: Relative cost of one embedding (measured on this project's 2-core CPU: mobileface 15 ms, FaceNet 120 ms,
#: dlib 132 ms per face), for the screening order.
_SCREENING_COST = {"mobileface": 0.1, "facenet": 0.9, "dlib": 1.0}


class _Check:
    """The steering rule: rank >= k both ways and distance beyond threshold for every steering recognizer."""

    def __init__(self, crowd, steering: tuple[str, ...], k: int, target_distance: float) -> None:
        self.crowd, self.steering, self.k, self.factor = crowd, steering, k, target_distance
        #: the steering recognizers in the order a candidate is screened: the cheapest first (mobileface
        #: embeds in about a tenth of FaceNet's or dlib's time), so most failing candidates cost little
        self.screening = tuple(sorted(steering, key=lambda n: _SCREENING_COST.get(n, 1.0)))

    def passes(self, name: str, probe: np.ndarray, original: np.ndarray) -> bool:
        from lookalike.identity import get_recognizer

        recognizer = get_recognizer(name)
        if float(recognizer.distance(probe, original)) <= recognizer.threshold * self.factor:
            return False
        if name not in self.crowd.recognizers:
            return False  # no evidence is no protection
        return (self.crowd.rank(probe, original, name) >= self.k
                and self.crowd.retrieval_rank(probe, original, name) >= self.k)

    def passes_views(self, image: np.ndarray, views: _Views) -> tuple[bool, dict]:
        """Whether ``image`` (a candidate window) passes for every steering recognizer under *every*
        attacker view, the original seen the same way each time; and the worst view per recognizer
        measured (the first recognizer to fail ends the search).

        Each view must be beyond the threshold and hidden among k crowd faces both ways: a candidate
        that only one pipeline lets go is what an attacker with another pipeline finds.
        """
        from lookalike.identity import get_recognizer

        worst: dict[str, dict] = {}
        for name in self.screening:
            recognizer = get_recognizer(name)
            probes, originals = views.probe(name, image), views.original(name)
            entries = []
            for view, probe, original in zip(CHECKED_VIEWS, probes, originals):
                distance = float(recognizer.distance(probe, original))
                rank = self.crowd.rank(probe, original, name)
                retrieval = self.crowd.retrieval_rank(probe, original, name)
                entries.append((min(rank, retrieval), distance, view.name, rank, retrieval))
            low, distance, view, rank, retrieval = min(entries)
            nearest = min(e[1] for e in entries)
            worst[name] = {"view": view, "distance": round(distance, 4), "rank": rank, "retrieval_rank": retrieval,
                           "nearest_distance": round(nearest, 4)}
            if low < self.k or nearest <= recognizer.threshold * self.factor:
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
            ranks = (self.crowd.rank(probes[name], originals[name], name),
                     self.crowd.retrieval_rank(probes[name], originals[name], name))
            total += min(min(ranks) / max(self.k, 1), 1.0)
        return total

    def describe(self, probes: dict[str, np.ndarray], originals: dict[str, np.ndarray]) -> dict:
        from lookalike.identity import get_recognizer

        out = {}
        for name in RECOGNIZERS:
            if name not in probes:
                continue
            recognizer = get_recognizer(name)
            distance = float(recognizer.distance(probes[name], originals[name]))
            entry = {"distance": round(distance, 4), "threshold": recognizer.threshold,
                     "match": distance <= recognizer.threshold, "steered": name in self.steering}
            if name in self.crowd.recognizers:
                entry.update(self.crowd.ranks({name: probes[name]}, {name: originals[name]})[name])
                others = self.crowd.distances(originals[name], name)
                others = others[others > SAME_FACE * recognizer.threshold]  # not copies of the face itself
                entry["crowd_nearest"] = round(float(others.min()), 4) if others.size else None
            out[name] = entry
        return out


def _loop(image: np.ndarray, original: np.ndarray, face: Face, target: _Target, level: PrivacyLevel, check: _Check,
          bank, seed: int, record: dict, mask_scale: float) -> LookalikeOutcome:
    """Step by step of the level's schedule (least change first), each step with its donors in one batch."""
    from lookalike.saliency import select_regions
    from lookalike.saliency.regions import CANONICAL_ORDER, FEATURE_OF
    from lookalike.synthesis.regenerate import RegenerationConfig, regenerate

    donors = choose_donors(target, bank, level, seed, limit=max(count for *_, count in level.schedule))
    record["saliency"] = ("computed" if target.saliency is not None else
                          "not needed (the level regenerates the whole face)" if not _needs_saliency(level) else
                          "unavailable: canonical order")
    attempts = 0
    closest: list[_Tried] = []  # the failing candidates the fallback blurs, closest to passing first
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    # Glasses: the person's fine detail would bring the frames back as ghosts over the donor's eyes, so
    # none of it is given back (the donor's eyes come without glasses).
    eyewear = _wears_glasses(target)
    record["eyewear"] = eyewear
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
            for donor, match in donors[start:min(count, start + BATCH)]:
                if donor.name not in images:
                    images[donor.name] = bank.donor_image(donor.name)
                donor_image, donor_landmarks = images[donor.name]
                batch.append((donor, match, regenerate(target.window, target.face.landmarks, donor_image,
                                                       donor_landmarks, regions, morph, outline=outline,
                                                       config=RegenerationConfig(**options))))
            attempts += len(batch)
            passing, probes, worst = _first_passing(target, [c for _, _, c in batch], check)
            if passing is not None:
                donor, match, candidate = batch[passing]
                _record_candidate(record, donor, match, candidate, style)
                record.update(attempts=attempts, fallback=None, reached=True, views=worst)
                return _finish(target, candidate.paste(target.window), candidate.mask, candidate.box,
                               probes[passing], check, record, geometry_of=candidate)
            for i, ((donor, match, candidate), probe) in enumerate(zip(batch, probes)):
                closest.append(_Tried(check.progress(probe, target.embeddings), attempts - len(batch) + i, donor,
                                      match, candidate, style))
            # ties go to the earlier (least changed) candidate
            closest = sorted(closest, key=lambda c: (-c.progress, c.order))[:BLURRED_CANDIDATES]
    record["attempts"] = attempts
    reason = "no lookalike reached the level" if donors else f"no compatible donor among the bank's {len(bank)}"
    if closest:
        found = _blurred_lookalike(target, [c.candidate for c in closest], check, record)
        if found is not None:
            outcome, which = found
            kept = closest[which]
            _record_candidate(record, kept.donor, kept.match, kept.candidate, kept.style)
            return outcome
    return _fallbacks(image, original, face, target, check, record, reason=reason, mask_scale=mask_scale)


class _Tried(NamedTuple):
    """A candidate that failed the check, kept for the blurred fallback."""

    progress: float  #: :meth:`_Check.progress`
    order: int
    donor: Donor
    match: str
    candidate: object
    style: str


def _record_candidate(record: dict, donor, match: str, candidate, style: str) -> None:
    """What the record says about the lookalike kept (blurred or not): its donor and how it was made."""
    record.update(donor=donor.name, donor_match=match, donor_similarity=round(donor.similarity, 4),
                  donor_gaps=_gaps(donor), regions=list(candidate.regions), morph=candidate.morph, style=style)


def _gaps(donor) -> dict[str, float]:
    """How the donor is seen against the person (donor minus person, rating points; ``ethnicity``: the
    largest change of any perceived-ethnicity rating), so a relaxed match says what it gave up."""
    return {name: round(float(value), 1) for name, value in donor.gaps.items()
            if name in ("age", "gender", "skin-color", "ethnicity") and np.isfinite(value)}


class LookalikeBlur(NamedTuple):
    """One blur of the blurred-lookalike fallback: sigmas as fractions of the face's width."""

    face: float  #: inside the lookalike's changed pixels
    around: float = 0.0  #: around the face: hair line, ears, near background
    sharp_features: bool = False  #: the lookalike's eyes, brows and mouth left out of the blur inside


#: Blurs tried on the closest lookalikes before the face is blurred whole, in order. Blurs that keep the
#: face sharp or nearly so come before the strong ones inside it, which cost detection. The check is not
#: monotone in the blur (a stronger blur can land nearer the person), hence the many steps. A lightly
#: blurred lookalike is still a face to a viewer and to a detector; a blurred person is not. Blurring
#: around the face is for the faces recognizers still find by what the lookalike keeps of the person:
#: the head's outline and hair. The strong blurs inside (all but the last step, a plain blur kept as the
#: final try before the whole face is blurred) keep the lookalike's eyes, brows and mouth (mostly the
#: donor's) sharp: what identifies is blurred, and what makes a face to a detector (and to a viewer) is
#: still there; the check judges the result as always.
LOOKALIKE_BLURS = (LookalikeBlur(0.02), LookalikeBlur(0.04), LookalikeBlur(0.04, 0.15), LookalikeBlur(0.07),
                   LookalikeBlur(0.07, 0.2), LookalikeBlur(0.0, 0.3), LookalikeBlur(0.04, 0.3), LookalikeBlur(0.0, 0.5),
                   LookalikeBlur(0.04, 0.5), LookalikeBlur(0.1, 0.0, True), LookalikeBlur(0.13, 0.0, True),
                   LookalikeBlur(0.1, 0.3, True), LookalikeBlur(0.13, 0.3, True), LookalikeBlur(0.2, 0.3, True),
                   LookalikeBlur(0.13, 0.3))

#: How many of the closest failing candidates the blurred fallback tries at each blur, closest first: the
#: one nearest to passing unblurred is not always the one a light blur takes past the level.
BLURRED_CANDIDATES = 3


def _blurred_lookalike(target: _Target, candidates: list, check: _Check, record: dict
                       ) -> tuple[LookalikeOutcome, int] | None:
    """The closest candidates, blurred more and more (:data:`LOOKALIKE_BLURS`, each blur tried on every
    candidate before the next), until the check passes: the outcome and which candidate it is."""
    prepared = [_BlurredCandidate(target, candidate) for candidate in candidates]
    for step in LOOKALIKE_BLURS:
        for which, blurred in enumerate(prepared):
            out, weight = blurred.blur(step)
            probes = {}
            for name in check.screening:
                probes.update(_embed(out, target.face, target.reference, (name,)))
                if not check.passes(name, probes[name], target.embeddings[name]):
                    break
            else:
                passed, worst = check.passes_views(out, target.views)
                if not passed:
                    continue
                record.update(fallback=f"blurred lookalike ({_describe_blur(step)}; no lookalike reached the level "
                                       "unblurred)", reached=True, views=worst)
                whole = (0, 0, out.shape[1], out.shape[0])
                return _finish(target, out, np.maximum(blurred.changed, weight), whole, probes, check, record,
                               geometry_of=blurred.candidate), which
    return None


def _describe_blur(step: LookalikeBlur) -> str:
    inside = "the face itself unblurred" if not step.face else f"sigma {step.face:g} of the face width"
    if step.face and step.sharp_features:
        inside += " but for its eyes, brows and mouth"
    return inside if not step.around else f"{inside}, and sigma {step.around:g} around it: hair line and surroundings"


class _BlurredCandidate:
    """One candidate pasted into the window, with the masks its blurs are blended under."""

    def __init__(self, target: _Target, candidate) -> None:
        import cv2

        from lookalike.saliency.regions import SALIENCY_REGIONS, region_labels

        self.candidate = candidate
        x0, y0, x1, y1 = candidate.box
        self.window = candidate.paste(target.window)
        self.width = width = target.face.width
        self.changed = np.zeros(self.window.shape[:2], np.float32)
        self.changed[y0:y1, x0:x1] = candidate.mask
        self.inside = cv2.GaussianBlur(self.changed, (0, 0), 0.02 * width)
        labels = region_labels(self.window.shape, candidate.landmarks)
        features = np.isin(labels, [SALIENCY_REGIONS.index(r) for r in _SHARP_FEATURES]).astype(np.uint8)
        features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(0.02 * width) + 1,) * 2))
        self.inside_but_features = self.inside * (1.0 - cv2.GaussianBlur(features.astype(np.float32), (0, 0),
                                                                           0.015 * width))
        # around the face: fades in beyond the new face outline, and out towards the window's edge along a
        # rounded rectangle (a plain one shows as a blurred box around the head)
        off_face = (labels < 0).astype(np.uint8)
        height, wide = off_face.shape
        rows = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
        cols = np.linspace(-1.0, 1.0, wide, dtype=np.float32)[None, :]
        self.around = (np.clip(cv2.distanceTransform(off_face, cv2.DIST_L2, 5) / (0.1 * width), 0.0, 1.0)
                       * np.clip((1.0 - (rows ** 4 + cols ** 4) ** 0.25) / 0.3, 0.0, 1.0))
        self._blurred: dict[float, np.ndarray] = {}  # several steps share a blur of the window

    def blur(self, step: LookalikeBlur) -> tuple[np.ndarray, np.ndarray]:
        """The window blurred as ``step`` says, and where it was blurred (0..1)."""
        from lookalike.io.images import blend_under_mask
        from lookalike.synthesis.classic import gaussian_blur

        out, weight = self.window, np.zeros_like(self.inside)
        if step.face:
            if step.face not in self._blurred:
                self._blurred[step.face] = gaussian_blur(self.window, step.face * self.width)
            weight = self.inside_but_features if step.sharp_features else self.inside
            out = blend_under_mask(self.window, self._blurred[step.face], weight)
        if step.around:
            out = blend_under_mask(out, gaussian_blur(out, step.around * self.width), self.around)
            weight = np.maximum(weight, self.around)
        return out, weight


#: Left sharp by the strong blurs of :data:`LOOKALIKE_BLURS` that ask for it.
_SHARP_FEATURES = ("right_eye", "left_eye", "right_eyebrow", "left_eyebrow", "mouth")


def _wears_glasses(target: _Target) -> bool:
    from lookalike.synthesis.prototypes import EYEWEAR_THRESHOLD, eyewear_score

    return bool(eyewear_score(target.reference, target.face.landmarks) > EYEWEAR_THRESHOLD)


def _needs_saliency(level: PrivacyLevel) -> bool:
    return any(strength < 1.0 for strength, *_ in level.schedule)


def _first_passing(target: _Target, candidates: list, check: _Check
                   ) -> tuple[int | None, list[dict[str, np.ndarray]], dict]:
    """The index of the first candidate every steering recognizer passes under every attacker view (None
    if none does), every candidate's embeddings so far (cheapest recognizer first; the next only for candidates the first
    passes), and the worst views of the candidate kept.

    The loop's own alignment screens first (cheap, and most candidates fail there); only candidates that
    pass it are seen under the other views.
    """
    from lookalike.identity import get_recognizer

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


#: The whole-face blurs tried before a solid fill, sigmas as fractions of the face width. A black disc is
#: what a viewer notices first; on development faces (0401-0410, 0447) the stronger blur passed the
#: check for one of the three faces the first one left to the fill.
WHOLE_FACE_BLURS = (0.2, 0.4)


def _fallbacks(image: np.ndarray, original: np.ndarray, face: Face, target: _Target | None, check: _Check,
               record: dict, reason: str | None, mask_scale: float) -> LookalikeOutcome:
    """A strong blur over the face ellipse (the face oval's enlarged by ``mask_scale``), a stronger one
    (:data:`WHOLE_FACE_BLURS`), then a solid fill, until the check passes.

    ``face`` is in image coordinates; the check measures against ``original`` (the untouched image).
    """
    from lookalike.io.images import blend_under_mask
    from lookalike.synthesis import ClassicParams, apply_classic, ellipse_mask, face_ellipse
    from lookalike.synthesis.regenerate import face_box_window

    ellipse = face_ellipse(face, mask_scale)
    corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]], np.float32)
    feather = 0.08 * ellipse.a
    box = _union(face_box_window(image.shape, corners, 0.6), _ellipse_box(image.shape, ellipse, feather))
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    reference = np.ascontiguousarray(original[y0:y1, x0:x1])
    local = face.translated(-x0, -y0)
    originals = _embed(reference, local, reference) if target is None else target.embeddings
    mask = ellipse_mask(image.shape, [ellipse], feather=feather)[y0:y1, x0:x1]
    views = target.views if target is not None else _Views(local, reference)
    steps = [("blur", sigma) for sigma in WHOLE_FACE_BLURS] + [("solid", 0.0)]
    for method, sigma in steps:
        params = ClassicParams(blur_sigma=sigma) if sigma else ClassicParams()  # a solid fill has no sigma
        treated = apply_classic(image, [ellipse], method, params)[y0:y1, x0:x1]
        out = blend_under_mask(crop, treated, mask)
        probes = _embed(out, local, reference)
        reached = all(check.passes(n, probes[n], originals[n]) for n in check.steering)
        worst: dict = {}
        if reached:
            reached, worst = check.passes_views(out, views)
        if reached:
            break
    how = f"{method} (sigma {sigma:g} of the face width; {reason})" if sigma else f"{method} ({reason})"
    record.update(fallback=how, regions=[], reached=reached, views=worst)
    record["attempts"] = record["attempts"] or 0
    record["recognizers"] = check.describe(probes, originals)
    return LookalikeOutcome(out, mask, box, record)


def _embed(image: np.ndarray, face: Face, reference: np.ndarray, names: tuple[str, ...] = RECOGNIZERS
           ) -> dict[str, np.ndarray]:
    """The recognizers' embeddings of ``face`` in ``image``, aligned as in ``reference`` (the original)."""
    from lookalike.identity import get_recognizer

    out = {}
    for name in names:
        recognizer = get_recognizer(name)
        out[name] = recognizer.embed_aligned(recognizer.align(image, face, reference=reference)[None])[0]
    return out


def _finish(target: _Target, window: np.ndarray, mask: np.ndarray, box_in_window, probes: dict, check: _Check,
            record: dict, geometry_of=None) -> LookalikeOutcome:
    """Embeddings the steering did not need are measured for the record; perceptual similarity too."""
    from lookalike.perception import face_features, load_model, similarity

    missing = tuple(n for n in RECOGNIZERS if n not in probes)
    if missing:
        probes = {**probes, **_embed(window, target.face, target.reference, missing)}
    record["recognizers"] = check.describe(probes, target.embeddings)
    try:
        model = load_model()
        after_face = target.face if geometry_of is None else replace(target.face, landmarks=geometry_of.landmarks)
        before = face_features(target.reference, target.face, target.embeddings).parts
        after = face_features(window, after_face, probes).parts
        embedded = model.embed({k: np.stack([before[k], after[k]]) for k in before})
        record["perceptual_similarity"] = round(float(similarity(embedded[0], embedded[1])), 4)
    except Exception as exc:  # noqa: BLE001 - the similarity is a report, never a reason to fail
        record["perceptual_similarity"] = None
        record["perceptual_similarity_error"] = f"{type(exc).__name__}: {exc}"
    x0, y0 = target.offset
    height, width = window.shape[:2]
    changed = (window != target.window).any(axis=-1)  # against what was there, so the mask covers every edit
    full_mask = np.zeros((height, width), np.float32)
    bx0, by0, bx1, by1 = box_in_window
    full_mask[by0:by1, bx0:bx1] = mask
    full_mask[changed] = 1.0
    return LookalikeOutcome(window, full_mask, (x0, y0, x0 + width, y0 + height), record)


# ------------------------------------------------------------------------------------------- donors


def choose_donors(target: _Target, bank, level: PrivacyLevel, seed: int = 0, limit: int = 8) -> list[tuple[Donor, str]]:
    """Donors for one face, best first, each with how strictly it matches (``"strict"`` or what was relaxed).

    The level's band and every compatibility rule first; after those donors come, as spares for the
    loop, those found by widening the band, then relaxing age, skin and pose, then keeping only gender
    and mouth (perceived gender, child/adult and ethnicity within 40 rating points are never given up:
    without such a donor the face falls back). Within each step, donors are ranked by group (age and gender, PerFace's rule) and then by
    perceptual similarity plus half the identity margin (the donor's distance from the person in units of
    the recognizer's threshold, the smaller of the two, capped at 2.5): a lookalike cannot move further
    from the person than its donor is, and the crowd check wants a real margin. A non-zero ``seed``
    shuffles the first few donors of the first step that tie on group. Donors wearing glasses (a bank
    built without the eyewear filter) are never used: their frames would be pasted onto the person.
    """
    from lookalike.perception import face_features, load_model
    from lookalike.perception.donors import Compatibility, select_donors
    from lookalike.synthesis.prototypes import EYEWEAR_THRESHOLD

    model = load_model()
    probe = face_features(target.reference, target.face, target.embeddings).parts
    strict = Compatibility()
    steps = [
        ("strict", level.band, strict),
        ("band widened", (0.5, 1.0), strict),
        ("band widened, age, skin, pose and ethnicity relaxed", (0.5, 1.0),
         replace(strict, max_age_gap=25.0, max_skin_gap=30.0, max_pose_gap=30.0, max_ethnicity_gap=25.0)),
        # never relaxed: perceived gender and child/adult; the donor's perceived ethnicity within 40 rating
        # points (the lookalike keeps the person's hair, skin tone and surroundings, so it moves less)
        ("only gender, child/adult, ethnicity within 40 and mouth kept", (0.0, 1.0),
         Compatibility(max_age_gap=None, max_skin_gap=None, max_pose_gap=None, max_ethnicity_gap=40.0)),
    ]
    chosen: list[tuple[Donor, str]] = []
    seen = {name for name, score in zip(bank.names, bank.eyewear) if score > EYEWEAR_THRESHOLD}
    for label, band, compatibility in steps:
        found = select_donors(probe, bank.pool, model, band=band, compatibility=compatibility, limit=None)
        found = sorted((d for d in found if d.name not in seen), key=lambda d: (*_preference(d), d.name))
        found = _with_every_margin(found, target, bank)
        if seed and not chosen and found:
            head = [d for d in found if d.group_distance == found[0].group_distance][:4]
            order = np.random.default_rng(seed).permutation(len(head))
            found = [head[i] for i in order] + found[len(head):]
        for donor in found:
            chosen.append((donor, label))
            seen.add(donor.name)
        if len(chosen) >= limit:
            break
    return chosen[:limit]


# ------------------------------------------------------------------------------------------ helpers


#: How many of a step's best donors are also measured with the recognizers the bank has no embeddings for.
_REMEASURED = 32


def _with_every_margin(donors: list, target: _Target, bank) -> list:
    """``donors`` with the first :data:`_REMEASURED` re-ranked by their identity margin under *every*
    recognizer: the bank holds dlib and FaceNet embeddings only, and a donor that another recognizer
    (mobileface) takes for the person gives a lookalike that recognizer finds too
    (:meth:`~lookalike.synthesis.bank.DonorBank.donor_embedding` embeds each donor crop once)."""
    from dataclasses import replace as with_fields

    from lookalike.identity import get_recognizer

    missing = [n for n in RECOGNIZERS if n not in bank.identity and n in target.embeddings]
    if not missing or not donors:
        return donors
    head, tail = donors[:_REMEASURED], donors[_REMEASURED:]
    measured = [with_fields(donor, identity={**donor.identity, **{
        name: float(get_recognizer(name).distance(bank.donor_embedding(donor.name, name), target.embeddings[name]))
        for name in missing}}) for donor in head]
    rank = {d.name: i for i, d in enumerate(head)}
    measured.sort(key=lambda d: (*_preference(d), rank[d.name]))
    return measured + tail


def _preference(donor) -> tuple[float, float]:
    """Donors are ranked by group (age and gender, PerFace's rule), then by perceptual similarity plus half
    the identity margin (capped at 2.5): this key, smaller first."""
    return donor.group_distance, -(donor.similarity + 0.5 * min(_identity_margin(donor), 2.5))


def _identity_margin(donor) -> float:
    """The donor's identity distance from the target in units of each recognizer's threshold (the smaller)."""
    from lookalike.identity import get_recognizer

    ratios = [d / get_recognizer(n).threshold for n, d in donor.identity.items() if np.isfinite(d)]
    return min(ratios) if ratios else 0.0


def _unsuitable(face: Face) -> str | None:
    if face.landmarks is None:
        return "no dense landmarks (profile, occluded or too small a face)"
    if face.width < MIN_FACE:
        return f"face is {face.width:.0f} px wide; below {MIN_FACE} px there is too little face to regenerate"
    return None


def _measure(image: np.ndarray, original: np.ndarray, face: Face, saliency: bool = True) -> _Target:
    from lookalike.identity import get_recognizer
    from lookalike.saliency import identity_saliency
    from lookalike.synthesis.regenerate import face_box_window

    x0, y0, x1, y1 = face_box_window(image.shape, face.landmarks, 0.6)
    window = np.ascontiguousarray(image[y0:y1, x0:x1])
    reference = window if original is image else np.ascontiguousarray(original[y0:y1, x0:x1])
    local = face.translated(-x0, -y0)
    embeddings = {n: get_recognizer(n).embed(reference, local) for n in RECOGNIZERS}
    found = identity_saliency(reference, local, "facenet", "occlusion") if saliency else None
    usable = found if found is not None and found.status != "skipped" else None
    return _Target(local, window, reference, (x0, y0), embeddings, usable)


def _covers_face(candidate, target: _Target) -> bool:
    """Whether a whole-face candidate really replaced most of the face (a turned head can defeat the donor)."""
    from lookalike.saliency.regions import region_labels

    x0, y0, x1, y1 = candidate.box
    inside = region_labels(candidate.image.shape, target.face.landmarks, offset=(x0, y0)) >= 0
    return bool(inside.any() and (candidate.mask[inside] > 0.5).mean() > 0.6)


def _canonical(order, feature_of, strength: float) -> tuple[str, ...]:
    features = list(dict.fromkeys(feature_of[r] for r in order))
    count = max(1, int(np.ceil(strength * len(features))))
    chosen = set(features[:count])
    return tuple(r for r in order if feature_of[r] in chosen)


def _ellipse_box(shape, ellipse, feather: float) -> tuple[int, int, int, int]:
    height, width = shape[:2]
    x0, y0, x1, y1 = ellipse.bounds()
    pad = 3 * feather + 2
    return (max(0, int(x0 - pad)), max(0, int(y0 - pad)), min(width, int(x1 + pad) + 1), min(height, int(y1 + pad) + 1))


def _union(a, b) -> tuple[int, int, int, int]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# ------------------------------------------------------------------------------------------- replay


def replay_lookalike(image: np.ndarray, face: Face, record: dict, *, bank=None, crowd=None,
                     original: np.ndarray | None = None, mask_scale: float = DEFAULT_MASK_SCALE,
                     check: bool = False) -> LookalikeOutcome:
    """``face`` anonymized as ``record`` (what :func:`lookalike_face` or :func:`swap_face` returned for the
    same person in another image: an earlier frame of a clip) says, with no donor search and no loop: the
    same donor, regions, morph, style and blur on this face's landmarks, or the same whole-face fallback.
    A person keeps one lookalike through a clip, at the cost of one synthesis per frame.

    A face without landmarks, or a record that kept no donor, gets the whole-face blur or fill the record
    names (the strongest blur if it names none). With ``check``, the record's steering recognizers measure
    the result against ``original`` under the checked views, as the loop would; the returned record's
    ``reached`` and ``recognizers`` say how it went (nothing is escalated here: the caller decides).
    """
    from lookalike.synthesis.regenerate import RegenerationConfig, face_box_window, regenerate

    original = image if original is None else original
    fallback = record.get("fallback") or ""
    out_record = {**record, "replayed": True}
    whole = _whole_face_step(fallback)
    if face.landmarks is None or record.get("donor") is None or whole is not None:
        method, sigma = whole or ("blur", WHOLE_FACE_BLURS[-1])
        outcome = _classic_outcome(image, face, method, sigma, mask_scale)
        outcome.record = out_record
    else:
        bank = bank if bank is not None else load_bank()
        donor_image, donor_landmarks = bank.donor_image(record["donor"])
        options, outline = STYLES[record.get("style") or "natural"]
        if record.get("eyewear"):
            options = {**options, "detail_amount": 0.0, "eyewear": True}
        x0, y0, x1, y1 = face_box_window(image.shape, face.landmarks, 0.6)
        window = np.ascontiguousarray(image[y0:y1, x0:x1])
        reference = np.ascontiguousarray(original[y0:y1, x0:x1])
        local = face.translated(-x0, -y0)
        target = _Target(local, window, reference, (x0, y0), {}, None)
        candidate = regenerate(window, local.landmarks, donor_image, donor_landmarks, tuple(record["regions"]),
                               float(record["morph"]), outline=outline, config=RegenerationConfig(**options))
        step = _blur_step(fallback)
        if step is not None:
            blurred = _BlurredCandidate(target, candidate)
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
        if fallback.startswith(f"blurred lookalike ({_describe_blur(step)}; "):
            return step
    return LOOKALIKE_BLURS[-1]  # not recognised: the strongest


def _classic_outcome(image: np.ndarray, face: Face, method: str, sigma: float, mask_scale: float) -> LookalikeOutcome:
    """A whole-face blur or fill over the face ellipse, as :func:`_fallbacks` makes it."""
    from lookalike.io.images import blend_under_mask
    from lookalike.synthesis import ClassicParams, apply_classic, ellipse_mask, face_ellipse
    from lookalike.synthesis.regenerate import face_box_window

    ellipse = face_ellipse(face, mask_scale)
    corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]], np.float32)
    feather = 0.08 * ellipse.a
    box = _union(face_box_window(image.shape, corners, 0.6), _ellipse_box(image.shape, ellipse, feather))
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    params = ClassicParams(blur_sigma=sigma) if sigma else ClassicParams()
    mask = ellipse_mask(image.shape, [ellipse], feather=feather)[y0:y1, x0:x1]
    treated = apply_classic(image, [ellipse], method, params)[y0:y1, x0:x1]
    return LookalikeOutcome(blend_under_mask(crop, treated, mask), mask, box, {})


def _replay_check(outcome: LookalikeOutcome, image: np.ndarray, original: np.ndarray, face: Face, record: dict,
                  crowd) -> None:
    """The loop's check (distance beyond the threshold, k crowd faces both ways, every checked view) on a
    replayed face, measured in the window around it; fills ``reached`` and ``recognizers``."""
    from lookalike.synthesis.regenerate import face_box_window

    crowd = crowd if crowd is not None else load_crowd()
    check = _Check(crowd, resolve_steering("+".join(record["steer"])), int(record.get("k") or 1),
                   float(record.get("target_distance") or 1.0))
    corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]], np.float32)
    x0, y0, x1, y1 = _union(face_box_window(image.shape, corners, 0.6), outcome.box)
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
        reached, worst = check.passes_views(window, _Views(local, reference))
    outcome.record.update(reached=reached, views=worst, recognizers=check.describe(probes, originals))
