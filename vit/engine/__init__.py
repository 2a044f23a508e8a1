"""Putting the pieces together: training, evaluation, inference and export.

Each long-running function takes an optional `progress(stage, done, total)` callback and returns
data (paths, metrics) rather than printing, so the command-line tools and any other caller (a
notebook, a web page) share them.
"""

from .compare import compare_runs
from .data_report import describe_data
from .evaluation import evaluate_model
from .export import InferenceModel, export_inference_model
from .inference import load_for_inference, predict_paths
from .trainer import RunResult, TrainingInterrupted, train

__all__ = [
    "InferenceModel", "RunResult", "TrainingInterrupted", "compare_runs", "describe_data",
    "evaluate_model", "export_inference_model", "load_for_inference", "predict_paths", "train",
]
