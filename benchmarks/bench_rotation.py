"""Which in-plane face angles are found, with ``--rotations off | coarse | full``.

Each OMI portrait (first ``--limit``; ``../shared/data/omi/faces``) and the astronaut is turned by every
angle from 0 to 345 degrees in steps of 15 (on a canvas large enough to hold it whole), then detected.
A face counts as found when a detection's centre lies within a quarter of the face width of the true
face centre. Prints the found rate per angle and mode, and writes ``benchmarks/results/rotation.json``.

    python benchmarks/bench_rotation.py [--limit 40]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OMI = REPO.parent / "shared" / "data" / "omi" / "faces"
ANGLES = list(range(0, 360, 15))
MODES = ("off", "coarse", "full")


def rotated(image: np.ndarray, centre: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by ``angle`` degrees (counter-clockwise) on a canvas that holds it, and where ``centre``
    went."""
    h, w = image.shape[:2]
    side = int(np.ceil(np.hypot(h, w)))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[:, 2] += (side - w) / 2, (side - h) / 2
    out = cv2.warpAffine(image, matrix, (side, side), borderMode=cv2.BORDER_REFLECT)
    return out, matrix[:, :2] @ centre + matrix[:, 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()

    from skimage.data import astronaut

    from lookalike.detection import detect_faces
    from lookalike.pipeline import AnonymizeConfig

    images = [astronaut()]
    if OMI.is_dir():
        images += [np.asarray(Image.open(p).convert("RGB")) for p in sorted(OMI.glob("*.jpg"))[: args.limit]]
    else:
        print(f"OMI faces not found at {OMI}: astronaut only")
    truths = []
    for image in images:
        upright = detect_faces(image)
        if not upright:
            raise SystemExit("an upright test face was not found; the benchmark needs it as ground truth")
        truths.append((upright[0].center, upright[0].width))

    found = {mode: {a: 0 for a in ANGLES} for mode in MODES}
    seconds = {mode: 0.0 for mode in MODES}
    for image, (centre, width) in zip(images, truths):
        for angle in ANGLES:
            turned, where = rotated(image, centre, angle)
            for mode in MODES:
                config = AnonymizeConfig(rotations=mode).detector_config()
                start = time.perf_counter()
                faces = detect_faces(turned, config)
                seconds[mode] += time.perf_counter() - start
                if any(np.linalg.norm(f.center - where) < 0.25 * width for f in faces):
                    found[mode][angle] += 1
    n = len(images)
    print(f"{n} faces x {len(ANGLES)} angles; found rate per angle (degrees counter-clockwise)")
    print("angle  " + "  ".join(f"{m:>6}" for m in MODES))
    for angle in ANGLES:
        print(f"{angle:5d}  " + "  ".join(f"{found[m][angle] / n:6.0%}" for m in MODES))
    print("all    " + "  ".join(f"{sum(found[m].values()) / (n * len(ANGLES)):6.1%}" for m in MODES))
    print("s/img  " + "  ".join(f"{seconds[m] / (n * len(ANGLES)):6.3f}" for m in MODES))
    out = REPO / "benchmarks" / "results" / "rotation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "faces": n,
                "angles": ANGLES,
                "found_rate": {m: {a: found[m][a] / n for a in ANGLES} for m in MODES},
                "seconds_per_image": {m: seconds[m] / (n * len(ANGLES)) for m in MODES},
            },
            indent=2,
        )
    )
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
