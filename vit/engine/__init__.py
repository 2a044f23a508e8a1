"""Putting the pieces together: training, evaluation, inference and export.

Each long-running function takes an optional `progress(stage, done, total)` callback and returns
data (paths, metrics) rather than printing, so the command-line tools, the web app and any
other caller (a notebook) share them.
"""

from .compare import compare_runs
from .data_report import describe_data
from .evaluation import evaluate_model
from .export import InferenceModel, export_inference_model
from .inference import load_for_inference, predict_paths
from .inspection import explain_image, inspect_model
from .scaling import ScalingPlan, run_scaling
from .trainer import RunResult, TrainingInterrupted, train

__all__ = [
    "InferenceModel", "RunResult", "ScalingPlan", "TrainingInterrupted", "compare_runs",
    "describe_data", "evaluate_model", "explain_image", "export_inference_model",
    "inspect_model", "load_for_inference", "predict_paths", "run_scaling", "train",
]
