"""The PyTorch FaceNet port against OpenCV's run of the original frozen graph
(fixture made by scripts/make_facenet_reference.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lookalike.identity.base import Recognizer
from lookalike.identity.facenet import FaceNetRecognizer, alignment_matrix, invert_affine
from lookalike.types import Face

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "facenet_reference.npz"


@pytest.fixture(scope="module")
def ref():
    d = np.load(FIXTURE)
    return {"x": torch.from_numpy(d["inputs"].astype(np.float32)), "e": d["embeddings"], "names": list(d["names"])}


@pytest.fixture(scope="module")
def rec():
    return FaceNetRecognizer()


def test_protocol(rec):
    assert isinstance(rec, Recognizer)
    assert rec.embedding_size == 512 and 0 < rec.threshold < 2


def test_matches_opencv_reference(rec, ref):
    with torch.inference_mode():
        e = rec.embed_tensor(ref["x"]).numpy()
    cos = (e * ref["e"]).sum(1) / np.linalg.norm(ref["e"], axis=1)
    assert cos.min() >= 0.999, dict(zip(ref["names"], cos.round(5)))


def test_embeddings_unit_512(rec, ref):
    crops = np.clip(ref["x"].numpy().transpose(0, 2, 3, 1) * 128 + 127.5, 0, 255).round().astype(np.uint8)
    e = rec.embed_aligned(crops)
    assert e.shape == (len(crops), 512) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # embed_aligned's uint8 path standardises exactly as the fixture's inputs were.
    np.testing.assert_allclose(e, rec.embed_tensor(ref["x"]).detach().numpy(), atol=1e-5)


def test_gradients_reach_input(rec, ref):
    x = ref["x"][:2].clone().requires_grad_(True)
    e = rec.embed_tensor(x)
    (1 - (e[0] * e[1].detach()).sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0
    assert not any(p.requires_grad for p in rec.net.parameters())


def test_same_face_nearer_than_other_face(rec, ref):
    e = rec.embed_tensor(ref["x"]).detach().numpy()
    idx = {n: i for i, n in enumerate(ref["names"])}
    same = [rec.distance(e[idx["astronaut"]], e[idx[n]]) for n in ("astronaut_flipped", "astronaut_bright")]
    others = [rec.distance(e[idx["astronaut"]], e[i]) for n, i in idx.items() if not n.startswith("astronaut")]
    if not others:
        pytest.skip("fixture made without OMI faces")
    assert max(same) < min(others)
    assert max(same) <= rec.threshold < min(others)


def test_alignment_matrix_round_trip():
    kp = np.array([[200, 240], [310, 240], [255, 300], [210, 360], [300, 360]], np.float32)
    face = Face(box=np.array([150, 150, 360, 420], np.float32), score=1.0, keypoints=kp)
    M = alignment_matrix(face)
    crop_pts = kp @ M[:, :2].T + M[:, 2]
    # Eyes level and left-right symmetric about the crop centre.
    assert abs(crop_pts[0, 1] - crop_pts[1, 1]) < 1e-6 and abs(crop_pts[:2, 0].mean() - 80) < 1.0
    back = crop_pts @ invert_affine(M)[:, :2].T + invert_affine(M)[:, 2]
    np.testing.assert_allclose(back, kp, atol=1e-4)
    # Degenerate keypoints fall back to the box: its centre lands at the crop centre.
    bad = Face(box=face.box, score=1.0, keypoints=np.zeros((5, 2), np.float32))
    Mb = alignment_matrix(bad)
    np.testing.assert_allclose(Mb[:, :2] @ [255, 285] + Mb[:, 2], [80, 80], atol=1e-6)
