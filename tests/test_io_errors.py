"""Local I/O failures: a full disk is DISK_FULL (retryable, patiently), a
damaged database says so (exit 2); each table row has its test."""

from __future__ import annotations

import errno
import random
import sqlite3

import pytest

from pipeline.cli import main
from pipeline.config import JobParams
from pipeline.errors import ErrorClass, InvalidInput
from pipeline.documents.inputs import read_input
from pipeline.io_errors import (
    DEFAULT_ERRNO_CLASS,
    ERRNO_CLASSES,
    SQLITE_CLASSES,
    SQLITE_MESSAGES,
    DatabaseDamaged,
    DiskFull,
    class_of_oserror,
    database_error,
)
from pipeline.jobs import submit
from pipeline.retry import RetryPolicy
from pipeline.runner import run_job
from pipeline.sinks import DeliveryError, FileSink
from pipeline.store import Store
from tests.fakes import NO_WAITS, FakeTranslator

# -- the tables, row by row ---------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ERRNO_CLASSES))
def test_every_errno_row(code):
    assert class_of_oserror(OSError(code, "x")) is ERRNO_CLASSES[code]


def test_a_full_disk_is_its_own_retryable_class_and_other_errnos_are_bad_output():
    assert class_of_oserror(OSError(errno.ENOSPC, "No space left on device")) is (
        ErrorClass.DISK_FULL)
    assert class_of_oserror(OSError(errno.EDQUOT, "Disk quota exceeded")) is ErrorClass.DISK_FULL
    assert class_of_oserror(OSError(errno.EXDEV, "x")) is DEFAULT_ERRNO_CLASS
    assert ErrorClass.DISK_FULL.retryable and not ErrorClass.INVALID_INPUT.retryable


@pytest.mark.parametrize("message", sorted(SQLITE_MESSAGES))
def test_every_sqlite_row_by_message_and_by_code(message, tmp_path):
    code = SQLITE_MESSAGES[message]
    expected = {ErrorClass.DISK_FULL: DiskFull, ErrorClass.INVALID_INPUT: DatabaseDamaged}[
        SQLITE_CLASSES[code]]
    by_message = database_error(sqlite3.DatabaseError(message), tmp_path / "j.db")
    named = sqlite3.DatabaseError("anything")
    named.sqlite_errorname = code + "_EXTENDED"  # e.g. SQLITE_CORRUPT_INDEX
    by_code = database_error(named, tmp_path / "j.db")
    for error in (by_message, by_code):
        assert type(error) is expected
        assert str(tmp_path / "j.db") in str(error)


def test_other_sqlite_errors_stay_what_they_are(tmp_path):
    assert database_error(sqlite3.OperationalError("no such table: x"), tmp_path) is None


def test_the_policy_waits_long_for_a_full_disk_and_gives_up_soon():
    rng = random.Random(0)
    policy = RetryPolicy()
    first = policy.decide(ErrorClass.DISK_FULL, 1, rng)
    second = policy.decide(ErrorClass.DISK_FULL, 2, rng)
    assert first.retry and 15 <= first.delay_s <= 30  # base 30 s, equal jitter
    assert second.retry and 30 <= second.delay_s <= 60
    assert not policy.decide(ErrorClass.DISK_FULL, 3, rng).retry  # 3 attempts in all


# -- a full disk where we write ---------------------------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_the_file_sink_calls_a_full_disk_disk_full(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.sinks.files.write_atomically", _no_space)
    with pytest.raises(DeliveryError) as caught:
        FileSink("file:x", tmp_path / "out.txt").deliver(b"data", key="k" * 20)
    assert caught.value.error_class is ErrorClass.DISK_FULL
    assert str(caught.value) == f"cannot write {tmp_path / 'out.txt'}: No space left on device"


def _job(tmp_path):
    src = tmp_path / "doc.txt"
    src.write_text("One sentence here.\n\nAnother one there.\n")
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / "out.txt"))
    store = Store(tmp_path / "jobs.db")
    job, _ = submit(store, params, read_input(src))
    return store, job


def test_an_upload_that_meets_a_full_disk_waits_and_delivers_once_there_is_space(
        tmp_path, monkeypatch):
    import pipeline.sinks.files

    real, calls = pipeline.sinks.files.write_atomically, []

    def full_then_free(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            _no_space()
        return real(*args, **kwargs)

    monkeypatch.setattr("pipeline.sinks.files.write_atomically", full_then_free)
    store, job = _job(tmp_path)
    slept = []
    final = run_job(store, job.id, FakeTranslator(), policy=NO_WAITS, sleep=slept.append,
                    rng=random.Random(0))
    assert final.state == "SUCCEEDED"
    assert (tmp_path / "out.txt").read_text().startswith("ONE SENTENCE HERE.")
    [attempt] = store.attempts(job.id)
    assert (attempt.stage, attempt.error_class, attempt.decision) == ("upload", "disk_full",
                                                                      "retry")
    assert slept == [attempt.delay_s] and slept[0] >= 15  # the long backoff, not 1 s


def test_a_full_job_database_is_disk_full_not_an_internal_error(tmp_path):
    store, job = _job(tmp_path)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
    with pytest.raises(DiskFull) as caught:
        for i in range(500):
            store.record_attempt(job.id, "inference", error_class="oom", message="x" * 500,
                                 attempt=1, decision="split")
    assert caught.value.error_class is ErrorClass.DISK_FULL
    assert str(caught.value).startswith(
        f"disk full: cannot write the job database {tmp_path / 'jobs.db'} (database or disk is "
        "full); free space")
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


# -- a damaged database ---------------------------------------------------------------


def _damaged_db(tmp_path, *, header: bool = False):
    db = tmp_path / "jobs.db"
    store = Store(db)
    for i in range(40):
        store.get_or_create_job(idem_key=f"k{i}", params="{}" * 300, input_path="/in" * 50,
                                input_sha256="h", input_bytes=1, output_path="/o")
    store.close()
    data = bytearray(db.read_bytes())
    pages = len(data) // 4096
    damaged = range(1) if header else range(pages - 8, pages)
    for page in damaged:
        start = page * 4096 + (100 if page == 0 else 0)  # keep the file's magic header
        data[start:(page + 1) * 4096] = b"\xa5" * ((page + 1) * 4096 - start)
    db.write_bytes(data)
    return db


# Every command that opens the job database, with what it needs to get there.
def _commands(tmp_path, model):
    doc = tmp_path / "doc.txt"
    doc.write_text("One sentence here.\n")
    tmx = tmp_path / "in.tmx"
    tmx.write_text('<?xml version="1.0"?><tmx version="1.4"><header srclang="en" '
                   'datatype="plaintext" segtype="sentence" adminlang="en" o-tmf="x" '
                   'creationtool="x" creationtoolversion="1"/><body/></tmx>')
    job = ["--src", "eng_Latn", "--tgt", "fra_Latn", "--model", str(model)]
    return {
        "status": ["status"], "stats": ["stats"], "profile": ["profile"],
        "show": ["show", "abc"], "logs": ["logs", "abc"], "retry": ["retry", "abc"],
        "cancel": ["cancel", "abc"], "gc": ["gc", "--older-than", "0"],
        "delete": ["delete", "abc"], "review": ["review", "abc"],
        "translate": ["translate", str(doc), *job, "--no-progress"],
        "submit": ["submit", str(doc), *job], "worker": ["worker", "--idle-exit", "0"],
        "bench": ["bench", "--model", str(model), "--sizes", "2"],
        "tm stats": ["tm", "stats"], "tm export": ["tm", "export", str(tmp_path / "out.tmx")],
        "tm prune": ["tm", "prune", "--older-than", "0"],
        "tm import": ["tm", "import", str(tmx), *job],
        # eval opens the job database only to use the memory
        "eval": ["eval", str(doc), "--ref", str(doc), *job, "--tm", "on", "--no-progress"],
    }


COMMANDS = ["status", "stats", "profile", "show", "logs", "retry", "cancel", "gc", "delete",
            "review", "translate", "submit", "worker", "bench", "tm stats", "tm export",
            "tm prune", "tm import", "eval"]


def test_the_damage_tests_cover_every_command_that_opens_the_store(tmp_path):
    from pipeline.cli import build_parser

    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)
    # languages and demo need no --db of theirs; serve has its own test
    assert {c.split()[0] for c in COMMANDS} == names - {"languages", "demo", "serve"}


@pytest.mark.parametrize("damage", ["data pages", "schema page", "not a database"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_damaged_database_and_writes_nothing_into_it(
        tmp_path, capsys, tiny_model, damage, command):
    if damage == "not a database":
        db = tmp_path / "jobs.db"
        db.write_text("these are my notes, not a database\n" * 200)
    else:
        db = _damaged_db(tmp_path, header=damage == "schema page")
    before = db.read_bytes()
    code = main(["--db", str(db), *_commands(tmp_path, tiny_model)[command]])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(
        f"nllb-pipeline: error: database is damaged: {db}: "), err
    assert "internal error" not in lines[0] and out == ""
    assert db.read_bytes() == before  # nothing written: no job, no migration, no attempt row
    assert not db.with_name("jobs.db-wal").exists() or not db.with_name(
        "jobs.db-wal").stat().st_size


def _damaged_in_the_middle(tmp_path):
    """2,000 jobs, one leaf page of their table (half-way through it) damaged."""
    db = tmp_path / "jobs.db"
    store = Store(db)
    with store.transaction():
        for i in range(2000):
            store.get_or_create_job(idem_key=f"k{i}", params="{}" * 100, input_path="/in",
                                    input_sha256="h", input_bytes=1, output_path="/o")
    try:
        leaves = store.db.execute("SELECT pageno FROM dbstat WHERE name = 'jobs' AND "
                                  "pagetype = 'leaf' ORDER BY pageno").fetchall()
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table to find a page of the jobs table by")
    page = leaves[len(leaves) // 2][0]
    store.close()
    data = bytearray(db.read_bytes())
    data[(page - 1) * 4096:page * 4096] = b"\xa5" * 4096
    db.write_bytes(data)
    return db


def test_damage_past_the_checks_budget_is_found_by_the_read_that_meets_it(tmp_path, capsys,
                                                                          monkeypatch):
    db = _damaged_in_the_middle(tmp_path)
    assert main(["--db", str(db), "status", "--limit", "5000"]) == 2  # found at open
    assert "database is damaged" in capsys.readouterr().err
    # Past CHECK_BYTES the check reads every table but those that grow with
    # documents: the jobs table's damage is still found at open...
    monkeypatch.setattr("pipeline.store.base.CHECK_BYTES", 0)
    assert main(["--db", str(db), "status", "--limit", "5000"]) == 2
    assert "database is damaged" in capsys.readouterr().err
    # ...and a bulk table's by the read that meets it: here the jobs table
    # stands in for them.
    monkeypatch.setattr("pipeline.store.base.BULK_TABLES", ("jobs",))
    Store(db, check=True).close()
    assert main(["--db", str(db), "status", "--limit", "5000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nllb-pipeline: error: database is damaged: {db}: database disk "
                          "image is malformed;"), err


def test_serve_refuses_a_damaged_database(tmp_path):
    from pipeline.api import ApiSettings, create_app

    db = _damaged_db(tmp_path)
    with pytest.raises(InvalidInput, match="database is damaged"):
        create_app(ApiSettings(db=db, files=tmp_path / "files"))


def test_a_file_that_is_not_a_database(tmp_path, capsys):
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 200)
    assert main(["--db", str(db), "status"]) == 2
    assert capsys.readouterr().err == (
        f"nllb-pipeline: error: database is damaged: {db}: file is not a database; restore it "
        "from a backup, or use another --db (its jobs are lost)\n")


def test_a_full_disk_met_anywhere_else_is_one_line_not_an_internal_error(capsys, monkeypatch):
    from pipeline.cli import read

    def no_space(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.txt")

    monkeypatch.setattr(read, "cmd_languages", no_space)
    assert main(["languages"]) == 1
    assert capsys.readouterr().err == (
        "nllb-pipeline: error: disk full: No space left on device: /data/out.txt; free space, "
        "then run the same command again to continue\n")


def test_a_big_stores_check_at_open_reads_no_table_that_grows_with_documents(tmp_path,
                                                                            monkeypatch):
    """Its cost must not grow with the jobs' size (the whole file's check
    took 0.27 s on a 500,000-line job): past CHECK_BYTES it runs
    ``quick_check`` per table, and none on a bulk table."""
    from pipeline.store.base import BULK_TABLES, check_intact

    db = tmp_path / "jobs.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    checked: list[str] = []
    conn.set_trace_callback(checked.append)
    check_intact(conn, db)  # small: the whole file
    assert checked[-1] == "PRAGMA quick_check(3)"
    checked.clear()
    check_intact(conn, db, whole_up_to=0)
    pragmas = [sql for sql in checked if sql.startswith("PRAGMA quick_check")]
    assert {'PRAGMA quick_check("jobs")', 'PRAGMA quick_check("stage_runs")'} <= set(pragmas)
    assert not [sql for sql in pragmas for table in BULK_TABLES if f'"{table}"' in sql]
    conn.close()
