"""The README's perception figures: triplet agreement, attribute R², and the time to embed one face.

Trains a head on OMI faces 0001-0600 exactly as the shipped one was made (same command, same seed), then
measures on faces 0601-0804, which no training triplet contains:
- triplet agreement on test triplets generated from the human ratings of the test faces, for the learned
  metric, raw dlib (Euclidean), raw FaceNet (cosine) and landmark geometry alone;
- R² per attribute of the attribute regressor on the test faces;
- seconds to embed one face (features from both recognizers, landmarks and colours, then the head), with
  the face already detected and meshed, and for the head alone.

    python benchmarks/bench_perception.py          # ~4 min the first time (features), then seconds
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from lookalike.io import write_text_atomic
from lookalike.perception.model import fit_attributes, r2_scores
from lookalike.perception.training import agreement, load_triplets, train
from lookalike.perception.triplets import read_ratings

REPO = Path(__file__).resolve().parents[1]
OMI = REPO.parent / "shared" / "data" / "omi"
CACHE = Path.home() / ".cache" / "lookalike" / "omi_features.npz"


def main() -> int:
    if not (OMI / "faces").is_dir():
        print(f"skipped: {OMI / 'faces'} not found (the OMI faces are only on the development machines)")
        return 0
    ratings_file = OMI / "attribute_means.csv"
    train_data = load_triplets(ratings_file, OMI / "faces", faces=(1, 600), jobs=2, cache=CACHE, seed=0)
    test_data = load_triplets(ratings_file, OMI / "faces", faces=(601, 804), jobs=2, cache=CACHE, seed=1)
    overlap = set(train_data.table.names) & set(test_data.table.names)
    assert not overlap, f"split leak: {sorted(overlap)[:5]}"

    started = time.perf_counter()
    model = train(train_data, epochs=20, seed=0)
    ratings = read_ratings(ratings_file, OMI / "faces")
    index = {n: i for i, n in enumerate(ratings.names)}
    fit = fit_attributes(
        model, train_data.table.parts, ratings.values[[index[n] for n in train_data.table.names]], ratings.attributes
    )
    train_seconds = time.perf_counter() - started

    scores = agreement(test_data, model)
    truth = ratings.values[[index[n] for n in test_data.table.names]]
    r2 = dict(zip(ratings.attributes, np.round(r2_scores(truth, model.attributes(test_data.table.parts)), 4).tolist()))
    timing = embed_timing(model)

    print(
        f"train: {train_data.summary()['used']} triplets on {len(train_data.table.names)} faces "
        f"(skipped: {dict(train_data.skipped)}), {train_seconds:.1f} s incl. attribute fit (alpha {fit['alpha']})"
    )
    print(
        f"test:  {test_data.summary()['used']} triplets on {len(test_data.table.names)} faces "
        f"(skipped: {dict(test_data.skipped)})\n"
    )
    print("| distance | triplet agreement (test faces 0601-0804) |\n|---|---|")
    for name, value in scores.items():
        print(f"| {name} | {100 * value:.1f}% |")
    best_raw = max(scores["dlib"], scores["facenet"])
    print(f"\nlearned - best raw recognizer: {100 * (scores['learned'] - best_raw):+.1f} points\n")
    print("| attribute | R² (test) |\n|---|---|")
    for name, value in sorted(r2.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {value:.3f} |")
    print(
        f"\nembed one face: {timing['features_and_head']:.3f} s (features {timing['features']:.3f} s, "
        f"head {1000 * timing['head']:.2f} ms), face already detected and meshed"
    )

    results = {
        "train": train_data.summary(),
        "test": test_data.summary(),
        "agreement": scores,
        "attribute_r2_test": r2,
        "attribute_fit": fit,
        "train_seconds": round(train_seconds, 1),
        "timing_seconds": timing,
        "data_note": "triplets generated from OMI mean human attribute ratings, not direct similarity judgments",
    }
    write_text_atomic(REPO / "benchmarks" / "results" / "perception_omi.json", json.dumps(results, indent=1) + "\n")
    return 0


def embed_timing(model, faces: int = 40) -> dict[str, float]:
    from lookalike.faces import detect
    from lookalike.io import load_image
    from lookalike.perception.features import face_features

    samples = []
    for path in sorted((OMI / "faces").glob("*.jpg"))[600 : 600 + faces]:
        image = load_image(path).rgb
        found = detect(image)
        if found and found[0].landmarks is not None:
            samples.append((image, found[0]))
    face_features(*samples[0])  # load the models
    started = time.perf_counter()
    parts = [face_features(image, face).parts for image, face in samples]
    features = (time.perf_counter() - started) / len(samples)
    started = time.perf_counter()
    for p in parts:
        model.embed({k: v[None] for k, v in p.items()})
    head = (time.perf_counter() - started) / len(samples)
    return {
        "features": round(features, 4),
        "head": round(head, 5),
        "features_and_head": round(features + head, 4),
        "faces": len(samples),
    }


if __name__ == "__main__":
    sys.exit(main())
