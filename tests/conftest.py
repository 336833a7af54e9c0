from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests import warm

# One torch thread per process: on a shared 2-core machine torch's default
# (one per core) makes each test's timing swing 10x with the load, and the
# subprocesses the tests start inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
# Set by .ci/run: CI has ../shared/corpus, so a test that cannot find it
# fails there instead of skipping (a clone without ../shared skips).
REQUIRE_CORPUS_VAR = "NLLB_PIPELINE_REQUIRE_CORPUS"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fresh_cache: the test's cache ($XDG_CACHE_HOME under tmp_path) starts "
                   "empty, without a copy of the tiny model's shared CTranslate2 conversion "
                   "(tests of the conversion, or of what tmp_path holds)")


def _missing_corpus(path: Path):
    message = f"{path} not available (only in the project's workspace)"
    if os.environ.get(REQUIRE_CORPUS_VAR):
        pytest.fail(f"{message}, and ${REQUIRE_CORPUS_VAR} says it must be", pytrace=False)
    pytest.skip(message)


def corpus_file(name: str) -> Path:
    """A real-world document from ../shared/corpus; skips where it is absent
    (fails where $NLLB_PIPELINE_REQUIRE_CORPUS is set, as in CI)."""
    path = CORPUS / name
    if not path.is_file():
        _missing_corpus(path)
    return path


def wait_for_commits(proc, db, n: int, why_dead=lambda proc: "it ended first") -> None:
    """Wait until ``db`` holds ``n`` committed batches, while ``proc`` (the
    run writing them) is alive; ``why_dead(proc)`` says what it was if not."""
    def committed():
        assert proc.poll() is None, why_dead(proc)
        try:
            conn = sqlite3.connect(db, timeout=1)
            try:
                return conn.execute(
                    "SELECT COUNT(*) FROM batches WHERE state = 'committed'").fetchone()[0] >= n
            finally:
                conn.close()
        except sqlite3.OperationalError:  # not created yet
            return False

    wait_until(committed, f"{n} committed batches")


@pytest.fixture
def restore_root_logging():
    """The root logger's handlers and level as they were before the test
    (``nllb-pipeline``'s ``main`` sets its own)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:], root.level = handlers, level


def wait_until(condition, what: str, timeout: float = 120, interval: float = 0.01):
    """Poll ``condition`` until it returns something true, and return that.
    It may assert (a process that died too early, say): the assertion ends
    the wait. After ``timeout`` seconds the test fails, naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The tiny model trained into an invented language (models/trained.py):
    the committed copy, or, after a change to its recipe, one trained once
    into the real cache (minutes)."""
    from models.trained import trained_model_dir

    return trained_model_dir()


@pytest.fixture(scope="session")
def _tiny_conversion(tiny_model, tmp_path_factory) -> Path:
    """The tiny model converted to CTranslate2 once for the whole run (int8,
    the CPU default), in a cache of its own that no test writes to."""
    from models.conversion import converted_model
    from models.fingerprint import fingerprint

    cache = tmp_path_factory.mktemp("shared-cache") / "nllb-pipeline"
    fp = fingerprint(str(tiny_model), cache)
    return converted_model(str(tiny_model), fp, "int8", cache, say=lambda message: None)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path, request):
    """No test touches the user's database, cache or the network.

    A test that uses the tiny model finds its CTranslate2 conversion in its
    cache already (a copy of the one made for the run: converting in every
    test's cache made ~100 conversions), unless it is marked ``fresh_cache``.
    """
    cache = tmp_path / "cache"
    monkeypatch.setenv("NLLB_PIPELINE_DB", str(tmp_path / "default-jobs.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("NLLB_PIPELINE_MODEL", raising=False)
    if "tiny_model" in request.fixturenames and not request.node.get_closest_marker(
            "fresh_cache"):
        converted = request.getfixturevalue("_tiny_conversion")
        shutil.copytree(converted, cache / "nllb-pipeline" / "ct2" / converted.name)


def cli_env(db: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(NLLB_PIPELINE_DB=str(db), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


def run_cli(*args: str, db: Path, check: bool = True, timeout: float = 300, env=None):
    """``nllb-pipeline ARGS`` in a real process of its own (forked by
    ``tests.warm``: the imports are done once for the whole run)."""
    proc = warm.run(["-m", "pipeline", *args], env=env or cli_env(db), timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_cli(*args: str, db: Path, env=None, **popen) -> warm.WarmProcess:
    """``nllb-pipeline ARGS`` started in a process of its own, as
    ``subprocess.Popen`` would (``popen``: its stream arguments, ``text``)."""
    return warm.WarmProcess(["-m", "pipeline", *args], env=env or cli_env(db), cwd=ROOT,
                            **popen)


def stored_output(store, job_id: str) -> bytes:
    """The output document the store keeps for a job (its output file)."""
    from pipeline import service

    return b"".join(service.output(store, job_id).pieces)
