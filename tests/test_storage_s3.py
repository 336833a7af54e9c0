"""Storage URLs against a real S3 server on loopback (moto's server mode,
behind tests/s3_support.py's fault proxy), never a mock of boto: objects
and prefixes in, objects out, byte-identical to a local run; a kill during
the PUT, throttling, a missing bucket, and no secret in the job database."""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import service
from pipeline.config import RunSettings
from pipeline.documents.inputs import scan_input
from pipeline.errors import InvalidInput
from pipeline.retry import Backoff
from pipeline.sinks import DeliveryOptions
from pipeline.store import Store
from tests.conftest import run_cli, start_cli, wait_until
from tests.fakes import NO_WAITS, FakeTranslator
from tests.s3_support import ACCESS_KEY, S3, SECRET_KEY, environment, moto_server_binary

pytestmark = pytest.mark.skipif(
    moto_server_binary() is None or find_spec("s3fs") is None,
    reason="needs moto[server] and s3fs (pip install -e '.[test]')")

SAMPLE = (Path(__file__).parents[1] / "pipeline" / "data" / "sample.md").read_bytes()
DOCS = {"a.md": b"# Title\n\nThe first document. It has two sentences.\n",
        "sub/b.md": b"Another document, one level down.\n\nWith a second paragraph.\n",
        "notes.txt": b"Not matched by the glob.\n"}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    server = S3(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    import s3fs

    for name, value in environment(s3_server.endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    bucket = f"t{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    s3_server.fault()
    yield SimpleNamespace(fs=fs, bucket=bucket, server=s3_server, faults=s3_server.faults)
    s3_server.fault()
    s3fs.S3FileSystem.clear_instance_cache()


def fake_runtime(translator=None) -> service.Runtime:
    translator = translator or FakeTranslator()
    return service.Runtime(settings=RunSettings(device="cpu"), policy=NO_WAITS,
                           translators=lambda params: translator)


def options(trained_model, **kw) -> service.JobOptions:
    return service.JobOptions(src="eng_Latn", tgt="fra_Latn", model=str(trained_model), **kw)


def local_output(tmp_path, name: str, data: bytes, trained_model) -> bytes:
    doc = tmp_path / "local" / name
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_bytes(data)
    out = doc.with_name(doc.stem + ".out" + doc.suffix)
    store = Store(tmp_path / "local.db")
    job = service.translate_or_resume(store, scan_input(doc), options(trained_model,
                                      output=str(out)), fake_runtime()).job
    assert job.state == "SUCCEEDED"
    return out.read_bytes()


def database_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


@pytest.mark.slow
def test_an_object_is_translated_to_a_prefix_as_a_local_file_is(s3, tmp_path, trained_model):
    """The trained model at the defaults (beams 4, --quality repair), through the CLI."""
    local = tmp_path / "manual.md"
    local.write_bytes(SAMPLE)
    db = tmp_path / "jobs.db"
    common = ["--src", "eng_Latn", "--tgt", "fra_Latn", "--model", str(trained_model),
              "--device", "cpu"]
    run_cli("translate", str(local), "-o", str(tmp_path / "local.md"), *common, db=db)
    s3.fs.pipe(f"{s3.bucket}/docs/manual.md", SAMPLE)
    run_cli("translate", f"s3://{s3.bucket}/docs/manual.md", "--to", f"s3://{s3.bucket}/out/",
            *common, db=db)
    assert s3.fs.cat(f"{s3.bucket}/out/manual.fra_Latn.md") == (tmp_path / "local.md").read_bytes()
    rows = json.loads(run_cli("status", "--json", db=db).stdout)
    rows = rows.get("jobs", rows) if isinstance(rows, dict) else rows
    shown = run_cli("show", "--json", rows[0]["id"], db=db)
    blob = database_bytes(db)
    assert ACCESS_KEY.encode() not in blob and SECRET_KEY.encode() not in blob
    assert SECRET_KEY not in shown.stdout


@pytest.mark.slow
def test_a_kill_during_the_put_then_a_rerun_delivers_once(s3, tmp_path, trained_model):
    s3.fs.pipe(f"{s3.bucket}/docs/manual.md", SAMPLE)
    target = f"{s3.bucket}/out/manual.fra_Latn.md"
    faults = s3.server.fault(key="/out/manual", hold_put=True)
    db = tmp_path / "jobs.db"
    args = ["translate", f"s3://{s3.bucket}/docs/manual.md", "--to", f"s3://{s3.bucket}/out/",
            "--src", "eng_Latn", "--tgt", "fra_Latn", "--model", str(trained_model),
            "--device", "cpu", "--no-progress"]
    proc = start_cli(*args, db=db)
    wait_until(faults.held.is_set, "the output's PUT to reach the store")
    proc.send_signal(signal.SIGKILL)  # the object is stored; the answer never arrives
    proc.wait(30)
    faults.hold_put = False
    faults.release.set()
    first = s3.fs.cat(target)
    s3.fs.invalidate_cache()
    run_cli(*args, db=db)
    assert len([p for p in faults.puts("/out/manual") if p[2] == 200]) == 1
    assert s3.fs.cat(target) == first
    assert not [k for k in s3.fs.find(f"{s3.bucket}/out") if ".part" in k]


def translate_a_md_to_out(s3, store: Store, model):
    """The bucket's docs/a.md translated into its out/ prefix; the job."""
    return service.translate_or_resume(
        store, scan_input(f"s3://{s3.bucket}/docs/a.md"),
        options(model, to=f"s3://{s3.bucket}/out/"), fake_runtime()).job


def test_a_throttled_put_is_retried(s3, tmp_path, trained_model):
    s3.fs.pipe(f"{s3.bucket}/docs/a.md", DOCS["a.md"])
    faults = s3.server.fault(key="/out/", fail_puts=2, status=503, code="ServiceUnavailable")
    store = Store(tmp_path / "jobs.db")
    job = translate_a_md_to_out(s3, store, trained_model)
    assert job.state == "SUCCEEDED"
    upload = [a for a in store.attempts(job.id) if a.stage == "upload"]
    assert [a.error_class for a in upload] == ["server", "server"]
    assert [p[2] for p in faults.puts("/out/")] == [503, 503, 200]
    assert s3.fs.cat(f"{s3.bucket}/out/a.fra_Latn.md") == local_output(
        tmp_path, "a.md", DOCS["a.md"], trained_model)


def test_slow_down_is_rate_limited_and_retried(s3, tmp_path, trained_model):
    s3.fs.pipe(f"{s3.bucket}/docs/a.md", DOCS["a.md"])
    # s3fs itself retries SlowDown a few times; more than that reaches our policy.
    faults = s3.server.fault(key="/out/", fail_puts=6, status=503, code="SlowDown")
    store = Store(tmp_path / "jobs.db")
    job = translate_a_md_to_out(s3, store, trained_model)
    assert job.state == "SUCCEEDED"
    assert {a.error_class for a in store.attempts(job.id) if a.stage == "upload"} == {
        "rate_limited"}
    assert faults.puts("/out/")[-1][2] == 200


@pytest.mark.parametrize("code, fails, error_class", [
    ("ServiceUnavailable", 2, "server"),
    # s3fs retries SlowDown itself (5 tries); the sixth reaches our policy.
    ("SlowDown", 6, "rate_limited")])
def test_a_throttled_read_of_the_input_is_retried(s3, tmp_path, trained_model, code, fails,
                                                  error_class):
    s3.fs.pipe(f"{s3.bucket}/docs/a.md", DOCS["a.md"])
    store = Store(tmp_path / "jobs.db")
    [submitted] = service.submit_paths(store, [f"s3://{s3.bucket}/docs/a.md"],
                                       options(trained_model, to=f"s3://{s3.bucket}/out/"))
    # The job exists (its input hashed); now its reads in preprocess answer 503 first.
    faults = s3.server.fault(key="/docs/a.md", fail_gets=fails, status=503, code=code)
    runtime = fake_runtime()
    runtime.policy = replace(NO_WAITS, rate_limited_backoff=Backoff(0, 1, 0))
    service.run_worker(store, runtime, idle_exit_s=0, poll_s=0.01)
    job = store.job(submitted.job.id)
    assert job.state == "SUCCEEDED", job.error_message
    retried = [a for a in store.attempts(job.id) if a.stage == "preprocess"]
    assert [(a.error_class, a.decision) for a in retried] == [(error_class, "retry")] * (
        1 if code == "SlowDown" else fails)
    answered = [g[2] for g in faults.gets("/docs/a.md")]
    assert answered[:fails] == [503] * fails and answered[fails] in (200, 206)  # 206: a range
    assert s3.fs.cat(f"{s3.bucket}/out/a.fra_Latn.md") == local_output(
        tmp_path, "a.md", DOCS["a.md"], trained_model)


def test_a_parquet_object_is_read_by_row_group_as_a_local_file_is(s3, tmp_path,
                                                                  trained_model):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (the parquet extra)")
    from tests.test_format_parquet import make

    data = make(tmp_path / "t.parquet", rows=30, group=7).read_bytes()
    s3.fs.pipe(f"{s3.bucket}/docs/t.parquet", data)
    store = Store(tmp_path / "jobs.db")
    job = service.translate_or_resume(
        store, scan_input(f"s3://{s3.bucket}/docs/t.parquet"),
        options(trained_model, to=f"s3://{s3.bucket}/out/", columns="text,note"),
        fake_runtime()).job
    assert job.state == "SUCCEEDED", job.error_message
    assert job.input_sha256 == hashlib.sha256(data).hexdigest()
    local = tmp_path / "local.db"
    out = tmp_path / "t.out.parquet"
    assert service.translate_or_resume(
        Store(local), scan_input(tmp_path / "t.parquet"),
        options(trained_model, output=str(out), columns="text,note"),
        fake_runtime()).job.state == "SUCCEEDED"
    assert s3.fs.cat(f"{s3.bucket}/out/t.fra_Latn.parquet") == out.read_bytes()


def test_a_prefix_of_documents_is_delivered_to_another_prefix(s3, tmp_path, trained_model):
    for name, data in DOCS.items():
        s3.fs.pipe(f"{s3.bucket}/docs/{name}", data)
    store = Store(tmp_path / "jobs.db")
    runtime = fake_runtime()
    results = service.submit_paths(store, [f"s3://{s3.bucket}/docs/"],
                                   options(trained_model, to=f"s3://{s3.bucket}/out/"),
                                   glob="*.md")
    assert sorted(r.input for r in results) == [f"s3://{s3.bucket}/docs/a.md",
                                                 f"s3://{s3.bucket}/docs/sub/b.md"]
    counts = service.run_worker(store, runtime, idle_exit_s=0, poll_s=0.01)
    assert counts.get("SUCCEEDED") == 2
    for name, out in (("a.md", "out/a.fra_Latn.md"), ("sub/b.md", "out/sub/b.fra_Latn.md")):
        assert s3.fs.cat(f"{s3.bucket}/{out}") == local_output(
            tmp_path / name.replace("/", "_"), Path(name).name, DOCS[name], trained_model)


def test_a_missing_bucket_fails_at_once_with_a_clear_message(s3, tmp_path, trained_model):
    doc = tmp_path / "a.md"
    doc.write_bytes(DOCS["a.md"])
    proc = run_cli("translate", str(doc), "--to", "s3://no-such-bucket-here/out/", "--src",
                   "eng_Latn", "--tgt", "fra_Latn", "--model", str(trained_model),
                   db=tmp_path / "jobs.db", check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bucket 'no-such-bucket-here' does not exist" in lines[0]
    assert not (tmp_path / "jobs.db").exists() or Store(tmp_path / "jobs.db").jobs() == []


def test_a_missing_object_is_refused_before_any_job(s3, tmp_path, trained_model):
    proc = run_cli("translate", f"s3://{s3.bucket}/docs/none.md", "--src", "eng_Latn", "--tgt",
                   "fra_Latn", "--model", str(trained_model), db=tmp_path / "jobs.db",
                   check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"nllb-pipeline: error: input object not found: s3://{s3.bucket}/docs/none.md"]


@pytest.mark.parametrize("data, what", [(b"", "empty"), (b"42", "without any words")])
def test_an_object_without_words_is_refused_before_any_job(s3, tmp_path, data, what):
    """Short of the Parquet magic's 4 bytes, not even a range is read."""
    s3.fs.pipe(f"{s3.bucket}/docs/short.md", data)
    with pytest.raises(InvalidInput) as info:
        scan_input(f"s3://{s3.bucket}/docs/short.md")
    assert str(info.value) == f"s3://{s3.bucket}/docs/short.md is {what}: nothing to translate"


def test_a_presigned_url_keeps_its_signature_out_of_the_job(s3, tmp_path, trained_model):
    import boto3
    from botocore.config import Config

    from pipeline import views

    s3.fs.pipe(f"{s3.bucket}/docs/a.md", DOCS["a.md"])
    client = boto3.client("s3", config=Config(signature_version="s3v4"))
    signed = client.generate_presigned_url(
        "put_object", Params={"Bucket": s3.bucket, "Key": "signed/a.md"}, ExpiresIn=600)
    signature = signed.split("X-Amz-Signature=")[1].split("&")[0]
    db = tmp_path / "jobs.db"
    store = Store(db)
    job = service.translate_or_resume(store, scan_input(f"s3://{s3.bucket}/docs/a.md"),
                                      options(trained_model, to=signed), fake_runtime()).job
    assert job.state == "SUCCEEDED"
    assert s3.fs.cat(f"{s3.bucket}/signed/a.md") == local_output(
        tmp_path, "a.md", DOCS["a.md"], trained_model)
    assert "X-Amz-Signature=REDACTED" in job.params
    shown = str(views.job_detail(store, store.job(job.id), 0.0))  # show --json and the API
    assert "X-Amz-Signature=REDACTED" in shown
    blob = database_bytes(db)
    for secret in (signature, ACCESS_KEY, SECRET_KEY):
        assert secret.encode() not in blob and secret not in shown


def test_a_queued_presigned_job_needs_the_whole_url_from_its_worker(s3, tmp_path,
                                                                    trained_model):
    import boto3
    from botocore.config import Config

    s3.fs.pipe(f"{s3.bucket}/docs/a.md", DOCS["a.md"])
    signed = boto3.client("s3", config=Config(signature_version="s3v4")).generate_presigned_url(
        "put_object", Params={"Bucket": s3.bucket, "Key": "signed/a.md"}, ExpiresIn=600)
    store = Store(tmp_path / "jobs.db")
    [submitted] = service.submit_paths(store, [f"s3://{s3.bucket}/docs/a.md"],
                                       options(trained_model, to=signed))
    service.run_worker(store, fake_runtime(), idle_exit_s=0, poll_s=0.01)
    failed = store.job(submitted.job.id)
    assert failed.state == "FAILED" and "--signed-url" in failed.error_message
    assert failed.stage == "preprocess"  # refused before any work
    runtime = fake_runtime()
    runtime.delivery = DeliveryOptions(signed_urls=(signed,))
    assert service.retry(store, failed.id, runtime).job.state == "SUCCEEDED"
    assert s3.fs.cat(f"{s3.bucket}/signed/a.md") == local_output(
        tmp_path, "a.md", DOCS["a.md"], trained_model)


def test_the_config_files_storage_section_names_the_endpoint(s3, tmp_path, monkeypatch,
                                                              trained_model):
    """Submitting a prefix through the command line, with the endpoint from
    ``[storage.s3]`` and none in the environment."""
    for name, data in DOCS.items():
        s3.fs.pipe(f"{s3.bucket}/docs/{name}", data)
    config = tmp_path / "config.toml"
    config.write_text(f'[storage.s3]\nendpoint_url = "{s3.server.endpoint}"\n')
    monkeypatch.setenv("NLLB_PIPELINE_CONFIG", str(config))
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    db = tmp_path / "jobs.db"
    proc = run_cli("submit", f"s3://{s3.bucket}/docs/", "--glob", "*.md", "--to",
                   f"s3://{s3.bucket}/out/", "--src", "eng_Latn", "--tgt", "fra_Latn",
                   "--model", str(trained_model), "--json", db=db)
    queued = json.loads(proc.stdout)
    assert [q["input"] for q in queued] == [f"s3://{s3.bucket}/docs/a.md",
                                            f"s3://{s3.bucket}/docs/sub/b.md"]
    assert sorted(j.output_path for j in Store(db).jobs()) == [
        f"s3://{s3.bucket}/out/a.fra_Latn.md", f"s3://{s3.bucket}/out/sub/b.fra_Latn.md"]
