"""From per-image measurements to the report: retrieval ranks against the gallery of all originals,
per-face rows, and one aggregate row per method/level.

Counting rules (also in ``docs/metrics.md``): every face found in an original is in every denominator.
A face whose anonymized version could not be measured (file missing or unreadable, size changed,
method failed) counts as matched, retrieved at rank 1 and not detected, because nothing shows it is
protected; it is left out of distance and geometry averages, whose ``n`` says how many faces they cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.donors.pool import ETHNICITIES
from lookalike.evaluation.defects import DEFECTS, fallback_kind
from lookalike.evaluation.measure import OriginalFaces, VariantOutcome
from lookalike.evaluation.metrics import retrieval_rank
from lookalike.identity import get_recognizer
from lookalike.perception import load_model

#: Every metric in the report, with its direction; the report and the docs are generated from this.
METRICS: dict[str, tuple[str, str]] = {
    "match_rate": (
        "lower",
        "share of faces whose anonymized version the recognizer still verifies as the "
        "same person as its own original (distance <= the recognizer's threshold)",
    ),
    "top1_rate": (
        "lower",
        "share of faces whose own original is the nearest of all originals in the gallery "
        "(chance level: 1 / gallery size)",
    ),
    "top5_rate": ("lower", "share of faces whose own original is among the 5 nearest originals"),
    "median_rank": ("higher", "median rank of the own original among all originals (1 = nearest)"),
    "distance": ("higher", "identity distance between the anonymized face and its own original"),
    "detection_rate": ("higher", "share of faces a detector still finds at the same place (box IoU >= pair_iou)"),
    "landmark_error": ("lower", "mean displacement of the 478 landmarks, in inter-ocular distances"),
    "pose_error": ("lower", "mean absolute yaw/pitch/roll difference, degrees"),
    "mouth_error": ("lower", "absolute change of the inner-lip gap, in inter-ocular distances"),
    "eye_error": ("lower", "absolute change of the mean eyelid gap, in inter-ocular distances"),
    "face_ssim": ("higher", "SSIM inside the face ellipse: pixel-level likeness of the face to the original"),
    "perceptual_similarity": (
        "higher",
        "learned perceptual similarity (PerFace head, 0..1) of the anonymized face to "
        "the original, on faces still detected",
    ),
    "attribute_mad": (
        "lower",
        "mean absolute change of each predicted human-perceived attribute (0-100 rating "
        "scale: age, gender, skin colour, hair colour, long hair, happy), faces still detected",
    ),
    "attribute_correlation": (
        "higher",
        "correlation across faces between each predicted attribute of the original and of the anonymized face",
    ),
    "fallback_rate": (
        "lower",
        "share of faces the method says it fell back on a stronger method for (it could not "
        "reach its target otherwise)",
    ),
    "fallback_kinds": ("lower", "faces by what the method fell back to: none, blurred lookalike, blur, solid"),
    "seam": (
        "lower",
        "edge energy added on the skin, chin, jaw and just outside the face outline, relative to the "
        "original's there (0: none; seams, patches, outlines, foreign texture add it)",
    ),
    "hair": (
        "lower",
        "share of forehead and cheek skin much darker than the person's skin that the original did not "
        "have (strands or a band of a donor's fringe)",
    ),
    "frames": ("higher", "faces with glasses: share of the frames' evidence across the nose bridge kept (1: all)"),
    "contours": (
        "lower",
        "strong edges per outline point, walking through the cheek and jaw outline, that the "
        "original has nowhere near (a second jaw line or outline)",
    ),
    "ssim_outside": ("higher", "SSIM outside the enlarged face region, per image (1 = untouched)"),
    "psnr_outside": ("higher", "PSNR outside the enlarged face region, dB, per image (100 = identical)"),
    "seconds_per_face": ("lower", "the method's own time per face (detection shared by all methods excluded)"),
}


#: What is measured of each anonymized face beside protection, per face and summed up per variant.
FACE_FIGURES = ("landmark_error", "pose_error", "mouth_error", "eye_error", "face_ssim", "perceptual_similarity")


@dataclass
class ImageOutcome:
    """Everything measured for one input image."""

    file: str
    status: str  # "measured", "no_face" or "failed"
    error: str | None = None
    original: OriginalFaces | None = None
    variants: dict[str, VariantOutcome] = field(default_factory=dict)
    seconds: float = 0.0  # detection, landmarks and embedding of the original


def summarize(
    images: list[ImageOutcome],
    labels: list[str],
    recognizers: tuple[str, ...],
    steering: dict[str, tuple[str, ...] | None] | None = None,
) -> dict:
    """Ranks, per-face rows and one aggregate row per label; JSON-ready.

    ``steering`` maps a label to the recognizers its method consulted (None: unknown).
    """
    steering = steering or {}
    gallery, owners = _gallery(images, recognizers)
    per_face, per_file = [], []
    attribute_pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for image in images:
        per_file.append(_file_row(image, labels))
        if image.original is None:
            continue
        for label in labels:
            variant = image.variants.get(label)
            for outcome in variant.faces if variant else []:
                row = {
                    "file": image.file,
                    "face": outcome.index,
                    "variant": label,
                    "status": outcome.status,
                    "box": [round(float(v), 1) for v in image.original.faces[outcome.index].box],
                    "detected": outcome.detected,
                }
                for name in recognizers:
                    row.update(_protection(name, outcome, gallery[name], owners.index((image.file, outcome.index))))
                for key in FACE_FIGURES:
                    value = getattr(outcome, key)
                    row[key] = None if value is None else round(value, 4)
                row["fallback"] = outcome.fallback
                defects = outcome.defects.to_dict() if outcome.defects else dict.fromkeys(DEFECTS)
                row.update({f"defect_{k}": v for k, v in defects.items()})
                per_face.append(row)
                reference = image.original.perceived[outcome.index] if image.original.perceived else None
                if outcome.attributes is not None and reference is not None:
                    attribute_pairs.setdefault(label, []).append((reference[1], outcome.attributes))

    variants = []
    for label in labels:
        rows = [r for r in per_face if r["variant"] == label]
        outcomes = [image.variants[label] for image in images if label in image.variants]
        steered = steering.get(label, ())  # None: unknown (a folder anonymized by another tool)
        variants.append(
            {
                "label": label,
                "faces": len(rows),
                "steered_by": None if steered is None else list(steered),
                "held_out": None if steered is None else [n for n in recognizers if n not in steered],
                "unmeasured_faces": sum(r["status"] != "measured" for r in rows),
                "protection": {name: _protection_summary(name, rows) for name in recognizers},
                "utility": _utility_summary(rows, outcomes)
                | {"attributes": _attribute_summary(attribute_pairs.get(label, []))},
                "speed": _speed_summary(outcomes),
            }
        )
    return {
        "gallery": {
            "faces": len(owners),
            "chance_top1": round(1.0 / len(owners), 5) if owners else None,
            "nearest_other_original": {n: _stats(_nearest_other(gallery[n], n)) for n in recognizers},
        },
        "files": _file_counts(images),
        "detection_seconds_per_image": _mean([i.seconds for i in images if i.original is not None]),
        "variants": variants,
        "per_file": per_file,
        "per_face": per_face,
    }


def _gallery(images: list[ImageOutcome], recognizers: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list]:
    owners = [(i.file, k) for i in images if i.original is not None for k in range(len(i.original.faces))]
    gallery = {}
    for name in recognizers:
        parts = [i.original.embeddings[name] for i in images if i.original is not None and len(i.original.faces)]
        gallery[name] = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    return gallery, owners


def _protection(name: str, outcome, gallery: np.ndarray, own: int) -> dict:
    if outcome.status != "measured" or name not in outcome.embeddings:
        # unmeasured: nothing shows the face is protected, so it counts as found
        return {f"{name}_distance": None, f"{name}_rank": 1, f"{name}_match": True}
    recognizer = get_recognizer(name)
    distances = np.atleast_1d(recognizer.distance(gallery, outcome.embeddings[name][None]))
    rank = retrieval_rank(distances, own)
    distance = outcome.distances[name]
    return {
        f"{name}_distance": round(distance, 4),
        f"{name}_rank": rank,
        f"{name}_match": recognizer.matches_distance(distance),
    }


def _nearest_other(gallery: np.ndarray, name: str) -> list[float]:
    """Each original's distance to the nearest other original: how crowded the gallery is."""
    if len(gallery) < 2:
        return []
    recognizer = get_recognizer(name)
    nearest = []
    for i in range(len(gallery)):
        d = np.atleast_1d(recognizer.distance(gallery, gallery[i][None])).astype(np.float64)
        d[i] = np.inf
        nearest.append(float(d.min()))
    return nearest


def _protection_summary(name: str, rows: list[dict]) -> dict:
    n = len(rows)
    ranks = [r[f"{name}_rank"] for r in rows]
    distances = [r[f"{name}_distance"] for r in rows if r[f"{name}_distance"] is not None]
    threshold = get_recognizer(name).threshold
    return {
        "threshold": threshold,
        "match_rate": _rate(sum(r[f"{name}_match"] for r in rows), n),
        "top1_rate": _rate(sum(k == 1 for k in ranks), n),
        "top5_rate": _rate(sum(k <= 5 for k in ranks), n),
        "median_rank": float(np.median(ranks)) if ranks else None,
        "distance": _stats(distances),
    }


def _utility_summary(rows: list[dict], outcomes: list[VariantOutcome]) -> dict:
    measured = [o for o in outcomes if o.status == "measured"]
    measured_rows = [r for r in rows if r["status"] == "measured"]  # a failed method reports no fallback
    return {
        "detection_rate": _rate(sum(r["detected"] for r in rows), len(rows)),
        "fallback_rate": _rate(sum(r["fallback"] is not None for r in measured_rows), len(measured_rows)),
        "fallback_kinds": {
            kind: sum(fallback_kind(r["fallback"]) == kind for r in measured_rows)
            for kind in ("none", "blurred lookalike", "blur", "solid", "other")
        },
        "defects": {
            key: _stats([r[f"defect_{key}"] for r in measured_rows if r.get(f"defect_{key}") is not None])
            for key in DEFECTS
        },
        **{key: _stats([r[key] for r in rows if r[key] is not None]) for key in FACE_FIGURES},
        "ssim_outside": _stats([o.ssim_outside for o in measured if o.ssim_outside is not None]),
        "psnr_outside": _stats([o.psnr_outside for o in measured if o.psnr_outside is not None]),
        "extra_faces": sum(o.extra_faces for o in measured),
    }


#: Predicted attributes the report follows: what a viewer notices first about a face.
KEY_ATTRIBUTES = ("age", "gender", "skin-color", "hair-color", "long-haired", "happy", *ETHNICITIES)
#: A perceived-ethnicity rating (0-100) that moves by more than this counts as an ethnicity changed.
ETHNICITY_MOVED = 25.0


def _attribute_summary(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Per key attribute: mean absolute change and correlation (original vs anonymized) over the faces."""
    if not pairs:
        return {"n": 0}

    names = load_model().attribute_names
    before, after = (np.asarray([p[k] for p in pairs], np.float64) for k in (0, 1))
    out: dict = {"n": len(pairs)}
    for name in KEY_ATTRIBUTES:
        if name not in names:
            continue
        a, b = before[:, names.index(name)], after[:, names.index(name)]
        r = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else None
        out[name] = {"mad": _round(np.abs(a - b).mean(), 3), "correlation": _round(r, 4)}
    ethnic = [names.index(name) for name in ETHNICITIES if name in names]
    if ethnic:  # what a viewer reads as a changed ethnicity: any perceived-ethnicity rating moved a lot
        moved = np.abs(before[:, ethnic] - after[:, ethnic]).max(axis=1)
        out["ethnicity_moved_over_25"] = _round(float((moved > ETHNICITY_MOVED).mean()), 4)
    return out


def _speed_summary(outcomes: list[VariantOutcome]) -> dict:
    timed = [o for o in outcomes if o.seconds is not None]
    faces = sum(len(o.faces) for o in timed)
    total = sum(o.seconds for o in timed if o.seconds is not None)
    return {
        "seconds_per_face": round(total / faces, 4) if faces else None,
        "seconds_per_image": round(total / len(timed), 4) if timed else None,
    }


def _file_row(image: ImageOutcome, labels: list[str]) -> dict:
    row: dict[str, Any] = {
        "file": image.file,
        "status": image.status,
        "error": image.error,
        "faces": len(image.original.faces) if image.original else 0,
        "variants": {},
    }
    for label in labels:
        v = image.variants.get(label)
        if v is not None:
            row["variants"][label] = {
                "status": v.status,
                "error": v.error,
                "extra_faces": v.extra_faces,
                "ssim_outside": _round(v.ssim_outside),
                "psnr_outside": _round(v.psnr_outside),
                "seconds": _round(v.seconds),
            }
    return row


def _file_counts(images: list[ImageOutcome]) -> dict:
    counts = {"total": len(images)}
    for status in ("measured", "no_face", "failed"):
        counts[status] = sum(i.status == status for i in images)
    counts["faces"] = sum(len(i.original.faces) for i in images if i.original)
    return counts


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "mean": None, "median": None, "p10": None, "p90": None, "min": None, "max": None}
    v = np.asarray(values, np.float64)
    return {
        "n": int(v.size),
        "mean": _round(v.mean()),
        "median": _round(np.median(v)),
        "p10": _round(np.percentile(v, 10)),
        "p90": _round(np.percentile(v, 90)),
        "min": _round(v.min()),
        "max": _round(v.max()),
    }


def _rate(count: int, n: int) -> float | None:
    return round(count / n, 5) if n else None


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _round(value: float | np.floating | None, digits: int = 5) -> float | None:
    return None if value is None else round(float(value), digits)
