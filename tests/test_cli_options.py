"""Options and errors where users meet them (issue 9, part 3): global options
in both places, every value checked where it enters with its source named,
read commands that never create a database, exit codes as the README says."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.settings import FAULTS_ENV, RETRY_ENV
from pipeline.store import Store
from tests.conftest import ROOT

DOC = "Good morning.\n\nHello world.\n"
# The fewest arguments each subcommand parses with. A new subcommand must be
# added here, so its global options are tested too.
MINIMAL = {
    "translate": ["doc.txt", "--src", "eng_Latn", "--tgt", "fra_Latn"],
    "submit": ["doc.txt", "--src", "eng_Latn", "--tgt", "fra_Latn"],
    "demo": [], "status": [], "stats": [], "profile": [], "show": ["JOB"], "bench": [],
    "retry": ["JOB"], "worker": [], "gc": ["--older-than", "1"], "cancel": ["JOB"],
    "delete": ["JOB"],
    "logs": ["JOB"], "languages": [], "tm": ["stats"], "serve": [], "review": ["JOB"],
    "eval": ["src.txt", "--ref", "ref.txt", "--src", "eng_Latn", "--tgt", "fra_Latn"],
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nllb-pipeline: error: "), err
    assert "internal error" not in lines[0] and "Traceback" not in err
    return lines[0]


def subcommands(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    parser = parser or build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


# The fewest arguments each of tm's subcommands parses with.
TM_MINIMAL = {"stats": [], "export": ["out.tmx"], "prune": ["--older-than", "1"],
              "import": ["in.tmx", "--model", "m", "--src", "eng_Latn", "--tgt", "fra_Latn"]}


def every_command() -> dict[tuple[str, ...], tuple[argparse.ArgumentParser, list[str]]]:
    """Every command line's parser, ``tm``'s subcommands included, by the
    words that name it, with its minimal arguments."""
    out = {}
    for name, parser in subcommands().items():
        if name == "tm":
            assert set(subcommands(parser)) == set(TM_MINIMAL)
            for sub, p in subcommands(parser).items():
                out[("tm", sub)] = (p, TM_MINIMAL[sub])
        else:
            out[(name,)] = (parser, MINIMAL[name])
    return out


# -- global options ---------------------------------------------------------------


def test_the_minimal_arguments_cover_every_subcommand():
    assert set(MINIMAL) == set(subcommands())


@pytest.mark.parametrize("command", sorted(MINIMAL))
def test_global_options_before_and_after_every_subcommand(command):
    given = ["--db", "/x/j.db", "--config", "/x/c.toml", "--debug", "-v"]
    for argv in ([*given, command, *MINIMAL[command]], [command, *MINIMAL[command], *given]):
        args = build_parser().parse_args(argv)
        assert (args.command, args.db, args.config, args.debug, args.verbose) == (
            command, Path("/x/j.db"), Path("/x/c.toml"), True, True), argv
    # unset, the defaults hold in both places; one given before is not reset after
    args = build_parser().parse_args([command, *MINIMAL[command]])
    assert (args.db, args.config, args.debug, args.verbose) == (None, None, False, False)
    args = build_parser().parse_args(["--db", "/x/j.db", command, *MINIMAL[command], "-v"])
    assert (args.db, args.verbose) == (Path("/x/j.db"), True)


def test_db_after_the_subcommand_really_is_the_database_used(capsys, tmp_path):
    db = tmp_path / "jobs.db"
    store = Store(db)
    store.get_or_create_job(idem_key="k", params="{}", input_path="/in/a.txt",
                            input_sha256="h", input_bytes=1, output_path="/o")
    store.close()
    for argv in (["--db", str(db), "status", "--json"], ["status", "--json", "--db", str(db)]):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        assert [r["input"] for r in json.loads(out)] == ["/in/a.txt"]


def test_languages_json(capsys):
    code, out, _ = run(capsys, "languages", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 202
    assert {"code": "fra_Latn", "name": "French"} in rows


# -- values checked where they enter ----------------------------------------------


@pytest.fixture
def doc(tmp_path) -> Path:
    path = tmp_path / "doc.txt"
    path.write_text(DOC)
    return path


def translate_args(doc: Path, model, *extra: str) -> list[str]:
    return ["--db", str(doc.parent / "jobs.db"), "translate", str(doc), "--src", "eng_Latn",
            "--tgt", "fra_Latn", "--model", str(model), "--beams", "1", "--no-progress", *extra]


@pytest.mark.parametrize("extra, message", [
    (["--retry", "base=nan"], "--retry: base must be a finite number, not 'nan'"),
    (["--retry", "cap=inf"], "--retry: cap must be a finite number, not 'inf'"),
    (["--retry", "chunk_attempts=0"], "--retry: chunk_attempts must be >= 1, not 0"),
    (["--retry", "server=2.5"], "--retry: server must be an integer, not '2.5'"),
    (["--batch-tokens", "0"], "--batch-tokens must be >= 1, not 0"),
    (["--threads", "-3"], "--threads must be >= 0, not -3"),
    (["--threads", "x"], "--threads must be an integer, not 'x'"),
    (["--length-ratio", "nan"], "--length-ratio must be a finite number > 0, not nan"),
    (["--http-timeout", "inf"], "--http-timeout must be a finite number > 0, not inf"),
    (["--beams", "0"], "--beams must be between 1 and 16, not 0"),
    (["--inject-faults", "oom=lots"], "--inject-faults: bad fault spec 'oom=lots'"),
])
def test_bad_flags_are_one_line_exit_2_naming_the_flag(capsys, doc, tiny_model, extra, message):
    code, out, err = run(capsys, *translate_args(doc, tiny_model, *extra))
    assert code == 2
    assert one_error_line(err).startswith(f"nllb-pipeline: error: {message}")
    assert not (doc.parent / "jobs.db").exists()  # refused before anything was stored


@pytest.mark.parametrize("env, value, message", [
    (RETRY_ENV, "base=nan", f"${RETRY_ENV}: base must be a finite number, not 'nan'"),
    (FAULTS_ENV, "oom=lots", f"${FAULTS_ENV}: bad fault spec 'oom=lots'"),
])
def test_bad_environment_values_name_the_variable(capsys, doc, tiny_model, monkeypatch, env,
                                                  value, message):
    monkeypatch.setenv(env, value)
    code, _, err = run(capsys, *translate_args(doc, tiny_model))
    assert code == 2 and message in one_error_line(err)


@pytest.mark.parametrize("section, message", [
    ('[run]\nthreads = "x"\n', "[run] threads must be an integer, not 'x'"),
    ("[run]\nthreads = -3\n", "[run] threads must be >= 0, not -3"),
    ("[run]\nbatch_tokens = 0\n", "[run] batch_tokens must be >= 1, not 0"),
    ("[run]\nthreads = true\n", "[run] threads must be an integer, not True"),
    ("[run]\ndevice = 5\n", "[run] device must be a string, not 5"),
    ("[run]\ndevice = \"gpu\"\n", "[run] device: unknown device 'gpu'"),
    ("[run]\nspeed = 1\n", "[run] has unknown key(s) speed"),
    ('[retry]\nbase = "nan"\n', "[retry] base must be a finite number, not 'nan'"),
    ("[retry]\ncap = inf\n", "[retry] cap must be a finite number, not inf"),
    ("[retry]\nchunk_attempts = 2.5\n", "[retry] chunk_attempts must be an integer, not 2.5"),
])
def test_bad_config_values_name_the_file_and_section(capsys, doc, tiny_model, tmp_path, section,
                                                      message):
    conf = tmp_path / "config.toml"
    conf.write_text(section)
    code, _, err = run(capsys, "--config", str(conf), *translate_args(doc, tiny_model))
    assert code == 2
    assert one_error_line(err).startswith(f"nllb-pipeline: error: config file {conf}: {message}")


def test_config_from_the_environment_names_its_path(capsys, doc, tiny_model, tmp_path,
                                                    monkeypatch):
    conf = tmp_path / "env-config.toml"
    conf.write_text('[run]\nthreads = "x"\n')
    monkeypatch.setenv("NLLB_PIPELINE_CONFIG", str(conf))
    code, _, err = run(capsys, *translate_args(doc, tiny_model))
    assert code == 2
    assert f"config file {conf}: [run] threads must be an integer" in one_error_line(err)


def test_flags_override_the_config_file_and_unset_flags_do_not(tmp_path):
    from pipeline.cli.options import settings_of

    def run_settings(args):
        return settings_of(args).run

    conf = tmp_path / "config.toml"
    conf.write_text('[run]\ndevice = "cpu"\nthreads = 2\nbatch_tokens = 512\n')
    args = build_parser().parse_args(["--config", str(conf), "worker"])
    assert run_settings(args) == run_settings(args).__class__(device="cpu", threads=2,
                                                              batch_tokens=512)
    args = build_parser().parse_args(["--config", str(conf), "worker", "--threads", "0",
                                      "--device", "auto"])
    settings = run_settings(args)
    assert (settings.threads, settings.device, settings.batch_tokens) == (0, "auto", 512)


def test_every_number_flag_is_checked_and_no_float_flag_takes_nan_or_inf(capsys):
    """Walks the parser: no option is a bare int or float (argparse would
    take -3, nan and inf); every float option refuses nan and inf."""
    floats = []
    for words, (sub, _) in every_command().items():
        for action in sub._actions:
            assert action.type not in (int, float), (words, action.option_strings)
            if getattr(action.type, "finite", False):
                floats.append((words, action.option_strings[-1]))
    assert {flag for _, flag in floats} >= {"--length-ratio", "--http-timeout", "--since",
                                            "--idle-exit", "--older-than"}
    assert (("tm", "prune"), "--older-than") in floats  # refused like gc's
    for words, flag in floats:
        for bad in ("nan", "inf", "-inf"):
            argv = [*words, *every_command()[words][1], f"{flag}={bad}"]
            code, _, err = run(capsys, *argv)
            assert code == 2, argv
            assert f"{flag} must be a finite number" in one_error_line(err), argv


def test_stats_since_negative_is_refused(capsys, tmp_path):
    Store(tmp_path / "j.db").close()
    code, out, err = run(capsys, "--db", str(tmp_path / "j.db"), "stats", "--since", "-5")
    assert (code, out) == (2, "")
    assert one_error_line(err).startswith(
        "nllb-pipeline: error: --since must be a finite number >= 0, not -5")


def test_a_bad_fault_spec_is_refused_even_when_the_job_is_already_done(capsys, doc,
                                                                       tiny_model):
    assert main(translate_args(doc, tiny_model)) == 0
    capsys.readouterr()
    code, out, err = run(capsys, *translate_args(doc, tiny_model, "--inject-faults", "oom=lots"))
    assert (code, out) == (2, "")
    assert "--inject-faults: bad fault spec 'oom=lots'" in one_error_line(err)
    # and without it the same command finds the job done
    code, out, _ = run(capsys, *translate_args(doc, tiny_model))
    assert code == 0 and "already translated" in out


def test_the_fault_spec_is_parsed_without_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom pipeline.faults import FaultSpec\n"
            "print(FaultSpec.parse('oom=0.5,seed=3'), 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "oom=0.5,transient=0.0,seed=3 False", proc.stderr


# -- read commands never create a database ----------------------------------------

READS = [["status"], ["show", "abc"], ["logs", "abc"], ["stats"], ["profile"],
         ["cancel", "abc"], ["retry", "abc"], ["gc", "--older-than", "1"],
         ["tm", "stats"], ["tm", "export", "out.tmx"], ["tm", "prune", "--older-than", "1"]]


@pytest.mark.parametrize("argv", READS, ids=lambda a: " ".join(a[:2]))
def test_a_read_on_a_db_that_does_not_exist_says_so(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "typo" / "jobs.db"
    code, out, err = run(capsys, "--db", str(db), *argv)
    assert (code, out) == (2, "")
    assert one_error_line(err).startswith(
        f"nllb-pipeline: error: job database not found: {db} (from --db)")
    monkeypatch.setenv("NLLB_PIPELINE_DB", str(db))
    code, out, err = run(capsys, *argv)
    assert code == 2 and "(from $NLLB_PIPELINE_DB)" in one_error_line(err)
    assert not (tmp_path / "typo").exists()  # neither the file nor its directory
    assert not (tmp_path / "out.tmx").exists()  # nor an export of nothing


def test_the_default_db_that_does_not_exist_yet_reads_as_no_jobs(capsys, tmp_path,
                                                                  monkeypatch):
    monkeypatch.delenv("NLLB_PIPELINE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert run(capsys, "status") == (0, "no jobs\n", "")
    code, out, _ = run(capsys, "tm", "stats", "--json")
    assert code == 0 and json.loads(out)["units"] == 0
    code, _, err = run(capsys, "show", "abc")
    assert code == 2 and "no job 'abc'" in one_error_line(err)
    assert not (tmp_path / "data").exists()  # a first 'status' creates nothing


# -- outputs that cannot be written are found first ------------------------------


def test_an_output_that_cannot_be_written_is_refused_before_translating(capsys, doc,
                                                                         tiny_model):
    # /proc is a directory that even root cannot create files in; os.access says yes to root
    code, out, err = run(capsys, *translate_args(doc, tiny_model, "-o", "/proc/x.md"))
    assert (code, out) == (2, "")
    assert one_error_line(err).startswith(
        "nllb-pipeline: error: cannot write output: /proc is not writable")
    db = doc.parent / "jobs.db"
    assert not db.exists() or Store(db).jobs(10) == []  # no job was created


def test_a_utf16_file_is_named_as_such_on_the_command_line(capsys, tmp_path, tiny_model):
    src = tmp_path / "notes.txt"
    src.write_bytes(DOC.encode("utf-16"))
    code, _, err = run(capsys, *translate_args(src, tiny_model))
    line = one_error_line(err)
    assert code == 2 and "is UTF-16 (little-endian) text, not UTF-8" in line
    assert "iconv -f UTF-16LE -t UTF-8 'notes.txt'" in line and "binary" not in line


# -- exit codes ---------------------------------------------------------------------


def submit_args(tmp_path, model, *inputs: str) -> list[str]:
    return ["--db", str(tmp_path / "jobs.db"), "submit", *inputs, "--src", "eng_Latn", "--tgt",
            "fra_Latn", "--model", str(model), "--beams", "1"]


def test_submit_of_a_missing_file_is_exit_2(capsys, tmp_path, tiny_model):
    code, out, err = run(capsys, *submit_args(tmp_path, tiny_model, str(tmp_path / "nope.txt")))
    assert code == 2 and out == ""
    assert f"input file not found: {tmp_path / 'nope.txt'}" in err


def test_submit_of_a_directory_that_matches_nothing_says_so(capsys, tmp_path, tiny_model):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(DOC)
    code, out, err = run(capsys, *submit_args(tmp_path, tiny_model, str(docs)), "--glob", "*.md")
    assert (code, out) == (2, "")
    assert err == f"nllb-pipeline: error: {docs}: no file matches '*.md' in this directory\n"
    code, out, _ = run(capsys, *submit_args(tmp_path, tiny_model, str(docs)), "--json")
    assert code == 0 and len(json.loads(out)) == 1  # with a match it queues


def test_a_worker_whose_job_failed_exits_1(capsys, tmp_path, tiny_model):
    (tmp_path / "a.txt").write_text(DOC)
    assert main(submit_args(tmp_path, tiny_model, str(tmp_path / "a.txt"))) == 0
    (tmp_path / "a.fra_Latn.txt").write_text("someone else's file\n")  # delivery will be refused
    capsys.readouterr()
    code, out, _ = run(capsys, "--db", str(tmp_path / "jobs.db"), "worker", "--max-jobs", "1",
                       "--threads", "1")
    assert (code, out) == (1, "worker done: 1 FAILED\n")
    code, out, _ = run(capsys, "--db", str(tmp_path / "jobs.db"), "worker", "--idle-exit", "0")
    assert (code, out) == (0, "worker done: no jobs\n")


# -- the README says which options go where -----------------------------------------


def readme_options(command: str) -> set[str]:
    text = (ROOT / "README.md").read_text()
    row = re.search(rf"^\| `{command}` \|(.*)\|$", text, re.MULTILINE)
    assert row, f"README has no options row for {command}"
    return set(re.findall(r"`(--[a-z][a-z-]*)`", row.group(1)))


@pytest.mark.parametrize("command", ["submit", "worker", "translate"])
def test_the_readme_lists_exactly_the_options_of_submit_worker_and_translate(command):
    parser = subcommands()[command]
    options = {s for a in parser._actions for s in a.option_strings if s.startswith("--")}
    assert readme_options(command) == options - {"--help", "--db", "--config", "--debug",
                                                 "--verbose", "--log-format"}
    if command == "submit":  # how jobs run is the worker's business, not a job's
        assert not options & {"--device", "--threads", "--batch-tokens", "--retry"}


def test_tm_import_takes_only_the_options_it_uses():
    parser, _ = every_command()[("tm", "import")]
    options = {s for a in parser._actions for s in a.option_strings if s.startswith("--")}
    # the unit's key (model, languages, output settings, what runs the model)
    # and the import's own; not how fast a job would run
    assert options - {"--help", "--db", "--config", "--debug", "--verbose", "--log-format"} == {
        "--model", "--src", "--tgt", "--beams", "--length-ratio", "--length-offset",
        "--quality", "--device", "--dtype", "--backend", "--tokenizer", "--replace", "--json"}


# -- run options are checked against the machine before a job exists --------------


@pytest.mark.parametrize("gpus, flags, message", [
    (0, ["--device", "cuda"], "--device cuda: no CUDA device is available (use cpu or auto)"),
    (1, ["--device", "cuda:1"], "--device cuda:1: only 1 CUDA device(s) present"),
    (0, ["--fallback-device", "cuda:0"], "--fallback-device cuda:0: no CUDA device is available"),
])
def test_a_device_the_machine_lacks_is_refused_before_a_job_exists(
        capsys, doc, tiny_model, monkeypatch, gpus, flags, message):
    monkeypatch.setattr("models.device.cuda_devices", lambda backend: gpus)  # what the libraries see
    db = doc.parent / "jobs.db"
    code, out, err = run(capsys, *translate_args(doc, tiny_model, *flags))
    assert (code, out) == (2, "")
    assert one_error_line(err).startswith(f"nllb-pipeline: error: {message}")
    assert not db.exists() or Store(db).jobs(10) == []  # nothing for a worker to run later
    # a worker with such a device claims nothing: a queued job stays queued
    assert main(submit_args(doc.parent, tiny_model, str(doc))) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "--db", str(db), "worker", "--idle-exit", "0", *flags)
    assert (code, out) == (2, "") and message in one_error_line(err)
    store = Store(db)
    [job] = store.jobs(10)
    assert (job.state, job.lease_owner, store.attempts(job.id)) == ("QUEUED", None, [])
    # nor does serve start workers that would each exit 2 and be restarted
    code, out, err = run(capsys, "--db", str(db), "serve", "--port", "0", *flags)
    assert (code, out) == (2, "") and message in one_error_line(err)


# -- help that says what each option takes --------------------------------------------


def test_every_positional_and_option_has_help_and_says_its_range():
    commands = dict(every_command())
    commands[()] = (build_parser(), [])
    for words, (parser, _) in commands.items():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = action.option_strings or action.dest
            assert action.help and action.help != argparse.SUPPRESS, (words, name)
            limits = getattr(action.type, "range", None)
            if limits:  # "1-16", ">= 0", "> 0": in the help, where a reader looks for it
                assert limits in action.help, (words, name, action.help)
    translate = every_command()[("translate",)][0].format_usage()
    assert "--beams 1-16" in translate and "--max-chunk-tokens 16-1024" in translate


def test_the_help_of_threads_names_both_backends_and_submit_to_names_its_own_o():
    options = {a.dest: a for a in every_command()[("translate",)][0]._actions}
    assert "CTranslate2" in options["threads"].help and "transformers" in options["threads"].help
    submit = {a.dest: a for a in every_command()[("submit",)][0]._actions}
    translate_to = options["to"].help
    assert "file:PATH (like -o)" in translate_to  # translate's -o is a file
    assert "dir:DIR (DIR/NAME.<tgt>.EXT, like -o)" in submit["to"].help  # submit's, a directory
    assert "file:PATH (like -o)" not in submit["to"].help


def test_version(capsys):
    from pipeline.config import package_version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"nllb-pipeline {package_version()}\n"


def test_eval_takes_translates_job_options_as_they_are_defined_once():
    """eval's language, model and decoding options are translate's own
    (add_language_options, add_model_option, add_decoding_options): the same
    type, default, choices and help; only --beams takes a list there."""
    commands = subcommands()

    def options(parser):
        return {a.dest: a for a in parser._actions if a.option_strings}

    translate, evaluate = options(commands["translate"]), options(commands["eval"])
    shared = {"src", "tgt", "model", "max_chunk_tokens", "length_ratio", "length_offset",
              "quality"}
    assert shared <= set(evaluate)
    def kind(t):  # at_least() and finite() build a new checker per option: compare its range
        return getattr(t, "range", t)

    for dest in shared:
        ours, theirs = evaluate[dest], translate[dest]
        assert (kind(ours.type), ours.default, ours.choices, ours.help, ours.metavar) == (
            kind(theirs.type), theirs.default, theirs.choices, theirs.help, theirs.metavar), dest
    assert evaluate["beams"].metavar == "N[,N...]" and translate["beams"].metavar == "1-16"
