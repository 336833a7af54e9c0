"""The module boundaries: torch, transformers and ctranslate2 stay in
models/, and the public face is pinned. (Foreign errors: test_model_errors.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pipeline
from pipeline.store import Store
from tests.conftest import ROOT, cli_env

HEAVY = ("torch", "transformers", "tokenizers", "sentencepiece", "ctranslate2", "ray", "models")


def python(code: str, *flags: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, cwd=ROOT,
        env=env, timeout=120,
    )


IMPORT_AND_REPORT = (
    "import sys\n"
    "import pipeline, pipeline.cli, pipeline.runner, pipeline.stages, "
    "pipeline.documents.formats.markdown\n"
    "{extra}"
    f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
)


def test_importing_the_orchestration_does_not_import_torch(tmp_path):
    proc = python(IMPORT_AND_REPORT.format(extra=""), env=cli_env(tmp_path / "jobs.db"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_check_above_would_see_torch(tmp_path):
    # A stand-in torch (cheap to import) proves the report catches it.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "torch.py").write_text("OutOfMemoryError = MemoryError\n")
    env = cli_env(tmp_path / "jobs.db")
    env["PYTHONPATH"] = f"{fake}{os.pathsep}{env['PYTHONPATH']}"
    proc = python(IMPORT_AND_REPORT.format(extra="import models.errors\n"
                                                  "models.errors.classify_torch(ValueError())\n"),
                  env=env)
    assert proc.returncode == 0, proc.stderr
    reported = proc.stdout.strip()
    assert "'torch'" in reported and "'models.errors'" in reported


def test_public_names_are_sorted_and_pinned():
    assert pipeline.__all__ == sorted(pipeline.__all__)
    assert pipeline.__all__ == [
        "ErrorClass",
        "InvalidInput",
        "JobParams",
        "PipelineError",
        "RunSettings",
        "Store",
        "Translator",
        "run_job",
    ]
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None


def test_status_answers_without_importing_torch(tmp_path):
    db = tmp_path / "jobs.db"
    Store(db).close()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", "status"],
        capture_output=True, text=True, cwd=ROOT, env=cli_env(db), timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "no jobs\n"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "pipeline.cli" in imported  # importtime really reported the imports
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
    assert "torch" not in proc.stderr
    assert db.is_file()
