"""`lookalike donors build` and `lookalike crowd build`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def numbered(tmp_path_factory, astronaut):
    """1.jpg: a face; 2.png: no face; 3.jpg: not an image; 700.jpg: a face outside --faces 1-600."""
    folder = tmp_path_factory.mktemp("numbered")
    Image.fromarray(astronaut).save(folder / "1.jpg")
    Image.fromarray(np.full((100, 100, 3), 128, np.uint8)).save(folder / "2.png")
    (folder / "3.jpg").write_bytes(b"no image here")
    Image.fromarray(astronaut).save(folder / "700.jpg")
    return folder


def test_donors_build_counts_and_names_bad_files(numbered, tmp_path):
    from lookalike.donors.bank import DonorBank

    output = tmp_path / "bank.npz"
    result = runner.invoke(
        app, ["donors", "build", str(numbered), "-o", str(output), "--faces", "1-600", "--jobs", "1", "--size", "96"]
    )
    assert result.exit_code == 1, result.stderr  # one file failed; the bank is still written
    assert f"{numbered / '3.jpg'}" in result.stderr
    assert "donors: 1 | images: 3 | failed: 1 | without a usable face: 1" in result.stderr
    bank = DonorBank.load(output)
    assert bank.names == ["1.jpg"] and bank.size == 96  # 700.jpg is outside --faces
    assert bank.meta["faces"] == "1-600" and "--faces 1-600" in bank.meta["command"]


def test_crowd_build_writes_the_faces_it_could_embed(numbered, tmp_path):
    from lookalike.identity.crowd import ReferenceCrowd

    output = tmp_path / "crowd.npz"
    result = runner.invoke(app, ["crowd", "build", str(numbered), "-o", str(output), "--jobs", "1"])
    assert result.exit_code == 1, result.stderr
    assert "crowd faces: 2 | images: 4 | failed: 1 | without a face: 1" in result.stderr
    crowd = ReferenceCrowd.load(output)
    assert crowd.names == ["1.jpg", "700.jpg"] and crowd.meta["faces"] == "all"


def test_usage_errors_exit_2(numbered, tmp_path):
    out = str(tmp_path / "x.npz")
    cases = [
        (["donors", "build", str(numbered), "-o", out, "--faces", "9-1"], "--faces"),
        (["donors", "build", str(numbered), "-o", out, "--prototypes", "1"], "--prototypes"),
        (["donors", "build", str(tmp_path / "none"), "-o", out], "not a folder"),
        (["crowd", "build", str(numbered), "-o", out, "--faces", "801-804"], "no image files numbered 801-804"),
        (["crowd", "build", str(numbered), "-o", str(tmp_path)], "is a folder"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
