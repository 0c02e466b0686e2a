"""Files and folders in, the same relative layout out, one report entry per file.

A file that cannot be read or written is reported with a one-line reason and the batch goes on; inputs
are never written to; an image without a face is copied through (metadata stripped) and reported.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from lookalike.errors import ImageError, error_line
from lookalike.io.images import DEFAULT_MAX_PIXELS, copy_image, is_image_path, load_image, save_image
from lookalike.pipeline.anonymize import AnonymizeConfig, anonymize


@dataclass(frozen=True)
class InputFile:
    """One file to process and where its output goes, relative to the output folder."""

    source: Path
    relative: Path


@dataclass
class FileResult:
    source: str
    output: str | None
    status: str  # "anonymized", "no_face", "failed"
    faces: list[dict] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"source": self.source, "output": self.output, "status": self.status, "faces": self.faces,
                "error": self.error, "seconds": round(self.seconds, 3)}


@dataclass
class BatchReport:
    files: list[FileResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def faces_found(self) -> int:
        return sum(len(f.faces) for f in self.files)

    @property
    def fell_back(self) -> int:
        """Faces the method could not treat as asked and gave a stronger method instead (see each record)."""
        return sum(face.get("fallback") is not None for f in self.files for face in f.faces)

    @property
    def written(self) -> int:
        return sum(f.output is not None for f in self.files)

    @property
    def failed(self) -> int:
        return sum(f.status == "failed" for f in self.files)

    def to_dict(self) -> dict:
        return {"summary": {"files": len(self.files), "faces_found": self.faces_found, "files_written": self.written,
                            "files_failed": self.failed, "files_without_faces": sum(f.status == "no_face" for f in self.files),
                            "skipped_non_images": len(self.skipped)},
                "files": [f.to_dict() for f in self.files], "skipped_non_images": self.skipped}


def collect_inputs(paths: Iterable[str | Path],
                   exclude: Path | Iterable[Path] | None = None) -> tuple[list[InputFile], list[str]]:
    """Expand files and folders (recursively) into inputs with their output-relative paths.

    A file given by name keeps its name; files found in a folder keep their path inside it. Files in
    folders that are hidden or lack an image suffix are returned separately as skipped. When the output
    folder ``exclude`` (or any of several) lies inside an input folder, it is not searched, so outputs are never reprocessed.
    Missing paths and unreadable folders are kept as inputs, so they are reported as failures rather than
    silently dropped.
    """
    inputs: list[InputFile] = []
    skipped: list[str] = []
    excluded = {Path(p).resolve() for p in ([exclude] if isinstance(exclude, (str, Path)) else exclude or ())}
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            inputs.append(InputFile(path, Path(path.name)))
            continue
        unreadable: list[OSError] = []
        for folder, subfolders, files in os.walk(path, onerror=unreadable.append):
            here = Path(folder)
            subfolders[:] = sorted(d for d in subfolders if (here / d).resolve() not in excluded)
            for name in sorted(files):
                child = here / name
                if name.startswith(".") or not is_image_path(child):
                    skipped.append(str(child))
                else:
                    inputs.append(InputFile(child, child.relative_to(path)))
        for error in unreadable:
            folder = Path(error.filename or path)
            inputs.append(InputFile(folder, folder.relative_to(path) if folder != path else Path(path.name)))
    return inputs, skipped


def anonymize_files(inputs: list[InputFile], output_dir: Path, config: AnonymizeConfig | None = None, *,
                    keep_metadata: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS, overwrite: bool = False,
                    on_file: Callable[[FileResult], None] | None = None) -> BatchReport:
    """Anonymize every input into ``output_dir``; ``on_file`` is called after each file (progress).

    Existing outputs are replaced only with ``overwrite``; inputs never are.
    """
    config = config or AnonymizeConfig()
    report = BatchReport()
    protected = frozenset(i.source.resolve() for i in inputs)
    claimed: dict[Path, Path] = {}
    writing = {"keep_metadata": keep_metadata, "protected": protected, "overwrite": overwrite}
    for item in inputs:
        result = _process_one(item, output_dir, config, max_pixels, writing, claimed)
        report.files.append(result)
        if on_file:
            on_file(result)
    return report


def _process_one(item: InputFile, output_dir: Path, config: AnonymizeConfig, max_pixels: int, writing: dict,
                 claimed: dict[Path, Path]) -> FileResult:
    started = time.perf_counter()
    target = output_dir / item.relative
    try:
        if item.source.is_dir():
            raise ImageError(item.source, "folder cannot be read (permission denied?)")
        key = target.resolve()
        if key in claimed:
            raise ImageError(item.source, f"output {target} would also be written from {claimed[key]}; "
                                          f"rename one of them")
        claimed[key] = item.source
        image = load_image(item.source, max_pixels=max_pixels)
        result = anonymize(image, config=config)
        if result.faces:
            save_image(image, result.image, target, **writing)
        else:
            copy_image(image, target, **writing)
        return FileResult(str(item.source), str(target), "anonymized" if result.faces else "no_face",
                          [f.to_dict() for f in result.faces], seconds=time.perf_counter() - started)
    except Exception as exc:  # one odd file must not end the batch; nothing was written for it
        return FileResult(str(item.source), None, "failed", error=error_line(item.source, exc),
                          seconds=time.perf_counter() - started)


