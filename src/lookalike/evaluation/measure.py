"""Measure one image: its original faces once, then each anonymized version of it against them.

Protection is measured where the original face was, with the original's alignment (an attacker knows
where the face was), whether or not a detector still finds a face there. Utility is measured on the
face a detector finds at the same place in the anonymized image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lookalike.detection import DetectorConfig, detect_faces
from lookalike.evaluation import metrics
from lookalike.evaluation.defects import Defects, face_defects
from lookalike.faces import Rotations, detect
from lookalike.identity import get_recognizer
from lookalike.landmarks import add_landmarks
from lookalike.perception import load_model
from lookalike.perception.features import appearance, normalized_shape
from lookalike.perception.model import similarity
from lookalike.synthesis import ellipse_mask, face_ellipse
from lookalike.types import Face

#: Why a face could not be measured in an anonymized version; such faces count as recognized and not
#: detected (see docs/metrics.md), never leave the denominators.
Unmeasured = Literal["missing", "unreadable", "size_mismatch", "method_failed"]


class EvaluationConfig(BaseModel):
    """How faces are found and measured; the defaults are the ones the README figures use.

    recognizers: attackers; each measures every face.
    rotations, threshold: detector settings for originals and anonymized images (as in ``anonymize``).
    face_scale: the face region, whose outside must not change, is the face ellipse the anonymizer fits
        (forehead to chin) enlarged by this factor; the default covers ``anonymize``'s default mask
        (1.3) with its feathered edge down to 1/255 strength.
    pair_iou: a face found in the anonymized image is "the same face" when its box overlaps the
        original's by at least this intersection over union.
    thumbnail: side of the face thumbnails kept for the report's galleries, pixels.
    perception: also measure the learned perceptual similarity to the original and the predicted
        human-perceived attributes (the shipped PerFace head; needs both recognizers), on the faces
        still detected.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    recognizers: tuple[Literal["dlib", "facenet", "mobileface"], ...] = ("dlib", "facenet")
    rotations: Rotations = "coarse"
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    face_scale: float = Field(1.7, ge=1.0, le=4.0)
    perception: bool = True
    pair_iou: float = Field(0.3, gt=0.0, le=1.0)
    thumbnail: int = Field(112, ge=32, le=512)


@dataclass
class OriginalFaces:
    """The faces of an original image and what every anonymized version is compared with."""

    faces: list[Face]
    embeddings: dict[str, np.ndarray]  # recognizer -> (n_faces, dim)
    thumbnails: list[bytes]
    face_region: np.ndarray = field(repr=False)  # bool (H, W): union of the enlarged face ellipses
    seconds: float = 0.0
    perceived: list[tuple[np.ndarray, np.ndarray] | None] = field(
        default_factory=list, repr=False
    )  # (embedding, attributes)


@dataclass
class FaceOutcome:
    """One original face in one anonymized version."""

    index: int
    status: str  # "measured" or an :data:`Unmeasured` reason
    embeddings: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    distances: dict[str, float] = field(default_factory=dict)
    detected: bool = False
    landmark_error: float | None = None
    pose_error: float | None = None
    mouth_error: float | None = None
    eye_error: float | None = None
    face_ssim: float | None = None
    perceptual_similarity: float | None = None
    attributes: np.ndarray | None = field(default=None, repr=False)  # predicted ratings of the anonymized face
    thumbnail: bytes | None = field(default=None, repr=False)
    fallback: str | None = None  # what the method says it fell back to for this face, if anything
    defects: Defects | None = None  # what a viewer would flag, counted (lookalike.evaluation.defects)


@dataclass
class VariantOutcome:
    """One anonymized version of one image: its faces, and what changed outside them."""

    label: str
    status: str  # "measured" or an :data:`Unmeasured` reason
    faces: list[FaceOutcome]
    error: str | None = None
    extra_faces: int = 0
    ssim_outside: float | None = None
    psnr_outside: float | None = None
    seconds: float | None = None  # the method's own time (benchmark only)


def measure_original(rgb: np.ndarray, config: EvaluationConfig) -> OriginalFaces:
    """Find the faces of an original RGB uint8 image and embed each with every recognizer."""
    faces = detect(rgb, threshold=config.threshold, rotations=config.rotations)
    embeddings: dict[str, np.ndarray] = {}
    for name in config.recognizers:
        recognizer = get_recognizer(name)
        crops = [recognizer.align(rgb, face) for face in faces]
        embeddings[name] = (
            recognizer.embed_aligned(np.stack(crops)) if crops else np.zeros((0, recognizer.embedding_size), np.float32)
        )
    region = ellipse_mask(rgb.shape, [face_ellipse(f, config.face_scale) for f in faces]) > 0
    thumbs = [thumbnail(rgb, f, config.thumbnail) for f in faces]
    original = OriginalFaces(faces=faces, embeddings=embeddings, thumbnails=thumbs, face_region=region)
    if _perceiving(config):
        original.perceived = [
            _perceive(rgb, face, {n: embeddings[n][i] for n in embeddings}) for i, face in enumerate(faces)
        ]
    return original


def _perceiving(config: EvaluationConfig) -> bool:
    return config.perception and {"dlib", "facenet"} <= set(config.recognizers)


def _perceive(rgb: np.ndarray, face: Face, embeddings: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """Perceptual embedding and predicted attributes of a face whose recognizer embeddings are known."""
    if face.landmarks is None:
        return None
    model = load_model()
    parts = {
        "dlib": embeddings["dlib"][None],
        "facenet": embeddings["facenet"][None],
        "shape": normalized_shape(face.landmarks)[None],
        "appearance": appearance(rgb, face.landmarks)[None],
    }
    return model.embed(parts)[0], model.attributes(parts)[0]


def measure_versions(
    original_rgb: np.ndarray,
    original: OriginalFaces,
    versions: dict[str, np.ndarray],
    config: EvaluationConfig,
    *,
    whole_image: bool = False,
) -> dict[str, VariantOutcome]:
    """Compare anonymized versions (label -> RGB uint8 image) with their original, face by face.

    All versions' faces go through each recognizer in one batch. ``whole_image`` also searches each
    version's whole picture for faces that are near no original face (``extra_faces``); without it
    only the surroundings of the original faces are searched, which suits methods that change nothing
    else (the benchmark's).
    """
    outcomes: dict[str, VariantOutcome] = {}
    found: dict[str, list[Face]] = {}
    for label, rgb in versions.items():
        if rgb.shape != original_rgb.shape:
            outcomes[label] = unmeasured(
                original, label, "size_mismatch", f"anonymized image is {_size(rgb)}, original is {_size(original_rgb)}"
            )
            continue
        found[label] = detect_near(rgb, original.faces, config)
        pairs = metrics.pair_faces(original.faces, found[label], config.pair_iou)
        elsewhere = found[label]
        if whole_image:
            elsewhere = detect(rgb, threshold=config.threshold, rotations=config.rotations, landmarks=False)
        extra = sum(
            all(metrics.box_iou(face.box, o.box) < config.pair_iou for o in original.faces) for face in elsewhere
        )
        outcomes[label] = VariantOutcome(
            label=label,
            status="measured",
            extra_faces=extra,
            faces=[FaceOutcome(index=i, status="measured", detected=j is not None) for i, j in enumerate(pairs)],
        )
        _likeness(original_rgb, original, rgb, outcomes[label], config)
        for face_outcome, face in zip(outcomes[label].faces, original.faces):
            face_outcome.defects = face_defects(original_rgb, rgb, face)
        for outcome, face, j in zip(outcomes[label].faces, original.faces, pairs):
            if j is not None:
                _geometry(outcome, face, found[label][j])
    if found and original.faces:
        _identity(original_rgb, original, {label: versions[label] for label in found}, outcomes, config)
        if _perceiving(config):
            for label in found:
                _perception(versions[label], original, found[label], outcomes[label], config)
    return outcomes


def _perception(
    rgb: np.ndarray, original: OriginalFaces, found: list[Face], outcome: VariantOutcome, config: EvaluationConfig
) -> None:
    """Perceptual similarity and predicted attributes of each face still detected (shape from its own mesh)."""
    pairs = metrics.pair_faces(original.faces, found, config.pair_iou)
    for face_outcome, j, reference in zip(outcome.faces, pairs, original.perceived):
        if j is None or reference is None or len(face_outcome.embeddings) < 2:
            continue
        perceived = _perceive(rgb, found[j], face_outcome.embeddings)
        if perceived is not None:
            face_outcome.perceptual_similarity = float(similarity(reference[0], perceived[0]))
            face_outcome.attributes = perceived[1]


def _identity(
    original_rgb: np.ndarray,
    original: OriginalFaces,
    versions: dict[str, np.ndarray],
    outcomes: dict[str, VariantOutcome],
    config: EvaluationConfig,
) -> None:
    """Embed every face of every version at its original's place, with its original's alignment."""
    for name in config.recognizers:
        recognizer = get_recognizer(name)
        crops = [
            recognizer.align(rgb, face, reference=original_rgb) for rgb in versions.values() for face in original.faces
        ]
        vectors = recognizer.embed_aligned(np.stack(crops)).reshape(len(versions), len(original.faces), -1)
        for label, per_face in zip(versions, vectors):
            distances = np.atleast_1d(recognizer.distance(original.embeddings[name], per_face))
            for outcome, vector, distance in zip(outcomes[label].faces, per_face, distances):
                outcome.embeddings[name] = vector
                outcome.distances[name] = float(distance)


def _likeness(
    original_rgb: np.ndarray,
    original: OriginalFaces,
    rgb: np.ndarray,
    outcome: VariantOutcome,
    config: EvaluationConfig,
) -> None:
    """Pixel similarity: SSIM inside each face, SSIM and PSNR outside the enlarged face region."""
    similarity = metrics.ssim_map(original_rgb, rgb)
    for face_outcome, face in zip(outcome.faces, original.faces):
        inside = ellipse_mask(original_rgb.shape, [face_ellipse(face)]) > 0.5
        face_outcome.face_ssim = float(similarity[inside].mean()) if inside.any() else None
        face_outcome.thumbnail = thumbnail(rgb, face, config.thumbnail)
    outside = metrics.outside_region(original.face_region)
    outcome.ssim_outside = float(similarity[outside].mean()) if outside.any() else None
    outcome.psnr_outside = metrics.psnr(original_rgb, rgb, outside)


#: Side of the window a face is looked for in (pixels) and the share of it the original face spans.
SEARCH_SIDE, SEARCH_SPAN = 256, 0.5


def detect_near(rgb: np.ndarray, faces: list[Face], config: EvaluationConfig) -> list[Face]:
    """Faces the detector finds around each of ``faces`` (with landmarks), duplicates merged.

    Each face is looked for in a window twice its size, resampled to SEARCH_SIDE pixels and turned so
    the original's eyes are level, in one detector pass: the same question for every face whatever the image
    size, and one pass instead of a whole-image pyramid for each anonymized version.
    """
    # one threshold whichever way the window is turned, so tilted faces are judged like upright ones
    threshold = DetectorConfig().score_threshold if config.threshold is None else config.threshold
    options: dict[str, Any] = {
        "coarse_side": SEARCH_SIDE,
        "max_side": SEARCH_SIDE,
        "upscale_below": 0,
        "score_threshold": threshold,
        "rotated_score_threshold": threshold,
    }
    found: list[Face] = []
    for face in faces:
        scale = SEARCH_SIDE * SEARCH_SPAN / max(face.width, face.height, 1.0)
        cx, cy = (float(v) for v in face.center)
        M = np.array([[scale, 0, SEARCH_SIDE / 2 - scale * cx], [0, scale, SEARCH_SIDE / 2 - scale * cy]])
        window = cv2.warpAffine(
            np.ascontiguousarray(rgb),
            M,
            (SEARCH_SIDE, SEARCH_SIDE),
            flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        upright = int(round(face.eye_angle / 90.0)) % 4 * 90  # the turn that levels the eyes
        for hit in detect_faces(window, DetectorConfig(rotations=(upright,), **options)):
            hit.box = ((hit.box.reshape(2, 2) - M[:, 2]) / scale).reshape(4).astype(np.float32)
            hit.keypoints = ((hit.keypoints - M[:, 2]) / scale).astype(np.float32)
            if all(metrics.box_iou(hit.box, other.box) < 0.5 for other in found):
                found.append(hit)
    return add_landmarks(rgb, found)


def unmeasured(original: OriginalFaces, label: str, reason: str, error: str) -> VariantOutcome:
    """A version that could not be compared: every original face is kept, marked with the reason."""
    return VariantOutcome(
        label=label,
        status=reason,
        error=error,
        faces=[FaceOutcome(index=i, status=reason) for i in range(len(original.faces))],
    )


def _geometry(outcome: FaceOutcome, original: Face, anonymized: Face) -> None:
    outcome.pose_error = metrics.pose_error(original, anonymized)
    if original.landmarks is None or anonymized.landmarks is None:
        return
    a, b = original.landmarks, anonymized.landmarks
    unit = metrics.interocular(a)  # both in the original's units, so a moved eye is not read as expression
    outcome.landmark_error = metrics.landmark_displacement(a, b)
    outcome.mouth_error = abs(metrics.mouth_opening(a, unit) - metrics.mouth_opening(b, unit))
    outcome.eye_error = abs(metrics.eye_opening(a, unit) - metrics.eye_opening(b, unit))


def thumbnail(rgb: np.ndarray, face: Face, side: int) -> bytes:
    """JPEG of a square crop centred on the face (1.6x its larger side), ``side`` pixels wide."""
    cx, cy = (float(v) for v in face.center)
    span = 1.6 * max(face.width, face.height, 1.0)
    scale = side / span
    M = np.array([[scale, 0, side / 2 - scale * cx], [0, scale, side / 2 - scale * cy]], np.float64)
    flags = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(
        np.ascontiguousarray(rgb),
        M,
        (side, side),
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(128, 128, 128),
    )
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes() if ok else b""


def _size(rgb: np.ndarray) -> str:
    return f"{rgb.shape[1]}x{rgb.shape[0]}"
