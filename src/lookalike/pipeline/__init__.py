"""The whole job: detect, anonymize and report, for one image or for files and folders."""

from lookalike.pipeline.anonymize import AnonymizationResult, AnonymizeConfig, FaceRecord, anonymize
from lookalike.pipeline.batch import BatchReport, FileResult, InputFile, anonymize_files, collect_inputs
from lookalike.pipeline.video import VideoAnonymizer, VideoOptions, anonymize_clip, anonymize_frames

__all__ = [
    "AnonymizationResult",
    "AnonymizeConfig",
    "BatchReport",
    "FaceRecord",
    "FileResult",
    "InputFile",
    "VideoAnonymizer",
    "VideoOptions",
    "anonymize",
    "anonymize_clip",
    "anonymize_files",
    "anonymize_frames",
    "collect_inputs",
]
