"""``lookalike anonymize | detect | embed``.

Progress and summaries go to stderr, machine-readable output (``--json``) to stdout. Exit codes: 0 all
files done, 1 some file failed, 2 bad usage.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional, cast

# mediapipe's C++ logging would otherwise print start-up chatter on every run
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer
from rich.markup import escape
from rich.table import Table

from lookalike.cli.console import err, file_error, out, progress_bar, pydantic_message, usage_error
from lookalike.errors import LookalikeError
from lookalike.identity import available_recognizers
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipeline.methods import METHODS, get_method
from lookalike.pipeline.privacy import DEFAULT_PRIVACY, PRIVACY_LEVELS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Anonymize faces in photos and folders; inspect detections and identity distances; "
    "measure how well faces are anonymized.",
)


#: ``--method`` and ``--privacy`` list what their registries hold
_METHOD_HELP = " | ".join(f"{spec.name} ({spec.description})" for spec in METHODS.values())
_PRIVACY_HELP = (
    "lookalike, checked-swap: " + " | ".join(PRIVACY_LEVELS) + " (how many reference-crowd faces each "
    "anonymized face must hide among: " + ", ".join(str(level.k) for level in PRIVACY_LEVELS.values()) + ")."
)


@app.command("anonymize")
def anonymize_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, video clips (MP4, MOV, MKV, WebM, AVI) and/or folders (searched recursively)."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder (created; same relative layout).")],
    method: Annotated[str, typer.Option(help=_METHOD_HELP)] = "blur",
    privacy: Annotated[str, typer.Option(help=_PRIVACY_HELP)] = DEFAULT_PRIVACY,
    steer: Annotated[
        str,
        typer.Option(
            help="lookalike, checked-swap: the recognizers the closed loop checks: all (default: every recognizer "
            "shipped) | both (dlib and facenet) | names joined by '+', e.g. dlib+facenet (leave-one-out "
            "experiments)."
        ),
    ] = "all",
    target_distance: Annotated[
        float,
        typer.Option(
            help="lookalike, checked-swap (expert): each checked recognizer's distance must exceed its threshold "
            "times this."
        ),
    ] = 1.0,
    seed: Annotated[
        int,
        typer.Option(
            help="lookalike, swap, checked-swap: picks among equally suitable donors; the same seed gives the same "
            "output."
        ),
    ] = 0,
    bank: Annotated[
        Optional[Path],
        typer.Option(help="lookalike: donor bank file (from `lookalike donors build`; default: the shipped one)."),
    ] = None,
    crowd: Annotated[
        Optional[Path],
        typer.Option(help="lookalike: reference crowd file (from `lookalike crowd build`; default: the shipped one)."),
    ] = None,
    mask_scale: Annotated[
        float,
        typer.Option(
            help="Enlarge the elliptic face mask by this factor (classic methods, and the lookalike methods' "
            "whole-face fallbacks)."
        ),
    ] = 1.3,
    threshold: Annotated[Optional[float], typer.Option(help="Detector confidence threshold (0-1).")] = None,
    rotations: Annotated[
        str,
        typer.Option(
            help="Turned faces: off (upright search only; finds faces turned up to ~150 degrees) | coarse (adds an "
            "upside-down whole-image search) | full (all four quarter turns, tiles included, ~4x detection time)."
        ),
    ] = "coarse",
    verify: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Measure each face against its original with this recognizer "
            f"({', '.join(available_recognizers())}); repeatable."
        ),
    ] = None,
    keep_metadata: Annotated[
        bool,
        typer.Option(
            "--keep-metadata",
            help="Keep EXIF (incl. GPS, without thumbnail), ICC and PNG text (all stripped by default).",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace existing files in OUTPUT and the --report file (inputs are never replaced); redo files the "
            "manifest records with other settings.",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Skip the files OUTPUT's manifest (lookalike-manifest.jsonl) records as done with the same settings "
            "and the same input bytes; do the rest.",
        ),
    ] = False,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse images with more pixels than this (decompression bombs).")
    ] = DEFAULT_MAX_PIXELS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON on stdout.")] = False,
    report_file: Annotated[
        Optional[Path],
        typer.Option(
            "--report",
            help="Also write the full JSON report to this new file (never an input; an existing file only with "
            "--overwrite).",
        ),
    ] = None,
) -> None:
    """Anonymize every face in the given images and video clips, writing the results under OUTPUT."""
    from pydantic import ValidationError

    from lookalike.errors import ImageError
    from lookalike.io.images import check_target, publish_bytes, resolved
    from lookalike.pipeline import AnonymizeConfig, anonymize_files, collect_inputs
    from lookalike.pipeline.batch import MANIFEST_NAME, ManifestConflict, check_manifest

    try:
        config = AnonymizeConfig(
            method=method,
            mask_scale=mask_scale,
            threshold=threshold,
            rotations=rotations,
            verify=tuple(verify or ()),
            privacy=privacy,
            steer=steer,
            target_distance=target_distance,
            seed=seed,
            bank=None if bank is None else str(bank),
            crowd=None if crowd is None else str(crowd),
        )
    except ValidationError as exc:
        usage_error(pydantic_message(exc))
    for option, path in (("--bank", bank), ("--crowd", crowd)):
        if path is not None and not path.is_file():
            usage_error(f"{option} {path}: no such file")
    if get_method(method).kind != "classic":
        from lookalike.pipeline.lookalike import load_bank, load_crowd

        for option, path, load in (("--bank", bank, load_bank), ("--crowd", crowd, load_crowd)):
            try:
                load(None if path is None else str(path))
            except Exception as exc:  # noqa: BLE001 - any unreadable file is one line, not a traceback
                usage_error(f"{option} {path or '(default)'}: cannot be read ({exc})")
    if os.path.lexists(output) and not output.is_dir():
        usage_error(f"{output}: the output path exists and is not a folder")
    if any(p.is_dir() and resolved(p) == resolved(output) for p in paths):
        usage_error(f"{output}: the output folder is an input folder; outputs would replace the originals")
    inputs, skipped = collect_inputs(paths, exclude=output, videos=True)
    if not inputs:
        usage_error("no image or video files found in the given paths")
    protected = frozenset(resolved(i.source) for i in inputs)
    if report_file is not None:  # checked before any work, so a refused report costs nothing
        planned = {resolved(output / i.relative) for i in inputs} | {resolved(output / MANIFEST_NAME)}
        if resolved(report_file) in planned:
            usage_error(f"--report {report_file}: is where this run writes an output or its manifest")
        try:
            check_target(report_file, protected, overwrite)
        except ImageError as exc:
            usage_error(f"--report {exc}")
    try:
        check_manifest(inputs, output, config, keep_metadata=keep_metadata, overwrite=overwrite)
    except ManifestConflict as exc:
        usage_error(str(exc))
    with progress_bar() as progress:
        task = progress.add_task("anonymizing", total=len(inputs))
        clip_task: dict = {}  # the current clip's frame bar (with frames per second), one at a time

        def on_file(result) -> None:
            if result.error:
                file_error(progress.console, result.error)
            if result.warning:
                progress.console.print(
                    f"[yellow]warning[/yellow] {escape(result.warning)}", highlight=False, soft_wrap=True
                )
            if "id" in clip_task:
                progress.remove_task(clip_task.pop("id"))
            progress.advance(task)

        def on_frames(item, done: int, total: int | None) -> None:
            if "id" not in clip_task:
                clip_task.update(id=progress.add_task(f"  {item.relative}", total=total), started=time.perf_counter())
            fps = done / max(time.perf_counter() - clip_task["started"], 1e-6)
            progress.update(
                clip_task["id"],
                completed=done,
                total=max(total or 0, done) if total else None,
                description=f"  {item.relative} ({fps:.1f} frames/s)",
            )

        try:
            report = anonymize_files(
                inputs,
                output,
                config,
                keep_metadata=keep_metadata,
                max_pixels=max_pixels,
                overwrite=overwrite,
                resume=resume,
                on_file=on_file,
                on_frames=on_frames,
            )
        except ManifestConflict as exc:
            usage_error(str(exc))
    report.skipped = skipped
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    failed = bool(report.failed)
    if report_file is not None:
        try:
            publish_bytes(
                report_file,
                json.dumps(report.to_dict(), indent=2).encode("utf-8"),
                overwrite=overwrite,
                protected=protected,
            )
        except LookalikeError as exc:
            file_error(err, str(exc))
            failed = True
    summary = report.to_dict()["summary"]
    err.print(
        (f"interrupted after {len(report.files)} of {report.planned} files | " if report.interrupted else "")
        + f"faces found: {summary['faces_found']} | files written: {summary['files_written']} | "
        f"failed: {summary['files_failed']} | without faces: {summary['files_without_faces']}"
        + (f" | skipped as done: {report.done_before}" if resume else "")
        + (
            f" | fell back to a stronger method: {report.fell_back} (see `fallback` in --json)"
            if report.fell_back
            else ""
        )
        + (f" | non-images skipped: {len(skipped)}" if skipped else ""),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(130 if report.interrupted else 1 if failed else 0)


@app.command("detect")
def detect_command(
    paths: Annotated[list[Path], typer.Argument(help="Image files and/or folders.")],
    draw: Annotated[
        Optional[Path], typer.Option(help="Write pictures with boxes, keypoints and landmarks drawn to this folder.")
    ] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Detector confidence threshold (0-1).")] = None,
    rotations: Annotated[str, typer.Option(help="Faces on their side / upside down: off | coarse | full.")] = "coarse",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print boxes, scores, keypoints, 478 landmarks and pose as JSON.")
    ] = False,
    max_pixels: Annotated[int, typer.Option(help="Refuse images with more pixels than this.")] = DEFAULT_MAX_PIXELS,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing pictures in the --draw folder.")
    ] = False,
) -> None:
    """Find faces: boxes, scores, 5 keypoints, 478 dense landmarks and head pose per face."""
    from typing import get_args

    from lookalike.faces import Rotations, detect
    from lookalike.io.images import load_image
    from lookalike.pipeline import collect_inputs
    from lookalike.visualize import draw_faces

    if rotations not in get_args(Rotations):
        usage_error(f"--rotations: expected one of {', '.join(get_args(Rotations))}, got {rotations!r}")
    inputs, _ = collect_inputs(paths, exclude=draw)
    if not inputs:
        usage_error("no image files found in the given paths")
    from lookalike.io.images import resolved

    results: list[dict[str, Any]] = []
    failed = 0
    protected = frozenset(resolved(i.source) for i in inputs)
    with progress_bar() as progress:
        task = progress.add_task("detecting", total=len(inputs))
        for item in inputs:
            try:
                image = load_image(item.source, max_pixels=max_pixels)
                faces = detect(image.rgb, threshold=threshold, rotations=cast(Rotations, rotations))  # checked above
                if draw is not None:
                    import numpy as np

                    from lookalike.io.images import compose_native, save_image

                    drawn = compose_native(
                        image, draw_faces(image.rgb, faces), np.ones(image.rgb.shape[:2], np.float32)
                    )
                    save_image(image, drawn, draw / item.relative, protected=protected, overwrite=overwrite)
                results.append({"source": str(item.source), "faces": [f.to_dict(with_landmarks=True) for f in faces]})
            except LookalikeError as exc:
                failed += 1
                file_error(progress.console, str(exc))
                results.append({"source": str(item.source), "error": str(exc), "faces": []})
            progress.advance(task)
    if as_json:
        print(json.dumps(results))
    else:
        table = Table("file", "face", "score", "box (x0, y0, x1, y1)", "yaw / pitch / roll", "landmarks")
        for entry in results:
            for i, face in enumerate(entry["faces"]):
                pose = face["pose"]
                table.add_row(
                    entry["source"],
                    str(i),
                    f"{face['score']:.2f}",
                    ", ".join(f"{v:.0f}" for v in face["box"]),
                    " / ".join(f"{pose[k]:.0f}" for k in ("yaw", "pitch", "roll")) if pose else "-",
                    "478" if face["landmarks"] is not None else "none",
                )
            if not entry["faces"]:
                table.add_row(entry["source"], "-", "-", entry.get("error") or "no face found", "-", "-")
        out.print(table)
    raise typer.Exit(1 if failed else 0)


@app.command("embed")
def embed_command(
    image_a: Annotated[Path, typer.Argument(help="First image (its largest face is used).")],
    image_b: Annotated[Path, typer.Argument(help="Second image (its largest face is used).")],
    recognizer: Annotated[Optional[list[str]], typer.Option(help="Recognizers to use (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Identity distance between the main faces of two images under each recognizer, with its verdict."""
    from lookalike.identity import available_recognizers
    from lookalike.identity.compare import compare_main_faces

    names = tuple(recognizer or available_recognizers())
    unknown = [n for n in names if n not in available_recognizers()]
    if unknown:
        usage_error(f"unknown recognizer {unknown[0]!r}; choose from {', '.join(available_recognizers())}")
    try:
        rows = compare_main_faces(image_a, image_b, names)
    except (LookalikeError, RuntimeError) as exc:
        file_error(err, str(exc))
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"a": str(image_a), "b": str(image_b), "recognizers": rows}, indent=2))
        return
    table = Table("recognizer", "distance", "threshold", "verdict")
    for row in rows:
        table.add_row(
            row["recognizer"],
            f"{row['distance']:.4f}",
            f"{row['threshold']:.4f}",
            "same person" if row["same"] else "different people",
        )
    out.print(table)


from lookalike.cli import donors as _donors  # noqa: E402
from lookalike.cli import evaluate as _evaluate  # noqa: E402
from lookalike.cli import perception as _perception  # noqa: E402
from lookalike.cli import saliency as _saliency  # noqa: E402

_donors.register(app)
_evaluate.register(app)
_perception.register(app)
_saliency.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
