"""Warnings and errors on stderr share one format, ours and the libraries'
(issue 20): ``nllb-pipeline: warning: ...``, timestamps only with ``-v`` or
``--log-format json``, and each record once."""

from __future__ import annotations

import json
import logging
import re

import pytest

from pipeline.cli import main
from pipeline.cli.messages import configure

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


# The CLI installs its handlers on the root logger; each test gets it back as it was.
pytestmark = pytest.mark.usefixtures("restore_root_logging")


def _translate(tmp_path, model, *extra):
    doc = tmp_path / "doc.txt"
    doc.write_text("Good morning.\n")
    return ["--db", str(tmp_path / "jobs.db"), "translate", str(doc), "--src", "eng_Latn",
            "--tgt", "fra_Latn", "--model", str(model), "--beams", "1", "--no-progress",
            "--inject-faults", "oom=0.0", *extra]


def test_a_warning_and_an_error_read_alike_without_timestamps(capsys, tmp_path, tiny_model):
    assert main(_translate(tmp_path, tiny_model)) == 0
    err = capsys.readouterr().err.splitlines()
    assert "nllb-pipeline: warning: fault injection is ON (oom=0.0,transient=0.0,seed=0); failures " \
           "are simulated" in err
    assert main(["--db", str(tmp_path / "jobs.db"), "show", "nope"]) == 2
    assert capsys.readouterr().err == (
        "nllb-pipeline: error: no job 'nope' (see 'nllb-pipeline status')\n")


def test_with_v_every_record_starts_with_its_time(capsys, tmp_path, tiny_model):
    assert main(_translate(tmp_path, tiny_model, "-v")) == 0
    err = capsys.readouterr().err.splitlines()
    records = [line for line in err if re.match(STAMP + "nllb-pipeline: ", line)]
    assert any(re.fullmatch(STAMP + r"nllb-pipeline: warning: fault injection is ON .*", line)
               for line in records)
    assert any(re.fullmatch(STAMP + r"nllb-pipeline: info: .*", line) for line in records)
    assert all(re.match(STAMP, line) for line in err), err


def test_json_logs_are_one_object_a_line_with_the_time(capsys, tmp_path, tiny_model):
    code = main(_translate(tmp_path, tiny_model, "--log-format", "json", "--no-progress"))
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    warning = next(r for r in records if r["level"] == "warning")
    assert warning["message"].startswith("fault injection is ON")
    assert isinstance(warning["time"], float) and warning["logger"] == "nllb_pipeline"
    assert main(["--db", str(tmp_path / "jobs.db"), "--log-format", "json", "show", "x"]) == 2
    [error] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (error["level"], error["message"]) == (
        "error", "no job 'x' (see 'nllb-pipeline status')")


@pytest.mark.parametrize("library", ["huggingface_hub", "transformers"])
def test_a_library_warning_goes_out_once_in_our_format(capsys, library):
    from models.hub import route_library_logs

    configure()
    route_library_logs()
    logging.getLogger(f"{library}.somewhere").warning("'[Errno -2] Name or service not known' "
                                                      "thrown while requesting HEAD ...")
    assert capsys.readouterr().err == ("nllb-pipeline: warning: '[Errno -2] Name or service "
                                       "not known' thrown while requesting HEAD ...\n")


def test_configure_again_replaces_its_handler_and_follows_stderr(capsys):
    configure()
    configure(verbose=True)
    logging.getLogger("nllb_pipeline").info("once")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and re.fullmatch(STAMP + "nllb-pipeline: info: once", err[0])
