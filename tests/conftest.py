"""Shared fixtures: faces composed from ``skimage.data.astronaut()`` and the optional OMI folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

REPO = Path(__file__).resolve().parents[1]
OMI_FACES = REPO.parent / "shared" / "data" / "omi" / "faces"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage.data import astronaut as load

    return load()


@pytest.fixture(scope="session")
def group_image(astronaut) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A 1200x800 canvas with four astronaut portraits of different sizes; returns (image, [(x, y, width)])."""
    from PIL import Image

    portrait = Image.fromarray(astronaut).crop((110, 0, 350, 300))
    canvas = np.full((800, 1200, 3), 128, np.uint8)
    canvas[:, :, 0] = np.linspace(60, 200, 1200, dtype=np.uint8)[None, :]
    placements = [(30, 200, 400), (520, 120, 260), (860, 420, 150), (1080, 100, 90)]
    for x, y, width in placements:
        face = np.asarray(portrait.resize((width, round(width * 300 / 240)), Image.LANCZOS))
        canvas[y : y + face.shape[0], x : x + face.shape[1]] = face
    return canvas, placements


@pytest.fixture(scope="session")
def omi_faces() -> Path:
    if not OMI_FACES.is_dir():
        pytest.skip(f"OMI faces not found at {OMI_FACES} (only present on the development machines)")
    return OMI_FACES
