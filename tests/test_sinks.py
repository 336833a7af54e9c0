"""Sinks and targets: file and directory delivery, atomicity, never clobbering."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from models import HfTranslator
from pipeline.cli import main
from pipeline.config import JobParams, idempotency_key
from pipeline.errors import ErrorClass, InvalidInput, JobFailed
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.runner import run_job
from pipeline.sinks import (
    CHUNK_BYTES,
    DeliveryError,
    DeliveryOptions,
    FileSink,
    check_target_free,
    check_url,
    dir_output,
    parse_headers,
    resolve_target,
)
from pipeline.store import Store
from tests.conftest import stored_output

DOC = "The cat sat on the mat.\n\nHello world. It is raining.\n"
FAST_ARGS = ["--beams", "1", "--length-ratio", "0.5", "--length-offset", "4"]


def make_job(tmp_path: Path, model, *, text: str = DOC, name: str = "doc", output=None,
             sink: str = "", http_method: str = "", db: str = "doc.db", **more):
    """A stored job for a small document, translated with the fast settings."""
    src = tmp_path / f"{name}.txt"
    src.write_text(text)
    output = output or (sink if sink.startswith("http") else str(tmp_path / f"{name}.out.txt"))
    params = JobParams(model=str(model), src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(output), beams=1, length_ratio=0.5, length_offset=4, sink=sink,
                       http_method=http_method, **more)
    store = Store(tmp_path / db)
    job, _ = submit(store, params, read_input(src))
    return store, job, params


def reference_output(tmp_path: Path, model, text: str = DOC) -> bytes:
    """What a job on ``text`` delivers (the model is deterministic)."""
    store, job, params = make_job(tmp_path, model, text=text, name="ref", db="ref.db")
    run_job(store, job.id, HfTranslator(str(model)))
    return Path(params.output).read_bytes()


def translate_argv(db, src, model, *extra):
    return ["--db", str(db), "translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn",
            "--model", str(model), *FAST_ARGS, "--no-progress", "--json", *extra]


def forbid_translation(monkeypatch):
    import models.hf

    def forbidden(*a, **k):
        raise AssertionError("translated again")

    monkeypatch.setattr(models.hf.HfTranslator, "translate_batch", forbidden)


# -- targets --------------------------------------------------------------------------


def _source(tmp_path, rel="a.txt"):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DOC)
    return read_input(path)


def test_default_target_is_a_file_next_to_the_input(tmp_path):
    target = resolve_target(None, None, _source(tmp_path), "fra_Latn")
    out = tmp_path / "a.fra_Latn.txt"
    assert (target.sink, target.output, target.http_method) == (f"file:{out}", str(out), "")
    assert resolve_target("file:" + str(tmp_path / "x.txt"), None, _source(tmp_path),
                          "fra_Latn").output == str(tmp_path / "x.txt")


def test_a_dir_sink_is_flat_for_one_file_and_keeps_the_relative_path_from_a_base(tmp_path):
    source = _source(tmp_path, "books/vol1/a.txt")
    flat = resolve_target(f"dir:{tmp_path / 'out'}", None, source, "fra_Latn")
    assert flat.sink == f"dir:{tmp_path / 'out'}"
    assert flat.output == str(tmp_path / "out" / "a.fra_Latn.txt")
    kept = resolve_target(f"dir:{tmp_path / 'out'}", None, source, "fra_Latn",
                          relative_to=tmp_path)
    assert kept.output == str(tmp_path / "out" / "books" / "vol1" / "a.fra_Latn.txt")
    assert dir_output(tmp_path / "o", source.path, "deu_Latn", tmp_path / "books") == \
        tmp_path / "o" / "vol1" / "a.deu_Latn.txt"
    with pytest.raises(InvalidInput, match="is not under --relative-to"):
        dir_output(tmp_path / "o", source.path, "deu_Latn", tmp_path / "elsewhere")


@pytest.mark.parametrize("to, output, kwargs, message", [
    ("file:/tmp/x.txt", "/tmp/y.txt", {}, "either -o or --to"),
    ("out.txt", None, {}, "use file:PATH, dir:DIR, an http(s):// URL or a storage URL"),
    (None, None, {"http_method": "POST"}, "--http-method applies only"),
    ("https://example.org/x", None, {"http_method": "PATCH"}, "PUT or POST"),
    (None, None, {"relative_to": "/tmp"}, "--relative-to applies only"),
    ("dir:", None, {}, "needs a directory"),
    ("nosuch://example.org/x", None, {}, "nosuch:// is not a storage protocol fsspec knows"),
    ("memory://b/out/", None, {"http_method": "PUT"}, "--http-method applies only"),
])
def test_bad_targets_are_refused(tmp_path, to, output, kwargs, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_target(to, output, _source(tmp_path), "fra_Latn", **kwargs)


def test_a_url_with_a_password_is_refused_without_echoing_it():
    with pytest.raises(InvalidInput) as info:
        check_url("https://user:hunter2@example.org/up")
    assert "hunter2" not in str(info.value) and "--header" in str(info.value)
    assert check_url("https://example.org/up?x=1#frag") == "https://example.org/up?x=1"
    with pytest.raises(InvalidInput, match="not an http"):
        check_url("https:///nohost")


def test_the_sink_and_method_are_part_of_the_job_and_its_key():
    base = dict(model="m", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text", output="/o.txt")
    plain = JobParams(**base)
    assert (plain.sink, plain.http_method) == ("file:/o.txt", "")
    put = JobParams(**{**base, "output": "https://h/x"}, sink="https://h/x")
    post = JobParams(**{**base, "output": "https://h/x"}, sink="https://h/x", http_method="POST")
    assert put.http_method == "PUT"
    keys = {idempotency_key(p, "0" * 64) for p in (plain, put, post)}
    assert len(keys) == 3
    assert JobParams.from_json(post.canonical_json()) == post
    with pytest.raises(InvalidInput):
        JobParams(**base, sink="file:/o.txt", http_method="PUT")
    stored = JobParams(**{**base, "output": "s3://bucket/o.txt"}, sink="s3://bucket/o.txt")
    assert stored.http_method == ""  # a storage URL (pipeline.objects) has no method
    with pytest.raises(InvalidInput):
        JobParams(**base, sink="s3://bucket/o.txt", http_method="PUT")
    with pytest.raises(InvalidInput):
        JobParams(**base, sink="bucket/o.txt")


# -- run options: headers ------------------------------------------------------------


def test_headers_expand_the_environment_and_errors_never_show_values():
    env = {"TOKEN": "s3cret", "USER_ID": "42"}
    assert parse_headers(["Authorization: Bearer $TOKEN", "X-User: ${USER_ID}-a"], env) == (
        ("Authorization", "Bearer s3cret"), ("X-User", "42-a"))
    with pytest.raises(InvalidInput, match=r"--header X-Key: environment variable \$MISSING"):
        parse_headers(["X-Key: $MISSING"], env)
    with pytest.raises(InvalidInput, match="sets this header itself"):
        parse_headers(["Idempotency-Key: mine"], env)
    with pytest.raises(InvalidInput) as info:
        parse_headers(["Bearer s3cret"], env)
    assert "s3cret" not in str(info.value)
    options = DeliveryOptions(headers=parse_headers(["Authorization: Bearer $TOKEN"], env))
    assert "s3cret" not in repr(options) and options.header_names == ("Authorization",)
    with pytest.raises(InvalidInput, match="--http-timeout"):
        DeliveryOptions(timeout_s=0)


# -- the file sink --------------------------------------------------------------------


def test_a_write_that_dies_half_way_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "out.txt"
    data = b"x" * (3 * CHUNK_BYTES + 10)
    seen = []

    def die_after_first_piece(n):
        seen.append(n)
        raise KeyboardInterrupt  # as a kill would, after part of the file was written

    for old in (None, b"the old translation\n"):
        if old is not None:
            target.write_bytes(old)
        sink = FileSink(f"file:{target}", target, overwrite=True)
        with pytest.raises(KeyboardInterrupt):
            sink.deliver(data, key="k" * 64, progress=die_after_first_piece)
        assert seen[-1] == CHUNK_BYTES
        assert (target.read_bytes() if old else target.exists()) == (old or False)
        assert sorted(p.name for p in tmp_path.iterdir()) == (["out.txt"] if old else [])


def test_a_killed_write_leaves_one_temp_file_that_the_resumed_job_replaces(tmp_path):
    target = tmp_path / "out.txt"
    stale = tmp_path / f".out.txt.{'k' * 12}.part"
    stale.write_bytes(b"half a fi")  # what a SIGKILL mid-write leaves
    receipt = FileSink(f"file:{target}", target).deliver(b"whole\n", key="k" * 64)
    assert target.read_bytes() == b"whole\n" and not stale.exists()
    assert (receipt.target, receipt.status) == (str(target), None)


def test_the_file_sink_keeps_a_different_file_and_accepts_the_same_bytes(tmp_path):
    target = tmp_path / "out.txt"
    target.write_bytes(b"someone else's file\n")
    with pytest.raises(DeliveryError) as info:
        FileSink(f"file:{target}", target).deliver(b"ours\n", key="k" * 64)
    assert info.value.error_class is ErrorClass.INVALID_INPUT
    assert "--overwrite" in str(info.value) and "move it away" in str(info.value)
    assert target.read_bytes() == b"someone else's file\n"

    target.write_bytes(b"ours\n")
    inode = target.stat().st_ino
    FileSink(f"file:{target}", target).deliver(b"ours\n", key="k" * 64)
    assert target.stat().st_ino == inode  # not even rewritten

    FileSink(f"file:{target}", target, overwrite=True).deliver(b"new\n", key="k" * 64)
    assert target.read_bytes() == b"new\n"


def test_a_file_that_appears_during_the_write_is_kept(tmp_path):
    target = tmp_path / "out.txt"

    def someone_writes_it(n):
        if not target.exists():
            target.write_bytes(b"theirs\n")

    with pytest.raises(DeliveryError, match="already exists and differs"):
        FileSink(f"file:{target}", target).deliver(b"ours\n" * 30_000, key="k" * 64,
                                                   progress=someone_writes_it)
    assert target.read_bytes() == b"theirs\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_the_file_sink_replaces_its_own_earlier_delivery(tmp_path):
    import hashlib

    target = tmp_path / "out.txt"
    target.write_bytes(b"v1 with a gap\n")  # what the job delivered before a retry
    sink = FileSink(f"file:{target}", target)
    sink.deliver(b"v2 complete\n", key="k" * 64,
                 previous_sha256=hashlib.sha256(b"v1 with a gap\n").hexdigest())
    assert target.read_bytes() == b"v2 complete\n"
    target.write_bytes(b"edited since\n")
    with pytest.raises(DeliveryError, match="--overwrite"):
        sink.deliver(b"v3\n", key="k" * 64,
                     previous_sha256=hashlib.sha256(b"v2 complete\n").hexdigest())


def test_a_dir_sink_creates_the_subdirectories(tmp_path):
    target = tmp_path / "out" / "a" / "b" / "doc.fra_Latn.txt"
    FileSink(f"dir:{tmp_path / 'out'}", target, make_dirs=True).deliver(b"hi\n", key="k" * 64)
    assert target.read_bytes() == b"hi\n"


def test_check_target_free_at_submit(tmp_path):
    target = tmp_path / "out.txt"
    check_target_free(f"file:{target}", str(target), None, overwrite=False)  # nothing there
    target.write_bytes(b"old\n")
    with pytest.raises(InvalidInput, match="already exists; pass --overwrite"):
        check_target_free(f"file:{target}", str(target), None, overwrite=False)
    check_target_free(f"file:{target}", str(target), b"old\n", overwrite=False)  # our bytes
    check_target_free(f"file:{target}", str(target), None, overwrite=True)
    check_target_free("https://h/x", "https://h/x", None, overwrite=False)


# -- through the job --------------------------------------------------------------------


def test_an_output_that_appears_while_the_job_runs_fails_it_then_retry_overwrite_delivers(
        tmp_path, tiny_model, capsys, monkeypatch):
    store, job, params = make_job(tmp_path, tiny_model)
    out = Path(params.output)
    out.write_text("written by someone else while we translated\n")
    with pytest.raises(JobFailed) as info:
        run_job(store, job.id, HfTranslator(str(tiny_model)))
    assert info.value.error_class is ErrorClass.INVALID_INPUT
    failed = store.job(job.id)
    assert (failed.state, failed.stage) == ("FAILED", "upload")
    assert "--overwrite" in failed.error_message and str(out) in failed.error_message
    assert out.read_text() == "written by someone else while we translated\n"
    assert [(a.stage, a.error_class, a.decision) for a in store.attempts(job.id)
            if a.stage == "upload"] == [("upload", "invalid_input", "fail")]

    forbid_translation(monkeypatch)
    import models.hf

    def no_model(*a, **k):
        raise AssertionError("a retry of the upload must not load the model")

    monkeypatch.setattr(models.hf.HfTranslator, "__init__", no_model)
    code = main(["--db", str(store.path), "retry", job.id, "--overwrite", "--no-progress",
                 "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["state"] == "SUCCEEDED"
    assert out.read_bytes() == stored_output(store, job.id)
    assert [r.stage for r in store.stage_runs(job.id)].count("inference") == 1


def test_an_existing_file_with_the_same_bytes_counts_as_delivered(tmp_path, tiny_model):
    expected = reference_output(tmp_path, tiny_model)
    store, job, params = make_job(tmp_path, tiny_model)
    out = Path(params.output)
    out.write_bytes(expected)
    inode = out.stat().st_ino
    final = run_job(store, job.id, HfTranslator(str(tiny_model)))
    assert final.state == "SUCCEEDED" and out.stat().st_ino == inode
    delivery = store.artifact(job.id, "delivery")
    assert (delivery.path, delivery.bytes) == (str(out), len(expected))
    assert json.loads(delivery.content) == {"sink": f"file:{out}", "target": str(out),
                                            "status": None, "response_id": None}


def test_the_cli_refuses_a_different_existing_file_before_translating(tmp_path, tiny_model,
                                                                      capsys, monkeypatch):
    src = tmp_path / "doc.txt"
    src.write_text(DOC)
    out = tmp_path / "doc.fra_Latn.txt"
    out.write_text("precious\n")
    db = tmp_path / "jobs.db"
    forbid_translation(monkeypatch)
    code = main(translate_argv(db, src, tiny_model))
    _, err = capsys.readouterr()
    assert code == 2
    assert err == (f"nllb-pipeline: error: output file {out} already exists; pass --overwrite "
                   "to replace it, or choose another output (-o or --to)\n")
    assert out.read_text() == "precious\n"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


def test_the_cli_delivers_again_only_what_is_its_own(tmp_path, tiny_model, capsys, monkeypatch):
    src = tmp_path / "doc.txt"
    src.write_text(DOC)
    out, db = tmp_path / "doc.fra_Latn.txt", tmp_path / "jobs.db"
    assert main(translate_argv(db, src, tiny_model)) == 0
    ours = out.read_bytes()
    capsys.readouterr()
    forbid_translation(monkeypatch)

    out.write_text("edited by hand\n")  # not ours any more: kept
    assert main(translate_argv(db, src, tiny_model)) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "edited by hand\n"

    out.write_bytes(ours)  # the same bytes: delivered, nothing to do
    assert main(translate_argv(db, src, tiny_model)) == 0
    assert json.loads(capsys.readouterr().out)["note"] == "already translated; nothing to do"

    out.write_text("edited by hand\n")
    assert main(translate_argv(db, src, tiny_model, "--overwrite")) == 0
    assert out.read_bytes() == ours


def test_the_cli_dir_sink(tmp_path, tiny_model, capsys, monkeypatch):
    src = tmp_path / "books" / "vol1" / "doc.txt"
    src.parent.mkdir(parents=True)
    src.write_text(DOC)
    monkeypatch.chdir(tmp_path)
    code = main(translate_argv(tmp_path / "jobs.db", src, tiny_model, "--to", "dir:translated",
                               "--relative-to", "."))
    result = json.loads(capsys.readouterr().out)
    expected = tmp_path / "translated" / "books" / "vol1" / "doc.fra_Latn.txt"
    assert code == 0 and result["output"] == str(expected) and expected.is_file()
    params = json.loads(Store(tmp_path / "jobs.db").job(result["job"]).params)
    assert (params["sink"], params["output"]) == (f"dir:{tmp_path / 'translated'}", str(expected))
