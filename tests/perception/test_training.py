"""Features, training and evaluation end to end on faces composed from the astronaut."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lookalike.perception import load_model, perceptual_similarity
from lookalike.perception.model import PerceptionModel, fit_attributes, r2_scores
from lookalike.perception.training import agreement, load_triplets, parse_faces, train


@pytest.fixture(scope="module")
def faces_folder(tmp_path_factory, astronaut) -> Path:
    folder = tmp_path_factory.mktemp("faces")
    variants = [
        astronaut,
        astronaut[:, ::-1],
        cv2.convertScaleAbs(astronaut, alpha=0.8, beta=10),
        cv2.GaussianBlur(astronaut, (0, 0), 1.5),
        astronaut[20:, 10:],
    ]
    for i, image in enumerate(variants, start=1):
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{i:04d}.png")
    Image.fromarray(np.full((100, 100, 3), 128, np.uint8)).save(folder / "0006.png")  # no face
    return folder


def test_judgments_naming_missing_or_faceless_images_are_skipped_and_counted(faces_folder, tmp_path):
    judgments = tmp_path / "t.csv"
    judgments.write_text(
        "anchor,positive,negative\n0001.png,0002.png,0003.png\n0001.png,0002.png,0009.png\n"
        "0001.png,0006.png,0003.png\nbroken\n0004.png,0001.png,0005.png\n"
    )
    data = load_triplets(judgments, faces_folder, cache=tmp_path / "features.npz")
    assert len(data.triplets) == 2
    assert data.skipped == {"image missing": 1, "no usable face": 1, "malformed row": 1}
    assert "0009.png" in data.examples["image missing"] and "no face found" in data.examples["no usable face"]
    assert (tmp_path / "features.npz").exists()
    again = load_triplets(judgments, faces_folder, cache=tmp_path / "features.npz")  # read back from the cache
    np.testing.assert_array_equal(again.table.parts["dlib"], data.table.parts["dlib"])


def test_training_and_evaluation_run_and_the_model_round_trips(faces_folder, tmp_path):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("stimulus,age,gender,happy\n1,30,80,40\n2,31,79,42\n3,60,20,80\n4,32,78,45\n5,58,25,75\n")
    data = load_triplets(ratings, faces_folder, faces=(1, 5), per_anchor=5, margin=0.5)
    assert len(data.triplets) > 0 and data.kind.startswith("generated from ratings")
    model = train(data, epochs=3)
    scores = agreement(data, model)
    assert set(scores) == {"learned", "dlib", "facenet", "geometry"} and all(0 <= v <= 1 for v in scores.values())
    fit = fit_attributes(model, data.table.parts, np.arange(15, dtype=float).reshape(5, 3), ["a", "b", "c"], folds=2)
    assert set(fit["cv_r2"]) == {"a", "b", "c"}
    path = model.save(tmp_path / "m.npz")
    loaded = PerceptionModel.load(path)
    np.testing.assert_allclose(loaded.embed(data.table.parts), model.embed(data.table.parts), atol=1e-4)
    np.testing.assert_allclose(loaded.attributes(data.table.parts), model.attributes(data.table.parts), atol=1e-3)


def test_the_shipped_model_ranks_a_copy_above_another_look(astronaut):
    from lookalike.faces import detect

    model = load_model()
    assert model.attribute_names[:2] == ["trustworthy", "attractive"] and len(model.attribute_names) == 34
    assert "OMI" in model.meta["license"]
    image = astronaut
    brighter = cv2.convertScaleAbs(image, alpha=0.9, beta=15)
    face, face_b = detect(image)[0], detect(brighter)[0]
    same = perceptual_similarity(image, face, brighter, face_b, model)
    assert 0.9 < same <= 1.0


def test_faces_ranges():
    assert parse_faces("1-600") == (1, 600)
    for bad in ("600", "a-b", "9-1"):
        with pytest.raises(ValueError):
            parse_faces(bad)


def test_r2():
    truth = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    np.testing.assert_allclose(r2_scores(truth, truth), [1.0, 1.0])
    np.testing.assert_allclose(r2_scores(truth, np.full_like(truth, truth.mean(0))), [0.0, 0.0])
