"""Every model the package uses loads from installed packages, and the environment is consistent."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from lookalike.identity import available_recognizers, get_recognizer


def test_pip_check_passes():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_exactly_one_opencv_and_numpy_below_2():
    from importlib.metadata import PackageNotFoundError, version

    import cv2

    installed = []
    for name in ("opencv-python", "opencv-contrib-python", "opencv-python-headless", "opencv-contrib-python-headless"):
        try:
            installed.append((name, version(name)))
        except PackageNotFoundError:
            pass
    assert [name for name, _ in installed] == ["opencv-contrib-python"]
    assert installed[0][1].startswith(cv2.__version__)  # the cv2 that imports is that wheel's
    assert int(np.__version__.split(".")[0]) < 2


def test_every_model_loads_and_runs(astronaut):
    from lookalike.detection import detect_faces
    from lookalike.landmarks import add_landmarks

    faces = add_landmarks(astronaut, detect_faces(astronaut))
    assert len(faces) == 1 and faces[0].landmarks is not None
    for name in available_recognizers():
        recognizer = get_recognizer(name)
        embedding = recognizer.embed(astronaut, faces[0])
        assert embedding.shape == (recognizer.embedding_size,) and np.isfinite(embedding).all()
