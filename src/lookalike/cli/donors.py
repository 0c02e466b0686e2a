"""``lookalike donors build`` and ``lookalike crowd build``: the donor bank and the reference crowd."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.console import err, faces_option, file_error, progress_bar, usage_error

donors_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Build the bank of donor faces the lookalike method transplants from.",
)
crowd_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Build the reference crowd that anonymity is ranked against.",
)

_FACES_HELP = "Only images whose file name is a number in this range, e.g. 1-600 (keep hold-out faces out)."
_JOBS_HELP = "Worker processes (default: one per CPU core)."


def register(app: typer.Typer) -> None:
    app.add_typer(donors_app, name="donors")
    app.add_typer(crowd_app, name="crowd")


@donors_app.command("build")
def donors_build_command(
    folder: Annotated[
        Path, typer.Argument(help="Folder of face images (searched recursively); the largest face of each is used.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the bank (.npz).")],
    prototypes: Annotated[
        Optional[int],
        typer.Option(
            help="Make k-anonymous prototypes of K faces each (K >= 2; 4 is the default bank's) instead of one donor "
            "per face."
        ),
    ] = None,
    faces: Annotated[Optional[str], typer.Option(help=_FACES_HELP)] = None,
    size: Annotated[int, typer.Option(help="Side of the stored donor crops, pixels.")] = 256,
    keep_eyewear: Annotated[
        bool,
        typer.Option(
            "--keep-eyewear",
            help="Let faces with glasses into prototypes (kept out by default: they leave ghost frames).",
        ),
    ] = False,
    mirror: Annotated[
        bool,
        typer.Option(
            "--mirror",
            help="One donor per face only: also add each face mirrored left to right (a head turned either way finds "
            "a donor turned the same way; the pixels are stored once).",
        ),
    ] = False,
    jobs: Annotated[Optional[int], typer.Option(help=_JOBS_HELP)] = None,
) -> None:
    """Build a donor bank: aligned crops, landmarks, embeddings and provenance of every donor."""
    from lookalike.donors.bank import DonorBank

    if prototypes is not None and prototypes < 2:
        usage_error(f"--prototypes: a prototype averages at least 2 faces, got {prototypes}")
    if mirror and prototypes is not None:
        usage_error("--mirror: only for one donor per face (a prototype's mirror image is no one new)")
    if not 64 <= size <= 1024:
        usage_error(f"--size: between 64 and 1024 pixels, got {size}")
    paths, names, failed_inputs = _inputs(folder, faces, output)
    with progress_bar() as progress:
        task = progress.add_task("faces", total=len(paths))

        def advance(phase: str, done: int, total: int) -> None:
            progress.update(task, description=phase, completed=done, total=total)

        bank = DonorBank.build(
            paths,
            names=names,
            jobs=jobs or _default_jobs(),
            prototypes_k=prototypes,
            exclude_eyewear=not keep_eyewear,
            size=size,
            mirror=mirror,
            progress=advance,
        )
    report = bank.report
    assert report is not None  # DonorBank.build always leaves its report on the bank
    for message in report.failed.values():
        file_error(err, message)
    for label, message in report.dropped.items():
        err.print(f"dropped {label}: {message}", highlight=False, markup=False, soft_wrap=True)
    if len(bank) == 0:
        file_error(
            err,
            f"{folder}: no donors could be made (faces usable: "
            f"{report.images - len(report.failed) - len(report.no_face)})",
        )
        raise typer.Exit(1)
    options = (
        ([f"--prototypes {prototypes}"] if prototypes else [])
        + ([f"--size {size}"] if size != 256 else [])
        + (["--keep-eyewear"] if keep_eyewear else [])
        + (["--mirror"] if mirror else [])
    )
    bank.meta.update(_provenance("lookalike donors build", folder, output, faces, options))
    _write(bank, output)
    summary = (
        f"donors: {len(bank)} | images: {report.images} | failed: {len(report.failed) + failed_inputs} | "
        f"without a usable face: {len(report.no_face)}"
    )
    if prototypes:
        summary += (
            f" | kept out for eyewear: {len(report.eyewear)} | groups: {report.groups} | "
            f"faces left ungrouped: {report.ungrouped} | groups dropped: {len(report.dropped)}"
        )
        reasons = Counter(
            m.split(":")[0] if m.startswith(("not detected:", "one member:")) else "error"
            for m in report.dropped.values()
        )
        if reasons:
            summary += f" ({', '.join(f'{reason}: {count}' for reason, count in sorted(reasons.items()))})"
    err.print(summary, highlight=False, soft_wrap=True)
    err.print(f"bank written: {output} ({output.stat().st_size / 1e6:.1f} MB, {report.seconds:.0f} s)", highlight=False)
    raise typer.Exit(1 if report.failed or failed_inputs else 0)


@crowd_app.command("build")
def crowd_build_command(
    folder: Annotated[
        Path, typer.Argument(help="Folder of reference face images (searched recursively), none of them under test.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the crowd (.npz).")],
    faces: Annotated[Optional[str], typer.Option(help=_FACES_HELP)] = None,
    jobs: Annotated[Optional[int], typer.Option(help=_JOBS_HELP)] = None,
) -> None:
    """Build a reference crowd: both recognizers' embeddings of the largest face of every image."""
    from lookalike.identity.crowd import ReferenceCrowd

    paths, names, failed_inputs = _inputs(folder, faces, output)
    with progress_bar() as progress:
        task = progress.add_task("embedding", total=len(paths))
        crowd = ReferenceCrowd.build(
            paths,
            names=names,
            jobs=jobs or _default_jobs(),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    for message in crowd.failed.values():
        file_error(err, message)
    if len(crowd) == 0:
        file_error(err, f"{folder}: no face found in any image")
        raise typer.Exit(1)
    crowd.meta.update(_provenance("lookalike crowd build", folder, output, faces, []))
    _write(crowd, output)
    err.print(
        f"crowd faces: {len(crowd)} | images: {len(paths)} | failed: {len(crowd.failed) + failed_inputs} | "
        f"without a face: {len(crowd.skipped)}",
        highlight=False,
        soft_wrap=True,
    )
    err.print(f"crowd written: {output} ({output.stat().st_size / 1e6:.2f} MB)", highlight=False)
    raise typer.Exit(1 if crowd.failed or failed_inputs else 0)


def _inputs(folder: Path, faces: str | None, output: Path) -> tuple[list[Path], list[str], int]:
    """Image files under ``folder`` (names relative to it) within ``--faces``; exits 2 on bad usage.

    Also returns how many entries could not be listed (an unreadable sub-folder), reported as failures.
    """
    from lookalike.pipeline import collect_inputs

    face_range = faces_option(faces)
    if not folder.is_dir():
        usage_error(f"{folder}: not a folder")
    if output.exists() and output.is_dir():
        usage_error(f"{output}: is a folder; give a file name for the output")
    inputs, _ = collect_inputs([folder], exclude=output)
    listed = [item for item in inputs if item.source.is_file()]
    unlisted = [item for item in inputs if not item.source.is_file()]
    for item in unlisted:
        file_error(err, f"{item.source}: could not be read")
    if face_range is not None:
        low, high = face_range
        listed = [item for item in listed if item.source.stem.isdigit() and low <= int(item.source.stem) <= high]
    if not listed:
        usage_error(f"{folder}: no image files" + (f" numbered {faces}" if faces else ""))
    return [item.source for item in listed], [item.relative.as_posix() for item in listed], len(unlisted)


def _write(thing, output: Path) -> None:
    """``thing.save(output)``, or one line naming the file and exit 1."""
    from lookalike.errors import LookalikeError

    try:
        thing.save(output)
    except LookalikeError as exc:
        file_error(err, str(exc))
        raise typer.Exit(1) from None


def _provenance(command: str, folder: Path, output: Path, faces: str | None, extra: list[str]) -> dict:
    import lookalike

    return {
        "command": " ".join([command, str(folder), f"-o {output}"] + ([f"--faces {faces}"] if faces else []) + extra),
        "source": str(folder),
        "faces": faces or "all",
        "lookalike": getattr(lookalike, "__version__", ""),
    }


def _default_jobs() -> int:
    from lookalike.parallel import default_jobs

    return default_jobs()
