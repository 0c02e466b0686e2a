"""The lookalike method's privacy levels, by name: what each asks of every face and how the loop tries.

A new level registers a :class:`PrivacyLevel` in :data:`PRIVACY_LEVELS`; it is then accepted everywhere a
level is named (``anonymize(privacy=...)``, ``--privacy``, ``lookalike benchmark --levels``), and the help
lists it.

>>> get_privacy("medium").k
10
>>> checked_swap_level(get_privacy("medium")).schedule
((1.0, 1.0, 'strong', 18),)
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PrivacyLevel:
    """What a privacy level asks of every face.

    k : the anonymized face must be no nearer to its original than k reference-crowd faces are (and the
        original no nearer to it than k crowd faces), for every steering recognizer.
    band : perceptual similarity band of donors (higher: more alike; 0.5 is unrelated).
    views : the attacker views (:data:`~lookalike.identity.views.VIEWS`, by name) every candidate must pass
        under, each recognizer's worst view deciding.
    schedule : the steps tried, in order: (strength, morph, style, donors), where strength is the share of
        the face's identity (by saliency) whose regions are regenerated (1: the whole face), morph the
        shape morph toward the donor (above 1: past the donor's shape, up to
        :data:`~lookalike.synthesis.transplant.MAX_MORPH`), style one of :data:`STYLES`, and donors how
        many of the best donors are tried at that step (a few at a time).
    """

    name: str
    k: int
    band: tuple[float, float]
    schedule: tuple[tuple[float, float, str, int], ...]
    description: str = ""
    views: tuple[str, ...] = ("aligned", "mirrored", "jpeg75")

    @property
    def needs_saliency(self) -> bool:
        """Whether some step regenerates only part of the face (chosen by the face's identity saliency)."""
        return any(strength < 1.0 for strength, *_ in self.schedule)

    @property
    def most_donors(self) -> int:
        """The most donors any step tries."""
        return max(count for *_, count in self.schedule)


PRIVACY_LEVELS: dict[str, PrivacyLevel] = {
    "low": PrivacyLevel(
        "low",
        1,
        (0.80, 0.98),
        ((0.6, 0.5, "natural", 2), (1.0, 1.0, "natural", 2), (1.0, 1.0, "strong", 6)),
        description="no recognizer takes the face for the person, and the person is not the "
        "nearest of the crowd (k = 1)",
    ),
    "medium": PrivacyLevel(
        "medium",
        10,
        (0.70, 0.97),
        ((1.0, 1.0, "natural", 2), (1.0, 1.0, "strong", 4), (1.0, 1.4, "stronger", 6), (1.0, 1.8, "strongest", 6)),
        description="hidden among at least 10 crowd faces for each recognizer (default)",
    ),
    "high": PrivacyLevel(
        "high",
        20,
        (0.60, 0.95),
        ((1.0, 1.0, "strong", 4), (1.0, 1.4, "stronger", 6), (1.0, 1.8, "strongest", 8)),
        description="hidden among at least 20 crowd faces for each recognizer, under every "
        "attacker view (box crops with the hair and outline included)",
        views=("aligned", "mirrored", "jpeg75", "box", "shifted"),
    ),
}
DEFAULT_PRIVACY = "medium"

#: How a candidate is synthesised (:class:`~lookalike.synthesis.regenerate.RegenerationConfig` options, and
#: whether the face outline moves). "natural" gives back the target's fine texture and gaze; "strong"
#: keeps less of the target (texture and irises carry some identity for recognizers) and moves the
#: outline too; "stronger" also takes much of the donor's shading (its colour is matched to the face as
#: a whole more than region by region: the person's shading carries identity) and "strongest" all of it;
#: both are meant for shape morphs past the donor's.
_STRONG = {"detail_amount": 0.3, "keep_gaze": False, "feather": 0.03}
STYLES: dict[str, tuple[dict, bool]] = {
    "natural": ({}, False),
    "strong": (_STRONG, True),
    "stronger": ({**_STRONG, "shading": 0.6}, True),
    "strongest": ({**_STRONG, "shading": 1.0}, True),
}


def get_privacy(name: str) -> PrivacyLevel:
    """The registered privacy level called ``name``; ValueError naming the choices otherwise."""
    try:
        return PRIVACY_LEVELS[name]
    except KeyError:
        raise ValueError(f"unknown privacy level {name!r}; choose from {', '.join(PRIVACY_LEVELS)}") from None


def privacy_help() -> str:
    """The levels in words, for ``--help`` and reports: "low, medium (default) or high"."""
    names = [f"{n} (default)" if n == DEFAULT_PRIVACY else n for n in PRIVACY_LEVELS]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def checked_swap_level(level: PrivacyLevel) -> PrivacyLevel:
    """The checked full-swap baseline at ``level``: the same check, number of candidates and fallbacks,
    but every candidate is the whole face from one donor as the swap makes it (no partial change, no
    stronger styles). Comparing it with the level itself is comparing at equal protection."""
    tried = sum(count for *_, count in level.schedule)
    return replace(
        level,
        name=f"{level.name} (checked swap)",
        schedule=((1.0, 1.0, "strong", tried),),
        description=f"full swaps from up to {tried} donors, checked as at {level.name}",
    )
