"""Files the package loads once per process: models, the donor bank, the reference crowd.

Every shipped or user-given asset goes through :func:`load_asset`, so each file is read once however
many faces, images or threads ask for it, and a path given two ways (relative, absolute) is one entry.

>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.json"
>>> _ = path.write_text('{"x": 1}')
>>> first = load_asset(lambda p: json.loads(p.read_text()), path)
>>> first is load_asset(lambda p: json.loads(p.read_text()), str(path))  # another loader: read again
False
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def load_asset(loader: Callable[[Path], T], path: str | Path) -> T:
    """``loader(path)``, called once per process for each (loader, file); later calls return the same object.

    ``loader`` is a class's ``load`` (``DonorBank.load``) or another function of the path; a missing
    file raises whatever the loader raises, and nothing is cached then.
    """
    return _cached(loader, Path(path).expanduser().resolve())


@lru_cache(maxsize=16)
def _cached(loader: Callable[[Path], T], path: Path) -> T:
    return loader(path)
