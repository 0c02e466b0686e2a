"""The anonymization methods by name, each with its strength knob ("level") and the levels a benchmark sweeps.

A new method registers a :class:`MethodSpec` here and is then accepted everywhere a method is named:
``anonymize``, ``lookalike benchmark --methods``, the report.

>>> spec = get_method("blur")
>>> spec.default_levels
(0.025, 0.05, 0.1, 0.15)
>>> variant = spec.variant("0.05")
>>> variant.label, variant.config().blur_sigma
('blur 0.05', 0.05)
"""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from lookalike.errors import LookalikeError
from lookalike.identity import available_recognizers, resolve_steering
from lookalike.pipeline.anonymize import AnonymizeConfig


@dataclass(frozen=True)
class MethodSpec:
    """One anonymization method.

    level_field: the :class:`AnonymizeConfig` field a level sets (None: the method has no levels).
    level_help: what a level means, for reports and ``--help``.
    default_levels: the levels a benchmark runs when none are given.
    steered_by: recognizers the method itself consults while anonymizing; a report must also judge it
        with the others (held-out attackers).
    """

    name: str
    description: str
    level_field: str | None = None
    level_help: str = ""
    default_levels: tuple = ()
    steered_by: tuple[str, ...] = ()

    def variant(self, level: str | float | int | None = None) -> "Variant":
        """The method at one level (its field validated by :class:`AnonymizeConfig`)."""
        if level is None or self.level_field is None:
            if level is not None:
                raise LookalikeError(f"method {self.name!r} has no levels (got {level!r})")
            return Variant(self, None)
        try:
            value = getattr(AnonymizeConfig(**{self.level_field: level}), self.level_field)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise LookalikeError(f"method {self.name!r}: level {level!r} is not a valid {self.level_field} ({problem})") from None
        return Variant(self, value)

    def variants(self, levels: list | tuple | None = None) -> list["Variant"]:
        """The method at each of ``levels`` (default: :attr:`default_levels`, or its one setting)."""
        if levels is not None and self.level_field is None:
            raise LookalikeError(f"method {self.name!r} has no levels (got {', '.join(map(str, levels))})")
        chosen = self.default_levels if levels is None else tuple(levels)
        return [self.variant(level) for level in chosen] if chosen else [self.variant()]


@dataclass(frozen=True)
class Variant:
    """A method at one level: what a benchmark row stands for.

    ``steer`` (methods with a closed loop only): the recognizers it steers on, for leave-one-out runs.
    """

    method: MethodSpec
    level: float | int | str | None
    steer: str | None = None

    @property
    def label(self) -> str:
        label = self.method.name
        if self.level is not None:
            label += f" {self.level:g}" if isinstance(self.level, (int, float)) else f" {self.level}"
        return label if self.steer is None else f"{label} (steer {self.steer})"

    @property
    def steered_by(self) -> tuple[str, ...]:
        return self.method.steered_by if self.steer is None else resolve_steering(self.steer)

    def steered(self, steer: str) -> "Variant":
        """This variant steering on ``steer`` (:func:`~lookalike.identity.resolve_steering`: "all", "both",
        or names joined by "+"; all but one recognizer is a leave-one-out run)."""
        if not self.method.steered_by:
            raise LookalikeError(f"method {self.method.name!r} does not steer on a recognizer")
        try:
            chosen = resolve_steering(steer)
        except ValueError as exc:
            raise LookalikeError(str(exc)) from None
        return Variant(self.method, self.level, None if chosen == self.method.steered_by else steer)

    def config(self, base: AnonymizeConfig | None = None) -> AnonymizeConfig:
        """``base`` (default settings if None) with this method and level."""
        fields = (base or AnonymizeConfig()).model_dump()
        fields["method"] = self.method.name
        if self.level is not None:
            fields[self.method.level_field] = self.level
        if self.steer is not None:
            fields["steer"] = self.steer
        return AnonymizeConfig.model_validate(fields)


METHODS: dict[str, MethodSpec] = {
    "blur": MethodSpec("blur", "Gaussian blur inside the face ellipse", "blur_sigma",
                       "Gaussian sigma as a fraction of the face width", (0.025, 0.05, 0.1, 0.15)),
    "pixelate": MethodSpec("pixelate", "pixelation inside the face ellipse", "pixel_blocks",
                           "blocks across the face width (fewer: coarser)", (16, 8)),
    "solid": MethodSpec("solid", "solid fill of the face ellipse"),
    "lookalike": MethodSpec("lookalike", "identity regions regenerated from donors until recognizers no longer match",
                            "privacy", "privacy level: low, medium (default) or high", ("low", "medium", "high"),
                            steered_by=available_recognizers()),
    "swap": MethodSpec("swap", "baseline: the whole face replaced by one donor's, without any check"),
    "checked-swap": MethodSpec("checked-swap", "baseline: whole-face swaps from one donor after another, checked and "
                               "falling back as lookalike does at the same level", "privacy",
                               "privacy level: low, medium (default) or high", ("medium",),
                               steered_by=available_recognizers()),
}


def get_method(name: str) -> MethodSpec:
    """The registered method called ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise LookalikeError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None
