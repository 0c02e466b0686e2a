"""Measuring anonymization: protection against face recognizers, what stays of the face, speed.

``run_benchmark`` runs methods on a folder and measures them side by side; ``evaluate_folders`` measures
a folder anonymized by anything against its originals; ``write_report`` turns either into
``report.json`` and a self-contained ``report.html``. Metric definitions: :data:`METRICS`.
"""

from lookalike.evaluation.measure import EvaluationConfig
from lookalike.evaluation.report import write_report
from lookalike.evaluation.runner import EvaluationRun, evaluate_folders, run_benchmark
from lookalike.evaluation.summary import METRICS
from lookalike.evaluation.variants import Variant, variant, variants

__all__ = [
    "METRICS",
    "EvaluationConfig",
    "EvaluationRun",
    "evaluate_folders",
    "run_benchmark",
    "Variant",
    "variant",
    "variants",
    "write_report",
]
