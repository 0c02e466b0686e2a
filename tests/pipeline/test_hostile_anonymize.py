"""What a hostile user found in the Python API (issue 19); each test failed on the code before it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from lookalike.pipeline import anonymize

# --- 5. zero-size arrays raise the project's error instead of killing the process --------------------


def test_a_zero_size_array_raises_the_image_error():
    """All shapes in one child process (a segfault there is exit -11, not the end of the test run)."""
    shapes = [(0, 0, 3), (0, 10, 3), (10, 0, 3), (0, 0)]
    code = (
        "import numpy as np, lookalike\n"
        f"for shape in {shapes!r}:\n"
        "    for call in (lambda a: lookalike.anonymize(a, method='blur'), lookalike.detect):\n"
        "        try:\n            call(np.zeros(shape, np.uint8))\n"
        "        except lookalike.ImageError as exc:\n            print('refused:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 8 and all(line.startswith("refused: image has no pixels") for line in lines), lines


# --- 6. after a face is filled solid, its record describes the fill ------------------------------------


def test_a_lookalike_record_filled_after_verify_describes_the_fill(astronaut, monkeypatch):
    import lookalike.pipeline.lookalike as method

    def unchanged_but_claims_success(image, face, **kwargs):
        x0, y0, x1, y1 = (int(v) for v in face.box)
        record = method.LookalikeRecord(
            recognizers={
                "dlib": {
                    "distance": 0.9,
                    "threshold": 0.6,
                    "match": False,
                    "steered": True,
                    "rank": 50,
                    "retrieval_rank": 50,
                },
                "facenet": {
                    "distance": 1.5,
                    "threshold": 1.1,
                    "match": False,
                    "steered": True,
                    "rank": 50,
                    "retrieval_rank": 50,
                },
            },
            fallback=None,
            reached=True,
            perceptual_similarity=0.9,
        )
        return method.LookalikeOutcome(
            image[y0:y1, x0:x1].copy(), np.zeros((y1 - y0, x1 - x0), np.float32), (x0, y0, x1, y1), record
        )

    monkeypatch.setattr(method, "lookalike_face", unchanged_but_claims_success)
    monkeypatch.setattr(method, "load_bank", lambda *a, **k: None)
    result = anonymize(astronaut, method="lookalike", verify=("dlib",))
    record = result.faces[0]
    assert record.fallback and record.fallback.startswith("solid")
    details = record.lookalike.to_dict()
    assert details["fallback"] == record.fallback and details["perceptual_similarity"] is None
    assert set(details["recognizers"]) == set(record.verification) == {"dlib", "facenet"}
    for name, figures in details["recognizers"].items():  # both measured again on the fill
        assert figures["match"] == record.verification[name]["match"]
        assert figures["distance"] == record.verification[name]["distance"]
        assert figures["rank"] != 50 and figures["retrieval_rank"] != 50
    assert details["reached"] == (not any(v["match"] for v in record.verification.values()))
    cx, cy = (int(v) for v in record.face.center)
    assert result.image[cy, cx].max() == 0
