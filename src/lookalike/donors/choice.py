"""Donors for one face: the bank's donors in the order the lookalike loop tries them.

Strict matches first (the privacy level's perceptual band and every compatibility rule of
:class:`~lookalike.donors.pool.Compatibility`), then spares found by relaxing the rules one step at a
time; each donor says how it matched, and :func:`reported_gaps` what a relaxed match gave up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from lookalike.donors.bank import DonorBank
from lookalike.donors.pool import Compatibility, Donor, select_donors
from lookalike.donors.prototypes import EYEWEAR_THRESHOLD
from lookalike.identity import available_recognizers, get_recognizer
from lookalike.perception import face_features, load_model
from lookalike.types import Face


def choose_donors(
    image: np.ndarray,
    face: Face,
    embeddings: Mapping[str, np.ndarray],
    bank: DonorBank,
    band: tuple[float, float],
    *,
    seed: int = 0,
    limit: int = 8,
) -> list[tuple[Donor, str]]:
    """Donors for one face, best first, each with how strictly it matches (``"strict"`` or what was relaxed).

    ``face`` of the RGB ``image`` (the untouched person), ``embeddings`` its embeddings by recognizer.
    The perceptual ``band`` and every compatibility rule first; after those donors come, as spares for the
    loop, those found by widening the band, then relaxing age, skin and pose, then keeping only gender
    and mouth (perceived gender, child/adult and ethnicity within 40 rating points are never given up:
    without such a donor the face falls back). Within each step, donors are ranked by group (age and gender,
    PerFace's rule) and then by perceptual similarity plus half the identity margin (the donor's distance from
    the person in units of the recognizer's threshold, the smaller of the two, capped at 2.5): a lookalike
    cannot move further from the person than its donor is, and the crowd check wants a real margin. A non-zero
    ``seed`` shuffles the first few donors of the first step that tie on group. Donors wearing glasses (a bank
    built without the eyewear filter) are never used: their frames would be pasted onto the person.
    """
    model = load_model()
    probe = face_features(image, face, embeddings).parts
    strict = Compatibility()
    steps = [
        ("strict", band, strict),
        ("band widened", (0.5, 1.0), strict),
        (
            "band widened, age, skin, pose and ethnicity relaxed",
            (0.5, 1.0),
            replace(strict, max_age_gap=25.0, max_skin_gap=30.0, max_pose_gap=30.0, max_ethnicity_gap=25.0),
        ),
        # never relaxed: perceived gender and child/adult; the donor's perceived ethnicity within 40 rating
        # points (the lookalike keeps the person's hair, skin tone and surroundings, so it moves less)
        (
            "only gender, child/adult, ethnicity within 40 and mouth kept",
            (0.0, 1.0),
            Compatibility(max_age_gap=None, max_skin_gap=None, max_pose_gap=None, max_ethnicity_gap=40.0),
        ),
    ]
    chosen: list[tuple[Donor, str]] = []
    seen = {name for name, score in zip(bank.names, bank.eyewear) if score > EYEWEAR_THRESHOLD}
    for label, band, compatibility in steps:
        found = select_donors(probe, bank.pool, model, band=band, compatibility=compatibility, limit=None)
        found = sorted((d for d in found if d.name not in seen), key=lambda d: (*_preference(d), d.name))
        found = _with_every_margin(found, embeddings, bank)
        if seed and not chosen and found:
            head = [d for d in found if d.group_distance == found[0].group_distance][:4]
            order = np.random.default_rng(seed).permutation(len(head))
            found = [head[i] for i in order] + found[len(head) :]
        for donor in found:
            chosen.append((donor, label))
            seen.add(donor.name)
        if len(chosen) >= limit:
            break
    return chosen[:limit]


#: How many of a step's best donors are also measured with the recognizers the bank has no embeddings for.
_REMEASURED = 32


def _with_every_margin(donors: list[Donor], embeddings: Mapping[str, np.ndarray], bank: DonorBank) -> list[Donor]:
    """``donors`` with the first :data:`_REMEASURED` re-ranked by their identity margin under *every*
    recognizer: the bank holds dlib and FaceNet embeddings only, and a donor that another recognizer
    (mobileface) takes for the person gives a lookalike that recognizer finds too
    (:meth:`~lookalike.donors.bank.DonorBank.donor_embedding` embeds each donor crop once)."""
    missing = [n for n in available_recognizers() if n not in bank.identity and n in embeddings]
    if not missing or not donors:
        return donors
    head, tail = donors[:_REMEASURED], donors[_REMEASURED:]
    measured = [
        replace(
            donor,
            identity={
                **donor.identity,
                **{
                    name: float(get_recognizer(name).distance(bank.donor_embedding(donor.name, name), embeddings[name]))
                    for name in missing
                },
            },
        )
        for donor in head
    ]
    rank = {d.name: i for i, d in enumerate(head)}
    measured.sort(key=lambda d: (*_preference(d), rank[d.name]))
    return measured + tail


def _preference(donor: Donor) -> tuple[float, float]:
    """Donors are ranked by group (age and gender, PerFace's rule), then by perceptual similarity plus half
    the identity margin (capped at 2.5): this key, smaller first."""
    return donor.group_distance, -(donor.similarity + 0.5 * min(_identity_margin(donor), 2.5))


def _identity_margin(donor: Donor) -> float:
    """The donor's identity distance from the target in units of each recognizer's threshold (the smaller)."""
    ratios = [d / get_recognizer(n).threshold for n, d in donor.identity.items() if np.isfinite(d)]
    return min(ratios) if ratios else 0.0


def reported_gaps(donor: Donor) -> dict[str, float]:
    """How the donor is seen against the person (donor minus person, rating points; ``ethnicity``: the
    largest change of any perceived-ethnicity rating), so a relaxed match says what it gave up."""
    return {
        name: round(float(value), 1)
        for name, value in donor.gaps.items()
        if name in ("age", "gender", "skin-color", "ethnicity") and np.isfinite(value)
    }
