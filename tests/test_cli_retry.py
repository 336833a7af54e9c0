"""The retry-facing CLI: a failed job, its logs, show, and retry."""

from __future__ import annotations

import json
import re

from pipeline.cli import main
from pipeline.runner import JobContext
from pipeline.samples import generate_text


def test_failed_job_logs_show_and_retry(tmp_path, capsys, tiny_model, monkeypatch):
    # A batch retry waits 2 s or more (--retry cannot shorten the batch
    # backoff): record the waits instead of sleeping them.
    waited = []
    monkeypatch.setattr(JobContext, "_sleep_answering",
                        lambda ctx, seconds: waited.append(seconds))
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(12, seed=21))
    db = str(tmp_path / "jobs.db")
    common = ["--model", str(tiny_model), "--beams", "1", "--length-ratio", "0.5",
              "--length-offset", "4", "--json"]
    code = main(["--db", db, "translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 *common, "--inject-faults", "transient=1.0,seed=3",
                 "--retry", "chunk_attempts=2,batch_retries=1,base=0,cap=0"])
    out, err = capsys.readouterr()
    assert code == 1
    result = json.loads(out)
    assert result["state"] == "FAILED"
    assert "fault injection is ON (oom=0.0,transient=1.0,seed=3)" in err
    job = result["job"]

    assert main(["--db", db, "show", job, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    n_chunks = sum(shown["chunks"].values())
    assert len(shown["failed_chunks"]) == n_chunks == shown["chunks"]["failed"]
    assert all(c["attempts"] == 4 and "device_transient" in c["last_error"]
               for c in shown["failed_chunks"])
    assert "failed for good" in shown["error"]["message"]

    assert main(["--db", db, "logs", job, "--json"]) == 0
    logs = json.loads(capsys.readouterr().out)
    chunk_tries = [entry for entry in logs if entry["chunk_idx"] is not None]
    assert len(chunk_tries) == 4 * n_chunks
    assert {e["decision"] for e in logs} >= {"retry", "give_up", "retry_batch", "skip"}
    batch_waits = [e["delay_s"] for e in logs if e["decision"] == "retry_batch"]
    assert len(waited) == len(batch_waits) and all(0 < w <= max(batch_waits) for w in waited)
    assert all(len(e["trace_id"]) == 8 for e in logs)
    assert main(["--db", db, "logs", job]) == 0
    text = capsys.readouterr().out
    assert f"[{logs[0]['trace_id']}] inference" in text

    code = main(["--db", db, "retry", job, "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    retried = json.loads(out)
    assert retried["state"] == "SUCCEEDED" and retried["note"] == f"retried {n_chunks} chunk(s)"
    assert (tmp_path / "doc.fra_Latn.txt").exists()


def test_retry_of_an_unknown_job_is_a_one_line_error(tmp_path, capsys):
    from pipeline.store import Store

    Store(tmp_path / "j.db").close()
    assert main(["--db", str(tmp_path / "j.db"), "retry", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nllb-pipeline: error: no job 'nope' (see 'nllb-pipeline status')"]


def test_bad_fault_and_retry_specs_are_refused_before_anything_runs(tmp_path, capsys, tiny_model):
    src = tmp_path / "doc.txt"
    src.write_text("Some words.\n")
    for flag, spec, message in [("--inject-faults", "oom=2", "--inject-faults: bad fault spec 'oom=2'"),
                                ("--retry", "cap=x", "--retry: cap must be a number, not 'x'")]:
        code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                     "--tgt", "fra_Latn", "--model", str(tiny_model), flag, spec])
        err = capsys.readouterr().err
        assert code == 2 and message in err
    assert not (tmp_path / "j.db").exists()  # refused before the database was even opened


def test_retry_limits_come_from_the_config_file_and_flags_override_it(tmp_path, monkeypatch):
    from pipeline.cli import build_parser as _parser
    from pipeline.cli.options import settings_of

    def _policy(args):
        return settings_of(args).retry
    from pipeline.errors import ErrorClass

    conf = tmp_path / "config.toml"
    conf.write_text("[retry]\nchunk_attempts = 5\ncap = 2.5\nserver = 7\n")
    monkeypatch.setenv("NLLB_PIPELINE_CONFIG", str(conf))
    args = _parser().parse_args(["retry", "job1"])
    policy = _policy(args)
    assert (policy.chunk_attempts, policy.backoff.cap_s, policy.limit(ErrorClass.SERVER, 3)) == (
        5, 2.5, 7)
    args = _parser().parse_args(["retry", "job1", "--retry", "chunk_attempts=2"])
    policy = _policy(args)
    assert (policy.chunk_attempts, policy.backoff.cap_s) == (2, 2.5)


def test_a_bad_config_file_is_a_one_line_error(tmp_path, capsys):
    conf = tmp_path / "config.toml"
    conf.write_text("[retry]\nchunk_attempts = = 5\n")
    src = tmp_path / "doc.txt"
    src.write_text("Words.\n")
    code = main(["--config", str(conf), "--db", str(tmp_path / "j.db"), "translate", str(src),
                 "--src", "eng_Latn", "--tgt", "fra_Latn", "--model", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot read config file" in err[0]


def test_a_translate_whose_job_is_canceled_while_it_runs_exits_1_and_says_so(
        capsys, tmp_path, monkeypatch, tiny_model):
    """The exit code the README's table gives a canceled job."""
    from pipeline.cli import translate
    from pipeline.progress import Events
    from pipeline.store import Store

    db = tmp_path / "jobs.db"

    class CancelWhenInferenceStarts(Events):
        def __init__(self, job_id):
            self.job_id = job_id

        def stage_started(self, stage, total, done=0.0):
            if stage == "inference":  # as 'nllb-pipeline cancel JOB' from another shell
                other = Store(db)
                other.request_cancel(self.job_id)
                other.close()

    monkeypatch.setattr(translate, "bar_unless",
                        lambda args: lambda store, job, tr: CancelWhenInferenceStarts(job.id))
    doc = tmp_path / "doc.txt"
    doc.write_text("Good morning.\n\nHello world.\n")
    code = main(["--db", str(db), "translate", str(doc), "--src", "eng_Latn", "--tgt",
                 "fra_Latn", "--model", str(tiny_model), "--beams", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert re.fullmatch(r"job [0-9a-f]{12}: CANCELED\n", out), out
