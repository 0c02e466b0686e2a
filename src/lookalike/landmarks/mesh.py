"""The FaceMesh surface as triangles over the 478 landmarks, its vertex adjacency and ring distances.

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


def ring_distance(sources: tuple[int, ...] | list[int]) -> np.ndarray:
    """(468,) how many tessellation edges each mesh vertex is from the nearest of ``sources`` (breadth
    first; ``inf`` for a vertex not connected to them).

    >>> ring_distance((1,))[[1, 4, 19]].tolist()
    [0.0, 1.0, 1.0]
    """
    neighbours = mesh_neighbours()
    distance = np.full(468, np.inf)
    frontier = list(sources)
    distance[frontier] = 0
    while frontier:
        following = []
        for vertex in frontier:
            for other in neighbours[vertex]:
                if other < 468 and distance[other] == np.inf:
                    distance[other] = distance[vertex] + 1
                    following.append(other)
        frontier = following
    return distance


@lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """(T, 3) vertex indices of the mesh triangles, sorted (read from mediapipe on first use)."""
    neighbours = mesh_neighbours()
    cliques = sorted(
        {
            tuple(sorted((a, b, c)))
            for a in neighbours
            for b in neighbours[a]
            if b > a
            for c in neighbours[a] & neighbours[b]
            if c > b
        }
    )
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
