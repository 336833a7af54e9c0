"""Inputs read from storage without a server (memory://, fsspec's in-process
store, with faults injected into its files): a transient failure while
preprocess reads the input is retried by the run's policy and the job goes
on from its last written slice; a denied read is not retried; a Parquet
object is read by row group through fsspec, as a local file is."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from pipeline import service
from pipeline.documents.inputs import scan_input
from pipeline.errors import InvalidInput
from pipeline.retry import Backoff
from pipeline.stages import preprocess
from pipeline.store import Store
from tests.fakes import NO_WAITS
from tests.test_storage import memory, opts, runtime  # noqa: F401  (memory: a fixture)

NOWHERE = replace(NO_WAITS, rate_limited_backoff=Backoff(0, 1, 0))
LINES = b"".join(b"Line number %d has a few words in it.\n\n" % n for n in range(40))


@dataclass
class Faults:
    """Reads of one object through memory:// files that dribble (at most
    ``piece`` bytes a read, so a document is many reads; None: as asked)
    and raise ``error`` at the reads numbered in ``fail_at`` (counted over
    all opens)."""

    path: str
    error: BaseException
    fail_at: set[int] = field(default_factory=set)
    piece: int | None = 64
    reads: int = 0
    seeks: list[int] = field(default_factory=list)  # where each open's reading started

    def install(self, monkeypatch) -> None:
        real = MemoryFileSystem._open
        faults = self

        def _open(fs, path, mode="rb", **kwargs):
            f = real(fs, path, mode, **kwargs)
            return _Dribbling(f, faults) if "r" in mode and path == faults.path else f

        monkeypatch.setattr(MemoryFileSystem, "_open", _open)


class _Dribbling:
    def __init__(self, f, faults: Faults):
        self._f, self._faults = f, faults
        faults.seeks.append(0)

    def read(self, size: int = -1) -> bytes:
        faults = self._faults
        faults.reads += 1
        if faults.reads in faults.fail_at:
            raise faults.error
        if faults.piece is None:
            return self._f.read(size)
        return self._f.read(faults.piece if size is None or size < 0 else min(size, faults.piece))

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._faults.seeks[-1] = offset
        return self._f.seek(offset, whence)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def local_run(tmp_path, data: bytes, trained_model, name: str = "a.txt", **kw) -> bytes:
    doc = tmp_path / "local" / name
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_bytes(data)
    out = tmp_path / "local" / ("out-" + name)
    job = service.translate_or_resume(Store(tmp_path / "local.db"), scan_input(doc),
                                      opts(trained_model, output=str(out), **kw), runtime()).job
    assert job.state == "SUCCEEDED"
    return out.read_bytes()


def submitted(memory, tmp_path, trained_model, data: bytes = LINES, name: str = "a.txt",  # noqa: F811
              **kw):
    memory.pipe(f"/b/docs/{name}", data)
    store = Store(tmp_path / "jobs.db")
    [result] = service.submit_paths(store, [f"memory://b/docs/{name}"],
                                    opts(trained_model, to="memory://b/out/", **kw))
    return store, result.job


def run_all(store: Store) -> None:
    rt = runtime()
    rt.policy = NOWHERE
    service.run_worker(store, rt, idle_exit_s=0, poll_s=0.01)


def test_a_reset_while_reading_the_input_is_retried_from_the_last_slice(
        memory, tmp_path, trained_model, monkeypatch):  # noqa: F811
    monkeypatch.setattr(preprocess, "SLICE_LINES", 8)
    store, job = submitted(memory, tmp_path, trained_model)
    hashing = -(-len(LINES) // 64) + 1  # the reads that check its hash, then the empty one
    # A reset three quarters into reading it, with several slices written.
    faults = Faults("/b/docs/a.txt", ConnectionResetError(errno.ECONNRESET, "reset by peer"),
                    fail_at={hashing + 20})
    faults.install(monkeypatch)
    run_all(store)
    job = store.job(job.id)
    assert job.state == "SUCCEEDED", job.error_message
    retries = [a for a in store.attempts(job.id) if a.stage == "preprocess"]
    assert [(a.error_class, a.decision, a.attempt) for a in retries] == [("network", "retry", 1)]
    assert "cannot read memory://b/docs/a.txt" in retries[0].message
    # The second pass read on from where the written slices end, not from the start.
    assert faults.seeks[-1] > 0
    assert memory.cat("/b/out/a.fra_Latn.txt") == local_run(tmp_path, LINES, trained_model)


def test_each_class_has_its_own_budget_then_the_job_fails(memory, tmp_path, trained_model,
                                                          monkeypatch):  # noqa: F811
    store, job = submitted(memory, tmp_path, trained_model)
    faults = Faults("/b/docs/a.txt", TimeoutError("read timed out"), fail_at=set(range(1, 100)))
    faults.install(monkeypatch)
    run_all(store)
    job = store.job(job.id)
    assert job.state == "FAILED" and job.error_class == "timeout"
    assert "gave up after 5 timeout attempts" in job.error_message  # the policy's TIMEOUT limit
    rows = [(a.error_class, a.decision) for a in store.attempts(job.id)]
    assert rows == [("timeout", "retry")] * 4 + [("timeout", "fail")]
    faults.fail_at = set()
    assert service.retry(store, job.id, runtime()).job.state == "SUCCEEDED"


def test_a_denied_read_is_not_retried(memory, tmp_path, trained_model, monkeypatch):  # noqa: F811
    store, job = submitted(memory, tmp_path, trained_model)
    Faults("/b/docs/a.txt", PermissionError(errno.EACCES, "denied"),
           fail_at={1}).install(monkeypatch)
    run_all(store)
    job = store.job(job.id)
    assert job.state == "FAILED" and job.error_class == "auth"
    assert [a.decision for a in store.attempts(job.id)] == ["fail"]
    assert "check the storage credentials" in job.error_message


# -- Parquet objects ---------------------------------------------------------------------


def parquet_bytes(tmp_path) -> bytes:
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (the parquet extra)")
    from tests.test_format_parquet import make

    return make(tmp_path / "made.parquet", rows=20, group=4).read_bytes()


def test_a_parquet_object_is_translated_as_the_local_file_is(memory, tmp_path,
                                                             trained_model):  # noqa: F811
    data = parquet_bytes(tmp_path)
    memory.pipe("/b/docs/t.parquet", data)
    job = service.translate_or_resume(Store(tmp_path / "jobs.db"),
                                      scan_input("memory://b/docs/t.parquet"),
                                      opts(trained_model, to="memory://b/out/",
                                           columns="text,note"), runtime()).job
    assert job.state == "SUCCEEDED", job.error_message
    assert job.params.count('"parquet"') == 1 and job.input_bytes == len(data)
    expected = local_run(tmp_path, data, trained_model, "t.parquet", columns="text,note")
    assert memory.cat("/b/out/t.fra_Latn.parquet") == expected


def test_a_reset_while_reading_a_parquet_object_is_retried(memory, tmp_path, trained_model,
                                                           monkeypatch):  # noqa: F811
    data = parquet_bytes(tmp_path)
    monkeypatch.setattr(preprocess, "SLICE_LINES", 4)
    store, job = submitted(memory, tmp_path, trained_model, data, "t.parquet",
                           columns="text,note")
    # pyarrow wants whole reads: the hash is 2 (a piece, then the end), pyarrow's
    # footer 1, then a read per row group: the 6th read is the third row group's.
    faults = Faults("/b/docs/t.parquet", ConnectionResetError(errno.ECONNRESET, "reset"),
                    fail_at={6}, piece=None)
    faults.install(monkeypatch)
    run_all(store)
    job = store.job(job.id)
    assert job.state == "SUCCEEDED", job.error_message
    assert [(a.error_class, a.decision) for a in store.attempts(job.id)
            if a.stage == "preprocess"] == [("network", "retry")]
    assert store.last_slice(job.id).seq == 4  # a slice per row group, none twice
    assert memory.cat("/b/out/t.fra_Latn.parquet") == local_run(
        tmp_path, data, trained_model, "t.parquet", columns="text,note")


def test_a_parquet_object_changed_after_submit_is_refused(memory, tmp_path,
                                                          trained_model):  # noqa: F811
    data = parquet_bytes(tmp_path)
    store, job = submitted(memory, tmp_path, trained_model, data, "t.parquet",
                           columns="text")
    memory.pipe("/b/docs/t.parquet", data[:-8] + b"\0\0\0\0PAR1")
    run_all(store)
    job = store.job(job.id)
    assert job.state == "FAILED" and job.error_class == "invalid_input"
    assert "changed since job" in job.error_message
    assert not memory.exists("/b/out/t.fra_Latn.parquet")


def test_a_parquet_object_without_the_column_is_refused_before_any_job(memory, tmp_path,
                                                                        trained_model):  # noqa: F811
    memory.pipe("/b/docs/t.parquet", parquet_bytes(tmp_path))
    store = Store(tmp_path / "jobs.db")
    with pytest.raises(InvalidInput, match="no column 'nope' in memory://b/docs/t.parquet"):
        service.translate_or_resume(store, scan_input("memory://b/docs/t.parquet"),
                                    opts(trained_model, columns="nope"), runtime())
    assert store.jobs() == []


def test_a_reset_while_postprocess_reads_a_parquet_object_again_is_retried(
        memory, tmp_path, trained_model, monkeypatch):  # noqa: F811
    data = parquet_bytes(tmp_path)
    monkeypatch.setattr(preprocess, "SLICE_LINES", 4)
    store, job = submitted(memory, tmp_path, trained_model, data, "t.parquet",
                           columns="text,note")
    # Preprocess reads 8 times (see above); postprocess checks the hash (2
    # reads), then pyarrow reads the footer and the row groups: the 12th is one.
    faults = Faults("/b/docs/t.parquet", TimeoutError("read timed out"), fail_at={12},
                    piece=None)
    faults.install(monkeypatch)
    run_all(store)
    job = store.job(job.id)
    assert job.state == "SUCCEEDED", job.error_message
    assert [(a.stage, a.error_class, a.decision) for a in store.attempts(job.id)
            if a.error_class != "quality"] == [("postprocess", "timeout", "retry")]
    assert memory.cat("/b/out/t.fra_Latn.parquet") == local_run(
        tmp_path, data, trained_model, "t.parquet", columns="text,note")
    assert not list((tmp_path).rglob(".*.part"))  # the first attempt's file is gone
