"""A partition of the face into named regions, drawn from the FaceMesh triangulation.

Every mesh vertex belongs to the region whose seed landmarks are fewest mesh edges away (ties go to the
region listed first), and every mesh triangle to the region most of its corners belong to. The result
covers the whole mesh without overlaps, so "fraction of the face changed" is well defined, and it follows
the face through pose and expression because it is drawn from the landmarks of each face. Left and right
are the subject's, as in :mod:`lookalike.landmarks.regions`.

>>> SALIENCY_REGIONS[:3]
('right_eye', 'left_eye', 'right_eyebrow')
>>> int((vertex_labels() >= 0).sum())
468
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache

import cv2
import numpy as np

from lookalike.landmarks.mesh import MESH_OPENINGS, mesh_neighbours, mesh_triangles
from lookalike.landmarks.regions import REGIONS

#: Seed landmarks of each region, in the priority order that breaks ties.
_SEEDS: dict[str, tuple[int, ...]] = {
    "right_eye": REGIONS["right_eye"].indices,
    "left_eye": REGIONS["left_eye"].indices,
    "right_eyebrow": REGIONS["right_eyebrow"].indices,
    "left_eyebrow": REGIONS["left_eyebrow"].indices,
    "nose": REGIONS["nose"].indices,
    "mouth": REGIONS["lips"].indices + REGIONS["mouth_interior"].indices,
    "right_cheek": (50, 101, 36, 205, 187, 123, 116, 117, 118, 119, 100, 142, 203, 206),
    "left_cheek": (280, 330, 266, 425, 411, 352, 345, 346, 347, 348, 329, 371, 423, 426),
    "forehead": (10, 338, 297, 332, 109, 67, 103, 151, 108, 69, 104, 337, 299, 333),
    "chin": (152, 148, 176, 377, 400, 175, 199, 200, 171, 396, 208, 428),
    "right_jaw": (93, 132, 58, 172, 136, 150, 149, 215, 138, 135, 169, 234, 127),
    "left_jaw": (323, 361, 288, 397, 365, 379, 378, 435, 367, 364, 394, 454, 356),
}

#: Region names, in the order of their integer labels in :func:`region_labels`.
SALIENCY_REGIONS: tuple[str, ...] = tuple(_SEEDS)

#: Features: the regions that are ranked and selected together. A face is changed symmetrically (one eye
#: alone would look odd), and recognizers read the two sides redundantly: with one eye left, the face is
#: still recognised, so an eye's worth is only seen with its pair.
FEATURES: dict[str, tuple[str, ...]] = {
    "eyes": ("right_eye", "left_eye"),
    "eyebrows": ("right_eyebrow", "left_eyebrow"),
    "nose": ("nose",),
    "mouth": ("mouth",),
    "cheeks": ("right_cheek", "left_cheek"),
    "chin": ("chin",),
    "forehead": ("forehead",),
    "jaw": ("right_jaw", "left_jaw"),
}

#: The feature each region belongs to.
FEATURE_OF: dict[str, str] = {region: feature for feature, regions in FEATURES.items() for region in regions}

#: The order a person would neutralise features in without saliency ("canonical order" baseline).
CANONICAL_ORDER: tuple[str, ...] = (
    "right_eye",
    "left_eye",
    "nose",
    "mouth",
    "right_eyebrow",
    "left_eyebrow",
    "right_cheek",
    "left_cheek",
    "chin",
    "forehead",
    "right_jaw",
    "left_jaw",
)


#: Regions whose seeds are first grown by this many mesh edges: the eye contours are the lid margins, and
#: an eye region should hold the lids and the socket around them, which carry much of a face's identity.
_GROWN = {"right_eye": 2, "left_eye": 2}


def _grow(seeds: tuple[int, ...], neighbours: dict[int, frozenset[int]], steps: int) -> list[int]:
    grown = list(seeds)
    frontier = set(seeds)
    for _ in range(steps):
        frontier = {n for v in frontier for n in neighbours.get(v, ())} - set(grown)
        grown.extend(sorted(frontier))
    return grown


@lru_cache(maxsize=1)
def vertex_labels() -> np.ndarray:
    """(478,) index into :data:`SALIENCY_REGIONS` of each mesh vertex; -1 for the iris points."""
    neighbours = mesh_neighbours()
    labels = np.full(478, -1, np.int16)
    queue: deque[int] = deque()
    for label, seeds in enumerate(_SEEDS.values()):
        grown = SALIENCY_REGIONS[label] in _GROWN
        vertices = _grow(seeds, neighbours, _GROWN[SALIENCY_REGIONS[label]]) if grown else seeds
        for vertex in vertices:
            if labels[vertex] < 0:
                labels[vertex] = label
                queue.append(vertex)
    while queue:  # breadth-first: each vertex takes the label of the seed fewest edges away
        vertex = queue.popleft()
        for other in sorted(neighbours.get(vertex, ())):
            if labels[other] < 0:
                labels[other] = labels[vertex]
                queue.append(other)
    return labels


@lru_cache(maxsize=1)
def _triangle_labels() -> np.ndarray:
    corner = vertex_labels()[mesh_triangles()]
    # Majority of the three corners; with three different labels, the first listed region wins.
    out = corner.min(axis=1)
    out = np.where(corner[:, 1] == corner[:, 2], corner[:, 1], out)
    out = np.where(corner[:, 0] == corner[:, 1], corner[:, 0], out)
    out = np.where(corner[:, 0] == corner[:, 2], corner[:, 0], out)
    return out.astype(np.int16)


#: The saliency region each opening of the mesh belongs to.
_HOLES = dict(zip(("right_eye", "left_eye", "mouth"), MESH_OPENINGS))


def region_labels(
    shape: tuple[int, ...], landmarks: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """(H, W) int16 map: the index in :data:`SALIENCY_REGIONS` of the region under each pixel, -1 off the face.

    ``landmarks`` are (478, 2 or 3) pixel coordinates; ``offset`` is subtracted from them first (to draw into
    a window cut out of a larger image).
    """
    height, width = shape[:2]
    labels = np.full((height, width), -1, np.int16)
    points = np.asarray(landmarks, np.float64)[:, :2] - np.asarray(offset, np.float64)
    fixed = np.round(points * 16).astype(np.int32)  # 4 fractional bits, as in landmarks.regions
    triangle_labels = _triangle_labels()
    canvas = np.zeros((height, width), np.uint8)
    # Draw region by region, farther triangles first would need depth; regions are disjoint on the mesh,
    # so only self-occluding profiles overlap, and there the later region wins.
    for label, name in enumerate(SALIENCY_REGIONS):
        canvas[:] = 0
        polygons = list(fixed[mesh_triangles()[triangle_labels == label]])
        # The tessellation leaves the eye and mouth openings as holes; they belong to their regions.
        if name in _HOLES:
            polygons.append(fixed[list(REGIONS[_HOLES[name]].indices)])
        cv2.fillPoly(canvas, polygons, 1, lineType=cv2.LINE_8, shift=4)
        labels[canvas > 0] = label
    return labels


def region_areas(labels: np.ndarray) -> np.ndarray:
    """Pixel count of each region in a label map, in :data:`SALIENCY_REGIONS` order."""
    counts = np.bincount(labels[labels >= 0].ravel(), minlength=len(SALIENCY_REGIONS))
    return counts[: len(SALIENCY_REGIONS)].astype(np.float64)
