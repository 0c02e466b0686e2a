"""Reading judgments in each format, and accounting for every row left out."""

import io

import numpy as np
import pytest

from lookalike.perception.triplets import Ratings, is_ratings_file, read_judgments, read_ratings, triplets_from_ratings


def test_triplet_rows_and_malformed_rows_are_counted():
    text = "anchor,positive,negative\na.jpg,b.jpg,c.jpg\nonly,two\nd.jpg,d.jpg,e.jpg\n,b.jpg,c.jpg\n"
    judgments = read_judgments(io.StringIO(text), "t.csv")
    assert judgments.kind == "triplets"
    assert judgments.triplets == [("a.jpg", "b.jpg", "c.jpg")]
    assert judgments.problems == {"malformed row": 3}
    assert judgments.examples["malformed row"] == "line 3: only,two"


def test_odd_one_out_by_position_or_by_name():
    text = "image1,image2,image3,odd\na.jpg,b.jpg,c.jpg,a.jpg\na.jpg,b.jpg,c.jpg,2\na.jpg,b.jpg,c.jpg,x.jpg\n"
    judgments = read_judgments(io.StringIO(text), "odd.csv")
    assert judgments.triplets == [
        ("b.jpg", "c.jpg", "a.jpg"),
        ("c.jpg", "b.jpg", "a.jpg"),
        ("a.jpg", "c.jpg", "b.jpg"),
        ("c.jpg", "a.jpg", "b.jpg"),
    ]
    assert judgments.problems == {"malformed row": 1}


def test_an_unknown_header_is_refused_with_the_file_name():
    with pytest.raises(ValueError, match="x.csv: unknown header"):
        read_judgments(io.StringIO("foo,bar\n1,2\n"), "x.csv")


def test_ratings_files_map_stimulus_numbers_to_files(tmp_path):
    (tmp_path / "faces").mkdir()
    for name in ("0001.jpg", "0002.png"):
        (tmp_path / "faces" / name).write_bytes(b"")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("stimulus,age,gender\n1,20,10\n2,60,90\n3,40,50\nbad,row\n")
    assert is_ratings_file(ratings)
    table = read_ratings(ratings, tmp_path / "faces")
    assert table.names == ["0001.jpg", "0002.png", "0003.jpg"]
    np.testing.assert_allclose(table.column("age"), [20, 60, 40])


def test_generated_triplets_respect_the_split_and_the_margin():
    rng = np.random.default_rng(0)
    names = [f"{i:04d}.jpg" for i in range(1, 41)]
    ratings = Ratings(names, ["age", "gender"], rng.uniform(0, 100, (40, 2)))
    train = names[:30]
    triplets = triplets_from_ratings(ratings, train, per_anchor=10, attributes=("age", "gender"), margin=0.5)
    assert triplets and all(n in train for t in triplets for n in t)
    x = ratings.values[:30]
    x = (x - x.mean(0)) / x.std(0)
    where = {n: i for i, n in enumerate(train)}
    for a, p, n in triplets:
        d = lambda u, v: np.linalg.norm(x[where[u]] - x[where[v]])  # noqa: E731
        assert d(a, n) - d(a, p) >= 0.5
