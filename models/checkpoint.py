"""What every backend shares about an NLLB checkpoint: where it is, its
tokenizer, its limits and the language codes it knows.

A backend (transformers in ``models.hf``, CTranslate2 beside it) runs the
weights; the tokenizer and the limits come from here, so every backend
counts tokens, checks languages and sizes its output budgets the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import InvalidInput, Unsupported

SUPPORTED_MODEL_TYPES = ("m2m_100", "nllb-moe")


def looks_like_path(model: str) -> bool:
    """A hub id is NAME or ORG/NAME; anything else is meant as a directory."""
    return (
        model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model
        or os.path.isabs(model)
    )


def resolve_model(model: str) -> str:
    """A local checkpoint directory as an absolute path, or a hub id as given.

    Raises InvalidInput for a missing directory or one that is not a model.
    """
    path = Path(model).expanduser()
    if path.exists() or looks_like_path(model):
        if not path.is_dir():
            raise InvalidInput(f"model directory not found: {model}")
        if not (path / "config.json").is_file():
            raise InvalidInput(f"{model} is not a model directory (it has no config.json)")
        return str(path.resolve())
    return model


class Checkpoint:
    """An NLLB checkpoint's config and tokenizer (fast to load: no weights).

    ``max_input_tokens`` is the longest input the model takes, special tokens
    included; ``max_output_tokens`` caps every output budget.
    """

    def __init__(self, model: str):
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model_id = resolve_model(model)
        try:
            self.config = AutoConfig.from_pretrained(self.model_id)
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_id)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInput(f"cannot load model {model!r}: {first}") from exc
        if self.config.model_type not in SUPPORTED_MODEL_TYPES:
            raise Unsupported(
                f"model {model!r} is a {self.config.model_type!r} model, not NLLB/M2M100"
            )
        limits = [self.config.max_position_embeddings]
        if 0 < getattr(self.tokenizer, "model_max_length", 0) < 100_000:
            limits.append(self.tokenizer.model_max_length)
        self.max_input_tokens = min(limits)
        # The decoder starts with its start token and the language code.
        self.max_output_tokens = self.max_input_tokens - 2

    def check_language(self, code: str) -> None:
        if self.tokenizer.convert_tokens_to_ids(code) == self.tokenizer.unk_token_id:
            raise Unsupported(f"model {self.model_id!r} does not know language {code}")

    def count_tokens(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return [len(x) for x in ids]

    def language_id(self, code: str) -> int:
        return self.tokenizer.convert_tokens_to_ids(code)
