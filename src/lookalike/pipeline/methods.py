"""The anonymization methods by name, each with how it treats faces, its strength knob ("level") and the
levels a benchmark sweeps.

A new method registers a :class:`MethodSpec` here and is then accepted everywhere a method is named:
``anonymize`` dispatches on its :attr:`~MethodSpec.kind`, ``--method`` lists it in its help,
``lookalike benchmark --methods`` sweeps its levels, the report names it.

>>> spec = get_method("blur")
>>> spec.kind, spec.default_levels
('classic', (0.025, 0.05, 0.1, 0.15))
>>> method_names()
('blur', 'pixelate', 'solid', 'lookalike', 'swap', 'checked-swap')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lookalike.errors import LookalikeError
from lookalike.identity import available_recognizers
from lookalike.pipeline.privacy import PRIVACY_LEVELS, privacy_help

#: How a method treats the faces of an image: "classic" fills the face ellipses (one operation of
#: :func:`~lookalike.synthesis.apply_classic` for all faces); "swap" regenerates each face from one
#: donor without a check; "loop" runs the lookalike loop on each face at a privacy level.
Kind = Literal["classic", "swap", "loop"]


@dataclass(frozen=True)
class MethodSpec:
    """One anonymization method.

    kind: how it treats faces (:data:`Kind`).
    level_field: the :class:`~lookalike.pipeline.AnonymizeConfig` field a level sets (None: the method has no levels).
    level_help: what a level means, for reports and ``--help``.
    default_levels: the levels a benchmark runs when none are given.
    steered_by: recognizers the method itself consults while anonymizing; a report must also judge it
        with the others (held-out attackers).
    swaps_only: a loop whose every candidate is the whole face from one donor (the checked-swap baseline,
        :func:`~lookalike.pipeline.privacy.checked_swap_level`).
    """

    name: str
    description: str
    kind: Kind = "classic"
    level_field: str | None = None
    level_help: str = ""
    default_levels: tuple = ()
    steered_by: tuple[str, ...] = ()
    swaps_only: bool = False


METHODS: dict[str, MethodSpec] = {
    "blur": MethodSpec(
        "blur",
        "Gaussian blur inside the face ellipse",
        "classic",
        "blur_sigma",
        "Gaussian sigma as a fraction of the face width",
        (0.025, 0.05, 0.1, 0.15),
    ),
    "pixelate": MethodSpec(
        "pixelate",
        "pixelation inside the face ellipse",
        "classic",
        "pixel_blocks",
        "blocks across the face width (fewer: coarser)",
        (16, 8),
    ),
    "solid": MethodSpec("solid", "solid fill of the face ellipse", "classic"),
    "lookalike": MethodSpec(
        "lookalike",
        "identity regions regenerated from donors until recognizers no longer match",
        "loop",
        "privacy",
        f"privacy level: {privacy_help()}",
        tuple(PRIVACY_LEVELS),
        steered_by=available_recognizers(),
    ),
    "swap": MethodSpec("swap", "baseline: the whole face replaced by one donor's, without any check", "swap"),
    "checked-swap": MethodSpec(
        "checked-swap",
        "baseline: whole-face swaps from one donor after another, checked and "
        "falling back as lookalike does at the same level",
        "loop",
        "privacy",
        f"privacy level: {privacy_help()}",
        ("medium",),
        steered_by=available_recognizers(),
        swaps_only=True,
    ),
}


def get_method(name: str) -> MethodSpec:
    """The registered method called ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise LookalikeError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def method_names() -> tuple[str, ...]:
    """Every registered method's name, in registration order."""
    return tuple(METHODS)


def check_method(name: str) -> str:
    """``name`` if a method is registered under it; ValueError naming the choices otherwise (for
    validators, which report ValueErrors)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return name
