"""The FaceMesh surface as triangles over the 478 landmarks, and its vertex adjacency.

mediapipe ships the tessellation as edges; its triangles are the 3-cliques of the edge graph, less two
cliques that are not faces. The eye and mouth openings are holes, and the ten iris points (468-477) are
not part of it.

>>> mesh_triangles().shape, int(mesh_triangles().max()) < 468
((852, 3), True)
>>> sorted(mesh_neighbours()[1])[:3]
[4, 19, 44]
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


#: The openings the tessellation leaves as holes, as outlines in :data:`lookalike.landmarks.regions.REGIONS`.
MESH_OPENINGS: tuple[str, ...] = ("right_eye", "left_eye", "mouth_interior")


@lru_cache(maxsize=1)
def mesh_neighbours() -> dict[int, frozenset[int]]:
    """Vertex -> the vertices it shares a tessellation edge with."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    return {v: frozenset(n) for v, n in neighbours.items()}


@lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """(T, 3) vertex indices of the mesh triangles, sorted (read from mediapipe on first use)."""
    neighbours = mesh_neighbours()
    cliques = sorted({tuple(sorted((a, b, c))) for a in neighbours for b in neighbours[a] if b > a
                      for c in neighbours[a] & neighbours[b] if c > b})
    edge_count: dict[tuple[int, int], int] = {}
    for a, b, c in cliques:
        for edge in ((a, b), (b, c), (a, c)):
            edge_count[edge] = edge_count.get(edge, 0) + 1
    # Two 3-cliques are not faces: they enclose a nostril point (102, 331), and each of their edges already
    # borders two real triangles, which is how they are told apart.
    triangles = [t for t in cliques if not all(edge_count[e] > 2 for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2])))]
    out = np.asarray(triangles, np.int32)
    out.flags.writeable = False
    return out
