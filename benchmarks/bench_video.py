"""Video figures on generated clips, beside deface on the same clips.

For every test clip (made here from still faces, with a tone as sound: a panning and zooming face, two
faces crossing, a face leaving and coming back, a cut between two shots, a turned head; MP4, MOV turned
90 degrees, MKV, WebM, AVI; 15 to 30 fps) and every method asked for, it prints:

* frames in / out, whether every frame's timestamp and every audio packet (bytes and timestamp) are equal;
* faces left untouched: (frame, track) pairs whose face was written unchanged (must be 0), and faces the
  photo detector finds in the input frame whose core is unchanged in the decoded output (ground truth
  that does not rely on the tracks; deface gets the same);
* detector misses covered: keyframe faces the detector missed that their track covered; faces written at a
  predicted place;
* flicker ratio: mean frame-to-frame change inside each face after following its motion, output over
  input (decoded files; see :func:`_flicker`);
* dlib drift: mean pairwise dlib distance between a track's sampled output faces minus the same for its
  input faces (the lookalike stays one person: at most 0.05), over the frames showing the lookalike (not
  fallen back to a blur, no other face overlapping); fell back: frames written with a blur or a fill
  instead of the track's lookalike or classic method, any reason;
* protection per recognizer on sampled frames: match (distance within the threshold) and top-1 (the
  person's own original nearer than every face of the reference crowd; chance is 1 / (crowd + 1));
* speed on a 1280x720 clip with one face (decode, anonymize, encode, sound), frames per second.

    python benchmarks/bench_video.py [--methods blur,lookalike] [--deface /tmp/deface-venv] [--json OUT]

``--deface`` points at a virtual environment with deface installed (``pip install deface``: it needs
opencv-python, a second OpenCV wheel, so it must not live in this project's environment); without it the
deface columns are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: (scenario, file name, fps, rotation): every container and a spread of frame rates.
CLIPS = [
    ("pan", "pan.mp4", 24, 0),
    ("cross", "cross.mov", 30, 90),
    ("leave", "leave.mkv", 25, 0),
    ("cut", "cut.webm", 30, 0),
    ("turn", "turn.avi", 15, 0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="blur,lookalike")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each test clip")
    parser.add_argument("--speed-seconds", type=float, default=10.0, help="length of the 1280x720 speed clip")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--deface", type=Path, default=None, help="a virtual environment with deface installed")
    parser.add_argument("--work", type=Path, default=None, help="folder for the clips (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-video-"))
    work.mkdir(parents=True, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    deface = _deface_command(args.deface)
    clips = _make_clips(work, args.seconds)
    report: dict = {"clips": {}, "speed": {}}
    for path in clips.values():
        truth = _truth(path)
        for method in methods:
            row = _run_ours(path, work / method / path.name, method, truth)
            report["clips"].setdefault(path.name, {})[method] = row
            _print_row(path.name, method, row)
        if deface:
            row = _run_deface(deface, path, work / "deface" / path.name, truth)
            report["clips"][path.name]["deface"] = row
            _print_row(path.name, "deface", row)
    if not deface:
        print(
            f"deface: skipped ({'no --deface given' if args.deface is None else f'no deface in {args.deface}'}; "
            "install it in a separate venv: python3 -m venv /tmp/deface-venv && "
            "/tmp/deface-venv/bin/pip install deface)"
        )
    if not args.skip_speed:
        report["speed"] = _speed(work, methods, args.speed_seconds, deface)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


# ---------------------------------------------------------------------------------------------- clips


def _make_clips(work: Path, seconds: float) -> dict[str, Path]:
    from lookalike.donors.bank import default_bank
    from lookalike.io.clips import astronaut_portrait, make_clip

    other = default_bank().donor_image(0)[0][:440, 40:472]  # a second person: a donor of the shipped bank
    clips = {}
    for scenario, name, fps, rotation in CLIPS:
        path = work / "clips" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            make_clip(
                path, scenario, fps=fps, seconds=seconds, rotation=rotation, portraits=[astronaut_portrait(), other]
            )
        clips[scenario] = path
    return clips


def _decode(path: Path) -> list[np.ndarray]:
    from lookalike.io.video import VideoReader

    with VideoReader(path) as reader:
        return [f.rgb for f in reader]


def _truth(path: Path) -> list[list]:
    """Faces the photo detector (its photo settings) finds in every decoded input frame."""
    from lookalike.detection import detect_faces
    from lookalike.pipeline import AnonymizeConfig

    config = AnonymizeConfig().detector_config()
    return [detect_faces(frame, config) for frame in _decode(path)]


# ------------------------------------------------------------------------------------------- running


def _run_ours(source: Path, target: Path, method: str, truth) -> dict:
    from lookalike.io.video import VideoReader, VideoWriter
    from lookalike.pipeline.video import VideoAnonymizer

    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    anonymizer = VideoAnonymizer(method=method)
    inputs, outputs, stamps = [], [], []
    started = time.perf_counter()
    with VideoReader(source) as reader:
        writer = VideoWriter(reader.info, target, reader.container)
        reader.writer = writer

        def frames():
            for frame in reader:
                stamps.append((frame.pts, frame.time_base))
                inputs.append(frame.rgb)
                yield frame.rgb

        for out in anonymizer.run(frames()):
            writer.write(out, *stamps[len(outputs)])
            outputs.append(out)
        writer.finish().rename(target)
    seconds = time.perf_counter() - started
    row = _file_figures(source, target, truth)
    boxes = [(t.id, f, o.face.box) for t in anonymizer.tracks for f, o in t.observations.items()]
    fell_back = {t.id: anonymizer._state[t.id].fell_back for t in anonymizer.tracks}
    row.update(
        seconds=round(seconds, 1),
        tracks=len(anonymizer.tracks),
        tracked_untouched=sum(_unchanged(inputs[f], outputs[f], box) for _, f, box in boxes),
        detector_misses_covered=anonymizer.stats.detector_misses,
        predicted_faces=anonymizer.stats.predicted_faces,
        fell_back=sum(len(frames) for frames in fell_back.values()),
        drift=_drift(inputs, outputs, anonymizer.tracks, fell_back),
        protection=_protection(inputs, outputs, anonymizer.tracks),
    )
    return row


def _deface_command(venv: Path | None) -> list[str] | None:
    if venv is None:
        return None
    exe = venv / "bin" / "deface"
    return [str(exe)] if exe.is_file() else None


def _run_deface(command: list[str], source: Path, target: Path, truth) -> dict:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run([*command, str(source), "-o", str(target), "--keep-audio"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not target.is_file():
        lines = [
            line.strip()
            for line in (done.stderr + "\n" + done.stdout).replace("\r", "\n").splitlines()
            if line.strip() and "it/s]" not in line and "%|" not in line
        ]
        reason = next(
            (line for line in reversed(lines) if "rror" in line), lines[-1] if lines else f"exit code {done.returncode}"
        )
        return {"failed": reason[:200], "seconds": round(seconds, 1)}
    row = _file_figures(source, target, truth)
    row["seconds"] = round(seconds, 1)
    return row


# ------------------------------------------------------------------------------------------- figures


def _file_figures(source: Path, target: Path, truth) -> dict:
    """What can be measured on the files alone: timing, sound, untouched faces, flicker."""
    from lookalike.io.video import clip_timing, probe_video

    before, after = clip_timing(source), clip_timing(target)
    ins, outs = _decode(source), _decode(target)
    untouched = sum(
        _unchanged(ins[i], outs[i], face.box, threshold=4.0)
        for i, faces in enumerate(truth[: len(outs)])
        for face in faces
    )
    return {
        "frames_in": len(before.frames),
        "frames_out": len(after.frames),
        "timestamps_equal": before.frames == after.frames,
        "audio_identical": bool(before.audio) and before.audio == after.audio,
        "rotation_kept": probe_video(source).rotation == probe_video(target).rotation,
        "faces_in_truth": sum(len(f) for f in truth),
        "truth_untouched": untouched,
        **_flicker(ins, outs, truth),
    }


def _core(shape, box) -> tuple[slice, slice] | None:
    height, width = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    cx0, cy0 = max(int(x0 + w / 4), 0), max(int(y0 + h / 4), 0)
    cx1, cy1 = min(int(x1 - w / 4), width), min(int(y1 - h / 4), height)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    return slice(cy0, cy1), slice(cx0, cx1)


def _unchanged(before: np.ndarray, after: np.ndarray, box, threshold: float = 2.0) -> bool:
    """Whether the middle half of a face box came out as it went in (mean change under ``threshold``)."""
    core = _core(before.shape, box)
    return core is not None and float(np.abs(after[core].astype(np.int16) - before[core]).mean()) < threshold


def _flicker(ins: list[np.ndarray], outs: list[np.ndarray], truth) -> dict:
    """Mean frame-to-frame change inside the faces, after following each face's motion, output over input.

    Where the photo detector finds a face in two consecutive frames, the earlier frame is moved and scaled
    onto the later one by the change of the face's box (a pan or a zoom then leaves almost nothing), and
    the mean absolute difference is taken over the middle half of the box; the same for the input. What
    is left in the input is resampling and codec noise; what the output adds is jitter (``flicker``, None
    where the input's faces do not change at all), and ``face_change`` is the output's own mean change.
    ``raw_flicker``: the same without following the motion (a moving lookalike, sharper than a blur and
    than some originals, changes more between frames than its original even when perfectly stable).
    """
    import cv2

    from lookalike.tracking import iou

    changed_out = changed_in = raw_out = raw_in = 0.0
    pairs = 0
    for i in range(1, min(len(ins), len(outs))):
        for face in truth[i]:
            previous = [f for f in truth[i - 1] if iou(face.box, f.box) > 0.3]
            core = _core(ins[i].shape, face.box)
            if not previous or core is None:
                continue
            a, b = previous[0].box.astype(np.float64), face.box.astype(np.float64)
            scale = ((b[2] - b[0]) / max(a[2] - a[0], 1.0) + (b[3] - b[1]) / max(a[3] - a[1], 1.0)) / 2
            shift = (b[:2] + b[2:]) / 2 - scale * (a[:2] + a[2:]) / 2
            matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]])
            size = (ins[i].shape[1], ins[i].shape[0])
            raw_out += float(np.abs(outs[i][core].astype(np.int16) - outs[i - 1][core]).mean())
            raw_in += float(np.abs(ins[i][core].astype(np.int16) - ins[i - 1][core]).mean())
            for frames, total in ((outs, "out"), (ins, "in")):
                moved = cv2.warpAffine(frames[i - 1], matrix, size, flags=cv2.INTER_LINEAR)
                change = float(np.abs(frames[i][core].astype(np.int16) - moved[core]).mean())
                if total == "out":
                    changed_out += change
                else:
                    changed_in += change
            pairs += 1
    return {
        "flicker": round(changed_out / changed_in, 3) if changed_in else None,
        "raw_flicker": round(raw_out / raw_in, 3) if raw_in else None,
        "face_change": round(changed_out / pairs, 3) if pairs else None,
    }


def _sampled(track, every: int = 6) -> list:
    frames = sorted(f for f, o in track.observations.items() if o.source in ("detected", "tracked"))
    return [track.observations[f] for f in frames[::every]]


def _drift(ins, outs, tracks, fell_back: dict[int, dict[int, str]]) -> float | None:
    """Mean pairwise dlib distance between a track's sampled output faces minus its input faces' (largest
    over the tracks), over the frames that show the track's lookalike: not those that fell back to a blur
    (the record says which and why) and not those where another face overlaps this one (its embedding
    is then partly the other face's, in the input too)."""
    from lookalike.identity import get_recognizer

    dlib = get_recognizer("dlib")
    worst = None
    for track in tracks:
        clear = [
            o
            for o in _sampled(track, 1)
            if o.frame not in fell_back.get(track.id, {}) and not _overlapped(track, o, tracks)
        ]
        sample = clear[::6]
        if len(sample) < 2:
            continue
        emb_in = [dlib.embed(ins[o.frame], o.face) for o in sample]
        emb_out = [dlib.embed(outs[o.frame], o.face) for o in sample]
        pairs = [(i, j) for i in range(len(sample)) for j in range(i + 1, len(sample))]
        d_in = np.mean([dlib.distance(emb_in[i], emb_in[j]) for i, j in pairs])
        d_out = np.mean([dlib.distance(emb_out[i], emb_out[j]) for i, j in pairs])
        drift = float(d_out - d_in)
        worst = drift if worst is None else max(worst, drift)
    return None if worst is None else round(worst, 3)


def _overlapped(track, observation, tracks) -> bool:
    """Whether another track's face box overlaps this observation's in its frame."""
    from lookalike.tracking import iou

    others = (other.observations.get(observation.frame) for other in tracks if other is not track)
    return any(iou(observation.face.box, seen.face.box) > 0 for seen in others if seen is not None)


def _protection(ins, outs, tracks) -> dict:
    """Per recognizer: % of sampled faces still matched, and % whose original is the nearest of the
    original and the reference crowd (top-1)."""
    from lookalike.identity import available_recognizers, get_recognizer
    from lookalike.identity.crowd import default_crowd

    crowd = default_crowd()
    out = {}
    for name in available_recognizers():
        recognizer = get_recognizer(name)
        matches = top1 = count = 0
        for track in tracks:
            for o in _sampled(track, 8):
                before = recognizer.embed(ins[o.frame], o.face)
                after = recognizer.embed(outs[o.frame], o.face)
                distance = float(recognizer.distance(before, after))
                matches += distance <= recognizer.threshold
                if name in crowd.recognizers:
                    top1 += distance < float(np.min(crowd.distances(after, name)))
                count += 1
        out[name] = {
            "faces": count,
            "match_pct": round(100 * matches / count, 1) if count else None,
            "top1_pct": round(100 * top1 / count, 1) if count and name in crowd.recognizers else None,
        }
    return out


# --------------------------------------------------------------------------------------------- speed


def _speed(work: Path, methods: list[str], seconds: float, deface) -> dict:
    from lookalike.io.clips import make_clip
    from lookalike.pipeline import AnonymizeConfig
    from lookalike.pipeline.video import anonymize_clip

    clip = work / "clips" / f"speed-720p-{seconds:g}s.mp4"
    if not clip.exists():
        make_clip(clip, "still", size=(1280, 720), fps=30, seconds=seconds)
    warm = work / "clips" / "warm.mp4"
    if not warm.exists():
        make_clip(warm, "still", size=(320, 240), fps=10, seconds=0.3)
    results = {}
    for method in methods:
        anonymize_clip(warm, work / "warm-out.mp4", AnonymizeConfig(method=method)).tmp.unlink()  # models loaded
        started = time.perf_counter()
        done = anonymize_clip(clip, work / f"speed-{method}.mp4", AnonymizeConfig(method=method))
        wall = time.perf_counter() - started
        done.tmp.unlink()
        first = (done.tracks[0].get("lookalike") or {}).get("seconds") if done.tracks else None
        fell = sum(len(_range_frames(e["frames"])) for t in done.tracks for e in t["fell_back"])
        results[method] = {
            "frames": done.frames,
            "seconds": round(wall, 1),
            "fps": round(done.frames / wall, 2),
            "first_face_loop_seconds": first,
            "fell_back_frames": fell,
        }
        print(
            f"speed 1280x720, one face, {done.frames} frames, {method}: {results[method]['fps']} frames/s "
            f"({wall:.1f} s"
            + (f"; of which the first face's lookalike loop {first:.1f} s" if first else "")
            + ")"
            + (f"; {fell} face-frames fell back to a blur" if fell else "")
        )
    if "lookalike" in methods:
        results["lookalike_parts"] = _replay_costs(clip)
    if deface:
        target = work / "deface" / "speed.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        started = time.perf_counter()
        subprocess.run([*deface, str(clip), "-o", str(target), "--keep-audio"], capture_output=True)
        wall = time.perf_counter() - started
        frames = int(round(seconds * 30))
        results["deface"] = {"frames": frames, "seconds": round(wall, 1), "fps": round(frames / wall, 2)}
        print(
            f"speed 1280x720, one face, {frames} frames, deface (blur): {results['deface']['fps']} frames/s "
            f"({wall:.1f} s, its start-up included)"
        )
    return results


def _replay_costs(clip: Path, repeats: int = 3) -> dict:
    """What a shown lookalike costs per frame on the speed clip, apart from decoding and following: a
    replay of the first frame's lookalike on the second frame, without and with the identity check (the
    speed run itself may show a blur all along, when the lookalike fails its first checks)."""
    from lookalike.faces import detect
    from lookalike.pipeline.lookalike import lookalike_face, replay_lookalike

    first, second = _decode(clip)[:2]
    face = detect(first)[0]
    record = lookalike_face(first, face).record.to_dict()
    costs = {}
    for check in (False, True):
        replay_lookalike(second, face, record, check=check)  # warm
        started = time.perf_counter()
        for _ in range(repeats):
            replay_lookalike(second, face, record, check=check)
        costs["check" if check else "replay"] = round((time.perf_counter() - started) / repeats, 3)
    print(
        f"speed 1280x720, a shown lookalike: replay {costs['replay']} s a frame, identity check {costs['check']} s "
        f"(its lookalike: {record.get('fallback') or 'unblurred'})"
    )
    return costs


def _range_frames(ranges: str) -> list[int]:
    """``"0-2,5"`` -> ``[0, 1, 2, 5]`` (a record's frame ranges)."""
    frames: list[int] = []
    for part in filter(None, ranges.split(",")):
        start, _, stop = part.partition("-")
        frames.extend(range(int(start), int(stop or start) + 1))
    return frames


def _print_row(clip: str, method: str, row: dict) -> None:
    if "failed" in row:
        print(f"{clip:10s} {method:9s} failed: {row['failed']}")
        return
    protection = " ".join(f"{n}:{p['match_pct']}/{p['top1_pct']}" for n, p in (row.get("protection") or {}).items())
    print(
        f"{clip:10s} {method:9s} frames {row['frames_in']}->{row['frames_out']}"
        f" ts={'=' if row['timestamps_equal'] else 'DIFF'}"
        f" audio={'identical' if row['audio_identical'] else 'CHANGED'}"
        f" rot={'kept' if row['rotation_kept'] else 'LOST'}"
        f" | untouched: tracked {row.get('tracked_untouched', '-')},"
        f" truth {row['truth_untouched']}/{row['faces_in_truth']}"
        f" | misses covered {row.get('detector_misses_covered', '-')}, predicted {row.get('predicted_faces', '-')}"
        f" | tracks {row.get('tracks', '-')}, fell back {row.get('fell_back', '-')}"
        f" | flicker {row['flicker']} (raw {row['raw_flicker']},"
        f" out {row['face_change']}/frame) | dlib drift {row.get('drift', '-')}"
        + (f" | match/top-1 % {protection}" if protection else "")
        + f" | {row['seconds']} s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
