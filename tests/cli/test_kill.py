"""The command is SIGKILLed at random moments while it works on a folder: no partial output is ever
visible under a final name, and ``--resume`` finishes with outputs identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

COMMAND = [sys.executable, "-c", "from lookalike.cli import main; main()", "anonymize"]
SETTINGS = ["--method", "blur", "--rotations", "off"]
MANIFEST_NAME = "lookalike-manifest.jsonl"  # batch.MANIFEST_NAME; spelled out, as a user sees it


def _images(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME
    }


def test_killed_runs_leave_no_partial_output_and_resume_finishes_identically(tmp_path, astronaut):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    face = Image.fromarray(np.ascontiguousarray(astronaut[0:260, 110:370]))
    for i, size in enumerate((120, 160, 200, 240, 280, 320)):
        picture = face.resize((size, size)).rotate(8 * i)
        picture.save(photos / ("sub" if i % 2 else ".") / f"p{i}{'.png' if i % 3 == 0 else '.jpg'}")
    Image.fromarray(np.full((60, 80, 3), 120, np.uint8)).save(photos / "empty.png")
    environment = {**os.environ, "GLOG_minloglevel": "2"}

    reference = tmp_path / "reference"
    started = time.monotonic()
    done = subprocess.run(
        [*COMMAND, str(photos), "-o", str(reference), *SETTINGS],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    uninterrupted = time.monotonic() - started
    expected = _images(reference)
    assert len(expected) == 7

    out = tmp_path / "out"
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    kills = 0
    for attempt in range(4):
        if len(_images(out)) == len(expected):
            break
        manifest = out / MANIFEST_NAME
        lines_before = len(manifest.read_bytes().splitlines()) if manifest.exists() else 0
        run = subprocess.Popen(
            [*COMMAND, str(photos), "-o", str(out), *SETTINGS, "--resume"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if attempt:  # wait until this run has started writing, then kill it a random moment later
            deadline = time.monotonic() + 300
            while run.poll() is None and time.monotonic() < deadline:
                if manifest.exists() and len(manifest.read_bytes().splitlines()) > lines_before:
                    break
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
        else:  # the first one at a random moment of what an uninterrupted run takes, start-up included
            time.sleep(rng.uniform(0.3, 0.9) * uninterrupted)
        if run.poll() is None:
            run.send_signal(signal.SIGKILL)
            kills += 1
        run.wait(timeout=60)
        for name, data in _images(out).items():  # whatever has a final name is complete and final
            assert data == expected[name], f"seed {seed}: {name} differs after kill {attempt}"
    assert kills >= 1, f"seed {seed}: the runs finished before they could be killed"

    final = subprocess.run(
        [*COMMAND, str(photos), "-o", str(out), *SETTINGS, "--resume", "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert final.returncode == 0, f"seed {seed}: {final.stderr[-2000:]}"
    assert _images(out) == expected, f"seed {seed}"
    assert not [p for p in out.rglob(".*") if p.is_file()], f"seed {seed}: temporaries left behind"
    summary = json.loads(final.stdout)["summary"]
    assert summary["skipped_as_done"] + summary["files_written"] == 7 and summary["files_failed"] == 0
