"""What every backend shares about an NLLB checkpoint: where it is, its
tokenizer, its limits, the language codes it knows and its fingerprint.

A backend (transformers in ``models.hf``, CTranslate2 in ``models.ct2``)
runs the weights; the tokenizer and the limits come from here, so every
backend counts tokens, checks languages and sizes its output budgets the
same way.

``--model`` names a hub id, a transformers checkpoint directory
(``config.json``) or a converted CTranslate2 directory (``model.bin`` and
``shared_vocabulary.json`` or ``.txt``). The tokenizer is read from the
model, or from ``--tokenizer`` (a hub id or directory) when given: a
converted directory made without ``--copy_files`` has none of its own.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path

from pipeline.errors import InvalidInput, Unsupported
from pipeline.translator import Decoding, Translation

SUPPORTED_MODEL_TYPES = ("m2m_100", "nllb-moe")
# Every NLLB-200 checkpoint has 1,024 positions; a converted directory does
# not say, and its tokenizer may not either.
NLLB_POSITIONS = 1024
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model")


def looks_like_path(model: str) -> bool:
    """A hub id is NAME or ORG/NAME; anything else is meant as a directory."""
    return (
        model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model
        or os.path.isabs(model)
    )


def is_converted(directory: str | Path) -> bool:
    """A CTranslate2 model directory: ``model.bin`` and a shared vocabulary."""
    path = Path(directory)
    return (path / "model.bin").is_file() and any(
        (path / f"shared_vocabulary.{ext}").is_file() for ext in ("json", "txt"))


def resolve_model(model: str) -> str:
    """A local model directory as an absolute path, or a hub id as given.

    Raises InvalidInput for a missing directory or one that is neither a
    transformers checkpoint nor a converted CTranslate2 model.
    """
    path = Path(model).expanduser()
    if path.exists() or looks_like_path(model):
        if not path.is_dir():
            raise InvalidInput(f"model directory not found: {model}")
        if not is_converted(path) and not (path / "config.json").is_file():
            raise InvalidInput(
                f"{model} is not a model directory (it has no config.json, and no model.bin "
                "with shared_vocabulary of a converted CTranslate2 model)")
        return str(path.resolve())
    return model


def has_tokenizer(directory: str | Path) -> bool:
    return any((Path(directory) / name).is_file() for name in _TOKENIZER_FILES)


def resolve_tokenizer(tokenizer: str) -> str:
    """``--tokenizer``: a directory with tokenizer files (absolute), or a hub id."""
    path = Path(tokenizer).expanduser()
    if path.exists() or looks_like_path(tokenizer):
        if not path.is_dir() or not has_tokenizer(path):
            raise InvalidInput(f"--tokenizer {tokenizer}: not a directory with tokenizer files")
        return str(path.resolve())
    return tokenizer


def _has_config(source: str) -> bool:
    """A transformers checkpoint (hub id, or directory with its config)."""
    path = Path(source)
    if not path.is_dir():
        return True
    return (path / "config.json").is_file() and not is_converted(path)


def _files(model: str, *, weights: bool) -> str:
    """Where a resolved model or tokenizer (a directory, or a hub id) is read from."""
    if Path(model).is_dir():
        return model
    from models.hub import files_of

    return files_of(model, weights=weights)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Checkpoint:
    """An NLLB checkpoint's config and tokenizer (fast to load: no weights).

    ``model_id`` names the model (a directory's absolute path, or a hub id);
    ``files`` is where its files are read from (the same directory, a hub
    id's cached snapshot, or the hub id when the hub client downloads it:
    ``models.hub``).

    ``max_input_tokens`` is the longest input the model takes, special tokens
    included; ``max_output_tokens`` caps every output budget. ``converted``
    says that ``model_id`` is a CTranslate2 directory (only that backend
    runs it); ``config`` is then the original checkpoint's when
    ``--tokenizer`` names one, else None.
    """

    def __init__(self, model: str, tokenizer: str | None = None):
        self.tokenizer_lock = threading.Lock()  # see encode
        self._unknown: dict[str, bool] = {}  # character -> the tokenizer cannot encode it
        self.model_id = resolve_model(model)
        self.converted = is_converted(self.model_id)
        # What is read: a directory as given, a hub id's cached snapshot (no
        # request to the hub), or the hub id when it must be downloaded.
        # Known before transformers is imported: a model that cannot be had
        # is said at once.
        self.files = _files(self.model_id, weights=True)
        source = resolve_tokenizer(tokenizer) if tokenizer else self.model_id
        if self.converted and source == self.model_id and not has_tokenizer(source):
            raise InvalidInput(
                f"the converted model {model} has no tokenizer files; pass --tokenizer with the "
                "original checkpoint (hub id or directory)")
        source_files = self.files if source == self.model_id else _files(source, weights=False)

        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from models.hub import route_library_logs

        hf_logging.disable_progress_bar()
        route_library_logs()
        self.config = None
        try:
            if not self.converted:
                self.config = AutoConfig.from_pretrained(self.files)
            elif source != self.model_id and _has_config(source):
                self.config = AutoConfig.from_pretrained(source_files)
            self.tokenizer = AutoTokenizer.from_pretrained(source_files)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot load model {model!r}: {_first_line(exc)}") from exc
        if self.config is not None and self.config.model_type not in SUPPORTED_MODEL_TYPES:
            raise Unsupported(
                f"model {model!r} is a {self.config.model_type!r} model, not NLLB/M2M100"
            )
        limits = [self.config.max_position_embeddings] if self.config is not None else []
        if 0 < getattr(self.tokenizer, "model_max_length", 0) < 100_000:
            limits.append(self.tokenizer.model_max_length)
        self.max_input_tokens = min(limits or [NLLB_POSITIONS])
        # The decoder starts with its start token and the language code.
        self.max_output_tokens = self.max_input_tokens - 2

    @cached_property
    def fingerprint(self) -> str:
        """What identifies the weights ``model_id`` names (``models.fingerprint``)."""
        from models.fingerprint import fingerprint
        from pipeline.config import cache_dir

        return fingerprint(self.model_id, cache_dir())

    def check_language(self, code: str) -> None:
        if self.tokenizer.convert_tokens_to_ids(code) == self.tokenizer.unk_token_id:
            raise Unsupported(f"model {self.model_id!r} does not know language {code}")

    def count_tokens(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:  # a slow (Python) tokenizer
            return [len(x) for x in self.encode(texts)]
        # The Rust tokenizer's own batch call, with the special tokens its
        # post-processor adds (the language code, EOS): what encode() gives,
        # without transformers building a BatchEncoding per text. Padding
        # and truncation are the tokenizer's state, which transformers sets
        # per call (HfTranslator pads its batches): off for a count.
        with self.tokenizer_lock:
            if backend.padding is not None:
                backend.no_padding()
            if backend.truncation is not None:
                backend.no_truncation()
            return [len(e.ids) for e in backend.encode_batch(list(texts),
                                                            add_special_tokens=True)]

    def unknown_characters(self, texts: list[str]) -> set[str]:
        """The characters of ``texts`` the tokenizer maps to its unknown
        token. A character's fate does not depend on its neighbours
        (SentencePiece has no piece that holds an unknown character), so
        each is encoded once, alone, and the answer kept."""
        chars = set().union(*texts) if texts else set()
        new = sorted(c for c in chars if c not in self._unknown and not c.isspace())
        if new:
            unk = self.tokenizer.unk_token_id
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            with self.tokenizer_lock:
                if backend is None:  # a slow (Python) tokenizer
                    ids = self.tokenizer(new, add_special_tokens=False)["input_ids"]
                else:
                    if backend.padding is not None:
                        backend.no_padding()
                    if backend.truncation is not None:
                        backend.no_truncation()
                    ids = [e.ids for e in backend.encode_batch(new, add_special_tokens=False)]
            self._unknown.update((c, unk in x) for c, x in zip(new, ids))
        return {c for c in chars if self._unknown.get(c)}

    def encode(self, texts: list[str], src_lang: str | None = None) -> list[list[int]]:
        """Token ids per text: the source language code, the text, EOS.
        Safe from several threads (the inference stage counts tokens while
        the engine's thread encodes the next batch): setting ``src_lang``
        rebuilds the fast tokenizer's post-processor, which a concurrent
        encode must not see half-done."""
        with self.tokenizer_lock:
            if src_lang is not None and self.tokenizer.src_lang != src_lang:
                self.tokenizer.src_lang = src_lang
            return self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]

    def check_input_lengths(self, ids: list[list[int]]) -> None:
        longest = max(len(x) for x in ids)
        if longest > self.max_input_tokens:
            # Preprocess splits chunks to fit; this is a bug, never truncate.
            raise InvalidInput(f"an input of {longest} tokens exceeds the model's limit")

    def language_id(self, code: str) -> int:
        return self.tokenizer.convert_tokens_to_ids(code)


class CheckpointBacked:
    """What a local translator answers from its :class:`Checkpoint` alone
    (languages, token counts, unreadable characters), and ``translate_batch``
    as the three steps of ``pipeline.translator.Staged`` that each backend
    defines (``encode_batch``, ``run_encoded``, ``decode_batch``), called in
    a row."""

    checkpoint: Checkpoint

    def check_language(self, code: str) -> None:
        self.checkpoint.check_language(code)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.checkpoint.count_tokens(texts)

    def unknown_characters(self, texts: list[str]) -> set[str]:
        return self.checkpoint.unknown_characters(texts)

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str,
                        decoding: Decoding) -> list[Translation]:
        return self.decode_batch(self.run_encoded(self.encode_batch(texts, src_lang),
                                                  tgt_lang, decoding))
