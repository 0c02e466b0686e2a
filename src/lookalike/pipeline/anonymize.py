"""One image in, every face found and anonymized, one record per face out.

>>> from skimage.data import astronaut
>>> from lookalike.pipeline import anonymize
>>> result = anonymize(astronaut(), method="pixelate")
>>> len(result.faces), result.faces[0].method
(1, 'pixelate')
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lookalike.detection import DetectorConfig
from lookalike.faces import Rotations, detect, detector_config
from lookalike.identity import available_recognizers, get_recognizer, resolve_steering
from lookalike.imaging import blend_under_mask, mask_regions
from lookalike.io.images import LoadedImage, compose_native, image_from_array
from lookalike.pipeline.methods import check_method, get_method
from lookalike.pipeline.privacy import DEFAULT_PRIVACY, checked_swap_level, get_privacy
from lookalike.synthesis import DEFAULT_MASK_SCALE, ClassicParams, apply_classic, ellipse_mask, face_ellipse
from lookalike.types import Face

if TYPE_CHECKING:  # the loop's module is loaded when a lookalike method runs (see _anonymize_lookalike)
    from lookalike.pipeline.lookalike import LookalikeOutcome, LookalikeRecord

#: A registered method's name (:data:`~lookalike.pipeline.methods.METHODS`).
Method = str


class AnonymizeConfig(BaseModel):
    """Everything that decides how an image is anonymized; the defaults work.

    method: what replaces each face, a name from :data:`~lookalike.pipeline.methods.METHODS`.
    mask_scale: the face ellipse (fitted to the face oval, forehead to chin) is enlarged by this factor.
    threshold: detector confidence needed to count as a face (None: the detector's default). Lower
        finds more faces and more false ones; for anonymization a false face costs little.
    rotations: how hard to look for turned faces. The upright search already finds faces turned up to
        about 150 degrees either way (``benchmarks/bench_rotation.py``); "coarse" (default) adds a
        whole-image search of the picture turned upside down, which covers the rest unless the face is
        tiny in a large picture; "full" searches all four quarter turns as thoroughly as upright (about 4x
        the detection time); "off" searches upright only.
    blur_sigma, pixel_blocks, fill_color: strength of the classic methods, see
        :class:`~lookalike.synthesis.ClassicParams`.
    feather: soft edge outside the ellipse, as a fraction of the face width.
    verify: recognizers (:func:`~lookalike.identity.available_recognizers`) that measure each anonymized
        face against its original.
    privacy, steer, target_distance, seed: the lookalike method's settings (see
        :mod:`lookalike.pipeline.lookalike`): the privacy level (a name from
        :data:`~lookalike.pipeline.privacy.PRIVACY_LEVELS`), the recognizers its closed loop steers on
        (:func:`~lookalike.identity.resolve_steering`: "all" by default), the factor on their thresholds a
        face must exceed, and the seed that picks among equally suitable donors.
    bank, crowd: the lookalike method's donor bank and reference crowd files (default: the shipped ones).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method = "blur"
    mask_scale: float = Field(DEFAULT_MASK_SCALE, ge=1.0, le=4.0)
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    rotations: Rotations = "coarse"
    blur_sigma: float = Field(0.15, gt=0.0, le=2.0)
    pixel_blocks: int = Field(8, ge=1, le=256)
    fill_color: tuple[int, int, int] = (0, 0, 0)
    feather: float = Field(0.04, ge=0.0, le=0.5)
    verify: tuple[str, ...] = ()
    privacy: str = DEFAULT_PRIVACY
    steer: str = "all"
    target_distance: float = Field(1.0, ge=1.0, le=3.0)
    seed: int = Field(0, ge=0)
    bank: str | None = None
    crowd: str | None = None

    # each name is checked against its registry; the ValueErrors name the choices, and Pydantic reports them
    _known_method = field_validator("method")(check_method)

    @field_validator("privacy")
    @classmethod
    def _known_privacy(cls, privacy: str) -> str:
        get_privacy(privacy)
        return privacy

    @field_validator("steer")
    @classmethod
    def _known_steering(cls, steer: str) -> str:
        resolve_steering(steer)
        return steer

    @field_validator("verify")
    @classmethod
    def _known_recognizers(cls, verify: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [n for n in verify if n not in available_recognizers()]
        if unknown:
            raise ValueError(f"unknown recognizer {unknown[0]!r}; choose from {', '.join(available_recognizers())}")
        return verify

    def detector_config(self) -> DetectorConfig:
        return detector_config(self.threshold, self.rotations)

    def classic_params(self) -> ClassicParams:
        return ClassicParams(blur_sigma=self.blur_sigma, pixel_blocks=self.pixel_blocks, fill_color=self.fill_color)


@dataclass
class FaceRecord:
    """What happened to one face: where it was, what was done, and (if asked) how well it is hidden."""

    index: int
    face: Face
    method: str
    mask: dict
    status: str = "anonymized"
    verification: dict[str, dict] = field(default_factory=dict)
    fallback: str | None = None
    lookalike: LookalikeRecord | None = None

    def to_dict(self, with_landmarks: bool = False) -> dict:
        out = {
            "index": self.index,
            "status": self.status,
            "method": self.method,
            **self.face.to_dict(with_landmarks=with_landmarks),
            "mask": self.mask,
            "landmarks_found": self.face.landmarks is not None,
        }
        if self.verification:
            out["verification"] = self.verification
        if self.fallback:
            out["fallback"] = self.fallback
        if self.lookalike is not None:
            out["lookalike"] = self.lookalike.to_dict()
        return out


@dataclass
class AnonymizationResult:
    """The anonymized image (same shape and dtype as the input), the changed-pixel mask, the records."""

    image: np.ndarray
    mask: np.ndarray
    faces: list[FaceRecord]
    seconds: float
    rgb: np.ndarray | None = field(repr=False, default=None)  # anonymize() always sets it

    def to_dict(self, with_landmarks: bool = False) -> dict:
        return {"faces": [f.to_dict(with_landmarks) for f in self.faces], "seconds": round(self.seconds, 3)}


def anonymize(
    image: np.ndarray | LoadedImage,
    method: Method | None = None,
    config: AnonymizeConfig | None = None,
    *,
    faces: list[Face] | None = None,
    **options,
) -> AnonymizationResult:
    """Detect and anonymize every face.

    ``image`` is an array (grey, RGB or RGBA; uint8 or uint16) or a :class:`~lookalike.io.LoadedImage`.
    The returned image has the input's shape and dtype; only pixels under the returned mask differ.
    ``method`` and keyword ``options`` override fields of ``config``. ``faces``, when given, are
    anonymized instead of detecting them (from :func:`detect` on the same image), which lets a caller
    treat one image several ways with one detection; ``seconds`` then excludes detection.
    """
    started = time.perf_counter()
    config = _merge(config, method, options)
    loaded = image if isinstance(image, LoadedImage) else image_from_array(image)
    rgb = loaded.rgb
    if faces is None:
        faces = detect(rgb, threshold=config.threshold, rotations=config.rotations)
    if get_method(config.method).kind != "classic":
        return _anonymize_lookalike(loaded, faces, config, started)
    ellipses = [face_ellipse(f, config.mask_scale) for f in faces]
    params = config.classic_params()
    treated = apply_classic(rgb, ellipses, config.method, params)
    feather = [config.feather * 2.0 * e.a for e in ellipses]
    mask = ellipse_mask(rgb.shape, ellipses, feather=max(feather, default=0.0))
    blended = _blend(rgb, treated, mask)
    records = [
        FaceRecord(index=i, face=f, method=config.method, mask={"ellipse": e.to_dict()})
        for i, (f, e) in enumerate(zip(faces, ellipses))
    ]
    if config.verify:

        def fill(recognizable: list[FaceRecord]) -> np.ndarray:
            nonlocal treated
            treated = apply_classic(treated, [ellipses[r.index] for r in recognizable], "solid", params)
            return _blend(rgb, treated, mask)

        blended = _fail_closed(rgb, blended, records, config, fill)
    native = compose_native(loaded, treated, mask)
    return AnonymizationResult(
        image=native, mask=mask, faces=records, seconds=time.perf_counter() - started, rgb=blended
    )


def regenerate_face(
    image: np.ndarray, face: Face, config: AnonymizeConfig, *, seed: int, original: np.ndarray
) -> LookalikeOutcome:
    """One face of ``image`` through ``config``'s regenerating method (kind "swap" or "loop" in the
    methods registry) with its bank, crowd and privacy level; ``original``: the untouched image."""
    # loaded here, not at the top: the loop's models and assets cost seconds that the classic methods,
    # and the command line's start, should not pay
    from lookalike.pipeline.lookalike import load_bank, load_crowd, lookalike_face, swap_face

    spec = get_method(config.method)
    bank, crowd = load_bank(config.bank), load_crowd(config.crowd)
    if spec.kind == "swap":
        return swap_face(
            image, face, seed=seed, bank=bank, crowd=crowd, original=original, mask_scale=config.mask_scale
        )
    level = get_privacy(config.privacy)
    return lookalike_face(
        image,
        face,
        privacy=checked_swap_level(level) if spec.swaps_only else level,
        steer=config.steer,
        target_distance=config.target_distance,
        seed=seed,
        bank=bank,
        crowd=crowd,
        original=original,
        mask_scale=config.mask_scale,
    )


def _anonymize_lookalike(
    loaded: LoadedImage, faces: list[Face], config: AnonymizeConfig, started: float
) -> AnonymizationResult:
    """Each face in turn, on the image as the faces before it left it (overlapping faces stay changed)."""
    rgb = loaded.rgb
    treated = rgb.copy()
    mask = np.zeros(rgb.shape[:2], np.float32)
    records = []
    for index, face in enumerate(faces):
        outcome = regenerate_face(treated, face, config, seed=config.seed + index, original=rgb)
        x0, y0, x1, y1 = outcome.box
        before = treated[y0:y1, x0:x1]
        changed = (outcome.image != before).any(axis=-1)
        treated[y0:y1, x0:x1] = outcome.image
        mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], np.where(changed, 1.0, outcome.mask))
        details = outcome.record
        verification = {
            name: {k: v[k] for k in ("distance", "threshold", "match")}
            for name, v in (details.recognizers or {}).items()
        }
        records.append(
            FaceRecord(
                index=index,
                face=face,
                method=config.method,
                mask={"box": list(outcome.box)},
                verification=verification,
                fallback=details.fallback,
                lookalike=details,
            )
        )
    if config.verify:

        def fill(recognizable: list[FaceRecord]) -> np.ndarray:
            nonlocal mask
            ellipses = [face_ellipse(r.face, config.mask_scale) for r in recognizable]
            feather = max(config.feather * 2.0 * e.a for e in ellipses)
            mask = np.maximum(mask, ellipse_mask(rgb.shape, ellipses, feather=feather))
            return apply_classic(treated, ellipses, "solid", config.classic_params())

        from lookalike.pipeline.lookalike import load_crowd  # loaded already by regenerate_face

        treated = _fail_closed(rgb, treated, records, config, fill, crowd=load_crowd(config.crowd))
    native = compose_native(loaded, treated, mask)
    return AnonymizationResult(
        image=native, mask=mask, faces=records, seconds=time.perf_counter() - started, rgb=treated
    )


def _fail_closed(
    original: np.ndarray, anonymized: np.ndarray, records: list[FaceRecord], config: AnonymizeConfig, fill, crowd=None
) -> np.ndarray:
    """Measure every face with the ``--verify`` recognizers; the faces one still matches get the strongest
    method (``fill(records)`` returns the image with them filled solid), say so, and are measured again.
    Returns the anonymized image as it now is.

    A lookalike record's own figures (``lookalike.recognizers``: distances, matches, crowd ranks) are
    measured again too, so every figure describes the pixels written, after the fill."""
    _verify(original, anonymized, records, config.verify)
    recognizable = [r for r in records if any(v["match"] for v in r.verification.values())]
    if not recognizable:
        return anonymized
    anonymized = fill(recognizable)
    for record in recognizable:
        record.fallback = f"solid (after {config.method} was still matched)"
    # every recognizer a record has a figure of (a lookalike record has both) measures the fill again
    names = tuple(dict.fromkeys([*config.verify, *(n for r in recognizable for n in r.verification)]))
    embeddings = _verify(original, anonymized, recognizable, names, with_embeddings=True)
    assert embeddings is not None  # with_embeddings=True returns them
    for record in recognizable:
        if record.lookalike is not None:
            _remeasured(record, embeddings[record.index], crowd)
    return anonymized


def _remeasured(record: FaceRecord, embeddings: dict, crowd) -> None:
    """The lookalike record of a face filled after the fact: its recognizer figures as measured on the
    fill; figures that could not be measured again are dropped rather than left describing other pixels."""
    details = record.lookalike
    assert details is not None
    figures = {}
    for name, old in (details.recognizers or {}).items():
        if name not in embeddings:
            continue  # not measured on the fill: no figure is better than a stale one
        entry = {**record.verification[name], "steered": old.get("steered", False)}
        if crowd is not None and name in embeddings and name in getattr(crowd, "recognizers", ()):
            before, after = embeddings[name]
            entry.update(crowd.ranks({name: after}, {name: before})[name])
        figures[name] = entry
    details.recognizers, details.fallback = figures, record.fallback
    details.reached = not any(v["match"] for v in record.verification.values())
    details.perceptual_similarity = None  # measured on the lookalike that was filled over


def _merge(config: AnonymizeConfig | None, method: str | None, options: dict) -> AnonymizeConfig:
    config = config or AnonymizeConfig()
    if method is not None:
        options = {**options, "method": method}
    if options:
        config = AnonymizeConfig.model_validate({**config.model_dump(), **options})
    return config


def _blend(original: np.ndarray, treated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = original.copy()
    for box in mask_regions(mask):
        out[box] = blend_under_mask(original[box], treated[box], mask[box])
    return out


def _verify(
    original: np.ndarray,
    anonymized: np.ndarray,
    records: list[FaceRecord],
    names: tuple[str, ...],
    with_embeddings: bool = False,
) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] | None:
    """Embed each face before and after at the original face's position (an attacker knows where it was).
    With ``with_embeddings``: ``{face index: {recognizer: (before, after)}}``."""
    embeddings: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name in names:
        recognizer = get_recognizer(name)
        for record in records:
            before = recognizer.embed(original, record.face)
            after = recognizer.embed(anonymized, record.face)
            distance = float(recognizer.distance(before, after))
            record.verification[name] = {
                "distance": round(distance, 4),
                "threshold": recognizer.threshold,
                "match": recognizer.matches_distance(distance),
            }
            embeddings.setdefault(record.index, {})[name] = (before, after)
    return embeddings if with_embeddings else None
