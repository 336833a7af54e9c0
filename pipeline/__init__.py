"""nllb-pipeline: translate long documents with NLLB-200, resumably.

This package is the orchestration (jobs, stages, store, progress) and never
imports torch; the model backend lives in ``models``.
"""

# The names below are imported when first used: a command that only reads
# the store (status, show) does not pay for the runner's imports.
_LAZY = {
    "JobParams": "pipeline.config", "RunSettings": "pipeline.config",
    "ErrorClass": "pipeline.errors", "InvalidInput": "pipeline.errors",
    "PipelineError": "pipeline.errors", "run_job": "pipeline.runner",
    "Store": "pipeline.store", "Translator": "pipeline.translator",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


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
