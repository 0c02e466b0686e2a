"""The learned perceptual metric: a small head over the face features, trained on triplets.

Inputs are standardized per part (the shape part is first reduced by PCA fitted on the training faces),
then a two-layer MLP maps them to a unit vector; perceptual similarity is the cosine of two such vectors,
mapped to 0..1 (``(1 + cos) / 2``: 1 = the same look, 0.5 = unrelated, below 0.5 = opposite). Training
uses the cosine triplet loss of PerFace, ``max(0, cos(a, n) - cos(a, p) + margin)`` with margin 0.1.

Inference is plain numpy, so a trained head is a small ``.npz`` file and torch is needed only to train.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from lookalike.io import write_bytes_atomic
from lookalike.perception.features import PARTS

SHAPE_COMPONENTS = 32


@dataclass
class PerceptionModel:
    """Feature preprocessing and MLP weights; see the module docs."""

    centers: dict[str, np.ndarray]
    scales: dict[str, np.ndarray]
    shape_basis: np.ndarray  # (956, k) PCA directions, whitened
    weights: list[np.ndarray]  # W1, b1, W2, b2
    meta: dict = field(default_factory=dict)
    attribute_names: list[str] = field(default_factory=list)
    attribute_weights: np.ndarray | None = None  # (D + 1, A): ridge regression on the inputs, bias last

    def inputs(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """(N, D) network inputs from feature parts (name -> (N, d))."""
        blocks = []
        for name in PARTS:
            x = np.atleast_2d(np.asarray(parts[name], np.float64)) - self.centers[name]
            if name == "shape":
                x = x @ self.shape_basis
            blocks.append(x / self.scales[name])
        return np.concatenate(blocks, axis=1)

    def embed(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """(N, k) unit vectors whose cosine is the perceptual similarity."""
        w1, b1, w2, b2 = self.weights
        hidden = np.maximum(self.inputs(parts) @ w1 + b1, 0.0)
        out = hidden @ w2 + b2
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def attributes(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """(N, A) predicted human ratings (0..100) of :attr:`attribute_names` (see :func:`fit_attributes`)."""
        if self.attribute_weights is None:
            raise ValueError("this model has no attribute regressor")
        x = self.inputs(parts)
        return np.hstack([x, np.ones((len(x), 1))]) @ self.attribute_weights

    def save(self, path: str | Path) -> Path:
        arrays = {f"center_{k}": v for k, v in self.centers.items()}
        arrays |= {f"scale_{k}": v for k, v in self.scales.items()}
        arrays |= {f"w{i}": w for i, w in enumerate(self.weights)}
        buffer = io.BytesIO()
        if self.attribute_weights is not None:
            arrays["attribute_weights"] = self.attribute_weights
        np.savez_compressed(
            buffer,
            shape_basis=self.shape_basis.astype(np.float32),
            meta=json.dumps(self.meta),
            attribute_names=json.dumps(self.attribute_names),
            **{k: v.astype(np.float32) for k, v in arrays.items()},
        )
        return write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "PerceptionModel":
        with np.load(path, allow_pickle=False) as data:
            centers = {k: data[f"center_{k}"].astype(np.float64) for k in PARTS}
            scales = {k: data[f"scale_{k}"].astype(np.float64) for k in PARTS}
            weights = [data[f"w{i}"].astype(np.float64) for i in range(4)]
            attributes = data["attribute_weights"].astype(np.float64) if "attribute_weights" in data else None
            return cls(
                centers,
                scales,
                data["shape_basis"].astype(np.float64),
                weights,
                json.loads(str(data["meta"])),
                json.loads(str(data["attribute_names"])),
                attributes,
            )


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Perceptual similarity in 0..1 of embeddings from :meth:`PerceptionModel.embed` (broadcasts)."""
    s = (1.0 + (np.asarray(a) * np.asarray(b)).sum(-1)) / 2.0
    return float(s) if np.ndim(s) == 0 else s


def fit_preprocessing(
    parts: dict[str, np.ndarray], components: int = SHAPE_COMPONENTS
) -> tuple[dict, dict, np.ndarray]:
    """Centres, scales and the whitened shape PCA basis from the training faces' features."""
    centers, scales = {}, {}
    basis = np.zeros((parts["shape"].shape[1], 0))
    for name in PARTS:
        x = np.asarray(parts[name], np.float64)
        centers[name] = x.mean(axis=0)
        x = x - centers[name]
        if name == "shape":
            _, singular, vt = np.linalg.svd(x, full_matrices=False)
            # directions with (almost) no variance in the training faces would be blown up by whitening
            k = min(components, int(np.sum(singular > 1e-6 * max(singular.max(initial=0.0), 1e-12))))
            basis = vt[:k].T / np.maximum(singular[:k] / np.sqrt(max(len(x) - 1, 1)), 1e-9)
            x = x @ basis
            scales[name] = np.full(k, np.sqrt(k), np.float64)  # whitened: each part weighs like one unit vector
        else:
            std = np.maximum(x.std(axis=0), 1e-6)
            scales[name] = std * np.sqrt(x.shape[1])
    return centers, scales, basis


def train_head(
    parts: dict[str, np.ndarray],
    triplets: np.ndarray,
    *,
    epochs: int = 60,
    hidden: int = 256,
    out: int = 64,
    margin: float = 0.1,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    dropout: float = 0.2,
    seed: int = 0,
    meta: dict | None = None,
) -> PerceptionModel:
    """Train on ``triplets`` (T, 3) row indices into ``parts`` (anchor, positive, negative).

    The same data and ``seed`` give the same head on any run (training uses one thread).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # threaded float sums differ run to run; one thread makes a seed reproduce the head
    try:
        return _train(parts, triplets, epochs, hidden, out, margin, lr, weight_decay, dropout, seed, meta)
    finally:
        torch.set_num_threads(threads)


def _train(parts, triplets, epochs, hidden, out, margin, lr, weight_decay, dropout, seed, meta) -> PerceptionModel:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    centers, scales, basis = fit_preprocessing(parts)
    model = PerceptionModel(centers, scales, basis, [], meta or {})
    x = torch.tensor(model.inputs(parts), dtype=torch.float32)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(hidden, out)
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    index = torch.tensor(np.asarray(triplets), dtype=torch.long)
    for _ in range(epochs):
        order = torch.tensor(rng.permutation(len(index)))
        for start in range(0, len(index), 512):
            batch = index[order[start : start + 512]]
            e = torch.nn.functional.normalize(net(x), dim=1)
            a, p, n = e[batch[:, 0]], e[batch[:, 1]], e[batch[:, 2]]
            loss = torch.relu((a * n).sum(1) - (a * p).sum(1) + margin).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    first, last = cast(torch.nn.Linear, net[0]), cast(torch.nn.Linear, net[3])
    model.weights = [
        first.weight.detach().numpy().T.astype(np.float64),
        first.bias.detach().numpy().astype(np.float64),
        last.weight.detach().numpy().T.astype(np.float64),
        last.bias.detach().numpy().astype(np.float64),
    ]
    return model


def fit_attributes(
    model: PerceptionModel,
    parts: dict[str, np.ndarray],
    ratings: np.ndarray,
    names: list[str],
    *,
    alphas: tuple[float, ...] = (0.1, 0.3, 1, 3, 10, 30, 100),
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """Fit ``model``'s attribute regressor (ridge, on the metric's inputs) to (N, A) mean ratings.

    The ridge strength is chosen by ``folds``-fold cross-validation on these faces only. Returns the
    chosen alpha and the cross-validated R² per attribute.
    """
    x = model.inputs(parts)
    x = np.hstack([x, np.ones((len(x), 1))])
    y = np.asarray(ratings, np.float64)
    fold = np.random.default_rng(seed).permutation(len(x)) % folds
    best = None
    for alpha in alphas:
        predicted = np.zeros_like(y)
        for k in range(folds):
            train, test = fold != k, fold == k
            predicted[test] = x[test] @ _ridge(x[train], y[train], alpha)
        score = r2_scores(y, predicted)
        if best is None or np.mean(score) > np.mean(best[1]):
            best = (alpha, score)
    assert best is not None  # alphas is not empty
    model.attribute_weights = _ridge(x, y, best[0])
    model.attribute_names = list(names)
    return {"alpha": best[0], "cv_r2": dict(zip(names, np.round(best[1], 4).tolist()))}


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    penalty = alpha * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)


def r2_scores(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column (1 = perfect, 0 = no better than the mean).

    >>> r2_scores(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [3.0]]))
    array([1.])
    """
    truth, predicted = np.asarray(truth, np.float64), np.asarray(predicted, np.float64)
    residual = ((truth - predicted) ** 2).sum(0)
    total = ((truth - truth.mean(0)) ** 2).sum(0)
    return 1.0 - residual / np.maximum(total, 1e-12)


def triplet_agreement(distances: np.ndarray, triplets: np.ndarray) -> float:
    """Share of triplets where the positive is nearer the anchor than the negative.

    ``distances`` is an (N, N) matrix of any dissimilarity; ties count as disagreement.

    >>> d = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], float)
    >>> triplet_agreement(d, np.array([[0, 1, 2], [0, 2, 1]]))
    0.5
    """
    t = np.asarray(triplets)
    return float(np.mean(distances[t[:, 0], t[:, 1]] < distances[t[:, 0], t[:, 2]])) if len(t) else float("nan")
