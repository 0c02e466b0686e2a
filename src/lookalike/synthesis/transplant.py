"""Exemplar-based face synthesis: the primitives that transplant a donor face onto a target face.

No pretrained face generator can be shipped (see ``docs/design.md``), so a "lookalike" is built from
real pixels of a donor (or an average of donors) in five steps, each one a function here:

1. :func:`morph_landmarks` (with :func:`align_landmarks`) decides the *geometry* of the result: the
   target's 478 landmarks moved part of the way toward the donor's shape, optionally only in the regions
   that carry identity. Shape change is what buys identity margin; texture alone does not.
2. :func:`warp_to_landmarks` puts the donor's *pixels* onto that geometry with a piecewise-affine warp
   over the FaceMesh triangles (eye and mouth openings included), so the donor's eyes, nose and mouth
   land where the result's are; its coverage mask says where the donor had pixels to give.
3. :func:`match_colour` makes the warped donor take the target's *colour and illumination* region by
   region (shading differs across a face), with smoothed corrections so region borders leave no seams.
4. :func:`laplacian_blend` *composes* the donor into the target with multi-band blending: low
   frequencies mix over a wide band, fine detail over a narrow one, and everything beyond the coarsest
   band's reach is returned bit-identical.
5. :func:`reinject_detail` puts the target's own *high frequencies* (pores, wrinkles, grain) back under
   the changed region, replacing the donor's (often averaged, hence too smooth) ones: skin texture and
   apparent age are not identity, and keeping them keeps the result looking like the same photo.

All images are RGB uint8 (H, W, 3); landmarks are (478, 3) float arrays in image pixels as
:attr:`lookalike.types.Face.landmarks`; masks are float32 (H, W) in [0, 1].

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
>>> mask = np.zeros((64, 64), np.float32); mask[20:40, 20:40] = 1
>>> out = laplacian_blend(base, 255 - base, mask, levels=2)
>>> bool((out[30, 30] == 255 - base[30, 30]).all()), bool((out[:, 60:] == base[:, 60:]).all())
(True, True)
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import lru_cache

import cv2
import numpy as np

from lookalike.imaging import gaussian_blur
from lookalike.landmarks.geometry import INNER_LIPS
from lookalike.landmarks.mesh import MESH_OPENINGS, mesh_neighbours, mesh_triangles, ring_distance
from lookalike.landmarks.regions import FACE_OVAL, REGIONS

__all__ = [
    "MAX_MORPH",
    "STABLE_INDICES",
    "align_landmarks",
    "laplacian_blend",
    "laplacian_reach",
    "match_colour",
    "morph_landmarks",
    "reinject_detail",
    "warp_to_landmarks",
]

#: Landmarks that expression barely moves, used to align one face's landmarks onto another's:
#: the four eye corners (lids move, corners hardly), the nose bridge and the upper face oval from
#: temple to temple (forehead and the oval at ear height). The mouth, chin, jaw and brows are left out
#: because expression (smiling, an open mouth, raised brows) moves them.
STABLE_INDICES: tuple[int, ...] = (
    33,
    133,
    362,
    263,  # eye corners: subject's right outer/inner, left inner/outer
    168,
    6,
    197,
    195,  # nose bridge
    10,
    109,
    67,
    103,
    54,
    21,
    162,
    127,
    234,  # upper face oval, forehead to the subject's right ear
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,  # and to the left ear
)

#: Mesh openings filled by :func:`warp_to_landmarks`, with the iris points that belong to each eye.
_IRISES = {"right_eye": tuple(range(468, 473)), "left_eye": tuple(range(473, 478))}

#: A donor triangle stretched more than this (linearly, relative to the whole face's scale change) onto
#: the target only smears a line of pixels (a closed eye onto an open one): it is left uncovered.
_MAX_STRETCH = 5.0


# --------------------------------------------------------------------------------------------- mesh


def _strip(loop: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Triangles zipping the two halves of an opening's outline together.

    The outlines in REGIONS start at one corner and reach the other corner half way round (eye corners
    33/133 and 263/362, mouth corners 78/308), so the halves are the two lids or lips. Zipping them
    (rather than a fan or ear clipping on one face's shape) gives the same triangulation for every face
    and degrades gracefully when the opening closes: the triangles flatten instead of folding.
    """
    half = len(loop) // 2
    lower = list(loop[: half + 1])
    upper = [loop[0]] + list(loop[: half - 1 : -1])
    triangles = []
    for i in range(half):
        for tri in ((lower[i], lower[i + 1], upper[i + 1]), (lower[i], upper[i + 1], upper[i])):
            if len(set(tri)) == 3:
                triangles.append(tri)
    return triangles


@lru_cache(maxsize=1)
def _warp_mesh() -> tuple[np.ndarray, np.ndarray]:
    """The triangles the warp draws, consistently oriented, and which of them share a vertex.

    Returns ((T, 3) int32 triangles, (T, T) bool "shares a vertex" matrix). The openings are closed with
    :func:`_strip` triangles. Orientation is propagated across
    shared edges, so on any face the visible triangles all have the same sign of area and the folded
    (back-facing) ones the other sign.
    """
    triangles = [tuple(int(v) for v in tri) for tri in mesh_triangles()]
    for name in MESH_OPENINGS:
        triangles += _strip(REGIONS[name].indices)
    tris = [list(t) for t in triangles]

    by_edge: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, (a, b, c) in enumerate(tris):
        for u, v in ((a, b), (b, c), (c, a)):
            by_edge[(min(u, v), max(u, v))].append(k)
    oriented = [False] * len(tris)
    for start in range(len(tris)):
        if oriented[start]:
            continue
        oriented[start] = True
        stack = [start]
        while stack:
            k = stack.pop()
            a, b, c = tris[k]
            for u, v in ((a, b), (b, c), (c, a)):
                for other in by_edge[(min(u, v), max(u, v))]:
                    if oriented[other]:
                        continue
                    x, y, z = tris[other]
                    # a consistent neighbour runs the shared edge the other way (v -> u)
                    if (u, v) in ((x, y), (y, z), (z, x)):
                        tris[other] = [x, z, y]
                    oriented[other] = True
                    stack.append(other)
    out = np.asarray(tris, np.int32)
    incidence = np.zeros((len(out), 478), bool)
    incidence[np.arange(len(out))[:, None], out] = True
    shares = (incidence.astype(np.uint8) @ incidence.T.astype(np.uint8)) > 0
    out.flags.writeable = False
    shares.flags.writeable = False
    return out, shares


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _facing(areas: np.ndarray) -> np.ndarray:
    """Triangles whose area has the sign of the face as a whole (by area): the ones seen from the front."""
    sign = 1.0 if areas.sum() >= 0 else -1.0
    return areas * sign > 1e-6


def _rasterize(
    points: np.ndarray, depth: np.ndarray, triangles: np.ndarray, keep: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """(H, W) int32 map of the nearest kept triangle under each pixel, -1 where none is."""
    height, width = shape
    index = np.full((height, width), -1, np.int32)
    corners = points[triangles]  # (T, 3, 2)
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    inside = keep & (hi[:, 0] >= -1) & (hi[:, 1] >= -1) & (lo[:, 0] <= width) & (lo[:, 1] <= height)
    chosen = np.flatnonzero(inside)
    # Farthest first, so nearer surface overwrites what it hides (the nose over a cheek on a turned head).
    # mediapipe's z grows away from the camera.
    chosen = chosen[np.argsort(-depth[chosen], kind="stable")]
    fixed = np.round(corners[chosen] * 16).astype(np.int32)  # 4 fractional bits, as in landmarks.regions
    for k, polygon in zip(chosen.tolist(), list(fixed)):
        cv2.fillConvexPoly(index, polygon, k, cv2.LINE_8, 4)
    return index


# -------------------------------------------------------------------------------------------- warp


def warp_to_landmarks(
    donor: np.ndarray,
    donor_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
    shape: tuple[int, int],
    *,
    offset: tuple[float, float] = (0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the donor's face so each of its mesh triangles lands on the target's.

    A piecewise-affine warp over the FaceMesh triangles, with the eye and mouth openings closed by
    triangles between their lids / lips, so the donor's eyes and mouth interior come along and the warp
    covers the whole face oval. It is done as one ``cv2.remap``: the target's triangles are rasterized
    once into a triangle-index map, each pixel's donor position is its triangle's affine map applied to
    it (vectorized), and the donor is sampled bilinearly.

    Triangles are left uncovered rather than smeared where the donor cannot supply them: zero-area or
    folded (back-facing) triangles in the target or the donor, triangles the donor shows squeezed to a
    sliver (a closed eye onto an open one), and target pixels whose donor position is hidden in the donor
    image by a nearer part of its face (a cheek behind the nose of a turned head). Where the target's own
    surface overlaps itself, the nearer triangle wins.

    Parameters
    ----------
    donor : (Hd, Wd, 3) uint8 RGB image holding the donor face.
    donor_landmarks : (478, 3) landmarks of the donor face, in donor pixels.
    target_landmarks : (478, 3) landmarks the donor should take, in target pixels.
    shape : (height, width) of the window to draw.
    offset : (x, y) of the window's top-left corner in target pixels, so a caller can draw only the
        face's neighbourhood of a large image.

    Returns
    -------
    warped : (height, width, 3) uint8, the donor's pixels where covered and 0 elsewhere.
    coverage : (height, width) float32, 1 where a triangle was drawn and 0 elsewhere.

    Examples
    --------
    A donor drawn twice as large (toy landmarks: any 478 points; real ones come from
    :func:`lookalike.pipeline.detect`):

    >>> import numpy as np
    >>> donor = np.full((40, 40, 3), 200, np.uint8)
    >>> points = np.random.default_rng(0).uniform(5, 35, (478, 3))
    >>> warped, coverage = warp_to_landmarks(donor, points, points * 2, (80, 80))
    >>> (warped.shape, coverage.dtype, bool((warped[coverage > 0] == 200).all()),
    ...  bool((warped[coverage == 0] == 0).all()))
    ((80, 80, 3), dtype('float32'), True, True)
    """
    height, width = int(shape[0]), int(shape[1])
    triangles, shares = _warp_mesh()
    donor_points = np.asarray(donor_landmarks, np.float64)
    target_points = np.asarray(target_landmarks, np.float64)
    t_xy = target_points[:, :2] - np.asarray(offset, np.float64)
    d_xy = donor_points[:, :2]
    warped = np.zeros((height, width) + donor.shape[2:], np.uint8)
    coverage = np.zeros((height, width), np.float32)

    t_area, d_area = _signed_areas(t_xy, triangles), _signed_areas(d_xy, triangles)
    t_facing, d_facing = _facing(t_area), _facing(d_area)
    # Stretch is judged against the whole face's change of scale: a small donor face onto a large target
    # is an ordinary zoom, one sliver of a triangle blown up to a normal one is a smear.
    scale2 = abs(t_area[t_facing].sum()) / max(abs(d_area[d_facing].sum()), 1e-9)
    stretched = np.abs(d_area) * scale2 * _MAX_STRETCH**2 < np.abs(t_area)
    keep = t_facing & d_facing & ~stretched
    if not keep.any():
        return warped, coverage

    # Work only in the face's box inside the window: every per-pixel step below scales with its area.
    used = t_xy[np.unique(triangles[keep])]
    bx0, by0 = max(int(np.floor(used[:, 0].min())) - 1, 0), max(int(np.floor(used[:, 1].min())) - 1, 0)
    bx1 = min(int(np.ceil(used[:, 0].max())) + 2, width)
    by1 = min(int(np.ceil(used[:, 1].max())) + 2, height)
    if bx1 <= bx0 or by1 <= by0:
        return warped, coverage
    t_xy = t_xy - [bx0, by0]
    box_h, box_w = by1 - by0, bx1 - bx0
    index = _rasterize(t_xy, target_points[triangles, 2].mean(axis=1), triangles, keep, (box_h, box_w))
    drawn = index >= 0
    if not drawn.any():
        return warped, coverage

    # Per triangle, the affine map target -> donor in closed form (a batched np.linalg.inv costs more than
    # the whole remap). The table gets one extra all-zero row, which index -1 (no triangle) picks.
    p0, p1, p2 = (t_xy[triangles[:, i]] for i in range(3))
    q0, q1, q2 = (d_xy[triangles[:, i]] for i in range(3))
    e1, e2, f1, f2 = p1 - p0, p2 - p0, q1 - q0, q2 - q0
    det = np.where(keep, e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0], 1.0)
    inv = np.stack([e2[:, 1], -e2[:, 0], -e1[:, 1], e1[:, 0]], axis=1).reshape(-1, 2, 2) / det[:, None, None]
    linear = np.stack([f1, f2], axis=2) @ inv  # (T, 2, 2)
    shift = q0 - (linear @ p0[:, :, None])[:, :, 0]
    table = np.zeros((len(triangles) + 1, 6), np.float32)
    table[:-1] = np.concatenate([linear[:, 0], shift[:, :1], linear[:, 1], shift[:, 1:]], axis=1)
    table[:-1][~keep] = 0
    coeffs = np.moveaxis(table[index], -1, 0)  # (6, box_h, box_w) views
    cols = np.arange(box_w, dtype=np.float32)[None, :]
    rows = np.arange(box_h, dtype=np.float32)[:, None]
    map_x = coeffs[0] * cols + coeffs[1] * rows + coeffs[2]
    map_y = coeffs[3] * cols + coeffs[4] * rows + coeffs[5]

    # Pixels whose donor position is off the donor image have nothing to show (replicating its border
    # would smear; a nearly degenerate triangle can also send a few pixels arbitrarily far).
    on_donor = (map_x >= -0.5) & (map_y >= -0.5) & (map_x <= donor.shape[1] - 0.5) & (map_y <= donor.shape[0] - 0.5)
    drawn = drawn & on_donor
    if not drawn.any():
        return warped, coverage
    # Occlusion in the donor: rasterize the donor's own visible surface and refuse target pixels whose
    # donor position shows another part of the face (sharing a vertex allows for rasterization at edges).
    lo = np.floor([map_x[drawn].min(), map_y[drawn].min()]).astype(int) - 1
    hi = np.ceil([map_x[drawn].max(), map_y[drawn].max()]).astype(int) + 2
    d_index = _rasterize(
        d_xy - lo,
        donor_points[triangles, 2].mean(axis=1),
        triangles,
        d_facing,
        (int(hi[1] - lo[1]), int(hi[0] - lo[0])),
    )
    # nearest donor pixel (truncation after +0.5 rounds: every drawn position is >= lo + 1 > 0)
    at_x = np.clip((map_x - (lo[0] - 0.5)).astype(np.int32), 0, d_index.shape[1] - 1)
    at_y = np.clip((map_y - (lo[1] - 0.5)).astype(np.int32), 0, d_index.shape[0] - 1)
    seen = d_index[at_y, at_x]
    visible = drawn & ((seen < 0) | shares[index, seen])
    if not visible.any():
        return warped, coverage

    # Sample only the part of the donor the face uses: OpenCV needs a contiguous array, and copying a
    # crop is cheaper than copying a large donor image.
    x0, y0 = max(int(map_x[visible].min()) - 2, 0), max(int(map_y[visible].min()) - 2, 0)
    x1 = min(int(math.ceil(map_x[visible].max())) + 3, donor.shape[1])
    y1 = min(int(math.ceil(map_y[visible].max())) + 3, donor.shape[0])
    source = np.ascontiguousarray(donor[y0:y1, x0:x1])
    sampled = cv2.remap(source, map_x - x0, map_y - y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    sampled = sampled.reshape((box_h, box_w) + donor.shape[2:])
    sampled[~visible] = 0
    box = (slice(by0, by1), slice(bx0, bx1))
    warped[box] = sampled
    coverage[box] = visible
    return warped, coverage


# --------------------------------------------------------------------------------------- geometry


def similarity_fit(source: np.ndarray, reference: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama's least-squares similarity (scale, rotation, translation) taking source onto reference, in
    as many dimensions as the points have."""
    mu_s, mu_r = source.mean(axis=0), reference.mean(axis=0)
    s, r = source - mu_s, reference - mu_r
    u, d, vt = np.linalg.svd(r.T @ s / len(s))
    reflection = np.linalg.det(u) * np.linalg.det(vt) < 0
    sign = np.diag([1.0] * (s.shape[1] - 1) + [-1.0 if reflection else 1.0])  # a rotation, never a mirror
    rotation = u @ sign @ vt
    variance = (s**2).sum() / len(s)
    scale = float(np.trace(np.diag(d) @ sign) / variance) if variance > 0 else 1.0
    return scale, rotation, mu_r - scale * rotation @ mu_s


def align_landmarks(
    source_landmarks: np.ndarray,
    reference_landmarks: np.ndarray,
    indices: tuple[int, ...] | list[int] | np.ndarray | None = None,
    *,
    in_depth: bool = False,
) -> np.ndarray:
    """``source_landmarks`` moved onto ``reference_landmarks`` by a similarity transform.

    Rotation, uniform scale and translation in the image plane (Umeyama / Procrustes, no reflection),
    fitted on ``indices`` (default :data:`STABLE_INDICES`, points expression barely moves) and applied to
    all points; z is multiplied by the scale. With ``in_depth``, the rotation is in 3-D (x, y and the
    landmarks' relative depth z): the source's head pose (yaw, pitch) becomes the reference's too; both
    must then have a z column.

    Returns
    -------
    (N, 3) float32 landmarks (N as the input, normally 478).

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.random.default_rng(1).uniform(0, 100, (478, 3))
    >>> src = ref.copy(); src[:, :2] = ref[:, :2] * 0.5 + 7; src[:, 2] *= 0.5
    >>> bool(np.allclose(align_landmarks(src, ref), ref, atol=1e-3))
    True
    """
    source = np.asarray(source_landmarks, np.float64)
    reference = np.asarray(reference_landmarks, np.float64)
    chosen = list(STABLE_INDICES if indices is None else np.asarray(indices).ravel())
    if in_depth:
        if source.shape[1] < 3 or reference.shape[1] < 3:
            raise ValueError(f"in_depth needs x, y and z; got {source.shape[1]} and {reference.shape[1]} columns")
        scale, rotation, translation = similarity_fit(source[chosen, :3], reference[chosen, :3])
        return (scale * source[:, :3] @ rotation.T + translation).astype(np.float32)
    scale, rotation, translation = similarity_fit(source[chosen, :2], reference[chosen, :2])
    out = source.copy()
    out[:, :2] = scale * source[:, :2] @ rotation.T + translation
    if out.shape[1] > 2:
        out[:, 2] = source[:, 2] * scale
    return out.astype(np.float32)


@lru_cache(maxsize=1)
def _neighbour_average() -> np.ndarray:
    """(468, 468) row-normalized adjacency of the mesh vertices: (A @ w)[v] is the mean of w over v's neighbours."""
    adjacency = np.zeros((468, 468), np.float64)
    for vertex, others in mesh_neighbours().items():
        for other in others:
            if vertex < 468 and other < 468:
                adjacency[vertex, other] = 1.0
    adjacency /= np.maximum(adjacency.sum(axis=1, keepdims=True), 1.0)
    adjacency.flags.writeable = False
    return adjacency


#: Outer and inner corner of the mouth on each side (subject's right, left).
_MOUTH_CORNERS = ((61, 78), (291, 308))
_INNER_MOUTH_CORNERS = tuple(inner for _, inner in _MOUTH_CORNERS)
#: The inner edges of the lips (FaceMesh), mouth corners left out: where the mouth opens.
_UPPER_INNER_LIP = (191, 80, 81, 82, 13, 312, 311, 310, 415)
_LOWER_INNER_LIP = (95, 88, 178, 87, 14, 317, 402, 318, 324)
#: How many mesh rings the lips are thick (their outer edges are three edges from the inner ones) and
#: over how many more rings beyond them the opening's shift fades out.
_LIP_RINGS, _OPENING_FADE_RINGS = 3, 3


@lru_cache(maxsize=1)
def _lower_lip_weights() -> np.ndarray:
    """(468,) 1 on the lower lip, fading to 0 over a few rings below it (toward the chin), 0 elsewhere.

    The mouth is a hole in the mesh, so ring distance tells the lips apart: a vertex belongs to the lower
    lip when it is no more edges from the lower lip's inner edge than from the upper's (the way round
    the corner is longer); the corners themselves count as lower, and their shift is 0 anyway."""
    upper, lower = ring_distance(_UPPER_INNER_LIP), ring_distance(_LOWER_INNER_LIP)
    fade = np.clip(1.0 - (lower - _LIP_RINGS) / (_OPENING_FADE_RINGS + 1), 0.0, 1.0)
    weights = np.where(lower <= upper, fade, 0.0)
    weights.flags.writeable = False
    return weights


#: Mesh rings over which a corner's lift fades toward the middle of the lips (five edges away).
_CORNER_RINGS = 4


@lru_cache(maxsize=1)
def _corner_weights() -> np.ndarray:
    """(2, 468) for each mouth corner, 1 at the corner fading to 0 over :data:`_CORNER_RINGS` rings."""
    weights = [np.clip(1.0 - ring_distance(corner) / _CORNER_RINGS, 0.0, 1.0) for corner in _MOUTH_CORNERS]
    out = np.stack(weights)
    out.flags.writeable = False
    return out


def _with_expression_of(donor: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The (aligned) donor's landmarks with the target's mouth expression: its opening and its smile.

    Opening: the donor's lower lip drops or rises, as a jaw does, until each of the nine pairs of
    inner-lip points (upper and lower edge, from corner to corner) is as far apart as the target's; in
    between, the shift is interpolated along the mouth, 0 at the corners. The lower lip moves as a
    whole, the skin below it less and less over a few mesh rings; the upper lip and the nose do not
    move. Smile: each mouth corner moves up or down (along the target's face, eyes to mouth) until it
    sits as far from the lips' middle as the target's, fading over four rings toward the middle of the
    lips. Shape stays the donor's (the lips' width and fullness, where the corners are across the
    face); how open the mouth is and how it smiles become the target's, so a morph, even one that
    exaggerates the difference (strength above 1), does not open, close or bend the mouth.
    """
    out = donor.copy()
    upper, lower = INNER_LIPS
    tops, bottoms = list(_UPPER_INNER_LIP), list(_LOWER_INNER_LIP)
    changes = (target[bottoms, :3] - target[tops, :3]) - (donor[bottoms, :3] - donor[tops, :3])  # (9, 3)
    left, right = (target[i, :2] for i in _INNER_MOUTH_CORNERS)
    axis = (right - left) / max(float(np.linalg.norm(right - left)), 1e-6)
    along = (target[:468, :2] - left) @ axis  # pixels from the corner 78 toward 308
    stops = np.concatenate([[along[_INNER_MOUTH_CORNERS[0]]], along[bottoms], [along[_INNER_MOUTH_CORNERS[1]]]])
    values = np.concatenate([np.zeros((1, 3)), changes, np.zeros((1, 3))])
    order = np.argsort(stops, kind="stable")
    shift = np.stack([np.interp(along, stops[order], values[order, k]) for k in range(3)], axis=1)
    shift[bottoms] = changes  # exactly, whatever the interpolation does between out-of-order points
    out[:468, :3] += _lower_lip_weights()[:, None] * shift

    eyes = target[list(STABLE_INDICES[:4]), :3].mean(axis=0)
    middle = (target[upper, :3] + target[lower, :3]) / 2
    down = (middle - eyes) / max(float(np.linalg.norm(middle - eyes)), 1e-6)  # the target's, for both faces

    def lift(points: np.ndarray, corner: int) -> float:
        """How far below the lips' middle a corner is, along the target's face (negative: above)."""
        return float((points[corner, :3] - (points[upper, :3] + points[lower, :3]) / 2) @ down)

    for (corner, _), weights in zip(_MOUTH_CORNERS, _corner_weights()):
        out[:468, :3] += weights[:, None] * (lift(target, corner) - lift(out, corner)) * down
    return out


#: The strongest shape morph: twice the difference between the donor's shape and the person's.
MAX_MORPH = 2.0


def morph_landmarks(
    target_landmarks: np.ndarray,
    donor_landmarks: np.ndarray,
    strength: float | np.ndarray,
    *,
    vertex_weights: np.ndarray | None = None,
    taper: int = 2,
    oval_weight: float = 1.0,
    keep_expression: bool = True,
) -> np.ndarray:
    """The target's landmarks moved toward the donor's shape.

    The donor is first aligned onto the target in depth (:func:`align_landmarks` with ``in_depth``), so
    only shape moves, not position, size, roll or head pose: a donor looking straight ahead does not turn
    a turned head toward the camera (nor, above 1, past it). Each mesh vertex then moves ``w`` of the way
    to its aligned donor position, ``w = strength * vertex_weights`` after tapering.

    Parameters
    ----------
    target_landmarks, donor_landmarks : (478, 3) landmarks.
    strength : in [0, :data:`MAX_MORPH`], a scalar or one value per vertex (478,); above 1 a vertex moves
        past the donor's position (the difference from the target exaggerated).
    vertex_weights : (478,) in [0, 1], for instance 1 on the salient regions' vertices and 0 elsewhere;
        default all ones. Vertices of weight 0 do not move. The iris entries (468-477) of ``strength`` and
        ``vertex_weights`` are ignored: irises follow their eye.
    taper : how many rings of mesh neighbours a weight ramps down over, inside the weighted area, where it
        borders lower weights: a 1-to-0 step between neighbouring vertices would stretch the triangles
        between them into a visible crease. Taper only lowers weights (uniform weights are unchanged and
        zero stays zero).
    oval_weight : factor on the face-oval vertices (the taper then carries it inward). 1 lets the face
        outline move with the rest, which high privacy levels need (the outline is where recognizers still
        find a person); 0 pins it, so the morphed face still meets untouched surroundings.
    keep_expression : the mouth keeps the target's opening and smile (the donor's lower lip is dropped or
        raised and its corners moved up or down first, see :func:`_with_expression_of`): those belong to the
        expression, which the anonymized face keeps, not to the identity.

    Returns
    -------
    (478, 3) float32 landmarks. The iris points (not part of the mesh) follow the similarity that best maps
    their eye's outline, so the target's gaze stays while the eye moves and changes size.

    Examples
    --------
    >>> import numpy as np
    >>> target = np.random.default_rng(2).uniform(0, 100, (478, 3)).astype(np.float32)
    >>> donor = target + 3
    >>> bool(np.allclose(morph_landmarks(target, donor, 0.0), target))
    True
    """
    target = np.asarray(target_landmarks, np.float64)
    aligned = align_landmarks(donor_landmarks, target, in_depth=True).astype(np.float64)
    if keep_expression:
        aligned = _with_expression_of(aligned, target)
    weights = np.broadcast_to(np.asarray(strength, np.float64), (478,)).copy()
    if vertex_weights is not None:
        weights *= np.asarray(vertex_weights, np.float64).reshape(478)
    weights = np.clip(weights, 0.0, MAX_MORPH)
    mesh_w = weights[:468].copy()
    mesh_w[list(FACE_OVAL)] *= float(np.clip(oval_weight, 0.0, 1.0))
    average = _neighbour_average()
    for _ in range(max(int(taper), 0)):
        # each step pulls a vertex half way toward its neighbours' mean, but never up: an erosion-like
        # smoothing that ramps weights down toward lower-weighted neighbours
        mesh_w = np.minimum(mesh_w, 0.5 * (mesh_w + average @ mesh_w))

    out = target.copy()
    out[:468] += mesh_w[:, None] * (aligned[:468] - target[:468])
    for eye, irises in _IRISES.items():
        outline = list(REGIONS[eye].indices)
        if np.array_equal(out[outline], target[outline]):
            continue  # a still eye keeps its iris exactly
        scale, rotation, translation = similarity_fit(target[outline, :2], out[outline, :2])
        out[list(irises), :2] = scale * target[list(irises), :2] @ rotation.T + translation
        out[list(irises), 2] = target[list(irises), 2] + (out[outline, 2] - target[outline, 2]).mean()
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------- colour


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def match_colour(
    source: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    *,
    min_pixels: int = 50,
    gain_range: tuple[float, float] = (0.5, 2.0),
    smooth: float | None = None,
    shading: float = 0.0,
) -> np.ndarray:
    """``source`` with the colour and illumination of ``reference``, region by region, in CIELAB.

    For each region (label >= 0) the mean and standard deviation of L, a and b of ``source`` are mapped to
    those of ``reference``: ``out = gain * source + offset`` with ``gain = std_ref / std_src`` clipped to
    ``gain_range`` (a flat patch would otherwise blow noise up). A region with fewer than ``min_pixels``
    pixels, and every pixel off the face (label -1), uses the whole face's statistics. The per-pixel
    gain and offset maps are then blurred (Gaussian sigma ``smooth``), so the correction changes gradually
    across region borders instead of leaving seams. ``shading`` above 0 mixes the whole face's mapping
    into every region's, so the source keeps more of its own shading.

    Parameters
    ----------
    source, reference : (H, W, 3) uint8 RGB, the same shape and aligned (the donor warped onto the target,
        and the target).
    labels : (H, W) int label map shared by both, e.g. :func:`lookalike.landmarks.partition.region_labels`.
        Set it to -1 where ``source`` has no content (outside the warp's coverage) so empty pixels do not
        enter the statistics.
    min_pixels : regions smaller than this take the whole face's statistics.
    gain_range : clip range of the standard-deviation ratio.
    smooth : blur sigma of the gain/offset maps in pixels; default 5% of the face's extent
        (sqrt of its pixel count); 0 disables it.
    shading : in [0, 1], how much the whole face's statistics replace each region's: 0 keeps the
        reference's shading region by region, 1 transfers only its overall colour and lighting (the
        source keeps its own shading).

    Returns
    -------
    (H, W, 3) uint8 RGB.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.random.default_rng(3).integers(60, 200, (40, 40, 3), dtype=np.uint8)
    >>> labels = np.zeros((40, 40), np.int16); labels[:, 20:] = 1
    >>> out = match_colour((ref * 0.6).astype(np.uint8), ref, labels)
    >>> bool(abs(float(out.mean()) - float(ref.mean())) < 2)
    True
    """
    labels = np.asarray(labels)
    if not 0.0 <= shading <= 1.0:
        raise ValueError(f"shading must be in [0, 1], got {shading}")
    if source.shape[:2] != labels.shape or reference.shape[:2] != labels.shape:
        raise ValueError(f"source {source.shape}, reference {reference.shape} and labels {labels.shape} differ in size")
    face = labels >= 0
    count = int(face.sum())
    if count < 2:
        return source.copy()
    if smooth is None:
        smooth = 0.05 * math.sqrt(count)
    # Statistics and maps are only needed around the face (plus the blur's reach); beyond that every
    # pixel takes the whole face's correction anyway.
    ys, xs = np.nonzero(face)
    margin = int(math.ceil(3 * smooth)) + 1
    height, width = labels.shape
    box = (
        slice(max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, height)),
        slice(max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, width)),
    )
    src_lab = _to_lab(source)
    src_box, ref_box = src_lab[box], _to_lab(reference[box])
    # Region sums by bincount: one pass over the pixels instead of one boolean mask per region.
    bins = (labels[box].astype(np.int64) + 1).ravel()  # 0: off the face
    n_bins = int(bins.max()) + 1
    counts = np.bincount(bins, minlength=n_bins).astype(np.float64)

    def moments(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = lab.reshape(-1, 3).astype(np.float64)
        sums = np.stack([np.bincount(bins, flat[:, c], n_bins) for c in range(3)], axis=1)
        squares = np.stack([np.bincount(bins, flat[:, c] ** 2, n_bins) for c in range(3)], axis=1)
        return sums, squares

    def transfer(
        n: np.ndarray, s_sum: np.ndarray, s_sq: np.ndarray, r_sum: np.ndarray, r_sq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        n = np.maximum(n, 1.0)[..., None]
        s_mean, r_mean = s_sum / n, r_sum / n
        s_std = np.sqrt(np.maximum(s_sq / n - s_mean**2, 0.0))
        r_std = np.sqrt(np.maximum(r_sq / n - r_mean**2, 0.0))
        gain = np.clip(r_std / np.maximum(s_std, 1e-3), *gain_range)
        return gain, r_mean - gain * s_mean

    (s_sum, s_sq), (r_sum, r_sq) = moments(src_box), moments(ref_box)
    gain, offset = transfer(counts, s_sum, s_sq, r_sum, r_sq)
    whole_gain, whole_offset = transfer(
        counts[1:].sum(), s_sum[1:].sum(0), s_sq[1:].sum(0), r_sum[1:].sum(0), r_sq[1:].sum(0)
    )
    small = counts < min_pixels
    small[0] = True  # off the face
    gain[small], offset[small] = whole_gain, whole_offset
    if shading > 0:
        gain = (1.0 - shading) * gain + shading * whole_gain
        offset = (1.0 - shading) * offset + shading * whole_offset
    gain_map = gain.astype(np.float32)[bins].reshape(src_box.shape)
    offset_map = offset.astype(np.float32)[bins].reshape(src_box.shape)
    if smooth > 0:
        gain_map, offset_map = gaussian_blur(gain_map, smooth), gaussian_blur(offset_map, smooth)

    out_lab = src_lab * whole_gain.astype(np.float32) + whole_offset.astype(np.float32)
    out_lab[box] = src_box * gain_map + offset_map
    out_lab[..., 0] = np.clip(out_lab[..., 0], 0, 100)
    rgb = cv2.cvtColor(out_lab, cv2.COLOR_Lab2RGB)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------------- blending


def laplacian_reach(levels: int) -> int:
    """How far, in pixels, :func:`laplacian_blend` with ``levels`` bands can change pixels beyond the mask.

    OpenCV's pyramids use a 5-tap kernel, so influence is strictly finite: each reduction widens the
    mask's support by 2 pixels of the coarser level and each expansion back by about as much, which adds
    up to ``4 * (2 ** (levels - 1) - 1)`` pixels along each axis (measured: 60 for 5 levels), at most
    ``sqrt(2)`` times that diagonally. ``6 * 2 ** (levels - 1)`` bounds it (checked in the tests).

    >>> laplacian_reach(1), laplacian_reach(5)
    (6, 96)
    """
    return 6 * 2 ** (max(int(levels), 1) - 1)


def _auto_levels(extent: int) -> int:
    # The coarsest band should still see the mask as a shape ~8-16 px across: coarser bands only carry
    # colour far beyond the mask.
    return int(np.clip(math.floor(math.log2(max(extent, 2))) - 3, 1, 8))


def laplacian_blend(base: np.ndarray, overlay: np.ndarray, mask: np.ndarray, levels: int | None = None) -> np.ndarray:
    """Multi-band (Burt-Adelson) blend of ``overlay`` into ``base`` under a soft ``mask``.

    Each band of the Laplacian pyramid is mixed with the mask blurred to that band's scale: fine detail
    switches over a narrow seam, low frequencies (colour, shading) over a wide one, which hides the
    seams that a single feathered alpha or Poisson cloning leave.

    Guarantee: every pixel farther than :func:`laplacian_reach` ``(levels)`` pixels from the mask's
    support (mask > 0) is bit-identical to ``base``. It is computed as ``base + correction``, where the
    correction is the blended Laplacian pyramid of ``overlay - base`` (so it is exactly zero wherever all
    blurred masks are), inside a box around the mask, and composed as ``where(support, blended, base)``
    with the support dilated by that reach. An all-zero mask returns ``base`` unchanged. Pixels closer
    than the reach but outside the mask may take a faint low-frequency tint from ``overlay`` (that is the
    wide low-frequency seam); give ``overlay = base`` where it has no content to avoid it.

    Parameters
    ----------
    base, overlay : (H, W, C) or (H, W) images of the same shape; uint8 (rounded) or float.
    mask : (H, W) weights of ``overlay``, clipped to [0, 1].
    levels : number of pyramid levels (bands); default from the mask's extent: floor(log2(smaller side of
        the mask's bounding box)) - 3, between 1 and 8 (5 for a 300 px face).

    Returns
    -------
    Array of ``base``'s shape and dtype.
    """
    if base.shape != overlay.shape:
        raise ValueError(f"base {base.shape} and overlay {overlay.shape} differ")
    weights = np.clip(np.asarray(mask, np.float32).reshape(base.shape[:2]), 0.0, 1.0)
    support = weights > 0
    if not support.any():
        return base.copy()
    ys, xs = np.nonzero(support)
    if levels is None:
        levels = _auto_levels(min(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))
    levels = max(int(levels), 1)
    reach = laplacian_reach(levels)
    height, width = base.shape[:2]
    y0, y1 = max(int(ys.min()) - reach, 0), min(int(ys.max()) + reach + 1, height)
    x0, x1 = max(int(xs.min()) - reach, 0), min(int(xs.max()) + reach + 1, width)
    roi = (slice(y0, y1), slice(x0, x1))

    base_f = base[roi].astype(np.float32)
    diff = overlay[roi].astype(np.float32) - base_f
    m = weights[roi]
    correction = _blend_bands(diff, m, levels)
    blended = base_f + correction
    if np.issubdtype(base.dtype, np.integer):
        info = np.iinfo(base.dtype)
        blended = np.clip(np.round(blended), info.min, info.max)
    # The explicit composition makes the guarantee independent of floating-point details.
    near = cv2.distanceTransform((~support[roi]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= reach
    if blended.ndim == 3:
        near = near[..., None]
    out = base.copy()
    out[roi] = np.where(near, blended.astype(base.dtype), base[roi])
    return out


def _blend_bands(diff: np.ndarray, mask: np.ndarray, levels: int) -> np.ndarray:
    """Collapse of the Laplacian pyramid of ``diff`` with each band weighted by the mask's Gaussian pyramid."""
    gaussians, masks = [diff], [mask]
    for _ in range(levels - 1):
        if min(gaussians[-1].shape[:2]) < 2:
            break
        gaussians.append(cv2.pyrDown(gaussians[-1]))
        masks.append(cv2.pyrDown(masks[-1]))

    def weighted(band: np.ndarray, level_mask: np.ndarray) -> np.ndarray:
        return band * (level_mask[..., None] if band.ndim == 3 else level_mask)

    out = weighted(gaussians[-1], masks[-1])
    for level in range(len(gaussians) - 2, -1, -1):
        size = (gaussians[level].shape[1], gaussians[level].shape[0])
        band = gaussians[level] - _up(gaussians[level + 1], size)
        out = _up(out, size) + weighted(band, masks[level])
    return out


def _up(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    up = cv2.pyrUp(image, dstsize=size)
    return up.reshape(size[1], size[0], *image.shape[2:])  # pyrUp drops a trailing 1-channel axis


def reinject_detail(
    result: np.ndarray, original: np.ndarray, mask: np.ndarray, sigma: float, amount: float = 1.0
) -> np.ndarray:
    """``result`` with its high frequencies replaced by ``original``'s under ``mask``.

    ``out = result + mask * amount * (high(original) - high(result))`` with ``high(x) = x - gaussian(x,
    sigma)``: at mask 1 and amount 1 the result keeps only its low frequencies (the donor's shapes and
    shading) and takes the original's pores, wrinkles, stubble and sensor grain. ``sigma`` sets what counts
    as detail; a few pixels (1-2% of the face width) keeps texture without bringing back the original's
    features. Pixels where the mask is 0 are returned unchanged.

    Parameters
    ----------
    result, original : (H, W, 3) uint8 images of the same shape, aligned.
    mask : (H, W) float weights in [0, 1].
    sigma : Gaussian sigma in pixels separating detail from structure.
    amount : scale of the swap (1: the original's detail replaces the result's; 0: no change).

    Returns
    -------
    (H, W, 3) uint8.

    Examples
    --------
    >>> import numpy as np
    >>> original = np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    >>> smooth = np.full_like(original, 128)
    >>> mask = np.zeros((32, 32), np.float32); mask[8:24, 8:24] = 1
    >>> out = reinject_detail(smooth, original, mask, sigma=2.0)
    >>> float(out[8:24, 8:24].std()) > 20, bool((out[:4] == 128).all())
    (True, True)
    """
    if result.shape != original.shape:
        raise ValueError(f"result {result.shape} and original {original.shape} differ")
    weights = np.clip(np.asarray(mask, np.float32).reshape(result.shape[:2]), 0.0, 1.0) * float(amount)
    support = weights != 0
    if not support.any() or sigma <= 0:
        return result.copy()
    ys, xs = np.nonzero(support)
    margin = int(math.ceil(3 * sigma)) + 1  # the blur must see real neighbours, not the box's border
    height, width = result.shape[:2]
    roi = (
        slice(max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, height)),
        slice(max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, width)),
    )
    res = result[roi].astype(np.float32)
    orig = original[roi].astype(np.float32)
    detail = (orig - gaussian_blur(orig, sigma)) - (res - gaussian_blur(res, sigma))
    w = weights[roi][..., None] if res.ndim == 3 else weights[roi]
    mixed = np.clip(np.round(res + w * detail), 0, 255).astype(result.dtype)
    out = result.copy()
    inside = support[roi][..., None] if res.ndim == 3 else support[roi]
    out[roi] = np.where(inside, mixed, result[roi])
    return out
