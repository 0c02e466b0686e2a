"""The reference crowd: ranks, the protection rule, the file, building, the shipped crowd."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from lookalike.identity import get_recognizer
from lookalike.identity.crowd import DEFAULT_CROWD, ReferenceCrowd, default_crowd


@pytest.fixture()
def line_crowd() -> ReferenceCrowd:
    """Five dlib faces on a line at distances 0.1 ... 0.5 from the origin, and FaceNet faces at known angles."""
    dlib = np.zeros((5, 128), np.float32)
    dlib[:, 0] = [0.1, 0.2, 0.3, 0.4, 0.5]
    angles = np.radians([10, 20, 30, 40, 50])
    facenet = np.zeros((5, 512), np.float32)
    facenet[:, 0], facenet[:, 1] = np.cos(angles), np.sin(angles)
    return ReferenceCrowd(list("abcde"), {"dlib": dlib, "facenet": facenet})


def _dlib(x: float) -> np.ndarray:
    v = np.zeros(128, np.float32)
    v[0] = x
    return v


def _facenet(degrees: float) -> np.ndarray:
    v = np.zeros(512, np.float32)
    v[0], v[1] = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return v


def test_rank_counts_crowd_faces_nearer_to_the_original(line_crowd):
    original = _dlib(0.0)
    assert line_crowd.rank(_dlib(0.05), original, "dlib") == 0  # still the original's nearest
    assert line_crowd.rank(_dlib(0.35), original, "dlib") == 3
    assert line_crowd.rank(_dlib(-0.9), original, "dlib") == 5  # direction does not matter, distance does
    assert line_crowd.rank(_dlib(0.35), original, "dlib", exclude=["a"]) == 2
    assert line_crowd.rank(_facenet(25), _facenet(0), "facenet") == 2


def test_retrieval_rank_counts_crowd_faces_nearer_to_the_anonymized_face(line_crowd):
    original = _dlib(0.0)
    # probe at 0.35: crowd at 0.05 .. 0.25 from it (c, d, b, e) are nearer than the original (0.35)
    assert line_crowd.retrieval_rank(_dlib(0.35), original, "dlib") == 5
    # probe on the other side: everyone is farther than the original
    assert line_crowd.retrieval_rank(_dlib(-0.35), original, "dlib") == 0
    assert line_crowd.rank(_dlib(-0.35), original, "dlib") == 3  # although it left the neighbourhood


def test_a_copy_of_the_original_in_the_crowd_is_not_counted(line_crowd):
    crowd = ReferenceCrowd(
        line_crowd.names + ["me"],
        {
            k: np.vstack([v, _dlib(0.001)[None] if k == "dlib" else _facenet(0.5)[None]])
            for k, v in line_crowd.embeddings.items()
        },
    )
    assert crowd.rank(_dlib(0.35), _dlib(0.0), "dlib") == 3
    assert crowd.retrieval_rank(_dlib(0.35), _dlib(0.0), "dlib") == 5


def test_protects_needs_every_recognizer_and_the_chosen_criterion(line_crowd):
    original = {"dlib": _dlib(0.0), "facenet": _facenet(0)}
    far = {"dlib": _dlib(0.35), "facenet": _facenet(35)}
    assert line_crowd.ranks(far, original) == {
        "dlib": {"rank": 3, "retrieval_rank": 5},
        "facenet": {"rank": 3, "retrieval_rank": 5},
    }
    assert line_crowd.protects(far, original, 3) and not line_crowd.protects(far, original, 4)
    assert line_crowd.protects(far, original, 5, criterion="retrieval")
    opposite = {"dlib": _dlib(-0.35), "facenet": _facenet(35)}
    assert line_crowd.protects(opposite, original, 3, criterion="rank")
    assert not line_crowd.protects(opposite, original, 3)  # the dlib attacker still finds the original first
    assert not line_crowd.protects({"dlib": far["dlib"]}, original, 1)  # no FaceNet evidence: not protected
    with pytest.raises(ValueError):
        line_crowd.protects(far, original, 1, criterion="nearest")
    with pytest.raises(KeyError):
        ReferenceCrowd(["a"], {"dlib": _dlib(0.1)[None]}).rank(_dlib(0.2), _dlib(0.0), "facenet")


def test_save_and_load_in_float16(line_crowd, tmp_path):
    path = line_crowd.save(tmp_path / "crowd.npz")
    loaded = ReferenceCrowd.load(path)
    assert loaded.names == line_crowd.names and loaded.recognizers == ("dlib", "facenet")
    for name in loaded.recognizers:
        assert loaded.embeddings[name].dtype == np.float32
        np.testing.assert_allclose(loaded.embeddings[name], line_crowd.embeddings[name], atol=1e-3)
    assert loaded.rank(_dlib(0.35), _dlib(0.0), "dlib") == 3
    np.savez(
        tmp_path / "old.npz",
        names=np.array(["a"]),
        recognizers=np.array(["dlib"]),
        meta='{"format": 0}',
        embeddings_dlib=np.zeros((1, 128), np.float16),
    )
    with pytest.raises(ValueError, match="build it again"):
        ReferenceCrowd.load(tmp_path / "old.npz")


def test_build_embeds_the_main_face_and_skips_bad_images(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    Image.fromarray(np.full((120, 120, 3), 90, np.uint8)).save(tmp_path / "blank.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    paths = [tmp_path / n for n in ("a.jpg", "blank.png", "broken.jpg")]
    crowd = ReferenceCrowd.build(paths, jobs=1)
    assert crowd.names == ["a.jpg"] and list(crowd.skipped) == ["blank.png"] and list(crowd.failed) == ["broken.jpg"]
    assert crowd.failed["broken.jpg"].startswith(str(paths[2]))
    from lookalike.faces import detect
    from lookalike.io.images import load_image

    image = load_image(paths[0]).rgb
    face = detect(image)[0]
    assert crowd.recognizers == ("dlib", "facenet", "mobileface")  # default: every registered recognizer
    for name in crowd.recognizers:
        np.testing.assert_allclose(crowd.embeddings[name][0], get_recognizer(name).embed(image, face), atol=1e-5)


def test_shipped_crowd_holds_development_faces_only():
    if not DEFAULT_CROWD.is_file():
        pytest.skip(f"{DEFAULT_CROWD} not built yet")
    crowd = default_crowd()
    assert default_crowd() is crowd
    assert crowd.recognizers == ("dlib", "facenet", "mobileface") and len(crowd) >= 590
    numbers = [int(re.fullmatch(r"(\d{4})\.jpg", name).group(1)) for name in crowd.names]
    assert max(numbers) <= 600 and len(set(numbers)) == len(numbers)  # hold-out 601-804 never
    # face 0 as the original and its nearest other crowd face as the "anonymized" one: no crowd face is
    # nearer to the original (its own copy in the crowd does not count), and that face itself is nearer
    # to the probe than the original is
    nearest = int(np.argsort(crowd.distances(crowd.embeddings["dlib"][0], "dlib"))[1])
    original, probe = crowd.embeddings["dlib"][0], crowd.embeddings["dlib"][nearest]
    assert crowd.rank(probe, original, "dlib") == 0
    assert crowd.retrieval_rank(probe, original, "dlib") >= 1
