from __future__ import annotations

import fcntl
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
# Offline in every process of the run from the start, not only inside a test:
# huggingface_hub reads $HF_HUB_OFFLINE once, when it is imported, and a
# tokenizer saved after records it (local_files_only), so a model built in
# one pytest-xdist worker would differ from the same model built in another
# that happened to import it outside a test.
os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
# Set by .ci/run: CI has ../shared/corpus, so a test that cannot find it
# fails there instead of skipping (a clone without ../shared skips).
REQUIRE_CORPUS_VAR = "NLLB_PIPELINE_REQUIRE_CORPUS"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fresh_cache: the test's cache ($XDG_CACHE_HOME under tmp_path) starts "
                   "empty, without a copy of the tiny or trained model's shared CTranslate2 "
                   "conversion (tests of the conversion, or of what tmp_path holds)")
    # Known without pytest-xdist too (a plain `pytest` run ignores the groups).
    config.addinivalue_line(
        "markers", "xdist_group(name): under pytest-xdist, runs in the worker that runs every "
                   "other test of the group (one Chromium, one Ray instance at a time)")


# The test files that take longest, slowest first (measured with
# --durations): under pytest-xdist they are handed out first, so that no
# worker starts a long file while the others have run out of work. Only an
# order: a file not named here runs after these, in the usual order.
SLOWEST_FIRST = (
    "test_determinism.py", "test_benchmarks.py", "test_ray.py", "test_trained_model.py",
    "test_browser.py", "test_browser_a11y.py", "test_review_browser.py", "test_translate.py",
    "test_ct2.py", "test_storage_s3.py", "test_retries.py", "test_resume.py", "test_worker.py",
    "test_job_states.py", "test_hub.py", "test_hot_loop.py", "test_metrics.py",
    "test_memory_delivered.py", "test_serve.py", "test_documents_e2e.py", "test_cancel.py",
    "test_eval.py", "test_stats.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(autouse=True)
def _group_applied(request):
    """Under ``--dist loadgroup`` pytest-xdist sends the tests of one
    ``xdist_group`` to one worker by suffixing their node ids with the group
    (``@ray``). Where a pytest and pytest-xdist pair loses that suffix
    (pytest 9.2 with pytest-xdist 3.8), the groups are silently ignored and,
    say, two Ray instances run at once: a grouped test then fails before
    its own set-up, saying why (its module's fixtures may have started
    already). A session-level error here would be swallowed by xdist's
    controller, which reports an unrelated INTERNALERROR instead."""
    names = {m.args[0] if m.args else m.kwargs.get("name", "default")
             for m in request.node.iter_markers("xdist_group")}
    if not (names and os.environ.get("PYTEST_XDIST_WORKER")
            and request.config.getvalue("loadgroup")):
        return
    suffix = "@" + "_".join(sorted(map(str, names)))
    if not request.node.nodeid.endswith(suffix):
        pytest.fail(f"pytest-xdist did not apply this test's xdist_group (no {suffix} on its "
                    f"node id), so its group's tests may run on several workers at once: "
                    f"install the versions pyproject.toml's test extra names (pytest<9)",
                    pytrace=False)


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


def made_once(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)``, a path under ``folder``, made once for the whole run:
    under pytest-xdist the first worker to ask makes it, under a lock, in a
    folder all the run's workers share (their temporary folders' parent), and
    the others wait for it and use the same one."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    made = root / f"{name}.made"  # holds the path, written when it is whole
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not made.exists():
            folder = root / name
            folder.mkdir(exist_ok=True)  # a worker that failed to make it may have left it
            made.write_text(str(make(folder)))
    return Path(made.read_text())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from models.tiny import build_tiny_model

    return made_once(tmp_path_factory, "models", lambda folder: build_tiny_model(folder / "tiny"))


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The tiny model trained into an invented language (models/trained.py):
    the committed copy, or, after a change to its recipe, one trained once
    into the real cache (minutes)."""
    from models.trained import trained_model_dir

    return trained_model_dir()


def _converted_once(model: Path, tmp_path_factory, name: str) -> Path:
    """``model`` converted to CTranslate2 once for the whole run, all xdist
    workers together (int8, the CPU default), in a cache of its own that no
    test writes to."""
    from models.conversion import converted_model
    from models.fingerprint import fingerprint

    def convert(folder: Path) -> Path:
        cache = folder / "nllb-pipeline"
        fp = fingerprint(str(model), cache)
        return converted_model(str(model), fp, "int8", cache, say=lambda message: None)

    return made_once(tmp_path_factory, name, convert)


@pytest.fixture(scope="session")
def _tiny_conversion(tiny_model, tmp_path_factory) -> Path:
    return _converted_once(tiny_model, tmp_path_factory, "shared-cache")


@pytest.fixture(scope="session")
def _trained_conversion(trained_model, tmp_path_factory) -> Path:
    return _converted_once(trained_model, tmp_path_factory, "trained-cache")


SHARED_CONVERSIONS = {"tiny_model": "_tiny_conversion", "trained_model": "_trained_conversion"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path, request):
    """No test touches the user's database, cache or the network.

    A test that uses the tiny or the trained model finds its CTranslate2
    conversion in its cache already (a copy of the one made for the run:
    converting in every test's cache made ~100 conversions of each),
    unless it is marked ``fresh_cache``.
    """
    cache = tmp_path / "cache"
    monkeypatch.setenv("NLLB_PIPELINE_DB", str(tmp_path / "default-jobs.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("NLLB_PIPELINE_MODEL", raising=False)
    if request.node.get_closest_marker("fresh_cache"):
        return
    for model, conversion in SHARED_CONVERSIONS.items():
        if model in request.fixturenames:
            converted = request.getfixturevalue(conversion)
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
