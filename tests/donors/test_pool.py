"""Donor choice on hand-made pools: a tiny perception model whose similarity and attributes are set by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.donors.pool import Compatibility, DonorPool, explain, group_distance, model_fingerprint, select_donors
from lookalike.identity import get_recognizer
from lookalike.perception.dataset import FeatureTable
from lookalike.perception.features import PARTS
from lookalike.perception.model import PerceptionModel

SIZES = {"dlib": 128, "facenet": 512, "shape": 956, "appearance": 24}
APPEARANCE = SIZES["dlib"] + SIZES["facenet"] + 1  # where appearance starts in the model's inputs (shape: 1 column)


def tiny_model() -> PerceptionModel:
    """embed = (cos t, sin t) from appearance[0:2]; age, gender, skin-color = appearance[2:5]."""
    centers = {name: np.zeros(size) for name, size in SIZES.items()}
    scales = {name: np.ones(size) for name, size in SIZES.items()} | {"shape": np.ones(1)}
    width = APPEARANCE + SIZES["appearance"]
    w1 = np.zeros((width, 4))
    w1[APPEARANCE, :2] = 1, -1  # ReLU passes both signs of each coordinate through a pair of units
    w1[APPEARANCE + 1, 2:] = 1, -1
    w2 = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    attributes = np.zeros((width + 1, 3))
    for k in range(3):
        attributes[APPEARANCE + 2 + k, k] = 1.0
    return PerceptionModel(
        centers,
        scales,
        np.zeros((956, 1)),
        [w1, np.zeros(4), w2, np.zeros(2)],
        {},
        ["age", "gender", "skin-color"],
        attributes,
    )


_rng = np.random.default_rng(7)


def face(
    similarity: float = 1.0,
    *,
    age: float = 30,
    gender: float = 20,
    skin: float = 15,
    pose=(0.0, 0.0, 0.0),
    mouth: float = 0.0,
    dlib: np.ndarray | None = None,
    facenet: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Features of a face whose perceptual similarity to the reference target (angle 0) is ``similarity``."""
    angle = np.arccos(2 * similarity - 1)
    appearance = np.zeros(24, np.float32)
    appearance[:5] = np.cos(angle), np.sin(angle), age, gender, skin
    return {
        "dlib": _rng.normal(0, 0.1, 128).astype(np.float32) if dlib is None else dlib,
        "facenet": _rng.normal(0, 1, 512).astype(np.float32) if facenet is None else facenet,
        "shape": np.zeros(956, np.float32),
        "appearance": appearance,
        "pose": np.asarray(pose, np.float32),
        "mouth": np.array([mouth], np.float32),
    }


def pool_of(faces: dict[str, dict], model: PerceptionModel) -> DonorPool:
    names = list(faces)
    parts = {k: np.stack([faces[n][k] for n in names]) for k in faces[names[0]]}
    return DonorPool.from_features(FeatureTable(names, parts), model)


@pytest.fixture(scope="module")
def model() -> PerceptionModel:
    return tiny_model()


@pytest.fixture()
def target() -> dict[str, np.ndarray]:
    return face()


def names(donors) -> list[str]:
    return [d.name for d in donors]


def test_the_tiny_model_behaves_as_designed(model, target):
    pool = pool_of({"x": face(0.8, age=41, gender=70, skin=33)}, model)
    assert pool.embeddings.shape == (1, 2)
    assert (1 + pool.embeddings[0] @ model.embed({k: v[None] for k, v in target.items()})[0]) / 2 == pytest.approx(0.8)
    assert pool.attributes[0] == pytest.approx([41, 70, 33])


def test_band_keeps_only_similarities_inside_it_nearest_the_centre_first(model, target):
    pool = pool_of(
        {"s95": face(0.95), "s86": face(0.86), "s80": face(0.80), "s70": face(0.70), "s50": face(0.5)}, model
    )
    donors = select_donors(target, pool, model, band=(0.75, 0.9), rule="band")
    assert names(donors) == ["s80", "s86"]  # centre 0.825: 0.025 and 0.035 away
    assert all(0.75 <= d.similarity <= 0.9 for d in donors)
    assert names(select_donors(target, pool, model, band=(0.0, 1.0), rule="band", limit=2)) == ["s50", "s70"]


@pytest.mark.parametrize(
    "bad, good, switch_off",
    [
        (dict(gender=80), dict(gender=45), dict(gender_tolerance=None)),  # other side; 45 is near 50: either
        (dict(age=45), dict(age=41), dict(max_age_gap=None)),  # gaps 15 and 11 against 12
        (dict(skin=35), dict(skin=28), dict(max_skin_gap=None)),  # gaps 20 and 13 against 15
        (dict(pose=(25, 0, 0)), dict(pose=(15, 0, 40)), dict(max_pose_gap=None)),  # yaw 25; roll is not compared
        (dict(pose=(0, -25, 0)), dict(pose=(np.nan,) * 3), dict(max_pose_gap=None)),  # pitch 25; unknown passes
        (dict(mouth=0.15), dict(mouth=0.04), dict(mouth_threshold=None)),  # open against closed
        (dict(mouth=0.15), dict(mouth=np.nan), dict(mouth_threshold=None)),  # unknown mouth passes
    ],
)
def test_each_compatibility_check_filters_and_can_be_switched_off(model, target, bad, good, switch_off):
    pool = pool_of({"bad": face(0.82, **bad), "good": face(0.83, **good)}, model)
    assert names(select_donors(target, pool, model, rule="band")) == ["good"]
    assert names(select_donors(target, pool, model, rule="band", compatibility=Compatibility(**switch_off))) == [
        "bad",
        "good",
    ]


def test_gender_tolerance_band_near_50(model):
    pool = pool_of({"m55": face(0.82, gender=55), "m70": face(0.83, gender=70)}, model)
    assert names(select_donors(face(gender=45), pool, model, rule="band")) == ["m55"]  # 45 and 55: ratings split
    assert names(select_donors(face(gender=40), pool, model, rule="band")) == ["m55"]  # the band's edge counts
    assert (
        select_donors(face(gender=45), pool, model, rule="band", compatibility=Compatibility(gender_tolerance=0)) == []
    )
    assert select_donors(face(gender=38), pool, model, rule="band") == []  # a clear woman takes no man


def test_an_open_mouth_target_takes_open_mouth_donors(model):
    pool = pool_of({"closed": face(0.82, mouth=0.0), "open": face(0.83, mouth=0.2)}, model)
    assert names(select_donors(face(mouth=0.1), pool, model, rule="band")) == ["open"]


def test_a_candidate_either_recognizer_verifies_as_the_target_is_never_returned(model, target):
    same_dlib = target["dlib"] + np.full(128, 0.5 / np.sqrt(128), np.float32)  # Euclidean 0.5 <= 0.6
    same_facenet = target["facenet"] + _rng.normal(0, 0.05, 512).astype(np.float32)
    pool = pool_of(
        {"twin": face(0.82, dlib=same_dlib), "facenet-twin": face(0.83, facenet=same_facenet), "other": face(0.84)},
        model,
    )
    assert get_recognizer("dlib").distance(pool.identity["dlib"][0], target["dlib"]) == pytest.approx(0.5, abs=1e-4)
    assert get_recognizer("facenet").distance(pool.identity["facenet"][1], target["facenet"]) < 0.2419
    anything = Compatibility(None, None, None, None, None, None, keep_child=False)
    for rule in ("band", "perface"):
        donors = select_donors(target, pool, model, band=(0.0, 1.0), compatibility=anything, rule=rule)
        assert names(donors) == ["other"]
    other = donors[0]
    assert other.identity["dlib"] > 0.6 and other.identity["facenet"] > 0.2419


def test_the_target_itself_and_excluded_names_are_never_returned(model):
    pool = pool_of({"me": face(), "a": face(0.82), "b": face(0.83), "c": face(0.84)}, model)
    assert names(select_donors("me", pool, band=(0.0, 1.0), rule="band")) == ["a", "b", "c"]
    assert names(select_donors(0, pool, band=(0.0, 1.0), rule="band", exclude=["b"])) == ["a", "c"]
    # given by its features, the target is still found in the pool: it is its own identity
    assert "me" not in names(
        select_donors(
            face(dlib=pool.identity["dlib"][0], facenet=pool.identity["facenet"][0]), pool, model, band=(0.0, 1.0)
        )
    )


def test_perface_takes_the_closest_age_gender_group_first(model, target):
    # target: female (gender 20), young (age 30); every candidate in the band, the nearer-the-centre ones in farther
    # groups
    pool = pool_of(
        {
            "same-group": face(0.78, age=33),
            "same-group-2": face(0.80, age=25),
            "older": face(0.825, age=40),
            "male-young": face(0.825, gender=70, age=30),
            "male-older": face(0.825, gender=70, age=40),
            "child": face(0.825, age=10),
        },
        model,
    )
    anything = Compatibility(None, None, None, None, None, None, keep_child=False)
    donors = select_donors(target, pool, model, band=(0.75, 0.9), compatibility=anything, rule="perface")
    assert names(donors) == ["same-group-2", "same-group", "child", "older", "male-young", "male-older"]
    assert [d.group_distance for d in donors] == [0, 0, 1, 1, 1.5, 2.5]
    assert donors[2].group == "female/child" and donors[3].group == "female/middle" and donors[4].group == "male/young"
    # the band rule ignores groups: nearest the centre first
    assert (
        names(select_donors(target, pool, model, band=(0.75, 0.9), compatibility=anything, rule="band"))[-1]
        == "same-group"
    )
    # with the first group used up (excluded), the next closest group comes first
    assert names(
        select_donors(
            target, pool, model, band=(0.75, 0.9), compatibility=anything, exclude=["same-group", "same-group-2"]
        )
    )[:2] == ["child", "older"]


def test_group_distance_counts_age_groups_and_gender_sides():
    assert group_distance(30, 20, 30, 20) == 0
    assert group_distance(30, 20, 55, 20) == 2  # young -> older
    assert group_distance(30, 20, 30, 80) == 1.5  # the other gender side weighs more than one age group


def test_nothing_qualifies_gives_an_empty_list(model, target):
    pool = pool_of({"a": face(0.5), "b": face(0.6)}, model)
    assert select_donors(target, pool, model, band=(0.8, 0.9)) == []
    assert select_donors(target, pool, model, band=(0.0, 1.0), exclude=["a", "b"]) == []
    assert select_donors(target, pool, model, band=(0.0, 1.0), limit=0) == []
    empty = DonorPool.from_features(FeatureTable([], {p: np.zeros((0, 0), np.float32) for p in PARTS}), model)
    assert len(empty) == 0 and select_donors(target, empty, model) == []


def test_bad_arguments_raise(model, target):
    pool = pool_of({"a": face(0.8)}, model)
    with pytest.raises(ValueError, match="band"):
        select_donors(target, pool, model, band=(0.9, 0.8))
    with pytest.raises(ValueError, match="rule"):
        select_donors(target, pool, model, rule="nearest")
    with pytest.raises(ValueError, match="model"):
        select_donors(target, pool)  # features need the model
    other = tiny_model()
    other.weights[1] = other.weights[1] + 0.01
    with pytest.raises(ValueError, match="another perception model"):
        select_donors(target, pool, other)
    with pytest.raises(KeyError):
        select_donors("nobody", pool)


def test_a_model_without_attributes_allows_the_band_rule_only_without_attribute_checks(target):
    model = tiny_model()
    model.attribute_weights, model.attribute_names = None, []
    pool = pool_of({"a": face(0.8), "b": face(0.84)}, model)
    assert pool.attributes.shape == (2, 0)
    with pytest.raises(ValueError, match="no predicted"):
        select_donors(target, pool, model)
    loose = Compatibility(gender_tolerance=None, max_age_gap=None, max_skin_gap=None, keep_child=False)
    donors = select_donors(target, pool, model, compatibility=loose, rule="band")
    assert names(donors) == ["b", "a"] and donors[0].group == ""
    assert explain(donors[0]).startswith("b: similarity 0.84, pose 0°")


def test_save_and_load_round_trip(model, target, tmp_path):
    pool = pool_of({"a": face(0.8, pose=(np.nan,) * 3), "b": face(0.84, mouth=np.nan), "c": face(0.5)}, model)
    path = pool.save(tmp_path / "pool.npz")
    back = DonorPool.load(path)
    assert back.names == pool.names and back.attribute_names == pool.attribute_names
    for name in ("embeddings", "attributes", "pose", "mouth"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pool, name))
    for name in pool.identity:
        np.testing.assert_array_equal(back.identity[name], pool.identity[name])
    assert back.meta["model"] == model_fingerprint(model)
    # the fingerprint survives the model's own save and load, so a cached pool keeps working
    loaded = PerceptionModel.load(model.save(tmp_path / "model.npz"))
    assert model_fingerprint(loaded) == model_fingerprint(model)
    explained = [explain(d) for d in select_donors(target, pool, model, band=(0.0, 1.0))]
    assert (
        len(explained) == 3 and [explain(d) for d in select_donors(target, back, loaded, band=(0.0, 1.0))] == explained
    )
    with np.load(path, allow_pickle=False) as data:
        assert data["names"].dtype.kind == "U"


def test_load_or_build_reuses_a_matching_cache_and_rebuilds_otherwise(model, tmp_path, monkeypatch):
    faces = {"a": face(0.8), "b": face(0.84)}
    parts = {k: np.stack([f[k] for f in faces.values()]) for k in faces["a"]}
    table = FeatureTable(list(faces), parts)
    path = tmp_path / "cache" / "pool.npz"
    first = DonorPool.load_or_build(path, table, model)
    assert path.is_file()
    built = []
    monkeypatch.setattr(DonorPool, "from_features", classmethod(lambda cls, t, m: built.append(1) or first))
    DonorPool.load_or_build(path, table, model)
    assert built == []
    DonorPool.load_or_build(path, table.subset(["a"]), model)  # other faces: built again
    assert built == [1]


def test_explain_is_one_line(model, target):
    pool = pool_of({"someone": face(0.83, age=36, gender=25, skin=10, pose=(8, 2, 0), mouth=0.01)}, model)
    (donor,) = select_donors(target, pool, model)
    line = explain(donor)
    assert "\n" not in line
    assert line.startswith(
        "someone: similarity 0.83, group female/middle (+1), age +6, gender +5, skin-color -5, "
        "pose 8°, mouth +0.01, dlib "
    )


# -- on the OMI faces (development machines only) --------------------------------------------------------


@pytest.fixture(scope="module")
def omi_pool(omi_faces):
    from lookalike.identity.facenet.model import cache_dir
    from lookalike.perception.model import fit_attributes
    from lookalike.perception.training import load_triplets, train
    from lookalike.perception.triplets import read_ratings

    cache = cache_dir() / "omi_features.npz"
    if not cache.is_file():
        pytest.skip(f"{cache}: no cached OMI features (computing them takes minutes)")
    ratings_path = omi_faces.parent / "attribute_means.csv"
    training = load_triplets(ratings_path, omi_faces, faces=(1, 600), cache=cache)
    held_out = load_triplets(ratings_path, omi_faces, faces=(601, 804), cache=cache)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small network: one thread is as quick, and spinning threads stall a busy machine
    try:
        model = train(training, epochs=10)
    finally:
        torch.set_num_threads(threads)
    ratings = read_ratings(ratings_path, omi_faces)
    row = {name: i for i, name in enumerate(ratings.names)}
    fit_attributes(
        model, training.table.parts, ratings.values[[row[n] for n in training.table.names]], ratings.attributes
    )
    return DonorPool.from_features(held_out.table, model), model, held_out.table


def test_omi_donors_lie_in_the_band_and_on_the_same_gender_side(omi_pool):
    pool, model, table = omi_pool
    assert len(pool) > 190
    gender = pool.attributes[:, pool.attribute_names.index("gender")]
    band = (0.75, 0.9)
    strict = Compatibility(gender_tolerance=0)
    found = 0
    for i in range(0, 40, 4):
        target = {k: v[i] for k, v in table.parts.items()}  # given by its features, like a face to anonymize
        donors = select_donors(target, pool, model, band=band, compatibility=strict)
        found += bool(donors)
        for donor in donors:
            assert donor.name != pool.names[i]
            assert band[0] <= donor.similarity <= band[1]
            assert (gender[donor.index] >= 50) == (gender[i] >= 50)
            assert donor.identity["dlib"] > 0.6 and donor.identity["facenet"] > 0.2419
        assert [d.group_distance for d in donors] == sorted(d.group_distance for d in donors)
        assert names(select_donors(pool.names[i], pool, band=band, compatibility=strict)) == names(donors)
    assert found >= 5


def tiny_model_with_ethnicity() -> PerceptionModel:
    """:func:`tiny_model` that also predicts the "asian" and "white" ratings, from appearance[5:7]."""
    base = tiny_model()
    attributes = np.zeros((base.attribute_weights.shape[0], 5))
    attributes[:, :3] = base.attribute_weights
    attributes[APPEARANCE + 5, 3] = attributes[APPEARANCE + 6, 4] = 1.0
    return PerceptionModel(
        base.centers,
        base.scales,
        base.shape_basis,
        base.weights,
        {},
        ["age", "gender", "skin-color", "asian", "white"],
        attributes,
    )


def seen_as(similarity: float, asian: float, white: float, **traits) -> dict[str, np.ndarray]:
    features = face(similarity, **traits)
    features["appearance"][5:7] = asian, white
    return features


def test_a_donor_seen_as_of_another_ethnicity_is_not_compatible():
    model = tiny_model_with_ethnicity()
    pool = pool_of(
        {"white": seen_as(0.82, 5, 90), "asian": seen_as(0.83, 88, 10), "mixed": seen_as(0.84, 70, 30)}, model
    )
    target = seen_as(1.0, 85, 12)
    assert names(select_donors(target, pool, model, rule="band")) == ["asian"]  # "mixed": white +18 against 15
    assert names(
        select_donors(target, pool, model, rule="band", compatibility=Compatibility(max_ethnicity_gap=25))
    ) == ["asian", "mixed"]
    assert names(
        select_donors(target, pool, model, rule="band", compatibility=Compatibility(max_ethnicity_gap=None))
    ) == ["white", "asian", "mixed"]
    donor = select_donors(target, pool, model, rule="band")[0]
    assert donor.gaps["ethnicity"] == pytest.approx(3.0)  # the largest change of any ethnicity rating
    assert "ethnicity +3" in explain(donor)


def test_children_get_children_and_adults_adults(model):
    pool = pool_of({"adult": face(0.82, age=21), "child": face(0.83, age=9)}, model)
    no_age_gap = Compatibility(max_age_gap=None)
    assert names(select_donors(face(age=11), pool, model, rule="band", compatibility=no_age_gap)) == ["child"]
    assert names(select_donors(face(age=25), pool, model, rule="band", compatibility=no_age_gap)) == ["adult"]
    anyone = Compatibility(max_age_gap=None, keep_child=False)
    assert names(select_donors(face(age=11), pool, model, rule="band", compatibility=anyone)) == ["adult", "child"]
