"""Errors users see. Each renders as one line that names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class LookalikeError(Exception):
    """Base class of every error lookalike raises on purpose."""


class ImageError(LookalikeError):
    """An input or output image could not be read or written.

    >>> str(ImageError("photos/a.jpg", "truncated JPEG data"))
    'photos/a.jpg: truncated JPEG data'
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def error_line(path: str | Path, exc: BaseException) -> str:
    """The one line a user sees for ``exc`` raised while processing the file ``path``.

    >>> error_line("a.jpg", ValueError("bad\\nmore"))
    'a.jpg: internal error (ValueError: bad)'
    >>> error_line("a.jpg", ImageError("a.jpg", "not an image"))
    'a.jpg: not an image'
    """
    if isinstance(exc, ImageError):
        return str(exc) if exc.path else f"{path}: {exc}"
    if isinstance(exc, LookalikeError):
        return f"{path}: {exc}"
    if isinstance(exc, MemoryError):
        return f"{path}: out of memory"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{path}: internal error ({type(exc).__name__}{': ' + detail if detail else ''})"
