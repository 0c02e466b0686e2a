"""Fingerprints of every method's outputs and records on 20 development faces, for refactors.

A change that should not change behaviour must leave every line identical: run this on the commit
before and after and compare (``diff``). Timings are left out of the records; everything else is hashed.

    python benchmarks/hash_outputs.py [--faces 401-420] [--out fingerprints.json]

Prints one line per method with the combined hash, and writes per-face hashes to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OMI_FACES = REPO.parent / "shared" / "data" / "omi" / "faces"
METHODS = ("blur", "pixelate", "solid", "swap", "checked-swap", "lookalike")
_TIMINGS = {"seconds"}


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in _TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def fingerprint(path: Path, method: str) -> str:
    from lookalike.io.images import load_image
    from lookalike.pipeline import anonymize

    result = anonymize(load_image(path), method=method, seed=0)
    digest = hashlib.sha256(result.image.tobytes())
    digest.update(json.dumps(_without_timings(result.to_dict(with_landmarks=True)), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default="401-420", help="OMI face numbers, FIRST-LAST")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not OMI_FACES.is_dir():
        print(f"skipped: {OMI_FACES} not found (the OMI faces are only on the development machines)")
        return 0
    first, last = (int(x) for x in args.faces.split("-"))
    paths = [p for n in range(first, last + 1) for p in sorted(OMI_FACES.glob(f"{n:04d}*"))[:1]]
    paths.append(REPO / "examples" / "group.jpg")
    table = {}
    for method in METHODS:
        table[method] = {p.name: fingerprint(p, method) for p in paths}
        combined = hashlib.sha256(json.dumps(table[method], sort_keys=True).encode()).hexdigest()[:16]
        print(f"{method:13s} {len(paths)} images  {combined}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(table, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
