"""``lookalike similarity`` and ``lookalike perception train | eval``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from lookalike.cli.console import err, faces_option, file_error, out, progress_bar, usage_error
from lookalike.errors import LookalikeError

perception_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Train and evaluate the perceptual similarity metric.",
)

_TRIPLETS_HELP = (
    "Judgments CSV: anchor,positive,negative | image1,image2,image3,odd | per-image ratings "
    "(stimulus or image column, then attributes), from which triplets are generated."
)
_FACES_HELP = "Only images whose file name is a number in this range, e.g. 1-600 (a split by face)."


def register(app: typer.Typer) -> None:
    app.command("similarity")(similarity_command)
    app.add_typer(perception_app, name="perception")


def similarity_command(
    images: Annotated[list[Path], typer.Argument(help="Two or more images; the largest face of each is used.")],
    model: Annotated[Optional[Path], typer.Option(help="Perception model (.npz); default: the shipped one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Perceptual similarity (0..1) of every pair of faces, beside each recognizer's identity distance."""
    import numpy as np

    from lookalike.faces import main_face
    from lookalike.identity import available_recognizers, get_recognizer
    from lookalike.perception import load_model
    from lookalike.perception.features import face_features
    from lookalike.perception.model import similarity

    if len(images) < 2:
        usage_error("give at least two images")
    try:
        head = load_model(model)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        usage_error(f"--model: {exc}")
    faces = {}
    for path in images:
        try:
            image, face = main_face(path)
            parts = face_features(image, face).parts
        except (LookalikeError, ValueError) as exc:
            file_error(err, str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}")
            raise typer.Exit(1) from None
        faces[str(path)] = parts
    names = list(faces)
    # The recognizers whose embeddings the perception features carry (dlib and FaceNet).
    shown = [n for n in available_recognizers() if n in faces[names[0]]]
    embedded = head.embed({k: np.stack([faces[n][k] for n in names]) for k in faces[names[0]]})
    rows: list[dict[str, Any]] = []
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        row: dict[str, Any] = {
            "a": a,
            "b": b,
            "perceptual_similarity": round(float(similarity(embedded[i], embedded[j])), 4),
        }
        for name in shown:
            recognizer = get_recognizer(name)
            distance = float(recognizer.distance(faces[a][name], faces[b][name]))
            row[name] = {
                "distance": round(distance, 4),
                "threshold": recognizer.threshold,
                "same": recognizer.matches_distance(distance),
            }
        rows.append(row)
    if as_json:
        print(json.dumps({"model": str(model or "default"), "pairs": rows}, indent=2))
        return
    table = Table(
        "a",
        "b",
        "perceptual similarity",
        *[f"{n} distance" for n in shown],
        caption="similarity 1 = same look, 0.5 = unrelated; distance <= threshold = same person",
    )
    for row in rows:
        table.add_row(
            row["a"],
            row["b"],
            f"{row['perceptual_similarity']:.3f}",
            *[f"{row[n]['distance']:.3f} ({'same' if row[n]['same'] else 'different'})" for n in shown],
        )
    out.print(table)


@perception_app.command("train")
def train_command(
    triplets: Annotated[Path, typer.Option(help=_TRIPLETS_HELP)],
    images: Annotated[Path, typer.Option(help="Folder the judgments' image paths are relative to.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the trained model (.npz).")] = Path(
        "perception.npz"
    ),
    faces: Annotated[Optional[str], typer.Option(help=_FACES_HELP)] = None,
    ratings: Annotated[
        Optional[Path], typer.Option(help="Also fit the attribute regressor to these per-image ratings (CSV).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs over the triplets.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (triplet generation and training).")] = 0,
    jobs: Annotated[Optional[int], typer.Option(help="Worker processes for feature extraction.")] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Feature cache file (reused across runs).")] = None,
) -> None:
    """Train the perceptual metric on triplets; print what was used and skipped."""
    from lookalike.perception.model import fit_attributes
    from lookalike.perception.training import train
    from lookalike.perception.triplets import read_ratings

    data = _load(triplets, images, faces, jobs, cache, seed)
    if epochs < 1:
        usage_error("--epochs: must be at least 1")
    try:
        model = train(data, epochs=epochs, seed=seed)
    except ValueError as exc:
        file_error(err, str(exc))
        raise typer.Exit(1) from None
    if ratings is not None:
        table = read_ratings(ratings, images)
        index = {n: i for i, n in enumerate(table.names)}
        rated = [n for n in data.table.names if n in index]
        subset = data.table.subset(rated)
        fit = fit_attributes(model, subset.parts, table.values[[index[n] for n in rated]], table.attributes)
        model.meta["attributes"] = {"ratings": str(ratings), "faces": len(rated), **fit}
    model.meta["command"] = " ".join(
        ["lookalike perception train", f"--triplets {triplets}", f"--images {images}"]
        + ([f"--faces {faces}"] if faces else [])
        + ([f"--ratings {ratings}"] if ratings else [])
        + [f"--epochs {epochs}", f"--seed {seed}"]
    )
    model.save(output)
    _print_data(data)
    err.print(f"model written: {output}", highlight=False)


@perception_app.command("eval")
def eval_command(
    triplets: Annotated[Path, typer.Option(help=_TRIPLETS_HELP)],
    images: Annotated[Path, typer.Option(help="Folder the judgments' image paths are relative to.")],
    model: Annotated[Optional[Path], typer.Option(help="Perception model (.npz); default: the shipped one.")] = None,
    faces: Annotated[Optional[str], typer.Option(help=_FACES_HELP)] = None,
    seed: Annotated[int, typer.Option(help="Random seed of generated triplets.")] = 1,
    jobs: Annotated[Optional[int], typer.Option(help="Worker processes for feature extraction.")] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Feature cache file (reused across runs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Triplet agreement of the metric and of raw dlib, FaceNet and landmark-geometry distances."""
    from lookalike.perception import load_model
    from lookalike.perception.training import agreement

    try:
        head = load_model(model)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        usage_error(f"--model: {exc}")
    data = _load(triplets, images, faces, jobs, cache, seed)
    scores = agreement(data, head)
    if as_json:
        print(json.dumps({"agreement": scores, "triplets": data.summary()}, indent=2))
    else:
        table = Table("distance", "triplet agreement", caption=f"{len(data.triplets)} triplets")
        for name, value in scores.items():
            table.add_row(name, f"{100 * value:.1f}%")
        out.print(table)
        _print_data(data)


def _load(triplets: Path, images: Path, faces: str | None, jobs: int | None, cache: Path | None, seed: int):
    from lookalike.parallel import default_jobs
    from lookalike.perception.training import load_triplets

    face_range = faces_option(faces)
    if not triplets.is_file():
        usage_error(f"{triplets}: no such file")
    if not images.is_dir():
        usage_error(f"{images}: not a folder")
    with progress_bar() as progress:
        task = progress.add_task("features", total=None)
        try:
            return load_triplets(
                triplets,
                images,
                faces=face_range,
                jobs=jobs or default_jobs(),
                cache=cache,
                seed=seed,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except (ValueError, OSError) as exc:
            file_error(err, str(exc))
            raise typer.Exit(1) from None


def _print_data(data) -> None:
    summary = data.summary()
    skipped = ", ".join(f"{reason}: {count}" for reason, count in summary["skipped"].items()) or "none"
    err.print(
        f"triplets used: {summary['used']} ({summary['kind']}) | faces: {summary['faces']} | skipped: {skipped}",
        highlight=False,
        soft_wrap=True,
    )
    for reason, example in summary["examples"].items():
        err.print(f"  e.g. {reason}: {example}", highlight=False, markup=False, soft_wrap=True)
