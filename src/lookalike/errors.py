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
