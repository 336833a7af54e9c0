"""A checkpoint's fingerprint follows its content: the files of a directory,
the resolved revision of a hub id."""

from __future__ import annotations

import os
import shutil

import pytest

import models.fingerprint as fp
from models.fingerprint import covered_files, fingerprint
from pipeline.errors import InvalidInput


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    (copy / "README.md").write_text("a model card")
    return copy


def test_it_covers_config_tokenizer_and_weights(model_dir):
    assert [p.name for p in covered_files(model_dir)] == [
        "config.json", "generation_config.json", "model.safetensors", "nllb_pipeline_tiny.json",
        "tokenizer.json", "tokenizer_config.json"]


def test_same_content_same_fingerprint_any_edit_changes_it(model_dir, tiny_model, tmp_path):
    cache = tmp_path / "cache"
    first = fingerprint(str(model_dir), cache)
    assert len(first) == 64 and int(first, 16) >= 0
    assert fingerprint(str(tiny_model), cache) == first  # another copy of the same files
    (model_dir / "README.md").write_text("edited")  # not covered
    assert fingerprint(str(model_dir), cache) == first
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight, same size
    weights.write_bytes(bytes(data))
    assert fingerprint(str(model_dir), cache) != first
    tokenizer = model_dir / "tokenizer_config.json"
    before = fingerprint(str(model_dir), cache)
    tokenizer.write_text(tokenizer.read_text().replace("eng_Latn", "fra_Latn", 1))
    assert fingerprint(str(model_dir), cache) != before


def test_a_file_is_hashed_once_while_its_size_and_mtime_stay(model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = fingerprint(str(model_dir), cache)
    assert (cache / "file-hashes.json").is_file()
    opened = []
    real_open = open

    def tracking_open(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", tracking_open)
    assert fingerprint(str(model_dir), cache) == first
    assert not [p for p in opened if p.endswith(".safetensors")]  # served from the cache
    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(str(model_dir), cache) == first  # same bytes, read again
    assert [p for p in opened if p.endswith(".safetensors")] == [str(weights)]


def _fake_hub_cache(root, model_id, revision):
    """The layout huggingface_hub reads: refs/main names the snapshot."""
    repo = root / f"models--{model_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "config.json").write_text("{}")


def test_a_hub_id_is_identified_by_its_resolved_revision(tmp_path, monkeypatch):
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    with pytest.raises(InvalidInput, match="which revision"):
        fingerprint("facebook/nllb-200-distilled-600M", tmp_path / "cache")
    _fake_hub_cache(hub, "facebook/nllb-200-distilled-600M", "a" * 40)
    first = fingerprint("facebook/nllb-200-distilled-600M", tmp_path / "cache")
    assert fp.hub_revision("facebook/nllb-200-distilled-600M") == "a" * 40
    _fake_hub_cache(hub, "facebook/nllb-200-distilled-1.3B", "a" * 40)
    assert fingerprint("facebook/nllb-200-distilled-1.3B", tmp_path / "cache") != first
    _fake_hub_cache(hub, "facebook/nllb-200-distilled-600M", "b" * 40)  # a new upload
    assert fingerprint("facebook/nllb-200-distilled-600M", tmp_path / "cache") != first
