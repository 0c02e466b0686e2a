"""A few examples of the fuzz campaign's properties (``benchmarks/fuzz_io.py`` runs the long one):
random, truncated and bit-flipped files in every format, and random arrays for ``anonymize``. Only the
project's own errors are raised, inputs are unchanged, outputs exist only complete, pixels outside the
mask are unchanged."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_io.py"
_SPEC = importlib.util.spec_from_file_location("fuzz_io", _BENCHMARK)
fuzz = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fuzz)

_FEW = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@_FEW
@given(fuzz.image_files(), st.integers(0, 2**31), st.booleans())
def test_reading_and_writing_any_file_raises_only_image_errors_and_keeps_its_promises(case, mask_seed, keep_metadata):
    suffix, data, _ = case
    with tempfile.TemporaryDirectory() as folder:
        fuzz.check_file(Path(folder), suffix, data, mask_seed, keep_metadata)


@settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(fuzz.arrays())
def test_anonymize_of_any_array_raises_only_image_errors_and_changes_only_the_mask(array):
    fuzz.check_array(array)


def test_the_properties_catch_a_writer_that_changes_pixels_outside_the_mask(monkeypatch, tmp_path):
    """The harness is not vacuous: a writer that touches every pixel fails it."""
    import numpy as np
    import pytest

    import lookalike.io.images as images

    data = fuzz.encode_file(".png", "RGB", 16, 12, seed=1, orientation=1, option=1)
    original = images.compose_native
    monkeypatch.setattr(images, "compose_native", lambda image, rgb, mask: original(image, rgb, np.ones_like(mask)))
    import lookalike.io as io_package

    monkeypatch.setattr(io_package, "compose_native", images.compose_native)
    with pytest.raises(AssertionError, match="pixels outside the mask changed"):
        fuzz.check_file(tmp_path, ".png", data, mask_seed=3, keep_metadata=False)
