"""nllb-pipeline: translate long documents with NLLB-200, resumably.

This package is the orchestration (jobs, stages, store, progress) and never
imports torch; the model backend lives in ``models``.
"""

from pipeline.config import JobParams, RunSettings
from pipeline.errors import ErrorClass, InvalidInput, PipelineError
from pipeline.runner import run_job
from pipeline.store import Store
from pipeline.translator import Translator

__all__ = [
    "ErrorClass",
    "InvalidInput",
    "JobParams",
    "PipelineError",
    "RunSettings",
    "Store",
    "Translator",
    "run_job",
]
