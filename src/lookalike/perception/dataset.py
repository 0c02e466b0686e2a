"""Features of the main face of many images, computed once (in worker processes) and cached.

A cache file remembers each image's size and modification time, so a changed or new image is computed
again and the rest are read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lookalike.errors import error_line
from lookalike.faces import NoFaceError, main_face
from lookalike.io import write_bytes_atomic
from lookalike.parallel import run_tasks
from lookalike.perception.features import EXTRAS, PARTS, FeatureError, face_features

_ALL = PARTS + EXTRAS


@dataclass
class FeatureTable:
    """Feature parts (name -> (N, d)) of N images, and the images left out with the reason."""

    names: list[str]
    parts: dict[str, np.ndarray]
    skipped: dict[str, str] = field(default_factory=dict)

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def subset(self, names: list[str]) -> "FeatureTable":
        rows = [self.index()[n] for n in names]
        return FeatureTable(list(names), {k: v[rows] for k, v in self.parts.items()})


def extract_features(
    paths: list[Path],
    names: list[str] | None = None,
    *,
    jobs: int = 1,
    cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureTable:
    """Features of the largest face of each image; ``names`` label them (default: the paths).

    Images that cannot be read, have no face, or whose face has no dense landmarks are in ``skipped``.
    """
    names = names or [str(p) for p in paths]
    stamps = [_stamp(p) for p in paths]
    cached = _read_cache(cache) if cache else {}
    todo = [i for i, (name, stamp) in enumerate(zip(names, stamps)) if cached.get(name, (None,))[0] != stamp]
    tasks = [(_features_of, (paths[i],)) for i in todo]
    computed = run_tasks(
        tasks, [paths[i] for i in todo], jobs=jobs, progress=progress, on_failure=lambda k, message: (None, message)
    )
    for i, (parts, reason) in zip(todo, computed):
        cached[names[i]] = (stamps[i], parts, reason)
    if cache and todo:
        _write_cache(cache, cached)
    kept = [n for n in names if cached[n][1] is not None]
    parts = {p: np.stack([cached[n][1][p] for n in kept]) if kept else np.zeros((0, 0), np.float32) for p in _ALL}
    skipped = {n: cached[n][2] for n in names if cached[n][1] is None}
    return FeatureTable(kept, parts, skipped)


def _features_of(path: Path) -> tuple[dict[str, np.ndarray] | None, str | None]:
    try:
        image, face = main_face(path)
        return face_features(image, face).parts, None
    except NoFaceError as exc:
        return None, str(exc)
    except FeatureError as exc:
        return None, f"{path}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one bad image must not end feature extraction
        return None, error_line(path, exc)


def _stamp(path: Path) -> str:
    try:
        stat = Path(path).stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        return "missing"


def _read_cache(path: Path) -> dict:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        names, stamps, reasons = list(data["names"]), list(data["stamps"]), list(data["reasons"])
        ok = data["ok"]
        if not all(p in data for p in _ALL):
            return {}  # written by an older version: compute again
        parts = {p: data[p] for p in _ALL}
    out: dict[str, tuple[str, dict | None, str | None]] = {}
    row = 0
    for name, stamp, reason, good in zip(names, stamps, reasons, ok):
        if good:
            out[str(name)] = (str(stamp), {p: parts[p][row] for p in _ALL}, None)
            row += 1
        else:
            out[str(name)] = (str(stamp), None, str(reason))
    return out


def _write_cache(path: Path, cached: dict) -> None:
    import io

    names = list(cached)
    ok = np.array([cached[n][1] is not None for n in names])
    good = [cached[n][1] for n in names if cached[n][1] is not None]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        names=np.array(names),
        stamps=np.array([cached[n][0] for n in names]),
        reasons=np.array([cached[n][2] or "" for n in names]),
        ok=ok,
        **{p: np.stack([g[p] for g in good]) if good else np.zeros((0, 0), np.float32) for p in _ALL},
    )
    write_bytes_atomic(path, buffer.getvalue())
