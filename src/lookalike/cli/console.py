"""What every command shares: the two consoles, the progress bar, and how errors are printed.

Progress, errors and summaries go to stderr; machine-readable output to stdout.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True)
out = Console()


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


def file_error(console: Console, message: str) -> None:
    """One line, file name first; the message is printed literally (a file may be called "[draft].jpg")."""
    console.print(f"[red]error[/red] {escape(message)}", highlight=False, soft_wrap=True)


def usage_error(message: str) -> NoReturn:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


def faces_option(faces: str | None):
    """The ``--faces`` range (e.g. ``1-600``) as the perception code takes it, or a usage error."""
    from lookalike.perception.training import parse_faces

    try:
        return parse_faces(faces)
    except ValueError as exc:
        usage_error(f"--faces: {exc}")


def pydantic_message(exc) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "option"
    return f"--{field.replace('_', '-')}: {first.get('msg', 'invalid value')}"
