"""Seconds per image and per face for each stage, the whole ``anonymize --method blur`` run, and deface.

Runs on the first ``--limit`` OMI faces (``../shared/data/omi/faces``; one 512x512 portrait each) and
on composed group photos (many faces at several sizes, 1600x900 and 4000x3000). Model loading is
excluded from the per-stage figures (each stage is warmed up once) and included in the end-to-end
CLI figure, which is what a user waits for.

    python benchmarks/bench_speed.py [--limit 100] [--deface-python /tmp/deface-venv/bin/python]

deface is installed apart, because it needs numpy 2 and a second OpenCV wheel:
    python3 -m venv /tmp/deface-venv && /tmp/deface-venv/bin/pip install deface==1.5.0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OMI = REPO.parent / "shared" / "data" / "omi" / "faces"
RESULTS = REPO / "benchmarks" / "results" / "speed.json"


def compose_group(size: tuple[int, int], widths: list[int], seed: int = 0) -> np.ndarray:
    """A canvas with astronaut portraits of the given widths at random non-overlapping places."""
    from skimage.data import astronaut

    rng = np.random.default_rng(seed)
    width, height = size
    canvas = np.asarray(Image.fromarray(astronaut()).resize((width, height)).convert("L").convert("RGB")).copy()
    canvas = (canvas * 0.5).astype(np.uint8)  # a busy but dimmed background
    portrait = Image.fromarray(astronaut()).crop((110, 0, 350, 300))
    taken: list[tuple[int, int, int, int]] = []
    for w in widths:
        h = round(w * 300 / 240)
        for _ in range(200):
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            if all(x + w < a or a + c < x or y + h < b or b + d < y for a, b, c, d in taken):
                break
        taken.append((x, y, w, h))
        canvas[y : y + h, x : x + w] = np.asarray(portrait.resize((w, h), Image.LANCZOS))
    return canvas


def time_stage(fn, images: list[np.ndarray]) -> float:
    fn(images[0])  # warm-up: model loading is not part of the per-image cost
    start = time.perf_counter()
    for image in images:
        fn(image)
    return (time.perf_counter() - start) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=100, help="OMI faces to time (default 100)")
    parser.add_argument("--deface-python", type=Path, help="python of a venv with deface installed")
    args = parser.parse_args()

    import torch

    from lookalike.detection import detect_faces
    from lookalike.identity import get_recognizer
    from lookalike.landmarks import add_landmarks
    from lookalike.pipeline import anonymize

    sets: dict[str, list[np.ndarray]] = {}
    if OMI.is_dir():
        sets["omi_512"] = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(OMI.glob("*.jpg"))[: args.limit]]
    else:
        print(f"skipping the OMI set: {OMI} not found")
    sets["group_1600x900"] = [compose_group((1600, 900), [400, 260, 180, 120, 80, 48, 32], seed=s) for s in range(3)]
    sets["group_4000x3000"] = [
        compose_group((4000, 3000), [900, 500, 300, 200, 120, 80, 60, 40, 32, 28], seed=s) for s in range(2)
    ]

    print(f"torch threads: {torch.get_num_threads()}, cpu cores: {os.cpu_count()}")
    results: dict[str, dict] = {}
    for name, images in sets.items():
        faces_per_image = [detect_faces(im) for im in images]
        n_faces = sum(len(f) for f in faces_per_image)
        with_landmarks = [add_landmarks(im, list(f)) for im, f in zip(images, faces_per_image)]
        row = {"images": len(images), "faces": n_faces, "megapixels": images[0].shape[0] * images[0].shape[1] / 1e6}
        row["detect_s_per_image"] = time_stage(detect_faces, images)
        pairs = list(zip(images, with_landmarks))

        def landmarks_only(pair_index, pairs=pairs):
            image, faces = pairs[pair_index]
            add_landmarks(image, [type(f)(f.box, f.score, f.keypoints) for f in faces])

        indices = list(range(len(pairs)))
        row["landmarks_s_per_image"] = time_stage(landmarks_only, indices)
        for rec_name in ("dlib", "facenet"):
            recognizer = get_recognizer(rec_name)

            def embed_all(pair_index, recognizer=recognizer, pairs=pairs):
                image, faces = pairs[pair_index]
                for f in faces:
                    recognizer.embed(image, f)

            row[f"{rec_name}_s_per_image"] = time_stage(embed_all, indices)
        row["anonymize_blur_s_per_image"] = time_stage(lambda im: anonymize(im, method="blur"), images)
        for key in [k for k in row if k.endswith("_s_per_image")]:
            row[key.replace("_per_image", "_per_face")] = row[key] * len(images) / max(n_faces, 1)
        row.update(cli_end_to_end(images, name, args.deface_python))
        results[name] = row

    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": {"cores": os.cpu_count()}, "sets": results}, indent=2))
    print(f"wrote {RESULTS.relative_to(REPO)}")


def cli_end_to_end(images: list[np.ndarray], name: str, deface_python: Path | None) -> dict:
    """Wall time of one CLI run over the whole set (model loading included), ours and deface's."""
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(folder / f"{i:04d}.jpg", quality=92)
        cli = shutil.which("lookalike", path=str(Path(sys.executable).parent)) or "lookalike"
        start = time.perf_counter()
        subprocess.run(
            [cli, "anonymize", str(folder), "-o", str(Path(tmp) / "ours"), "--method", "blur"],
            check=True,
            capture_output=True,
        )
        out["cli_blur_total_s"] = time.perf_counter() - start
        if deface_python:
            deface_cli = Path(deface_python).parent / "deface"
            files = sorted(str(p) for p in folder.glob("*.jpg"))
            start = time.perf_counter()
            subprocess.run(
                [str(deface_cli), *files, "--output", str(Path(tmp) / "deface_out.jpg")]
                if len(files) == 1
                else [str(deface_cli), *files],
                check=True,
                capture_output=True,
            )
            out["deface_cli_total_s"] = time.perf_counter() - start
    return out


def print_table(results: dict[str, dict]) -> None:
    columns = ["detect", "landmarks", "dlib", "facenet", "anonymize_blur"]
    print(
        f"\n{'set':18} {'imgs':>4} {'faces':>5} {'MP':>5} "
        + " ".join(f"{c + ' s/img':>18}" for c in columns)
        + f" {'cli total s':>11} {'deface total s':>14}"
    )
    for name, row in results.items():
        cells = " ".join(f"{row[c + '_s_per_image']:>8.3f} ({row[c + '_s_per_face']:.3f}/f)" for c in columns)
        deface = row.get("deface_cli_total_s")
        print(
            f"{name:18} {row['images']:>4} {row['faces']:>5} {row['megapixels']:>5.1f} {cells} "
            f"{row['cli_blur_total_s']:>11.1f} {deface if deface is None else round(deface, 1)!s:>14}"
        )


if __name__ == "__main__":
    main()
