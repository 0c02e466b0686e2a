"""From a judgments file and an images folder to a trained head, and to agreement figures.

Every triplet is accounted for: used, or skipped with a reason (malformed row, image missing, no face
or no landmarks in an image, outside the requested faces).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.io.images import is_image_path
from lookalike.perception.dataset import FeatureTable, extract_features
from lookalike.perception.model import PerceptionModel, train_head, triplet_agreement
from lookalike.perception.triplets import (
    is_ratings_file,
    read_judgments,
    read_ratings,
    triplets_from_ratings,
    usable_attributes,
)


@dataclass
class TripletData:
    """Triplets as row indices into ``table``, with the accounting of what was left out."""

    table: FeatureTable
    triplets: np.ndarray  # (T, 3)
    kind: str
    source: str
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "used": int(len(self.triplets)),
            "skipped": dict(self.skipped),
            "examples": self.examples,
            "faces": len(self.table.names),
        }


def parse_faces(text: str | None) -> tuple[int, int] | None:
    """``"1-600"`` -> (1, 600): images whose file name is a number in that range.

    >>> parse_faces("601-804")
    (601, 804)
    """
    if not text:
        return None
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit() or int(low) > int(high):
        raise ValueError(f"faces range must look like 1-600, got {text!r}")
    return int(low), int(high)


def load_triplets(
    path: str | Path,
    images: str | Path,
    *,
    faces: tuple[int, int] | None = None,
    jobs: int = 1,
    cache: Path | None = None,
    per_anchor: int = 60,
    margin: float = 1.0,
    seed: int = 0,
    progress=None,
) -> TripletData:
    """Read (or, for a ratings file, generate) triplets and the features of every image they name."""
    path, images = Path(path), Path(images)
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: not a folder")

    def in_range(name: str) -> bool:
        if not faces:
            return True
        number = _number(name)
        return number is not None and faces[0] <= number <= faces[1]

    skipped: Counter[str] = Counter()
    examples: dict[str, str] = {}

    if is_ratings_file(path):
        ratings = read_ratings(path, images)
        present = [n for n in ratings.names if (images / n).is_file() and in_range(n)]
        for n in ratings.names:
            if not (images / n).is_file():
                skipped["rated image missing"] += 1
                examples.setdefault("rated image missing", str(images / n))
        table = _features(images, present, jobs, cache, progress)
        names = triplets_from_ratings(ratings, table.names, per_anchor=per_anchor, margin=margin, seed=seed)
        kind = f"generated from ratings ({', '.join(usable_attributes(ratings))}; margin {margin} SD)"
        for reason in table.skipped.values():
            skipped["no usable face"] += 1
            examples.setdefault("no usable face", reason)
    else:
        judgments = read_judgments(path)
        skipped.update(judgments.problems)
        examples.update(judgments.examples)
        kept = []
        for triplet in judgments.triplets:
            if not all(in_range(n) for n in triplet):
                skipped["outside --faces"] += 1
                continue
            missing = [n for n in triplet if not (images / n).is_file() or not is_image_path(images / n)]
            if missing:
                skipped["image missing"] += 1
                examples.setdefault("image missing", str(images / missing[0]))
                continue
            kept.append(triplet)
        needed = sorted({n for t in kept for n in t})
        table = _features(images, needed, jobs, cache, progress)
        usable = set(table.names)
        names = []
        for triplet in kept:
            if all(n in usable for n in triplet):
                names.append(triplet)
            else:
                skipped["no usable face"] += 1
                bad = next(n for n in triplet if n not in usable)
                examples.setdefault("no usable face", table.skipped.get(bad, bad))
        kind = judgments.kind
    index = table.index()
    rows = np.array([[index[a], index[p], index[n]] for a, p, n in names], np.int64).reshape(-1, 3)
    return TripletData(table, rows, kind, str(path), skipped, examples)


def train(data: TripletData, **options) -> PerceptionModel:
    """Train a head on ``data`` (options: see :func:`~lookalike.perception.model.train_head`)."""
    if len(data.triplets) == 0:
        raise ValueError(f"{data.source}: no usable triplets ({dict(data.skipped)})")
    meta = {
        "trained_on": data.summary(),
        "loss": "cosine triplet, margin 0.1",
        "license": "derived from the data it was trained on; the default head: OMI, CC BY-NC-SA 4.0",
    }
    return train_head(data.table.parts, data.triplets, meta=meta, **options)


def agreement(data: TripletData, model: PerceptionModel | None) -> dict[str, float]:
    """Triplet agreement of the learned metric and of each raw feature distance on ``data``."""
    parts = data.table.parts
    out = {}
    if model is not None:
        e = model.embed(parts)
        out["learned"] = triplet_agreement(1.0 - e @ e.T, data.triplets)
    out["dlib"] = triplet_agreement(_euclidean(parts["dlib"]), data.triplets)
    f = parts["facenet"] / np.linalg.norm(parts["facenet"], axis=1, keepdims=True)
    out["facenet"] = triplet_agreement(1.0 - f @ f.T, data.triplets)
    out["geometry"] = triplet_agreement(_euclidean(parts["shape"]), data.triplets)
    return out


def _euclidean(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    sq = (x**2).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0.0))


def _features(images: Path, names: list[str], jobs: int, cache: Path | None, progress) -> FeatureTable:
    return extract_features([images / n for n in names], names, jobs=jobs, cache=cache, progress=progress)


def _number(name: str) -> int | None:
    stem = Path(name).stem
    return int(stem) if stem.isdigit() else None
