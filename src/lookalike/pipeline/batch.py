"""Files and folders in, the same relative layout out, one report entry per file.

A file that cannot be read or written is reported with a one-line reason and the batch goes on; inputs
are never written to; an image without a face is copied through (metadata stripped) and reported.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from lookalike.errors import ImageError, LookalikeError
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


def collect_inputs(paths: Iterable[str | Path], exclude: Path | None = None) -> tuple[list[InputFile], list[str]]:
    """Expand files and folders (recursively) into inputs with their output-relative paths.

    A file given by name keeps its name; files found in a folder keep their path inside it. Files in
    folders without an image suffix are returned separately as skipped. Anything under ``exclude``
    (the output folder) is ignored, so re-running into a folder inside the input never reprocesses outputs.
    Missing paths are kept as inputs, so they are reported as failures rather than silently dropped.
    """
    inputs: list[InputFile] = []
    skipped: list[str] = []
    exclude = exclude.resolve() if exclude else None
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if exclude and _is_within(child.resolve(), exclude):
                    continue
                if child.name.startswith("."):
                    continue
                if is_image_path(child):
                    inputs.append(InputFile(child, child.relative_to(path)))
                else:
                    skipped.append(str(child))
        else:
            inputs.append(InputFile(path, Path(path.name)))
    return inputs, skipped


def anonymize_files(inputs: list[InputFile], output_dir: Path, config: AnonymizeConfig | None = None, *,
                    keep_metadata: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                    on_file: Callable[[FileResult], None] | None = None) -> BatchReport:
    """Anonymize every input into ``output_dir``; ``on_file`` is called after each file (progress)."""
    config = config or AnonymizeConfig()
    report = BatchReport()
    protected = frozenset(i.source.resolve() for i in inputs if i.source.exists())
    claimed: dict[Path, Path] = {}
    for item in inputs:
        result = _process_one(item, output_dir, config, keep_metadata, max_pixels, protected, claimed)
        report.files.append(result)
        if on_file:
            on_file(result)
    return report


def _process_one(item: InputFile, output_dir: Path, config: AnonymizeConfig, keep_metadata: bool, max_pixels: int,
                 protected: frozenset[Path], claimed: dict[Path, Path]) -> FileResult:
    started = time.perf_counter()
    target = output_dir / item.relative
    try:
        key = target.resolve()
        if key in claimed:
            raise ImageError(item.source, f"output {target} would also be written from {claimed[key]}; "
                                          f"rename one of them")
        claimed[key] = item.source
        image = load_image(item.source, max_pixels=max_pixels)
        result = anonymize(image, config=config)
        if result.faces:
            save_image(image, result.rgb, (result.mask > 0).astype("float32"), target,
                       keep_metadata=keep_metadata, protected=protected)
            status = "anonymized"
        else:
            copy_image(image, target, keep_metadata=keep_metadata, protected=protected)
            status = "no_face"
        return FileResult(str(item.source), str(target), status, [f.to_dict() for f in result.faces],
                          seconds=time.perf_counter() - started)
    except LookalikeError as exc:
        message = str(exc) if isinstance(exc, ImageError) and exc.path else f"{item.source}: {exc}"
        return FileResult(str(item.source), None, "failed", error=message, seconds=time.perf_counter() - started)
    except MemoryError:
        return FileResult(str(item.source), None, "failed", error=f"{item.source}: out of memory",
                          seconds=time.perf_counter() - started)


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False
