"""A checkpoint is converted to CTranslate2 once, into the cache: reused,
never twice at once, never half. The processes that race or die are forked
by ``tests.warm`` (the converter imported once)."""

from __future__ import annotations

import subprocess

import pytest

import models.conversion as conversion
from models.conversion import MARKER, converted_model, is_complete, quantization_for
from models.fingerprint import fingerprint
from pipeline.errors import Unsupported
from tests import warm
from tests.conftest import ROOT, cli_env

pytestmark = pytest.mark.fresh_cache


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache" / "nllb-pipeline"


def counting_converter(monkeypatch):
    calls = []
    real = conversion.convert

    def convert(model_id, out, quantization):
        calls.append((model_id, quantization))
        real(model_id, out, quantization)

    monkeypatch.setattr(conversion, "convert", convert)
    return calls


def test_the_weight_format_follows_the_compute_type():
    assert [quantization_for(t) for t in ("int8", "int8_float16", "int8_float32",
                                          "int8_bfloat16", "float16", "bfloat16", "float32")] == [
        "int8", "int8", "int8", "int8", "float16", "bfloat16", "float32"]


def test_converted_once_then_reused(tiny_model, cache, monkeypatch):
    calls = counting_converter(monkeypatch)
    said = []
    fp = fingerprint(str(tiny_model), cache)
    first = converted_model(str(tiny_model), fp, "int8", cache, say=said.append)
    assert first == cache / "ct2" / f"{fp}-int8" and is_complete(first)
    assert said[0].startswith(f"converting {tiny_model} to CTranslate2 (int8 weights)")
    assert said[1].startswith(f"converted {tiny_model} in ") and said[1].endswith(" s")
    again = converted_model(str(tiny_model), fp, "int8", cache, say=said.append)
    assert again == first and len(calls) == 1 and len(said) == 2  # the second run is silent
    converted_model(str(tiny_model), fp, "float32", cache, say=said.append)
    assert calls == [(str(tiny_model), "int8"), (str(tiny_model), "float32")]
    assert sorted(p.name for p in (cache / "ct2").iterdir()) == sorted(
        [f"{fp}-int8", f"{fp}-float32", f".{fp}-int8.lock", f".{fp}-float32.lock"])


def test_a_failed_conversion_leaves_nothing_that_looks_complete(tiny_model, cache, monkeypatch):
    def broken(model_id, out, quantization):
        out.mkdir()
        (out / "model.bin").write_bytes(b"half a model")
        raise Unsupported("CTranslate2 cannot convert it")

    monkeypatch.setattr(conversion, "convert", broken)
    with pytest.raises(Unsupported):
        converted_model(str(tiny_model), "f" * 64, "int8", cache, say=lambda m: None)
    assert [p.name for p in (cache / "ct2").iterdir()] == [f".{'f' * 64}-int8.lock"]


def test_an_incomplete_target_is_converted_again(tiny_model, cache, monkeypatch):
    calls = counting_converter(monkeypatch)
    target = cache / "ct2" / f"{'e' * 64}-int8"
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(b"truncated")  # no marker, no vocabulary
    assert converted_model(str(tiny_model), "e" * 64, "int8", cache, say=lambda m: None) == target
    assert len(calls) == 1 and is_complete(target) and (target / "model.bin").stat().st_size > 9


KILLED_MID_CONVERSION = """
import os, signal, sys
from pathlib import Path
import models.conversion as conversion

def dies(model_id, out, quantization):
    out.mkdir()
    (out / "model.bin").write_bytes(b"half a model")
    os.kill(os.getpid(), signal.SIGKILL)

conversion.convert = dies
conversion.converted_model(sys.argv[1], "d" * 64, "int8", Path(sys.argv[2]))
"""


def script(tmp_path, text: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(text)
    return str(path)


def test_a_killed_conversion_is_redone(tiny_model, cache, tmp_path, monkeypatch):
    proc = warm.run([script(tmp_path, KILLED_MID_CONVERSION), str(tiny_model), str(cache)],
                    cwd=ROOT, env=cli_env(tmp_path / "jobs.db"), timeout=120)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in (cache / "ct2").iterdir() if p.name.endswith(".partial")]
    assert len(leftovers) == 1 and (leftovers[0] / "model" / "model.bin").is_file()
    assert not (cache / "ct2" / f"{'d' * 64}-int8").exists()

    calls = counting_converter(monkeypatch)
    target = converted_model(str(tiny_model), "d" * 64, "int8", cache, say=lambda m: None)
    assert len(calls) == 1 and is_complete(target) and (target / MARKER).is_file()
    assert not leftovers[0].exists()


CONVERT_SLOWLY = """
import logging, sys, time
from pathlib import Path
import models.conversion as conversion

logging.basicConfig(level=25, format="%(message)s")  # notes, as the CLI shows them

real = conversion.convert

def slow(model_id, out, quantization):
    time.sleep(1.5)  # long enough for the other process to reach the lock
    real(model_id, out, quantization)

conversion.convert = slow
print(conversion.converted_model(sys.argv[1], "c" * 64, "int8", Path(sys.argv[2])))
"""


def test_two_concurrent_first_runs_convert_once(tiny_model, cache, tmp_path):
    slowly = script(tmp_path, CONVERT_SLOWLY)
    procs = [warm.WarmProcess([slowly, str(tiny_model), str(cache)], cwd=ROOT,
                              env=cli_env(tmp_path / "jobs.db"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    target = cache / "ct2" / f"{'c' * 64}-int8"
    assert [out.strip() for out, _ in results] == [str(target)] * 2
    conversions = sum(err.count("converting ") for _, err in results)
    assert conversions == 1, results
    assert is_complete(target)
    assert not [p for p in (cache / "ct2").iterdir() if p.name.endswith(".partial")]
