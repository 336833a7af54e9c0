"""--backend, --tokenizer, --fallback-device and --model forms on the command
line: where the settings come from, and what a user sees."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import build_parser, main
from pipeline.cli.options import settings_of
from pipeline.samples import generate_text


def settings_for(*argv):
    return settings_of(build_parser().parse_args(["retry", "job1", *argv])).run


def test_backend_settings_come_from_defaults_config_environment_then_flags(tmp_path,
                                                                           monkeypatch):
    for var in ("NLLB_PIPELINE_BACKEND", "NLLB_PIPELINE_TOKENIZER",
                "NLLB_PIPELINE_FALLBACK_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NLLB_PIPELINE_CONFIG", str(tmp_path / "none.toml"))
    s = settings_for()
    assert (s.backend, s.tokenizer, s.fallback_device, s.dtype) == ("auto", "", "", "auto")
    conf = tmp_path / "config.toml"
    conf.write_text('[run]\nbackend = "hf"\nfallback_device = "cpu"\ntokenizer = "/tok"\n'
                    'dtype = "float16"\n')
    monkeypatch.setenv("NLLB_PIPELINE_CONFIG", str(conf))
    s = settings_for()
    assert (s.backend, s.tokenizer, s.fallback_device, s.dtype) == ("hf", "/tok", "cpu",
                                                                    "float16")
    monkeypatch.setenv("NLLB_PIPELINE_BACKEND", "ctranslate2")
    assert settings_for().backend == "ctranslate2"
    s = settings_for("--backend", "hf", "--fallback-device", "cuda:1", "--tokenizer", "t")
    assert (s.backend, s.fallback_device, s.tokenizer) == ("hf", "cuda:1", "t")


def test_bad_backend_settings_are_one_line_errors_before_any_work(tmp_path, capsys, tiny_model):
    src = tmp_path / "doc.txt"
    src.write_text("Some words.\n")
    base = ["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
            "--tgt", "fra_Latn", "--model", str(tiny_model)]
    for extra, message in [(["--fallback-device", "tpu"], "unknown fallback device 'tpu'"),
                           (["--dtype", "int4"], "unknown dtype 'int4'"),
                           (["--backend", "hf", "--dtype", "int8"],
                            "--dtype int8 is a CTranslate2 compute type")]:
        code = main([*base, *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err


def test_a_directory_that_is_neither_model_kind_is_a_one_line_error(tmp_path, capsys):
    src = tmp_path / "doc.txt"
    src.write_text("Some words.\n")
    (tmp_path / "empty").mkdir()
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(tmp_path / "empty")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "is not a model directory" in err[0] and "CTranslate2" in err[0]


@pytest.mark.fresh_cache
def test_the_first_run_converts_and_says_so_the_second_does_not(tmp_path, capsys, tiny_model):
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(6, seed=3))
    for n, name in enumerate(("first", "second")):
        code = main(["--db", str(tmp_path / f"{name}.db"), "translate", str(src), "--src",
                     "eng_Latn", "--tgt", "fra_Latn", "--model", str(tiny_model), "--json",
                     "-o", str(tmp_path / f"{name}.txt"), "--length-ratio", "0.5"])
        out, err = capsys.readouterr()
        assert code == 0 and json.loads(out)["state"] == "SUCCEEDED"
        said = [line for line in err.splitlines() if "convert" in line]
        if n == 0:
            assert len(said) == 2 and "(int8 weights)" in said[0] and said[1].endswith(" s")
        else:
            assert said == []
    assert (tmp_path / "first.txt").read_bytes() == (tmp_path / "second.txt").read_bytes()
