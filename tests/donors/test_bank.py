"""The donor bank: canonical frame, building (single faces and prototypes), the file, the shipped bank."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from lookalike.donors import DEFAULT_BANK, DonorBank, DonorPool, default_bank, select_donors
from lookalike.donors.canonical import CANONICAL_STABLE, apply_similarity, canonical_transform, warp_similarity
from lookalike.synthesis.transplant import STABLE_INDICES


@pytest.fixture(scope="module")
def face(astronaut):
    from lookalike.faces import detect

    return detect(astronaut)[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, astronaut):
    """Two usable photos, one without a face, one that is not an image."""
    root = tmp_path_factory.mktemp("donors")
    Image.fromarray(astronaut).save(root / "a.jpg")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(root / "b.png")
    Image.fromarray(np.full((200, 200, 3), 180, np.uint8)).save(root / "blank.png")
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def bank(folder):
    paths = [folder / n for n in ("a.jpg", "b.png", "blank.png", "broken.jpg")]
    return DonorBank.build(paths, jobs=1, size=128)


# --------------------------------------------------------------------------------- canonical frame


def test_canonical_frame_undoes_position_scale_and_rotation(astronaut, face):
    size = 256
    matrix = canonical_transform(face.landmarks, size)
    placed = apply_similarity(matrix, face.landmarks)[list(STABLE_INDICES), :2] / size
    assert np.abs(placed - CANONICAL_STABLE).max() < 0.03  # the astronaut's own shape differs a little
    # the same face turned 20 degrees, shrunk and moved lands in the same crop
    turn = cv2.getRotationMatrix2D((256, 256), 20, 0.7)
    turn[:, 2] += (30, -20)
    moved = cv2.warpAffine(astronaut, turn, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved_landmarks = apply_similarity(turn, face.landmarks)
    np.testing.assert_allclose(
        apply_similarity(canonical_transform(moved_landmarks, size), moved_landmarks),
        apply_similarity(matrix, face.landmarks),
        atol=0.05,
    )
    a = warp_similarity(astronaut, matrix, size).astype(int)
    b = warp_similarity(moved, canonical_transform(moved_landmarks, size), size).astype(int)
    assert np.abs(a - b)[64:192, 64:192].mean() < 6  # resampled twice, so not bit-identical


# ------------------------------------------------------------------------------------ build, file


def test_build_accounts_for_every_input(bank, folder):
    report = bank.report
    assert bank.names == ["a.jpg", "b.png"] and bank.members == [("a.jpg",), ("b.png",)]
    assert report.images == 4 and list(report.failed) == ["broken.jpg"] and list(report.no_face) == ["blank.png"]
    assert "broken.jpg" in report.failed["broken.jpg"]
    assert bank.meta["build"]["donors"] == 2 and bank.meta["prototypes_k"] is None


def test_donor_image_is_the_aligned_crop_with_its_landmarks(bank):
    crop, landmarks = bank.donor_image("a.jpg")
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8 and landmarks.shape == (478, 3)
    assert np.abs(landmarks[list(STABLE_INDICES), :2] / 128 - CANONICAL_STABLE).max() < 0.03
    # the landmarks describe the crop: the face there is found where they say
    from lookalike.faces import detect

    big = cv2.resize(crop, (384, 384), interpolation=cv2.INTER_CUBIC)  # the detector wants more pixels
    found = detect(big)[0].landmarks[:, :2] / 3
    assert np.median(np.linalg.norm(found - landmarks[:, :2], axis=1)) < 2.0


def test_donor_occluders_are_found_once_and_forgotten_past_a_few(monkeypatch):
    from lookalike.donors import bank as bank_module
    from lookalike.synthesis.regenerate import occluders

    bank = default_bank()
    first = bank.donor_occluders(0)
    assert np.array_equal(first, occluders(*bank.donor_image(0)))
    assert bank.donor_occluders(0) is first  # kept: a video asks for it on every frame
    monkeypatch.setattr(bank_module, "_OCCLUDERS_KEPT", 2)
    for key in (1, 2, 3):
        bank.donor_occluders(key)
    assert len(bank._occluders) <= 2 and bank.donor_occluders(0) is not first


def test_pool_view_serves_donor_choice(bank, astronaut, face):
    from lookalike.perception import load_model
    from lookalike.perception.features import face_features

    pool = bank.pool
    assert isinstance(pool, DonorPool) and pool.names == bank.names and pool is bank.pool
    assert pool.meta["model"] == bank.meta["model"]
    # both donors are the astronaut herself: a recognizer verifies them, so neither may stand in for her
    parts = face_features(astronaut, face).parts
    assert select_donors(parts, pool, load_model(), band=(0.0, 1.0)) == []


def test_save_and_load_round_trip_lazily(bank, tmp_path):
    path = bank.save(tmp_path / "bank.npz")
    loaded = DonorBank.load(path)
    assert loaded.jpeg is None  # crops are read when first needed
    assert loaded.names == bank.names and loaded.members == bank.members
    np.testing.assert_array_equal(loaded.landmarks, bank.landmarks)
    for name in ("dlib", "facenet"):
        np.testing.assert_array_equal(loaded.identity[name], bank.identity[name])
    np.testing.assert_array_equal(loaded.embeddings, bank.embeddings)
    np.testing.assert_array_equal(loaded.donor_image(1)[0], bank.donor_image(1)[0])
    assert loaded.jpeg is not None and loaded.meta["model"] == bank.meta["model"]


def test_load_refuses_another_format(bank, tmp_path):
    path = bank.save(tmp_path / "bank.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["meta"] = json.dumps(json.loads(str(arrays["meta"])) | {"format": 99})
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match="build it again"):
        DonorBank.load(tmp_path / "old.npz")


def test_containing_names_donors_by_member_file_name(bank):
    assert bank.containing("photos/a.jpg") == ["a.jpg"]
    assert bank.containing(["x.jpg", "b.png"]) == ["b.png"]
    assert bank.containing("nobody.jpg") == []


def test_prototype_bank_averages_groups(tmp_path, astronaut, face):
    """Two versions of one photo (same pose, other colour and framing) make one prototype of k=2."""
    shifted = np.clip(astronaut.astype(int) + (12, -6, 0), 0, 255).astype(np.uint8)
    framed = cv2.resize(shifted[20:492, 10:482], (512, 512), interpolation=cv2.INTER_AREA)
    Image.fromarray(astronaut).save(tmp_path / "1.jpg")
    Image.fromarray(framed).save(tmp_path / "2.png")
    paths = [tmp_path / "1.jpg", tmp_path / "2.png"]
    bank = DonorBank.build(paths, jobs=1, prototypes_k=2, size=128)
    assert bank.report.groups == 1 and not bank.report.dropped and len(bank) == 1
    assert bank.names == ["proto-000"] and sorted(bank.members[0]) == ["1.jpg", "2.png"]
    assert bank.containing("2.png") == ["proto-000"] and bank.meta["prototypes_k"] == 2
    crop, landmarks = bank.donor_image(0)
    assert crop.shape == (128, 128, 3)
    assert np.abs(landmarks[list(STABLE_INDICES), :2] / 128 - CANONICAL_STABLE).max() < 0.04  # its own mesh
    # the average sits between its members in colour: red up 6 on average, not 0 or 12
    reference = warp_similarity(astronaut, canonical_transform(face.landmarks, 128), 128)
    inner = (slice(50, 90), slice(45, 85))  # cheeks, nose and mouth of the canonical frame
    red_shift = float(crop[inner][..., 0].mean()) - float(reference[inner][..., 0].mean())
    assert 1.0 < red_shift < 11.0
    with pytest.raises(ValueError):
        DonorBank.build(paths, prototypes_k=1)


# ------------------------------------------------------------------------------------ shipped bank


def test_shipped_bank_is_single_development_faces_and_their_mirrors():
    if not DEFAULT_BANK.is_file():
        pytest.skip(f"{DEFAULT_BANK} not built yet")
    assert DEFAULT_BANK.stat().st_size < 40e6
    bank = default_bank()
    assert default_bank() is bank
    assert bank.meta["prototypes_k"] is None and bank.size == 512 and len(bank) >= 1000
    assert all(len(group) == 1 for group in bank.members)
    numbers = [int(re.fullmatch(r"(\d{4})\.jpg", group[0]).group(1)) for group in bank.members]
    assert max(numbers) <= 600  # hold-out 601-804 never
    mirrored = bank.mirror_of >= 0
    assert mirrored.sum() >= 0.9 * (~mirrored).sum()  # nearly every face also mirrored
    assert [bank.members[i] for i in np.flatnonzero(mirrored)] == [bank.members[j] for j in bank.mirror_of[mirrored]]
    from lookalike.donors.pool import model_fingerprint
    from lookalike.perception import load_model

    assert bank.meta["model"] == model_fingerprint(load_model())
    crop, landmarks = bank.donor_image(len(bank) - 1)
    assert crop.shape == (bank.size, bank.size, 3)


def test_mirrored_donors_are_measured_on_the_flipped_crop_and_stored_once(folder, tmp_path):
    from lookalike.donors.bank import MIRROR_SUFFIX

    single = DonorBank.build([folder / "a.jpg"], jobs=1, size=128)
    both = DonorBank.build([folder / "a.jpg"], jobs=1, size=128, mirror=True)
    assert both.names == ["a.jpg", f"a.jpg{MIRROR_SUFFIX}"] and both.members == [("a.jpg",), ("a.jpg",)]
    assert both.mirror_of.tolist() == [-1, 0]
    crop, landmarks = both.donor_image(0)
    mirrored, mirrored_landmarks = both.donor_image(1)
    assert np.array_equal(mirrored, crop[:, ::-1])  # the same pixels, flipped
    assert len(both._jpeg_data()) == len(single._jpeg_data())  # not stored twice
    # its landmarks were found on the flipped crop: the nose tip (1) sits where the flip puts it
    assert abs(mirrored_landmarks[1, 0] - (127 - landmarks[1, 0])) < 3
    # the astronaut looks a little to one side: her mirror image looks to the other
    assert np.sign(both.pose[0, 0]) == -np.sign(both.pose[1, 0]) or abs(both.pose[0, 0]) < 2
    loaded = DonorBank.load(both.save(tmp_path / "m.npz"))
    assert loaded.mirror_of.tolist() == [-1, 0]
    assert np.array_equal(loaded.donor_image(1)[0], mirrored)
    assert loaded.containing("a.jpg") == ["a.jpg", f"a.jpg{MIRROR_SUFFIX}"]
    with pytest.raises(ValueError, match="single-face"):
        DonorBank.build([folder / "a.jpg"], prototypes_k=2, mirror=True)
