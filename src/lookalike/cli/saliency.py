"""``lookalike saliency``: which regions of each face carry its identity, as a picture, a table or JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from lookalike.cli.console import err, file_error, out, progress_bar, usage_error
from lookalike.errors import LookalikeError


def register(app: typer.Typer) -> None:
    app.command("saliency")(saliency_command)


def saliency_command(
    image_path: Annotated[Path, typer.Argument(metavar="IMAGE", help="An image with one or more faces.")],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "-o",
            "--output",
            help="Write the picture (PNG): heatmap with colour bar, the mask, ranked regions, one row per face.",
        ),
    ] = None,
    recognizer: Annotated[str, typer.Option(help="facenet | dlib | both (shares and maps averaged).")] = "facenet",
    method: Annotated[
        str,
        typer.Option(help="occlusion (any recognizer) | gradient (FaceNet only: faster, finer map, weaker ranking)."),
    ] = "occlusion",
    greedy_steps: Annotated[
        int,
        typer.Option(
            min=1,
            max=8,
            help="Occlusion: choose the first N-1 features one after another, each measured with the ones before "
            "removed (slower, ranks better).",
        ),
    ] = 1,
    strength: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Show the mask this strength selects: the fewest regions holding this share of the face's identity.",
        ),
    ] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print every face's record as JSON on stdout.")] = False,
) -> None:
    """Identity saliency of every face: a heatmap, the ranked named regions and the mask a strength selects."""
    from lookalike.faces import detect
    from lookalike.io.images import load_image, write_bytes_atomic
    from lookalike.saliency import SaliencyConfig, identity_saliency, resolve_methods, select_regions

    config = SaliencyConfig(greedy_steps=greedy_steps)

    try:
        resolve_methods(recognizer, method)
    except ValueError as exc:
        usage_error(str(exc))
    if output is not None:
        if output.suffix.lower() != ".png":
            usage_error(f"{output}: the picture is written as PNG; name it *.png")
        if output.exists() and image_path.exists() and output.resolve() == image_path.resolve():
            usage_error(f"{output}: this is the input image; it is never overwritten")
    try:
        image = load_image(image_path)
    except LookalikeError as exc:
        file_error(err, str(exc))
        raise typer.Exit(1) from None
    faces = detect(image.rgb)
    saliencies = []
    if faces:
        with progress_bar() as progress:
            task = progress.add_task("identity saliency", total=len(faces))
            for face in faces:
                saliencies.append(identity_saliency(image.rgb, face, recognizer, method, config))
                progress.advance(task)
    else:
        err.print(f"{image_path}: no face found", highlight=False, markup=False, soft_wrap=True)
    records = []
    for index, saliency in enumerate(saliencies, 1):
        record = {"face": index, **saliency.to_dict()}
        if saliency.status != "skipped":
            record["mask"] = {"strength": strength, "regions": select_regions(saliency, strength)}
        records.append(record)
    if output is not None:
        from lookalike.saliency.figure import saliency_figure

        figure = saliency_figure(image.rgb, saliencies, strength, title=f"{image_path.name}: identity saliency")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        try:
            write_bytes_atomic(output, buffer.getvalue())
        except LookalikeError as exc:
            file_error(err, str(exc))
            raise typer.Exit(1) from None
        err.print(f"picture written to {output}", highlight=False, markup=False, soft_wrap=True)
    if as_json:
        print(
            json.dumps(
                {"image": str(image_path), "recognizer": recognizer, "method": method, "faces": records}, indent=2
            )
        )
        return
    table = Table(
        "face",
        "status",
        "regions in ranked order (share of identity)",
        f"mask at {strength:g}",
        "s",
        caption="share: each region's part of the face's identity",
    )
    for record, saliency in zip(records, saliencies):
        if saliency.status == "skipped":
            table.add_row(str(record["face"]), "skipped", saliency.reason or "", "", f"{saliency.seconds:.2f}")
            continue
        ranked = ", ".join(f"{r.name} {r.share:.0%}" for r in saliency.regions[:6]) + ", ..."
        status = saliency.status if saliency.status == "computed" else f"degraded: {saliency.reason}"
        table.add_row(
            str(record["face"]), status, ranked, ", ".join(record["mask"]["regions"]), f"{saliency.seconds:.2f}"
        )
    out.print(table)
