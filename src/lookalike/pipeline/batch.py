"""Files and folders in, the same relative layout out, one report entry per file.

Video clips (MP4, MOV, MKV, WebM, AVI) go through :mod:`lookalike.pipeline.video` when asked for
(``collect_inputs(..., videos=True)``): the same manifest, ``--resume`` and atomic publishing apply.

A file that cannot be read or written is reported with a one-line reason and the batch goes on; inputs
are never written to; an image without a face is copied through (metadata stripped) and reported.

Every finished file is recorded in a manifest in the output folder (:data:`MANIFEST_NAME`, JSON Lines:
input path, size and SHA-256, output path and SHA-256, status, the settings that made it, seconds), so
an interrupted run can be resumed: files recorded as done with the same settings and the same input
are skipped, the rest redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from lookalike._version import __version__
from lookalike.errors import ImageError, LookalikeError, error_line
from lookalike.io.images import (
    DEFAULT_MAX_PIXELS,
    check_target,
    encode_image,
    is_image_path,
    load_image,
    publish_bytes,
    remove_stale_temporaries,
    resolved,
)
from lookalike.io.video import is_video_path
from lookalike.pipeline.anonymize import AnonymizeConfig, anonymize

#: The manifest every batch keeps in its output folder, one JSON object per line.
MANIFEST_NAME = "lookalike-manifest.jsonl"
_DONE = ("anonymized", "no_face")


@dataclass(frozen=True)
class InputFile:
    """One file to process and where its output goes, relative to the output folder."""

    source: Path
    relative: Path


@dataclass
class FileResult:
    source: str
    output: str | None
    status: str  # "anonymized", "no_face", "failed", "done_before" (skipped by --resume)
    faces: list[dict] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: a clip's summary (frames, tracks, ...; its ``faces`` are then per-track records)
    video: dict | None = None
    #: a problem that did not stop the file (a clip read only up to where it breaks)
    warning: str | None = None

    def to_dict(self) -> dict:
        out: dict[str, object] = {
            "source": self.source,
            "output": self.output,
            "status": self.status,
            "faces": self.faces,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }
        if self.video is not None:
            out["video"] = self.video
        if self.warning is not None:
            out["warning"] = self.warning
        return out


@dataclass
class BatchReport:
    files: list[FileResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: how many inputs the run was given; fewer were done when it was interrupted
    planned: int = 0
    interrupted: bool = False

    @property
    def faces_found(self) -> int:
        return sum(len(f.faces) for f in self.files)

    @property
    def fell_back(self) -> int:
        """Faces the method could not treat as asked and gave a stronger method instead (see each record)."""
        return sum(face.get("fallback") is not None for f in self.files for face in f.faces)

    @property
    def written(self) -> int:
        return sum(f.output is not None and f.status != "done_before" for f in self.files)

    @property
    def done_before(self) -> int:
        """Files ``--resume`` skipped because the manifest records them as done with these settings."""
        return sum(f.status == "done_before" for f in self.files)

    @property
    def failed(self) -> int:
        return sum(f.status == "failed" for f in self.files)

    def to_dict(self) -> dict:
        return {
            "summary": {
                "files": len(self.files),
                "faces_found": self.faces_found,
                "files_written": self.written,
                "files_failed": self.failed,
                "files_without_faces": sum(f.status == "no_face" for f in self.files),
                "skipped_non_images": len(self.skipped),
                "skipped_as_done": self.done_before,
                "files_planned": self.planned or len(self.files),
                "interrupted": self.interrupted,
            },
            "files": [f.to_dict() for f in self.files],
            "skipped_non_images": self.skipped,
        }


def collect_inputs(
    paths: Iterable[str | Path], exclude: Path | Iterable[Path] | None = None, *, videos: bool = False
) -> tuple[list[InputFile], list[str]]:
    """Expand files and folders (recursively) into inputs with their output-relative paths.

    A file given by name keeps its name; files found in a folder keep their path inside it. Files in
    folders that are hidden or lack an image suffix are returned separately as skipped. When the output
    folder ``exclude`` (or any of several) lies inside an input folder, it is not searched, so outputs are never
    reprocessed. Missing paths and unreadable folders are kept as inputs, so they are reported as failures rather than
    silently dropped. With ``videos``, files with a video suffix found in folders count as inputs too.
    """
    inputs: list[InputFile] = []
    skipped: list[str] = []
    excluded = {resolved(p) for p in ([exclude] if isinstance(exclude, (str, Path)) else exclude or ())}
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            inputs.append(InputFile(path, Path(path.name)))
            continue
        unreadable: list[OSError] = []
        for folder, subfolders, files in os.walk(path, onerror=unreadable.append):
            here = Path(folder)
            subfolders[:] = sorted(d for d in subfolders if resolved(here / d) not in excluded)
            for name in sorted(files):
                child = here / name
                if name.startswith(".") or not (is_image_path(child) or (videos and is_video_path(child))):
                    skipped.append(str(child))
                else:
                    inputs.append(InputFile(child, child.relative_to(path)))
        for error in unreadable:
            unread = Path(error.filename or path)
            inputs.append(InputFile(unread, unread.relative_to(path) if unread != path else Path(path.name)))
    return inputs, skipped


def anonymize_files(
    inputs: list[InputFile],
    output_dir: Path,
    config: AnonymizeConfig | None = None,
    *,
    keep_metadata: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    overwrite: bool = False,
    resume: bool = False,
    on_file: Callable[[FileResult], None] | None = None,
    on_frames: Callable[[InputFile, int, int | None], None] | None = None,
    video_options=None,
) -> BatchReport:
    """Anonymize every input into ``output_dir``; ``on_file`` is called after each file (progress), and
    ``on_frames(input, done, total)`` after each frame of a clip (``total`` None if the container does
    not say). ``video_options``: :class:`~lookalike.pipeline.video.VideoOptions` for clips.

    Existing outputs are replaced only with ``overwrite``; inputs never are. With ``resume``, files the
    manifest records as done with the same settings and the same input bytes are skipped. Raises
    :class:`ManifestConflict` before doing anything when the manifest records some of these inputs made
    with other settings (unless ``overwrite``). A Ctrl-C stops after the current file; the report says so.
    """
    config = config or AnonymizeConfig()
    output_dir = Path(output_dir)
    manifest = check_manifest(inputs, output_dir, config, keep_metadata=keep_metadata, overwrite=overwrite)
    if output_dir.is_dir():
        remove_stale_temporaries(output_dir)
    report = BatchReport(planned=len(inputs))
    protected = frozenset(resolved(i.source) for i in inputs)
    claimed: dict[Path, Path] = {}
    writing = {
        "keep_metadata": keep_metadata,
        "protected": protected,
        "overwrite": overwrite,
        "resume": resume,
        "on_frames": on_frames,
        "video_options": video_options,
    }
    try:
        for item in inputs:
            result = _process_one(item, output_dir, config, max_pixels, writing, claimed, manifest)
            report.files.append(result)
            if on_file:
                on_file(result)
    except KeyboardInterrupt:  # the file being done is dropped (nothing of it was published); the rest stand
        report.interrupted = True
    return report


def check_manifest(
    inputs: list[InputFile],
    output_dir: Path,
    config: AnonymizeConfig,
    *,
    keep_metadata: bool = False,
    overwrite: bool = False,
) -> "Manifest":
    """The output folder's manifest; :class:`ManifestConflict` if it records some of ``inputs`` made with
    other settings, unless ``overwrite``."""
    manifest = Manifest(Path(output_dir), settings_of(config, keep_metadata))
    if not overwrite:
        manifest.check_settings(resolved(i.source) for i in inputs)
    return manifest


class ManifestConflict(LookalikeError):
    """The output folder's manifest records some inputs made with other settings."""


def settings_of(config: AnonymizeConfig, keep_metadata: bool) -> dict:
    """What decides an output's bytes, as the manifest records it."""
    return {"lookalike": __version__, "keep_metadata": keep_metadata, **config.model_dump(mode="json")}


class Manifest:
    """The JSON Lines record of a batch's output folder: one line per file per event, appended.

    A ``writing`` line (with the output's SHA-256) comes before an output is published and a final line
    (``anonymized``, ``no_face`` or ``failed``, with the seconds it took) after, so a run killed in between
    still knows the file it published. Lines that do not parse (a run killed mid-line) are ignored.
    """

    def __init__(self, folder: Path, settings: dict):
        self.path = Path(folder) / MANIFEST_NAME
        self.settings = settings
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.records = list(self._read())

    def _read(self):
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("input"), str):
                yield record

    def check_settings(self, sources: Iterable[Path]) -> None:
        """Raise :class:`ManifestConflict` when the latest record of any of ``sources`` has other settings."""
        latest = {r["input"]: r for r in self.records}
        others = [
            latest[str(s)] for s in sources if str(s) in latest and latest[str(s)].get("settings_key") != self.key
        ]
        if others:
            before = others[-1].get("settings") or {}
            changed = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in self.settings.items() if before.get(k) != v]
            raise ManifestConflict(
                f"{self.path}: {len(others)} of these inputs were written here with other settings "
                f"({', '.join(changed) or 'unknown'}); use --overwrite to redo them with these"
            )

    def done(self, source: Path, size: int, digest: str, target: Path) -> bool:
        """Whether ``target`` holds the output this manifest records for these input bytes and settings."""
        made = {
            r.get("output_sha256")
            for r in self.records
            if r["input"] == str(source)
            and r.get("input_sha256") == digest
            and r.get("input_size") == size
            and r.get("settings_key") == self.key
            and r.get("output") == str(resolved(target))
            and r.get("status") in ("writing", *_DONE)
        }
        made.discard(None)
        if not made:
            return False
        try:
            return _sha256(target)[1] in made
        except OSError:
            return False

    def append(self, record: dict, create: bool = True) -> None:
        """Add one line (one ``write``, flushed to disk), with the settings. Without ``create``, only to a
        manifest that exists (a run that wrote nothing leaves nothing behind)."""
        record = {**record, "settings_key": self.key, "settings": self.settings}
        self.records.append(record)
        if not create and not self.path.is_file():
            return
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                end = os.lseek(fd, 0, os.SEEK_END)
                if end and os.pread(fd, 1, end - 1) != b"\n":  # a run killed mid-line: start a new line
                    line = b"\n" + line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ImageError(self.path, f"could not record in the manifest ({exc.strerror or exc})") from None


def _sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _process_video(
    item: InputFile,
    target: Path,
    config: AnonymizeConfig,
    writing: dict,
    manifest: Manifest,
    entry: dict,
    started: float,
) -> FileResult:
    """One clip: anonymized into a temporary beside ``target``, recorded, then published (never clobbering)."""
    from lookalike.io.images import publish_file
    from lookalike.pipeline.video import anonymize_clip

    on_frames = writing.get("on_frames")
    clip = anonymize_clip(
        item.source,
        target,
        config,
        writing.get("video_options"),
        on_frame=(lambda done, total: on_frames(item, done, total)) if on_frames else None,
    )
    try:
        entry["output_sha256"] = clip.sha256
        manifest.append({**entry, "status": "writing"})
        publish_file(clip.tmp, target, overwrite=writing["overwrite"], protected=writing["protected"])
    finally:
        clip.tmp.unlink(missing_ok=True)
    status = "anonymized" if clip.tracks else "no_face"
    seconds = time.perf_counter() - started
    warning = (
        f"{item.source}: truncated clip, {clip.truncated}; the frames before were written" if clip.truncated else None
    )
    manifest.append(
        {
            **entry,
            "status": status,
            "faces": len(clip.tracks),
            "frames": clip.frames,
            "truncated": clip.truncated,
            "seconds": round(seconds, 3),
        }
    )
    return FileResult(
        str(item.source), str(target), status, clip.tracks, seconds=seconds, video=clip.summary(), warning=warning
    )


def _process_one(
    item: InputFile,
    output_dir: Path,
    config: AnonymizeConfig,
    max_pixels: int,
    writing: dict,
    claimed: dict[Path, Path],
    manifest: Manifest,
) -> FileResult:
    started = time.perf_counter()
    target = output_dir / item.relative
    source = resolved(item.source)
    entry: dict = {"input": str(source), "output": str(resolved(target))}  # absolute: a rerun may say it otherwise
    try:
        if item.source.is_dir():
            raise ImageError(item.source, "folder cannot be read (permission denied?)")
        key = resolved(target)
        if key in claimed:
            raise ImageError(
                item.source, f"output {target} would also be written from {claimed[key]}; rename one of them"
            )
        claimed[key] = item.source
        try:
            entry["input_size"], entry["input_sha256"] = _sha256(item.source)
        except OSError:
            pass  # load_image says why, in one line
        if (
            writing["resume"]
            and "input_sha256" in entry
            and manifest.done(source, entry["input_size"], entry["input_sha256"], target)
        ):
            return FileResult(str(item.source), str(target), "done_before", seconds=time.perf_counter() - started)
        check_target(target, writing["protected"], writing["overwrite"])  # before decoding: fails fast
        if is_video_path(item.source):
            return _process_video(item, target, config, writing, manifest, entry, started)
        image = load_image(item.source, max_pixels=max_pixels)
        result = anonymize(image, config=config)
        payload = encode_image(
            image, result.image if result.faces else image.native, target, keep_metadata=writing["keep_metadata"]
        )
        entry["output_sha256"] = hashlib.sha256(payload).hexdigest()
        manifest.append({**entry, "status": "writing"})
        publish_bytes(target, payload, overwrite=writing["overwrite"], protected=writing["protected"])
        status = "anonymized" if result.faces else "no_face"
        seconds = time.perf_counter() - started
        manifest.append({**entry, "status": status, "faces": len(result.faces), "seconds": round(seconds, 3)})
        return FileResult(str(item.source), str(target), status, [f.to_dict() for f in result.faces], seconds=seconds)
    except Exception as exc:  # noqa: BLE001 - one odd file must not end the batch; nothing was written for it
        line = error_line(item.source, exc)
        seconds = time.perf_counter() - started
        try:
            manifest.append({**entry, "status": "failed", "error": line, "seconds": round(seconds, 3)}, create=False)
        except ImageError:
            pass  # the file's own error is the one to report
        return FileResult(str(item.source), None, "failed", error=line, seconds=seconds)
