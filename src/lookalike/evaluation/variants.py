"""Benchmark rows: a registered anonymization method at one level (and, for closed loops, one set of
steering recognizers), with the settings that make it.

>>> [v.label for v in variants("blur", [0.1, 0.15])]
['blur 0.1', 'blur 0.15']
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from lookalike.errors import LookalikeError
from lookalike.identity import resolve_steering
from lookalike.pipeline.anonymize import AnonymizeConfig
from lookalike.pipeline.methods import MethodSpec, get_method


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
            assert self.method.level_field is not None  # MethodSpec.level gives no level to a method without levels
            fields[self.method.level_field] = self.level
        if self.steer is not None:
            fields["steer"] = self.steer
        return AnonymizeConfig.model_validate(fields)


def variant(method: MethodSpec | str, level: str | float | int | None = None) -> Variant:
    """``method`` (a registered name or spec) at one level, its field validated by :class:`AnonymizeConfig`.

    >>> v = variant("blur", "0.05")
    >>> v.label, v.config().blur_sigma
    ('blur 0.05', 0.05)
    """
    self = get_method(method) if isinstance(method, str) else method
    if level is None or self.level_field is None:
        if level is not None:
            raise LookalikeError(f"method {self.name!r} has no levels (got {level!r})")
        return Variant(self, None)
    try:
        value = getattr(AnonymizeConfig(**{self.level_field: level}), self.level_field)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise LookalikeError(
            f"method {self.name!r}: level {level!r} is not a valid {self.level_field} ({problem})"
        ) from None
    return Variant(self, value)


def variants(method: MethodSpec | str, levels: list | tuple | None = None) -> list[Variant]:
    """``method`` at each of ``levels`` (default: its :attr:`~MethodSpec.default_levels`, or its one setting)."""
    self = get_method(method) if isinstance(method, str) else method
    if levels is not None and self.level_field is None:
        raise LookalikeError(f"method {self.name!r} has no levels (got {', '.join(map(str, levels))})")
    chosen = self.default_levels if levels is None else tuple(levels)
    return [variant(self, level) for level in chosen] if chosen else [variant(self)]
