"""The command line in-process: ``pipeline.cli.main([...])`` with capsys."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from pipeline.cli import main
from pipeline.languages import FLORES_CODES

DOC = "Good morning.\n\nHello world. It is raining.\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def translated(tiny_model, tmp_path_factory):
    """One small document translated once with the tiny model: (db, job id, output path)."""
    base = tmp_path_factory.mktemp("cli")
    src = base / "note.txt"
    src.write_text(DOC)
    db = base / "jobs.db"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(io.StringIO()):
        mp.setenv("HF_HUB_OFFLINE", "1")
        code = main(["--db", str(db), "translate", str(src), "--src", "eng_Latn", "--tgt",
                     "fra_Latn", "--model", str(tiny_model), "--beams", "1", "--json"])
    assert code == 0, out.getvalue()
    result = json.loads(out.getvalue())
    return db, result["job"], base / "note.fra_Latn.txt"


def test_status_on_an_empty_database(capsys, tmp_path):
    from pipeline.store import Store

    Store(tmp_path / "jobs.db").close()
    code, out, err = run(capsys, "--db", str(tmp_path / "jobs.db"), "status")
    assert (code, out, err) == (0, "no jobs\n", "")
    code, out, _ = run(capsys, "--db", str(tmp_path / "jobs.db"), "status", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_status_uses_the_database_from_the_environment(capsys, tmp_path, monkeypatch, translated):
    db, job_id, _ = translated
    monkeypatch.setenv("NLLB_PIPELINE_DB", str(db))
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and [r["job"] for r in json.loads(out)] == [job_id]


def test_status_lists_a_finished_job(capsys, translated):
    db, job_id, output = translated
    code, out, err = run(capsys, "--db", str(db), "status", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["job"] == job_id
    assert (row["state"], row["stage"], row["percent"], row["error"]) == (
        "SUCCEEDED", "done", 100.0, None)
    assert row["input"] == str(output.with_name("note.txt"))

    code, out, _ = run(capsys, "--db", str(db), "status")
    summary, line = out.splitlines()[:2]
    assert summary == "documents 1/1 done; queued 0; running on: none"
    assert line.startswith(f"{job_id}  SUCCEEDED    done         100.0%  ")
    # the target language, then where it came from and where it went
    assert line.endswith(f"  fra_Latn  {output.with_name('note.txt')} -> {output}"), line


def test_show_json_has_params_stages_chunks_and_output(capsys, translated, tiny_model):
    db, job_id, output = translated
    code, out, err = run(capsys, "--db", str(db), "show", job_id[:6], "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["job"] == job_id
    assert (info["state"], info["stage"]) == ("SUCCEEDED", "done")
    assert info["output"] == str(output) and output.is_file()
    params = info["params"]
    assert (params["model"], params["src_lang"], params["tgt_lang"], params["beams"],
            params["fmt"]) == (str(tiny_model), "eng_Latn", "fra_Latn", 1, "text")
    assert [s["stage"] for s in info["stages"]] == [
        "preprocess", "inference", "postprocess", "upload"]
    assert all(isinstance(s["wall_s"], float) and s["wall_s"] >= 0 for s in info["stages"])
    # Random weights never stop: at the default --quality repair each of the
    # three sentences was decoded again with the guard (a new chunk row, so
    # each is committed once), could not be split (too short) and was flagged.
    assert info["chunks"] == {"done": 3, "replaced": 3}
    assert info["quality"]["mode"] == "repair"
    repairs, flags = info["quality"]["repairs"], info["quality"]["flags"]
    assert sum(repairs.values()) == 3 == sum(flags.values())
    assert set(repairs) | set(flags) <= {"budget", "loop", "length", "script", "copy"}
    assert [c["source"] for c in info["quality"]["flagged"]] == [
        "Good morning.", "Hello world.", "It is raining."]
    assert info["placeholders"] == {"protected": 0, "fallbacks": 0,
                                    "unknown": {"pieces": 0, "texts": {}}}
    assert info["failed_chunks"] == [] and info["error"] is None
    assert len(info["input_sha256"]) == 64 and len(info["idempotency_key"]) == 64


def test_show_text(capsys, translated):
    db, job_id, output = translated
    code, out, _ = run(capsys, "--db", str(db), "show", job_id)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"job {job_id}  SUCCEEDED  (stage: done, 100.0%)"
    assert f"  output: {output}" in lines
    assert ("  chunks: 3 of 3 done, 0 failed, 0 pending; 3 split by the quality ladder into 3 "
            "pieces, each counted as a chunk") in lines
    assert any(line.startswith("  quality: repair; repairs: ") and "; flags: " in line
               for line in lines)
    flagged = [line for line in lines if line.startswith("  flagged chunk ")]
    assert len(flagged) == 3 and flagged[0].endswith("): 'Good morning.'")
    assert sum(line.lstrip().startswith(("preprocess", "inference", "postprocess", "upload"))
               for line in lines) == 4


def test_show_unknown_job_is_a_one_line_error(capsys, tmp_path):
    from pipeline.store import Store

    Store(tmp_path / "jobs.db").close()
    code, out, err = run(capsys, "--db", str(tmp_path / "jobs.db"), "show", "nope")
    assert code == 2
    assert out == ""
    assert err == "nllb-pipeline: error: no job 'nope' (see 'nllb-pipeline status')\n"


def test_languages_prints_the_202_codes(capsys):
    code, out, _ = run(capsys, "languages")
    assert code == 0
    assert out.splitlines() == list(FLORES_CODES)
    assert len(out.splitlines()) == 202


def test_bad_language_fails_before_anything_is_stored(capsys, tmp_path):
    src = tmp_path / "a.txt"
    src.write_text(DOC)
    db = tmp_path / "jobs.db"
    code, out, err = run(capsys, "--db", str(db), "translate", str(src), "--src", "en",
                         "--tgt", "fra_Latn")
    assert code == 2
    assert err == "nllb-pipeline: error: unknown language code 'en' (did you mean eng_Latn?)\n"
    assert not db.exists()


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, _ = run(capsys)
    assert code == 2
    assert "usage: nllb-pipeline" in out


def test_demo_translates_then_finds_nothing_to_do(capsys, tmp_path, monkeypatch,
                                                  trained_model):
    # The demo runs the committed trained model (models/data/trained-tiny).
    from models.trained import invented_translation

    monkeypatch.chdir(tmp_path)

    code, out, err = run(capsys, "demo", "--output-dir", "demo", "--json")
    assert code == 0, err
    first = json.loads(out)
    translated = tmp_path / "demo" / "sample.fra_Latn.md"
    assert first["state"] == "SUCCEEDED" and first["note"] is None
    assert first["output"] == str(translated)
    text = translated.read_text()
    # Code and link targets pass through untouched, and the prose is the
    # invented language's: the model's answer to its own task.
    assert "```ini\n[beacon]\npattern = short,short,long\nperiod_s = 10\n```" in text
    assert "(https://example.org/lighthouse/rules)" in text
    title = (tmp_path / "demo" / "sample.md").read_text().splitlines()[0]
    assert title == "# Field guide to the harbour lighthouse"
    assert text.splitlines()[0] == "# " + invented_translation(trained_model, title[2:])
    assert (tmp_path / "demo" / "sample.md").is_file()
    mtime = translated.stat().st_mtime_ns

    code, out, err = run(capsys, "demo", "--output-dir", "demo", "--json")
    assert code == 0, err
    second = json.loads(out)
    assert second["note"] == "already translated; nothing to do"
    assert second["job"] == first["job"]
    assert translated.stat().st_mtime_ns == mtime


def test_show_includes_the_delivery_receipt(tmp_path, capsys, tiny_model):
    import hashlib

    src = tmp_path / "d.txt"
    src.write_text("One sentence to deliver.\n")
    db = str(tmp_path / "j.db")
    assert main(["--db", db, "translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 "--model", str(tiny_model), "--beams", "1", "--json"]) == 0
    job = json.loads(capsys.readouterr().out)["job"]
    assert main(["--db", db, "show", job, "--json"]) == 0
    delivery = json.loads(capsys.readouterr().out)["delivery"]
    out = tmp_path / "d.fra_Latn.txt"
    assert delivery["target"] == str(out)
    assert delivery["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert main(["--db", db, "show", job]) == 0
    assert f"delivered: {out}" in capsys.readouterr().out


def test_bench_times_each_stage_per_size_and_feeds_the_profile_history(tmp_path, capsys,
                                                                       tiny_model):
    db = str(tmp_path / "bench.db")
    assert main(["--db", db, "bench", "--model", str(tiny_model), "--sizes", "12,4",
                 "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    assert [r["sentences"] for r in rows] == [4, 12]
    for row in rows:
        shares = [row["stages"][s]["share"] for s in ("preprocess", "inference", "postprocess",
                                                      "upload")]
        assert sum(shares) == pytest.approx(1.0)
        assert row["stages"]["inference"]["units"] > 0
    assert set(report["growth_exponents"]) == {"preprocess", "inference", "postprocess", "upload"}
    assert main(["--db", db, "profile", "--json"]) == 0
    profiles = json.loads(capsys.readouterr().out)
    assert len(profiles) == 1 and profiles[0]["jobs"] == 2


def test_bench_refuses_bad_sizes(tmp_path, capsys):
    assert main(["--db", str(tmp_path / "b.db"), "bench", "--sizes", "ten"]) == 2
    assert "--sizes takes sentence counts" in capsys.readouterr().err


def test_an_ambiguous_id_prefix_names_the_candidates(capsys, tmp_path):
    from collections import defaultdict

    from pipeline.store import Store

    db = tmp_path / "jobs.db"
    store = Store(db)
    for i in range(20):  # 20 hex ids: some first digit starts two of them
        store.get_or_create_job(idem_key=f"k{i}", params="{}", input_path=f"/in/doc{i}.txt",
                                input_sha256="h", input_bytes=1, output_path="/o")
    by_first = defaultdict(list)
    for job in store.jobs(100):
        by_first[job.id[0]].append(job)
    store.close()
    prefix, jobs = max(by_first.items(), key=lambda item: len(item[1]))
    assert len(jobs) >= 2
    for argv in (["show", prefix], ["logs", prefix], ["cancel", prefix], ["retry", prefix]):
        code, out, err = run(capsys, "--db", str(db), *argv)
        assert (code, out) == (2, ""), argv
        [line] = err.splitlines()
        assert line.startswith(f"nllb-pipeline: error: job id {prefix!r} is ambiguous: it "
                               "starts "), line
        shown = sorted(jobs, key=lambda j: j.id)[:5]
        assert all(f"{j.id} ({j.input_path.rsplit('/', 1)[1]})" in line for j in shown)
        assert line.endswith("; give more of the id") or line.endswith(
            "and more; give more of the id")
    # a unique prefix still names its job, and no match is still "no job"
    code, out, _ = run(capsys, "--db", str(db), "show", jobs[0].id[:8], "--json")
    assert code == 0 and json.loads(out)["job"] == jobs[0].id
    code, _, err = run(capsys, "--db", str(db), "show", "zz")
    assert code == 2 and err == "nllb-pipeline: error: no job 'zz' (see 'nllb-pipeline status')\n"


def _stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))


def test_translate_dash_reads_standard_input_and_writes_standard_output_as_a_job(
        capsys, monkeypatch, tmp_path, tiny_model):
    db = tmp_path / "jobs.db"
    argv = ["--db", str(db), "translate", "-", "--src", "eng_Latn", "--tgt", "fra_Latn",
            "--model", str(tiny_model), "--beams", "1", "--no-progress"]
    _stdin(monkeypatch, DOC)
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    # the report goes to stderr (after the conversion's notes): stdout holds the translation
    line = err.splitlines()[-1]
    job_id = re.fullmatch(r"job ([0-9a-f]{12}): SUCCEEDED -> standard output", line).group(1)
    assert out.count("\n") == DOC.count("\n") and out != DOC  # three paragraphs, translated

    # the same content again is the same job: nothing translated, the same bytes printed
    _stdin(monkeypatch, DOC)
    code, again, err = run(capsys, *argv)
    assert (code, again) == (0, out)
    assert err == f"job {job_id}: SUCCEEDED -> standard output (already translated; nothing to " \
                  "do)\n"
    # collected by gc, it is translated again and printed
    assert main(["--db", str(db), "gc", "--older-than", "0"]) == 0
    capsys.readouterr()
    _stdin(monkeypatch, DOC)
    code, collected, err = run(capsys, *argv)
    assert (code, collected) == (0, out) and "(resumed)" in err
    # other content is another job; --json goes to stderr too
    _stdin(monkeypatch, "Another text.\n")
    code, other, err = run(capsys, *argv, "--json")
    assert code == 0 and json.loads(err)["job"] != job_id and other.strip()

    from pipeline.store import Store

    store = Store(db)
    inputs = [j.input_path for j in store.jobs(10)]
    assert len(inputs) == 2 and all(p.endswith("/stdin.txt") for p in inputs)
    assert all(j.output_path == "-" for j in store.jobs(10))
    assert not list(tmp_path.glob("*.fra_Latn.*"))  # nothing written next to anything


def test_dash_o_writes_a_file_input_to_standard_output(capsys, tmp_path, tiny_model):
    src = tmp_path / "note.txt"
    src.write_text(DOC)
    code, out, err = run(capsys, "--db", str(tmp_path / "jobs.db"), "translate", str(src),
                         "--src", "eng_Latn", "--tgt", "fra_Latn", "--model", str(tiny_model),
                         "--beams", "1", "--no-progress", "-o", "-")
    assert code == 0 and err.endswith("SUCCEEDED -> standard output\n")
    assert out.count("\n") == DOC.count("\n")
    assert not (tmp_path / "note.fra_Latn.txt").exists()
    code, status, _ = run(capsys, "--db", str(tmp_path / "jobs.db"), "status")
    assert status.splitlines()[1].endswith(f"  {src} -> standard output")


@pytest.mark.parametrize("data, reason", [(b"", "is empty"), (b"\x00\x01\x02" * 50, "binary")])
def test_bad_standard_input_is_one_line_and_leaves_nothing(capsys, monkeypatch, tmp_path,
                                                           tiny_model, data, reason):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = run(capsys, "--db", str(tmp_path / "jobs.db"), "translate", "-", "--src",
                         "eng_Latn", "--tgt", "fra_Latn", "--model", str(tiny_model))
    assert (code, out) == (2, "")
    assert err.startswith("nllb-pipeline: error: ") and reason in err and len(
        err.splitlines()) == 1
    assert not list((tmp_path / "jobs-work" / "stdin").iterdir())
