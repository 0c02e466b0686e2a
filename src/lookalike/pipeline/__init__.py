"""The whole job: detect, anonymize and report, for one image or for files and folders."""
from lookalike.pipeline.anonymize import AnonymizationResult, AnonymizeConfig, FaceRecord, anonymize
from lookalike.pipeline.batch import BatchReport, FileResult, InputFile, anonymize_files, collect_inputs

__all__ = ["AnonymizationResult", "AnonymizeConfig", "BatchReport", "FaceRecord", "FileResult", "InputFile",
           "anonymize", "anonymize_files", "collect_inputs"]
