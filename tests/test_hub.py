"""A model named by a hub id (``models.hub``): loaded from the Hugging Face
cache without a request when it is there; when it is not and cannot be
downloaded, said at once in one line, without the hub client's retries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.hub import cached_snapshot, files_of
from pipeline.errors import InvalidInput
from tests.conftest import ROOT

REVISION = "0123456789abcdef0123456789abcdef01234567"
HUB_ID = "acme/tiny-nllb"
# Nothing listens there: a request to this "hub" fails at once, as offline.
NO_HUB = "http://127.0.0.1:9"


def hub_cache(home: Path, model: Path, hub_id: str = HUB_ID, *, weights: bool = True) -> Path:
    """``home`` laid out as HF_HOME after ``huggingface-cli download hub_id``."""
    repo = home / "hub" / f"models--{hub_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    for f in model.iterdir():
        if weights or not f.name.endswith(".safetensors"):
            shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return home


def never(model_id: str) -> None:
    raise AssertionError(f"the hub was asked about {model_id}")


def test_a_cached_model_is_read_from_its_snapshot_without_asking_the_hub(tmp_path, tiny_model):
    cache = hub_cache(tmp_path / "hf", tiny_model) / "hub"
    where = files_of(HUB_ID, offline=False, probe=never, cache_dir=cache)
    assert Path(where) == cache / f"models--acme--tiny-nllb/snapshots/{REVISION}"


def test_a_snapshot_without_weights_is_not_enough_for_a_model_but_is_for_a_tokenizer(
        tmp_path, tiny_model):
    cache = hub_cache(tmp_path / "hf", tiny_model, weights=False) / "hub"
    assert cached_snapshot(HUB_ID, cache_dir=cache) is None
    assert cached_snapshot(HUB_ID, weights=False, cache_dir=cache) is not None
    with pytest.raises(InvalidInput, match="is not in the Hugging Face cache"):
        files_of(HUB_ID, offline=True, cache_dir=cache)


def test_offline_mode_and_no_cache_is_said_at_once(tmp_path):
    with pytest.raises(InvalidInput) as caught:
        files_of("facebook/nllb-200-distilled-600M", offline=True, probe=never,
                 cache_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"model 'facebook/nllb-200-distilled-600M' is not in the Hugging "
                              f"Face cache ({tmp_path}) and the hub's offline mode is on")
    assert "huggingface-cli download facebook/nllb-200-distilled-600M" in message
    assert "--model DIR" in message


def test_no_cache_and_no_answer_from_the_hub_is_one_request_then_the_message(tmp_path):
    asked = []

    def unreachable(model_id: str) -> None:
        asked.append(model_id)
        raise ConnectionError("[Errno -2] Name or service not known")

    with pytest.raises(InvalidInput, match=r"the hub cannot be reached \(\[Errno -2\] Name or "
                                           r"service not known\): download it"):
        files_of("facebook/nllb-200-distilled-600M", offline=False, probe=unreachable,
                 cache_dir=tmp_path)
    assert asked == ["facebook/nllb-200-distilled-600M"]  # once: no retries


def test_a_model_the_hub_answers_for_is_left_to_the_hub_client(tmp_path):
    assert files_of(HUB_ID, offline=False, probe=lambda m: None, cache_dir=tmp_path) == HUB_ID


def _cli(tmp_path, home: Path, *args: str, offline: bool):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(home), HF_ENDPOINT=NO_HUB, PYTHONPATH=str(ROOT),
               NLLB_PIPELINE_DB=str(tmp_path / "jobs.db"))
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("offline", [True, False], ids=["offline mode", "no network"])
def test_the_default_model_without_a_cache_is_one_line_and_exit_2(tmp_path, offline):
    doc = tmp_path / "doc.txt"
    doc.write_text("Good morning.\n")
    proc = _cli(tmp_path, tmp_path / "empty-hf-home", "translate", str(doc), "--src", "eng_Latn",
                "--tgt", "fra_Latn", offline=offline)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()  # no retry warnings before it
    assert line.startswith("nllb-pipeline: error: model 'facebook/nllb-200-distilled-600M' is "
                           f"not in the Hugging Face cache ({tmp_path / 'empty-hf-home' / 'hub'})")
    assert ("offline mode is on" if offline else "the hub cannot be reached") in line
    from pipeline.store import Store

    assert Store(tmp_path / "jobs.db").jobs(10) == []


@pytest.mark.parametrize("backend", ["hf", "ctranslate2"])
def test_a_cached_hub_model_translates_with_no_network_and_no_hub_warnings(tmp_path, tiny_model,
                                                                           backend):
    home = hub_cache(tmp_path / "hf", tiny_model)
    doc = tmp_path / "doc.txt"
    doc.write_text("Good morning.\n")
    proc = _cli(tmp_path, home, "translate", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn",
                "--model", HUB_ID, "--backend", backend, "--beams", "1", "--no-progress",
                offline=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("job ") and "SUCCEEDED" in proc.stdout
    # nothing but CTranslate2's conversion, converted from the cached snapshot
    assert all(line.startswith(("nllb-pipeline: converting", "nllb-pipeline: converted"))
               for line in proc.stderr.splitlines()), proc.stderr
