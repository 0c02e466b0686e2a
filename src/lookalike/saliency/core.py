"""Which parts of one face carry its identity for a face recognizer, and the mask a strength selects.

Two ways to ask a recognizer:

- **occlusion** (any recognizer; the default): neutralise one feature at a time, both sides at once
  (replace it with a heavy blur of the face, which keeps its colour and shading but no features), and
  measure how far the identity embedding moves from the unchanged face's. Both sides go together because
  recognizers read them redundantly: with one eye left, the face is still recognised.
- **gradient** (a differentiable recognizer: FaceNet): integrated gradients of the embedding's cosine
  similarity to the unchanged embedding, on the straight path from the neutralised face to the face. The
  pixel attributions add up to the similarity lost by neutralising the whole face, so a region's sum
  estimates what neutralising it alone would cost, from ``steps`` forward and backward passes instead of
  one forward pass per region.

A region's **share** is its part of the face's total identity score (shares add up to 1); its **density**
is share per share of face area. Regions are ranked by feature (both eyes, both eyebrows, nose, mouth,
cheeks, chin, forehead, jaw; see :data:`~lookalike.landmarks.partition.FEATURES`), features by their density,
so taking them in order changes the fewest pixels for a given amount of identity, and symmetrically.
Several recognizers are combined by averaging their shares and their normalised pixel maps, so a mask
does not overfit one model.

>>> from skimage.data import astronaut
>>> from lookalike.faces import detect
>>> image = astronaut()
>>> saliency = identity_saliency(image, detect(image)[0], recognizer="facenet")
>>> saliency.status, len(saliency.regions), round(sum(r.share for r in saliency.regions), 6)
('computed', 12, 1.0)
>>> mask = identity_mask(saliency, 0.5)
>>> mask.shape == image.shape[:2], 0.0 < mask.mean() < 0.1
(True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import cv2
import numpy as np

from lookalike.identity import available_recognizers, get_recognizer
from lookalike.identity.facenet import FaceNetRecognizer, alignment_matrix, standardize, warp_face
from lookalike.imaging import clamp_box, gaussian_blur
from lookalike.landmarks.partition import FEATURE_OF, FEATURES, SALIENCY_REGIONS, region_areas, region_labels
from lookalike.types import Face

Method = Literal["occlusion", "gradient"]
RecognizerChoice = Literal["facenet", "dlib", "both"]

#: Statuses of a face's saliency: computed as asked; computed with a caveat (``reason``); not computed.
STATUSES = ("computed", "degraded", "skipped")


@dataclass(frozen=True)
class SaliencyConfig:
    """How saliency is computed.

    Attributes
    ----------
    steps : integrated-gradient steps (forward + backward passes, batched) for the gradient method.
    greedy_steps : occlusion: 1 measures each feature removed alone; n > 1 chooses the first n - 1 features
        one after another, each measured with the ones before already removed (slower, ranks better).
    neutral_blur : sigma of the identity-neutral fill, as a fraction of the face box width. At 0.15 a blur
        leaves dlib matching 0.6% and FaceNet 0% of OMI faces (``benchmarks/bench_baselines.py``).
    feather : softness of region edges when regions are neutralised and in :func:`identity_mask`, as a
        fraction of the face width.
    margin : the window cut out around the face box, as a fraction of its size on each side.
    small_face : faces narrower than this (pixels) are upsampled by the recognizers: ``degraded``.
    tiny_face : faces narrower than this are ``skipped``.
    profile_yaw : faces turned further than this (degrees) hide regions: ``degraded``.
    border_fraction : a face with more than this fraction of its landmarks outside the image: ``degraded``.
    """

    steps: int = 2
    greedy_steps: int = 1
    neutral_blur: float = 0.15
    feather: float = 0.02
    margin: float = 0.5
    small_face: int = 64
    tiny_face: int = 16
    profile_yaw: float = 45.0
    border_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be at least 1")
        if not 0 < self.neutral_blur <= 1:
            raise ValueError("neutral_blur must be in (0, 1]")


@dataclass(frozen=True)
class RegionScore:
    """One region's part in a face's identity.

    ``score`` is in the recognizer's distance units when one recognizer was asked (the identity shift the
    region is responsible for), and equals ``share`` for combined recognizers.
    """

    name: str
    score: float
    share: float
    area: float
    density: float

    def to_dict(self) -> dict:
        return {
            "region": self.name,
            "feature": FEATURE_OF[self.name],
            "score": round(self.score, 5),
            "share": round(self.share, 4),
            "area": round(self.area, 4),
            "density": round(self.density, 3),
        }


@dataclass
class IdentitySaliency:
    """Identity saliency of one face.

    The pixel map and the region labels are stored for ``window`` (x0, y0, x1, y1 in image pixels) only;
    :meth:`pixel_map` and :meth:`label_map` paste them into an image-sized array.

    Attributes
    ----------
    status : "computed", "degraded" (computed; ``reason`` says what limits it) or "skipped" (not computed).
    methods : the method used for each recognizer.
    regions : ranked: features by identity per area, each feature's regions together.
    total_shift : per recognizer, how far its embedding moves when the whole face is neutralised (the
        gradient method measures it on the way; occlusion does not).
    """

    face: Face
    image_shape: tuple[int, int]
    recognizers: tuple[str, ...]
    methods: dict[str, str]
    status: str
    reason: str | None = None
    window: tuple[int, int, int, int] = (0, 0, 0, 0)
    values: np.ndarray | None = None
    labels: np.ndarray | None = None
    regions: list[RegionScore] = field(default_factory=list)
    per_recognizer: dict[str, dict[str, float]] = field(default_factory=dict)
    total_shift: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ranking(self) -> list[str]:
        return [r.name for r in self.regions]

    def pixel_map(self) -> np.ndarray:
        """(H, W) float32 map of the image in [0, 1]: 1 at the face's most identity-carrying pixels (its 99th
        percentile and above), 0 off the window."""
        return self._paste(self.values, 0.0, np.float32)

    def label_map(self) -> np.ndarray:
        """(H, W) int16 region index (into :data:`SALIENCY_REGIONS`) under each pixel, -1 off the face."""
        return self._paste(self.labels, -1, np.int16)

    def _paste(self, values: np.ndarray | None, fill, dtype) -> np.ndarray:
        out = np.full(self.image_shape, fill, dtype)
        if values is not None:
            x0, y0, x1, y1 = self.window
            out[y0:y1, x0:x1] = values
        return out

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "box": [round(float(v), 1) for v in self.face.box],
            "recognizers": list(self.recognizers),
            "methods": self.methods,
            "regions": [r.to_dict() for r in self.regions],
            "per_recognizer_share": {
                k: {n: round(v, 4) for n, v in shares.items()} for k, shares in self.per_recognizer.items()
            },
            "total_shift": {k: round(v, 4) for k, v in self.total_shift.items()},
            "seconds": round(self.seconds, 3),
        }


@dataclass
class FaceWindow:
    """A face cut out of its image with a margin, its identity-neutral fill and its region labels.

    ``face`` is in window coordinates. :meth:`neutralized` is how both saliency and the deletion-curve
    benchmark remove regions, so they measure the same edit.
    """

    crop: np.ndarray
    neutral: np.ndarray
    labels: np.ndarray
    face: Face
    offset: tuple[int, int]
    feather: float
    #: Features chosen one after another by greedy occlusion (they lead the ranking in this order).
    greedy_order: list[str] = field(default_factory=list)

    @property
    def face_area(self) -> float:
        return float((self.labels >= 0).sum())

    def region_mask(self, names: Sequence[str]) -> np.ndarray:
        """Soft (H, W) float32 mask of the named regions in the window."""
        mask = np.zeros(self.labels.shape, np.float32)
        box = self._support(names)
        if box is not None:
            mask[box] = self._soft_mask(names, box)
        return mask

    def neutralized(self, names: Sequence[str]) -> np.ndarray:
        """The window's pixels with the named regions replaced by the identity-neutral fill."""
        box = self._support(names)
        if box is None:
            return self.crop
        alpha = self._soft_mask(names, box)[..., None]
        out = self.crop.copy()
        mixed = self.crop[box].astype(np.float32) * (1 - alpha) + self.neutral[box].astype(np.float32) * alpha
        out[box] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        return out

    def _support(self, names: Sequence[str]) -> tuple[slice, slice] | None:
        """The rectangle the soft mask of the regions can reach (their pixels plus the feather's 3 sigma)."""
        indices = [SALIENCY_REGIONS.index(n) for n in names]
        if not indices:
            return None
        ys, xs = np.nonzero(np.isin(self.labels, indices))
        if ys.size == 0:
            return None
        pad = int(np.ceil(3 * self.feather)) + 1
        height, width = self.labels.shape
        return (
            slice(max(0, ys.min() - pad), min(height, ys.max() + pad + 1)),
            slice(max(0, xs.min() - pad), min(width, xs.max() + pad + 1)),
        )

    def _soft_mask(self, names: Sequence[str], box: tuple[slice, slice]) -> np.ndarray:
        indices = [SALIENCY_REGIONS.index(n) for n in names]
        mask = np.isin(self.labels[box], indices).astype(np.float32)
        if self.feather > 0:
            # The box reaches 3 sigma past the regions, so blurring inside it equals blurring the window.
            mask = np.maximum(mask, cv2.GaussianBlur(mask, (0, 0), self.feather, borderType=cv2.BORDER_CONSTANT))
        return mask


def face_window(image: np.ndarray, face: Face, config: SaliencyConfig | None = None) -> FaceWindow:
    """Cut out ``face`` (which needs dense landmarks) with its neutral fill and region labels."""
    config = config or SaliencyConfig()
    if face.landmarks is None:
        raise ValueError("the face has no dense landmarks")
    x0, y0, x1, y1 = _window(image.shape, face, config.margin)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    sigma = config.neutral_blur * face.width
    neutral = gaussian_blur(crop, sigma)
    labels = region_labels(crop.shape, face.landmarks, offset=(x0, y0))
    return FaceWindow(
        crop=crop,
        neutral=neutral,
        labels=labels,
        face=face.translated(-x0, -y0),
        offset=(x0, y0),
        feather=config.feather * face.width,
    )


def identity_saliency(
    image: np.ndarray,
    face: Face,
    recognizer: RecognizerChoice | str = "facenet",
    method: Method | str = "occlusion",
    config: SaliencyConfig | None = None,
) -> IdentitySaliency:
    """Identity saliency of one face of an RGB uint8 image (the face needs dense landmarks).

    ``recognizer``: "facenet", "dlib" or "both" (shares and maps averaged). ``method``: "occlusion" (any
    recognizer; the default) or "gradient" (FaceNet only: a finer pixel map at the same cost, but its ranking
    moves identity more slowly, see the README's figures). Never raises for a difficult face: the
    result's ``status`` and ``reason`` say what happened.
    """
    config = config or SaliencyConfig()
    methods = resolve_methods(recognizer, method)
    names = tuple(methods)
    started = time.perf_counter()
    result = IdentitySaliency(
        face=face, image_shape=(image.shape[0], image.shape[1]), recognizers=names, methods=methods, status="computed"
    )
    problem = _problem(image.shape, face, config)
    if problem and problem[0] == "skipped":
        result.status, result.reason = problem
        return result
    try:
        window = face_window(image, face, config)
        if window.face_area < 1:
            raise ValueError("the face's regions cover no pixel of the image")
        maps, shares, raw_scores = [], [], {}
        for name in names:
            scores, total, pixel_map = _SCORERS[methods[name]](window, name, config)
            if total is not None:
                result.total_shift[name] = total
            raw_scores[name] = scores
            share = _shares(scores)
            result.per_recognizer[name] = share
            shares.append(share)
            maps.append(_unit(pixel_map))
    except Exception as exc:  # noqa: BLE001 - a face that cannot be measured is reported, not fatal
        result.status, result.reason = "skipped", f"saliency failed: {type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - started
        return result
    combined = {n: float(np.mean([s[n] for s in shares])) for n in SALIENCY_REGIONS}
    areas = region_areas(window.labels) / window.face_area
    regions = []
    for index, region in enumerate(SALIENCY_REGIONS):
        region_share = combined[region]
        score = raw_scores[names[0]][region] if len(names) == 1 else region_share
        density = region_share / areas[index] if areas[index] > 0 else 0.0
        regions.append(RegionScore(region, float(score), region_share, float(areas[index]), float(density)))
    result.regions = _ranked(regions, window.greedy_order if len(names) == 1 else [])
    result.values = _unit(np.mean(maps, axis=0))
    result.labels = window.labels
    x0, y0 = window.offset
    result.window = (x0, y0, x0 + window.crop.shape[1], y0 + window.crop.shape[0])
    if problem:
        result.status, result.reason = problem
    result.seconds = time.perf_counter() - started
    return result


def select_regions(saliency: IdentitySaliency, strength: float) -> list[str]:
    """The regions a strength in [0, 1] selects for this face: the fewest features (both sides together),
    in ranked order, whose shares add up to ``strength`` of the face's identity (0: none; 1: every region,
    the whole face)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if saliency.status == "skipped":
        raise ValueError(f"no saliency for this face ({saliency.reason})")
    if strength >= 1.0:
        return [r.name for r in saliency.regions]
    chosen: list[str] = []
    reached = 0.0
    for feature in dict.fromkeys(FEATURE_OF[r.name] for r in saliency.regions):
        members = [r for r in saliency.regions if FEATURE_OF[r.name] == feature]
        share = sum(r.share for r in members)
        if reached >= strength - 1e-9 or share <= 0:
            break
        chosen.extend(r.name for r in members)
        reached += share
    return chosen


def identity_mask(saliency: IdentitySaliency, strength: float, *, crop: bool = False) -> np.ndarray:
    """Soft float32 mask in [0, 1] of the regions :func:`select_regions` picks for ``strength``.

    The threshold adapts to the face: a face whose identity sits in its eyes gets a smaller mask at the
    same strength than one whose identity is spread over eyes, nose and jaw. Image-sized by default;
    ``crop=True`` returns it for ``saliency.window`` only. Raises ``ValueError`` for a skipped face, so a
    caller cannot mistake "no saliency" for "nothing to change".
    """
    names = select_regions(saliency, strength)
    assert saliency.labels is not None  # select_regions refuses a skipped face; every other one has its labels
    indices = [SALIENCY_REGIONS.index(n) for n in names]
    mask = np.isin(saliency.labels, indices).astype(np.float32)
    feather = SaliencyConfig.feather * saliency.face.width
    if indices and feather > 0:
        mask = np.maximum(mask, cv2.GaussianBlur(mask, (0, 0), feather))
    if crop:
        return mask
    return saliency._paste(mask, 0.0, np.float32)


def _occlusion(window: FaceWindow, name: str, config: SaliencyConfig) -> tuple[dict[str, float], None, np.ndarray]:
    """Identity shift of neutralising each feature (both sides at once).

    With ``config.greedy_steps`` = n > 1, the first n - 1 features are chosen one after another, each
    measured with the features chosen before it already neutralised (its marginal shift), and the rest by
    their marginal shift after those. Regions get their feature's score split by area.
    """
    recognizer = get_recognizer(name)
    areas = dict(zip(SALIENCY_REGIONS, region_areas(window.labels)))
    features = {f: [r for r in regions if areas[r] > 0] for f, regions in FEATURES.items()}
    features = {f: regions for f, regions in features.items() if regions}

    def shifts(variants: list[list[str]]) -> np.ndarray:
        embeddings = recognizer.embed_aligned(_variant_chips(window, recognizer, [[]] + variants))
        return np.atleast_1d(recognizer.distance(embeddings[0][None], embeddings[1:]))

    remaining, reached = list(features), 0.0
    removed: list[str] = []
    feature_scores: dict[str, float] = {}
    for step in range(max(1, config.greedy_steps)):
        measured = shifts([removed + features[f] for f in remaining])
        gains = {f: float(m) - reached for f, m in zip(remaining, measured)}
        last = step == config.greedy_steps - 1 or len(remaining) == 1
        if last:
            feature_scores.update(gains)
            break
        best = max(remaining, key=lambda f: gains[f] / sum(areas[r] for r in features[f]))
        feature_scores[best] = max(gains[best], 1e-6)  # a chosen feature keeps a sliver of share
        window.greedy_order.append(best)
        removed += features[best]
        reached += gains[best]
        remaining.remove(best)
    scores = {n: 0.0 for n in SALIENCY_REGIONS}
    for feature, score in feature_scores.items():
        feature_area = sum(areas[r] for r in features[feature])
        for region in features[feature]:
            scores[region] = score * areas[region] / feature_area
    pixel_map = np.zeros(window.labels.shape, np.float32)
    for index, region in enumerate(SALIENCY_REGIONS):
        if areas[region] > 0:
            pixel_map[window.labels == index] = max(scores[region], 0.0) / areas[region]
    pixel_map = cv2.GaussianBlur(pixel_map, (0, 0), max(window.feather, 0.5))
    return scores, None, pixel_map


def _variant_chips(window: FaceWindow, recognizer, variants: list[list[str]]) -> np.ndarray:
    """The recognizer's aligned chips of the window with each variant's regions neutralised.

    For a recognizer whose alignment is one affine warp (FaceNet), the face, its neutral fill and its labels
    are warped to the chip once and the variants composed there: the same edit as :meth:`FaceWindow.neutralized`
    followed by the warp (up to rounding), at a fraction of the cost for large faces. Others align each
    neutralised window.
    """
    if not hasattr(recognizer, "align_with_matrix"):
        return np.stack([recognizer.align(window.neutralized(v), window.face, reference=window.crop) for v in variants])

    size = recognizer.input_size
    matrix = alignment_matrix(window.face, size)
    face, neutral = (warp_face(img, matrix, size).astype(np.float32) for img in (window.crop, window.neutral))
    labels = cv2.warpAffine(
        window.labels, matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=-1
    )
    feather = window.feather * float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    chips = []
    for names in variants:
        mask = np.isin(labels, [SALIENCY_REGIONS.index(n) for n in names]).astype(np.float32)
        if names and feather > 0:
            mask = np.maximum(mask, cv2.GaussianBlur(mask, (0, 0), feather, borderType=cv2.BORDER_CONSTANT))
        alpha = mask[..., None]
        chips.append(np.clip(np.rint(face * (1 - alpha) + neutral * alpha), 0, 255).astype(np.uint8))
    return np.stack(chips)


def _gradient(window: FaceWindow, name: str, config: SaliencyConfig) -> tuple[dict[str, float], float, np.ndarray]:
    """Integrated gradients of the cosine similarity to the unchanged embedding, neutral fill as baseline."""
    import torch

    recognizer = get_recognizer(name)
    assert isinstance(recognizer, FaceNetRecognizer)  # resolve_methods allows the gradient method for facenet only
    matrix = alignment_matrix(window.face)
    size = recognizer.input_size
    chips = np.stack([warp_face(window.crop, matrix, size), warp_face(window.neutral, matrix, size)])
    face_x, neutral_x = standardize(chips)
    with torch.inference_mode():
        reference = recognizer.embed_tensor(torch.stack([face_x, neutral_x]))
    target, total = reference[0].clone(), float(1.0 - (reference[0] * reference[1]).sum())
    alphas = (torch.arange(config.steps, dtype=torch.float32) + 0.5) / config.steps
    path = (neutral_x + alphas[:, None, None, None] * (face_x - neutral_x)).requires_grad_(True)
    similarity = (recognizer.embed_tensor(path) * target).sum()
    (gradient,) = torch.autograd.grad(similarity, path)
    attribution = ((face_x - neutral_x) * gradient.mean(0)).sum(0).numpy().astype(np.float32)
    labels = cv2.warpAffine(
        window.labels.astype(np.float32),
        matrix,
        (size, size),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=-1,
    ).astype(np.int16)
    scores = {n: float(attribution[labels == i].sum()) for i, n in enumerate(SALIENCY_REGIONS)}
    # Raw attributions are speckled pixel by pixel; a few pixels of blur at 160 px show the features they mark.
    smoothed = cv2.GaussianBlur(np.maximum(attribution, 0), (0, 0), 4.0)
    height, width = window.labels.shape
    pixel_map = cv2.warpAffine(
        smoothed,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return scores, total, pixel_map


_SCORERS = {"occlusion": _occlusion, "gradient": _gradient}


def resolve_methods(recognizer: str, method: str) -> dict[str, str]:
    """The method each recognizer will use; ``ValueError`` for an unknown or impossible choice.

    >>> resolve_methods("both", "occlusion")
    {'dlib': 'occlusion', 'facenet': 'occlusion'}
    """
    return {name: _method_for(name, method) for name in _recognizer_names(recognizer)}


def _ranked(regions: list[RegionScore], leading: Sequence[str] = ()) -> list[RegionScore]:
    """Features by identity per area (share over area of both sides together), each feature's regions in a
    row; ``leading`` features (chosen greedily) come first, in their order."""
    by_feature: dict[str, list[RegionScore]] = {}
    for region in regions:
        by_feature.setdefault(FEATURE_OF[region.name], []).append(region)

    def density(members: list[RegionScore]) -> float:
        area = sum(r.area for r in members)
        return sum(r.share for r in members) / area if area > 0 else 0.0

    rest = sorted(
        (f for f in by_feature if f not in leading), key=lambda f: (-density(by_feature[f]), list(FEATURES).index(f))
    )
    order = [f for f in leading if f in by_feature] + rest
    return [r for f in order for r in sorted(by_feature[f], key=lambda r: (-r.density, SALIENCY_REGIONS.index(r.name)))]


def _unit(values: np.ndarray) -> np.ndarray:
    """Scaled so the 99th percentile of the nonzero values is 1 (one hot pixel should not wash out the rest)."""
    values = np.asarray(values, np.float32)
    positive = values[values > 0]
    if positive.size == 0:
        return np.zeros_like(values)
    return np.clip(values / float(np.percentile(positive, 99)), 0.0, 1.0)


def _shares(scores: dict[str, float]) -> dict[str, float]:
    positive = {n: max(v, 0.0) for n, v in scores.items()}
    total = sum(positive.values())
    if total <= 0:
        raise ValueError("no region moves the identity (the recognizer does not see this face)")
    return {n: v / total for n, v in positive.items()}


def _recognizer_names(recognizer: str) -> tuple[str, ...]:
    if recognizer == "both":  # dlib and FaceNet, as before more recognizers were registered
        return ("dlib", "facenet")
    if recognizer not in available_recognizers():
        raise ValueError(f"unknown recognizer {recognizer!r}; choose facenet, dlib or both")
    return (recognizer,)


def _method_for(recognizer: str, method: str) -> str:
    if method not in _SCORERS:
        raise ValueError(f"unknown saliency method {method!r}; choose occlusion or gradient")
    if method == "gradient" and recognizer != "facenet":
        raise ValueError(
            f"gradient saliency needs a differentiable recognizer; {recognizer} is not "
            "(use the occlusion method, or the facenet recognizer)"
        )
    return method


def _problem(shape: tuple[int, ...], face: Face, config: SaliencyConfig) -> tuple[str, str] | None:
    if face.landmarks is None:
        return "skipped", "no dense landmarks (profile, occluded or too small a face)"
    width = face.width
    if width < config.tiny_face:
        return "skipped", f"face is {width:.0f} px wide; below {config.tiny_face} px there is no identity to map"
    height, image_width = shape[:2]
    points = face.landmarks[:, :2]
    outside = float(
        np.mean((points[:, 0] < 0) | (points[:, 1] < 0) | (points[:, 0] >= image_width) | (points[:, 1] >= height))
    )
    if outside > config.border_fraction:
        return "degraded", f"{outside:.0%} of the face lies outside the image; only the visible part is mapped"
    if face.pose is not None and abs(face.pose.yaw) > config.profile_yaw:
        return "degraded", (
            f"profile face (yaw {face.pose.yaw:.0f} degrees): regions on the far side are hidden "
            "and recognizers are less sure"
        )
    if width < config.small_face:
        return "degraded", (f"face is {width:.0f} px wide; recognizers upsample it, so fine detail is guessed")
    return None


def _window(shape: tuple[int, ...], face: Face, margin: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    assert face.landmarks is not None  # face_window refuses a face without dense landmarks
    points = face.landmarks[:, :2]
    x0, y0 = min(x0, float(points[:, 0].min())), min(y0, float(points[:, 1].min()))
    x1, y1 = max(x1, float(points[:, 0].max())), max(y1, float(points[:, 1].max()))
    pad_x, pad_y = margin * (x1 - x0), margin * (y1 - y0)
    grown = (int(np.floor(x0 - pad_x)), int(np.floor(y0 - pad_y)), int(np.ceil(x1 + pad_x)), int(np.ceil(y1 + pad_y)))
    return clamp_box(grown, shape)
