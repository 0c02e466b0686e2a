"""The photo folder the command-line tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="package")
def photos(tmp_path_factory, astronaut) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(astronaut).save(folder / "a.jpg")
    Image.fromarray(astronaut[:, ::-1].copy()).save(folder / "b.png")
    Image.fromarray(astronaut[40:, 20:]).save(folder / "c.jpg")
    return folder
