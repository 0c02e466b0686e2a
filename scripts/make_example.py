"""Compose the bundled example ``examples/group.jpg``: several faces of different sizes on one canvas.

Every face is a copy of ``skimage.data.astronaut()`` (Eileen Collins, NASA portrait, public domain),
mirrored, tinted or shown in grey so the copies differ. Run from the repository root:

    python scripts/make_example.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage.data import astronaut

#: (head-and-shoulders crop width in px, x, y, mirrored, variant)
PLACEMENTS = [
    (520, 40, 330, False, "plain"),
    (380, 600, 180, True, "warm"),
    (260, 1020, 420, False, "grey"),
    (170, 1310, 120, True, "cool"),
    (110, 1420, 560, False, "plain"),
    (72, 1120, 80, False, "warm"),
    (48, 1520, 400, True, "plain"),
]


def main(out: Path = Path("examples/group.jpg")) -> None:
    portrait = Image.fromarray(astronaut()).crop((110, 0, 350, 300))
    height, width = 900, 1600
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    background = (np.array([70, 90, 120]) * (1 - y) + np.array([200, 190, 170]) * y + 25 * x).clip(0, 255)
    canvas = Image.fromarray(np.broadcast_to(background, (height, width, 3)).astype(np.uint8))
    for crop_width, left, top, mirrored, variant in PLACEMENTS:
        face = portrait.resize((crop_width, round(crop_width * 300 / 240)), Image.LANCZOS)
        face = ImageOps.mirror(face) if mirrored else face
        pixels = np.asarray(face).astype(np.float32)
        if variant == "warm":
            pixels *= np.array([1.08, 1.0, 0.88])
        elif variant == "cool":
            pixels *= np.array([0.9, 0.98, 1.1])
        elif variant == "grey":
            pixels = np.repeat(pixels.mean(axis=2, keepdims=True), 3, axis=2)
        canvas.paste(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)), (left, top))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, quality=90)
    print(f"wrote {out} ({len(PLACEMENTS)} faces)")


if __name__ == "__main__":
    main()
