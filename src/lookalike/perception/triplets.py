"""Human similarity judgments as triplets (anchor, positive, negative): "the positive looks more like the
anchor than the negative does".

Three sources, told apart by a CSV file's header:

- **triplets** (PerFace style): columns ``anchor,positive,negative``, image paths relative to the
  images folder.
- **odd-one-out** (as in Sony's AVFS): columns ``image1,image2,image3,odd``; ``odd`` is 1, 2 or 3, or
  the odd image's path. The two others are more alike than either is to the odd one, which gives two
  triplets.
- **ratings**: one row per image of mean human ratings of perceived attributes (OMI's
  ``attribute_means.csv``): column ``stimulus`` (an image number, matched to a file named by it, e.g.
  ``0012.jpg``) or ``image``, then one column per attribute. Triplets are generated: positive and
  negative are drawn at random and kept only when the negative is clearly farther from the anchor than
  the positive in the space of the appearance attributes (:data:`APPEARANCE_ATTRIBUTES`), by at least
  ``margin`` standard deviations. These are human-grounded but are *not* direct similarity judgments.

Rows naming missing images and malformed rows are counted and reported, never used.

>>> import io
>>> rows = read_judgments(io.StringIO("image1,image2,image3,odd\\na.jpg,b.jpg,c.jpg,3\\n"), "judgments.csv")
>>> rows.triplets
[('a.jpg', 'b.jpg', 'c.jpg'), ('b.jpg', 'a.jpg', 'c.jpg')]
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

#: OMI attributes that describe how a face looks (not what people infer from it: trustworthy, smart ...).
#: Age, gender, build, skin and hair, expression, grooming, and the perceived-ethnicity ratings, which
#: carry much of what people see as facial similarity across groups.
APPEARANCE_ATTRIBUTES = (
    "age",
    "gender",
    "weight",
    "skin-color",
    "hair-color",
    "long-haired",
    "happy",
    "well-groomed",
    "asian",
    "middle-eastern",
    "hispanic",
    "islander",
    "native",
    "black",
    "white",
)

Triplet = tuple[str, str, str]


@dataclass
class Judgments:
    """Triplets read from a file, and what was left out and why (reason -> count, with examples)."""

    triplets: list[Triplet]
    source: str
    kind: str
    problems: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, example: str) -> None:
        self.problems[reason] += 1
        self.examples.setdefault(reason, example)


@dataclass
class Ratings:
    """Mean human ratings: image name -> attribute vector, with the attribute names."""

    names: list[str]
    attributes: list[str]
    values: np.ndarray  # (N, A)

    def column(self, attribute: str) -> np.ndarray:
        return self.values[:, self.attributes.index(attribute)]


def read_judgments(source: str | Path | TextIO, label: str | None = None) -> Judgments:
    """Triplets from a ``triplets`` or ``odd-one-out`` CSV (see the module docs)."""
    text = source.read() if hasattr(source, "read") else Path(source).read_text(encoding="utf-8-sig")
    label = label or str(source)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return Judgments([], label, "empty")
    header = [h.strip().lower() for h in rows[0]]
    if header[:3] == ["anchor", "positive", "negative"]:
        judgments = Judgments([], label, "triplets")
        for number, row in enumerate(rows[1:], start=2):
            cells = [c.strip() for c in row]
            if len(cells) < 3 or not all(cells[:3]) or len(set(cells[:3])) < 3:
                judgments.skip("malformed row", f"line {number}: {','.join(row)}")
                continue
            judgments.triplets.append((cells[0], cells[1], cells[2]))
        return judgments
    if header[:4] == ["image1", "image2", "image3", "odd"]:
        judgments = Judgments([], label, "odd-one-out")
        for number, row in enumerate(rows[1:], start=2):
            cells = [c.strip() for c in row]
            odd = _odd_index(cells)
            if odd is None:
                judgments.skip("malformed row", f"line {number}: {','.join(row)}")
                continue
            a, b = [cells[i] for i in range(3) if i != odd]
            judgments.triplets += [(a, b, cells[odd]), (b, a, cells[odd])]
        return judgments
    raise ValueError(
        f"{label}: unknown header {','.join(rows[0])!r}; expected anchor,positive,negative or "
        f"image1,image2,image3,odd (or ratings, with a stimulus or image column)"
    )


def _odd_index(cells: list[str]) -> int | None:
    if len(cells) < 4 or not all(cells[:4]) or len(set(cells[:3])) < 3:
        return None
    if cells[3] in ("1", "2", "3"):
        return int(cells[3]) - 1
    return cells[:3].index(cells[3]) if cells[3] in cells[:3] else None


def is_ratings_file(path: str | Path) -> bool:
    """Whether a CSV holds per-image ratings (first column ``stimulus`` or ``image``) rather than judgments."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    return bool(header) and header[0].strip().lower() in ("stimulus", "image") and len(header) > 2


def read_ratings(path: str | Path, images: Path | None = None) -> Ratings:
    """Per-image mean ratings; ``stimulus`` numbers become the name of the file in ``images`` they number."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header = [h.strip() for h in rows[0]]
    files = {int(p.stem): p.name for p in images.iterdir() if p.stem.isdigit()} if images and images.is_dir() else {}
    names, values = [], []
    for row in rows[1:]:
        if len(row) != len(header):
            continue
        key = row[0].strip()
        name = files.get(int(key), f"{int(key):04d}.jpg") if header[0].lower() == "stimulus" and key.isdigit() else key
        try:
            values.append([float(v) for v in row[1:]])
        except ValueError:
            continue
        names.append(name)
    return Ratings(names, header[1:], np.asarray(values, np.float64))


def usable_attributes(ratings: Ratings, wanted: tuple[str, ...] = APPEARANCE_ATTRIBUTES) -> list[str]:
    """The wanted attributes this ratings file has; all of its attributes when it has none of them."""
    return [a for a in wanted if a in ratings.attributes] or list(ratings.attributes)


def triplets_from_ratings(
    ratings: Ratings,
    faces: list[str],
    *,
    per_anchor: int = 60,
    margin: float = 1.0,
    attributes: tuple[str, ...] = APPEARANCE_ATTRIBUTES,
    seed: int = 0,
) -> list[Triplet]:
    """Triplets among ``faces`` only (so a split by face stays a split), from distances in z-scored
    attribute space: keep (a, p, n) when d(a, n) - d(a, p) >= ``margin`` (in standard deviations).
    The space is :func:`usable_attributes`.

    >>> r = Ratings(["a", "b", "c"], ["age"], np.array([[20.0], [22.0], [80.0]]))
    >>> sorted(set(triplets_from_ratings(r, ["a", "b", "c"], per_anchor=20, attributes=("age",))))
    [('a', 'b', 'c'), ('b', 'a', 'c')]
    """
    index = {n: i for i, n in enumerate(ratings.names)}
    faces = [f for f in faces if f in index]
    columns = [ratings.attributes.index(a) for a in usable_attributes(ratings, attributes)]
    x = ratings.values[[index[f] for f in faces]][:, columns]
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
    distance = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    rng = np.random.default_rng(seed)
    triplets = []
    n = len(faces)
    for a in range(n):
        kept, tries = 0, 0
        while kept < per_anchor and tries < per_anchor * 20:
            tries += 1
            p, q = rng.choice(n, 2, replace=False)
            if a in (p, q):
                continue
            if distance[a, q] < distance[a, p]:
                p, q = q, p
            if distance[a, q] - distance[a, p] >= margin:
                triplets.append((faces[a], faces[p], faces[q]))
                kept += 1
    return triplets
