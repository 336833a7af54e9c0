"""What identifies a checkpoint's content, not only its name.

Two runs that name the same model must know whether they mean the same
weights: a converted copy is cached under it (``models.conversion``), and a
translation memory may only reuse what the same weights produced. So:

- a hub id is identified by the snapshot revision (the commit) that the
  Hugging Face cache resolved it to, the one the weights were loaded from;
- a local directory (a transformers checkpoint or a converted CTranslate2
  model) by its files: every top-level file whose name ends in ``.json``,
  ``.model``, ``.txt``, ``.safetensors`` or ``.bin`` (config, tokenizer,
  vocabulary, weights), each by its name, size and SHA-256. Subdirectories,
  hidden files and other files (README, images) are not covered: editing
  them does not change the fingerprint; editing any covered file does.

A file's SHA-256 is remembered in ``<cache>/file-hashes.json`` keyed by its
path, size and modification time, so a 2.4 GB weight file is read once,
not on every run. A fingerprint is 64 hexadecimal digits.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from pipeline.errors import InvalidInput

COVERED_SUFFIXES = (".json", ".model", ".txt", ".safetensors", ".bin")
_CHUNK = 1 << 20


def fingerprint(model: str, cache_dir: Path) -> str:
    """The fingerprint of a hub id or a local model directory (see above)."""
    path = Path(model)
    if path.is_dir():
        return directory_fingerprint(path, cache_dir)
    return hub_fingerprint(model)


def hub_fingerprint(model_id: str) -> str:
    """From the revision the local Hugging Face cache resolved ``model_id`` to
    (loading the config first puts it there)."""
    revision = hub_revision(model_id)
    if revision is None:
        raise InvalidInput(f"cannot tell which revision of {model_id!r} is in the Hugging Face "
                           "cache (load the model once first)")
    return _digest(f"hub\0{model_id}\0{revision}")


def hub_revision(model_id: str) -> str | None:
    """The snapshot revision of ``model_id`` in the local cache (``refs/main``)."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json")
    return Path(cached).parent.name if isinstance(cached, str) else None


def directory_fingerprint(directory: Path, cache_dir: Path) -> str:
    files = covered_files(directory)
    if not files:
        raise InvalidInput(f"{directory} has no model files to identify it by")
    hashes = _HashCache(cache_dir / "file-hashes.json")
    lines = [f"{f.name}\0{f.stat().st_size}\0{hashes.sha256(f)}" for f in files]
    hashes.save()
    return _digest("dir\0" + "\n".join(lines))


def covered_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.name.endswith(COVERED_SUFFIXES))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _HashCache:
    """SHA-256 per file, reused while the path, size and mtime are unchanged.

    Written atomically; two processes updating it at once lose at most one
    of their additions (that file is hashed again next time)."""

    def __init__(self, path: Path):
        self.path = path
        self.changed = False
        try:
            self.entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        if not isinstance(self.entries, dict):
            self.entries = {}

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key = str(file.resolve())
        entry = self.entries.get(key)
        if (isinstance(entry, list) and len(entry) == 3
                and entry[:2] == [stat.st_size, stat.st_mtime_ns]):
            return entry[2]
        digest = hashlib.sha256()
        with open(file, "rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
        self.entries[key] = [stat.st_size, stat.st_mtime_ns, digest.hexdigest()]
        self.changed = True
        return digest.hexdigest()

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".file-hashes-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.entries, f)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
