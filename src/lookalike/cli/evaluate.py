"""``lookalike evaluate`` and ``lookalike benchmark``: measure anonymization and write the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from lookalike.cli.console import err, file_error, out, progress_bar, usage_error
from lookalike.errors import LookalikeError

REPORT_DIR = Path("lookalike-report")

_JOBS_HELP = "Worker processes (default: one per CPU core; each loads the models once)."
_RECOGNIZERS_HELP = "Attacking recognizers, comma-separated: dlib, facenet, mobileface (default: dlib,facenet)."


def register(app: typer.Typer) -> None:
    """Add the two evaluation commands to the ``lookalike`` app."""
    app.command("evaluate")(evaluate_command)
    app.command("benchmark")(benchmark_command)


def evaluate_command(
    original: Annotated[Path, typer.Option("--original", help="Folder of original images.")],
    anonymized: Annotated[
        Path, typer.Option("--anonymized", help="Folder of anonymized images (same relative paths).")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Report folder (report.json, report.html, plots).")
    ] = REPORT_DIR,
    recognizers: Annotated[str, typer.Option(help=_RECOGNIZERS_HELP)] = "dlib,facenet",
    steered_by: Annotated[
        Optional[str],
        typer.Option(
            help="Recognizers the anonymizer consulted, comma-separated ('none' if it consulted none); the others are "
            "reported as held out. Unknown by default."
        ),
    ] = None,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N originals (sorted by path).")] = None,
    jobs: Annotated[Optional[int], typer.Option(help=_JOBS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Also print report.json on stdout.")] = False,
) -> None:
    """Measure a folder anonymized by any tool against its originals, face by face."""
    from lookalike.evaluation import evaluate_folders

    config = _config(recognizers)
    _check_limit(limit)
    steering = None if steered_by is None else _names(steered_by, "--steered-by", allow_none=True)
    _check_output(output, [original, anonymized])
    with progress_bar() as progress:
        task = progress.add_task("evaluating", total=None)
        try:
            run = evaluate_folders(
                original,
                anonymized,
                config,
                steered_by=steering,
                limit=limit,
                jobs=_jobs(jobs),
                exclude=(output,),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except LookalikeError as exc:
            file_error(err, str(exc))
            raise typer.Exit(1) from None
    _finish(run, output, as_json)


def benchmark_command(
    images: Annotated[Path, typer.Option("--images", help="Folder of original images.")],
    methods: Annotated[
        str,
        typer.Option(help="Methods, comma-separated; each runs at its default levels unless --levels says otherwise."),
    ] = "blur,pixelate,solid",
    levels: Annotated[
        Optional[list[str]],
        typer.Option(help="METHOD=L1,L2,... levels of one method, e.g. blur=0.05,0.1 (repeatable)."),
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Report folder (report.json, report.html, plots).")
    ] = REPORT_DIR,
    recognizers: Annotated[str, typer.Option(help=_RECOGNIZERS_HELP)] = "dlib,facenet",
    limit: Annotated[Optional[int], typer.Option(help="Only the first N images (sorted by path): a quick run.")] = None,
    jobs: Annotated[Optional[int], typer.Option(help=_JOBS_HELP)] = None,
    steer: Annotated[
        str,
        typer.Option(
            help="For methods that steer on recognizers (lookalike, checked-swap): all (default), both (dlib and "
            "facenet), or recognizer names joined by '+'; several sets comma-separated, one row each (all "
            "recognizers but one is a leave-one-out run)."
        ),
    ] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Also print report.json on stdout.")] = False,
) -> None:
    """Anonymize the same images with each method and level, and measure them side by side."""
    from lookalike.evaluation import run_benchmark

    config = _config(recognizers)
    _check_limit(limit)
    variants = _variants(methods, levels or [], steer)
    if not images.is_dir():
        usage_error(f"{images}: not a folder")
    _check_output(output, [images])
    with progress_bar() as progress:
        task = progress.add_task(f"benchmarking {len(variants)} method/levels", total=None)
        try:
            run = run_benchmark(
                images,
                variants,
                config,
                limit=limit,
                jobs=_jobs(jobs),
                exclude=(output,),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except LookalikeError as exc:
            file_error(err, str(exc))
            raise typer.Exit(1) from None
    _finish(run, output, as_json)


def _variants(methods: str, levels: list[str], steer: str = "all"):
    from lookalike.evaluation import variants as variants_of

    names = [m.strip() for m in methods.split(",") if m.strip()]
    if not names:
        usage_error("--methods: name at least one method")
    chosen: dict[str, list[str]] = {}
    for entry in levels:
        name, sep, values = entry.partition("=")
        if not sep or not values.strip():
            usage_error(f"--levels: expected METHOD=L1,L2,..., got {entry!r}")
        if name.strip() not in names:
            usage_error(f"--levels: {name.strip()!r} is not among --methods ({', '.join(names)})")
        chosen[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    from lookalike.identity import resolve_steering

    steers = [x.strip() for x in steer.split(",") if x.strip()]
    try:
        sets = [tuple(sorted(resolve_steering(x))) for x in steers]
    except ValueError as exc:
        usage_error(f"--steer: {exc}")
        raise  # usage_error exits; this line is for type checkers
    if not steers or len(set(sets)) != len(sets):
        usage_error(f"--steer: expected distinct steering sets, got {steer!r}")
    try:
        variants = [v for name in names for v in variants_of(name, chosen.get(name))]
        variants = [
            steered for v in variants for steered in ([v.steered(x) for x in steers] if v.method.steered_by else [v])
        ]
    except LookalikeError as exc:
        usage_error(str(exc))
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        usage_error(f"--methods/--levels: a method/level is listed twice ({', '.join(labels)})")
    return variants


def _config(recognizers: str):
    from lookalike.evaluation import EvaluationConfig

    return EvaluationConfig(recognizers=_names(recognizers, "--recognizers"))


def _names(text: str, option: str, allow_none: bool = False) -> tuple[str, ...]:
    from lookalike.identity import available_recognizers

    if allow_none and text.strip() == "none":
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names or any(n not in available_recognizers() for n in names):
        usage_error(f"{option}: expected names among {', '.join(available_recognizers())}, got {text!r}")
    return names


def _check_output(output: Path, inputs: list[Path]) -> None:
    """The report folder must be creatable and must not be an input folder (its files could replace inputs)."""
    for folder in inputs:
        if folder.exists() and output.resolve() == folder.resolve():
            usage_error(f"{output}: the report folder is an input folder; its files could replace inputs")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        usage_error(f"{output}: cannot create the report folder ({exc.strerror or exc})")


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        usage_error(f"--limit: must be at least 1, got {limit}")


def _jobs(jobs: int | None) -> int:
    if jobs is not None and jobs < 1:
        usage_error(f"--jobs: must be at least 1, got {jobs}")
    from lookalike.parallel import default_jobs

    return jobs or default_jobs()


def _finish(run, output: Path, as_json: bool) -> None:
    from lookalike.evaluation import write_report

    try:
        paths = write_report(run, output)
    except (LookalikeError, OSError) as exc:
        file_error(err, str(exc) if isinstance(exc, LookalikeError) else f"{output}: cannot write the report ({exc})")
        raise typer.Exit(1) from None
    report = run.report
    problems = _problems(report)
    for line in problems[:20]:
        file_error(err, line)
    if len(problems) > 20:
        err.print(f"... and {len(problems) - 20} more problems (see report.html)", highlight=False)
    if as_json:
        print(json.dumps(report, indent=1))
    # with --json, stdout carries only the JSON
    (err if as_json else out).print(_summary_table(report))
    files = report["files"]
    err.print(
        f"files: {files['total']} | measured: {files['measured']} | without faces: {files['no_face']} | "
        f"failed: {files['failed']} | faces: {files['faces']} | gallery: {report['gallery']['faces']} originals",
        highlight=False,
        soft_wrap=True,
    )
    if report["gallery"]["faces"] and report["gallery"]["faces"] < 200:
        err.print(
            "note: top-1 retrieval is only meaningful against a gallery of at least 200 originals",
            highlight=False,
            soft_wrap=True,
        )
    err.print(f"report: {paths['html']}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if problems else 0)


def _problems(report: dict) -> list[str]:
    """One line per file or file/version that could not be measured."""
    lines = [
        row["error"] or f"{row['file']}: {row['status']}" for row in report["per_file"] if row["status"] == "failed"
    ]
    for row in report["per_file"]:
        for label, variant in row["variants"].items():
            if variant["status"] != "measured":
                lines.append(f"{variant['error'] or row['file'] + ': ' + variant['status']} [{label}]")
    lines += [f"{path}: anonymized file has no original" for path in report.get("unpaired_anonymized") or []]
    return lines


def _summary_table(report: dict) -> Table:
    names = list(report["recognizers"])
    table = Table(
        title=f"lower match and top-1 = better protection (chance top-1: {_pct(report['gallery']['chance_top1'])})"
    )
    table.add_column("method/level", no_wrap=True)
    for column in ("faces", *[f"{n} match / top-1" for n in names], "detected", "face SSIM", "SSIM outside", "s/face"):
        table.add_column(column, justify="right")
    for v in report["variants"]:
        cells = [f"{_pct(v['protection'][n]['match_rate'])} / {_pct(v['protection'][n]['top1_rate'])}" for n in names]
        utility = v["utility"]
        table.add_row(
            v["label"],
            str(v["faces"]),
            *cells,
            _pct(utility["detection_rate"]),
            _num(utility["face_ssim"]["mean"], 3),
            _num(utility["ssim_outside"]["mean"], 4),
            _num(v["speed"]["seconds_per_face"], 3),
        )
    return table


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
