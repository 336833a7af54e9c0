"""A tiny random-weight model with the real NLLB architecture and tokenizer.

Tests and the demo must exercise the exact code path a real checkpoint takes
(``AutoTokenizer`` / ``AutoModelForSeq2SeqLM`` on a directory written by
``save_pretrained``), but no weights can be downloaded here. So we build one:
a SentencePiece BPE model trained on text this project ships, wrapped as a
transformers ``NllbTokenizer`` with the 202 FLORES-200 language codes, and an
``M2M100ForConditionalGeneration`` (NLLB's architecture) with a few small
layers. It builds in about a second and is deterministic: the same inputs
give the same files.

Its translations are noise (random weights never emit EOS, so every output
runs to its length limit), but noise that depends on the input, so a test
can tell when a translation lands in the wrong place. Never assert on what
a translation says.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from pipeline.languages import FLORES_CODES

TINY_VERSION = 1  # bump when the recipe changes, so cached copies are rebuilt
_MARKER = "nllb_pipeline_tiny.json"


def _training_text() -> list[str]:
    corpus = resources.files("models") / "data" / "tiny_corpus.txt"
    sample = resources.files("pipeline") / "data" / "sample.md"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    lines += sample.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()]


def _train_sentencepiece(path: Path, vocab_size: int, extra_text: Sequence[str] = ()) -> None:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_training_text() + list(extra_text)),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # our corpus is small; take what it supports
        model_type="bpe",  # NLLB's sentencepiece.bpe.model is BPE too
        character_coverage=1.0,
        # NLLB's fairseq ids: <s>=0 <pad>=1 </s>=2 <unk>=3
        bos_id=0, pad_id=1, eos_id=2, unk_id=3,
        num_threads=1,  # deterministic merges
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def is_tiny_model(directory: str | Path) -> bool:
    marker = Path(directory) / _MARKER
    try:
        return json.loads(marker.read_text())["version"] == TINY_VERSION
    except (OSError, ValueError, KeyError):
        return False


def build_tiny_model(directory: str | Path, *, d_model: int = 64, layers: int = 2,
                     heads: int = 4, ffn_dim: int | None = None, vocab_size: int = 2000,
                     model_vocab_size: int | None = None, init_std: float = 1.0,
                     seed: int = 0, extra_text: Sequence[str] = ()) -> Path:
    """Write a tiny NLLB-architecture checkpoint and tokenizer to ``directory``.

    The directory is written completely or not at all (built in a temporary
    sibling and renamed), so a killed build never leaves half a model.

    The defaults are the test model. Benchmarks build bigger shapes with the
    same tokenizer: ``ffn_dim`` (default ``2 * d_model``), ``heads``, and
    ``model_vocab_size``, the rows of the embedding and output projection
    (default: the tokenizer's ~2,200 tokens; NLLB-200 has 256,206, which is
    most of a decoding step's cost, so a benchmark of the real architecture
    sets it; the rows past the tokenizer are never an input, and an output
    token among them decodes to nothing). ``init_std`` 1.0 makes the output
    depend on the input (at 0.02, the real init, every input gives the same
    string), which tests need; deep models need the real init to stay finite.
    ``extra_text``: more lines for the tokenizer to learn from (the trained
    model's: every printable ASCII character, so none of its placeholders'
    digits is unknown).
    """
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the shard-writing bar is noise in the demo

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tiny-", dir=directory.parent))
    try:
        spm_dir = work / "spm"
        spm_dir.mkdir()
        _train_sentencepiece(spm_dir / "sentencepiece.bpe.model", vocab_size, extra_text)
        # Without the explicit codes every language code silently becomes <unk>.
        tokenizer = NllbTokenizer.from_pretrained(
            str(spm_dir), additional_special_tokens=list(FLORES_CODES)
        )
        out = work / "model"
        tokenizer.save_pretrained(str(out))

        config = M2M100Config(
            vocab_size=max(model_vocab_size or 0, len(tokenizer)),
            d_model=d_model,
            encoder_layers=layers, decoder_layers=layers,
            encoder_attention_heads=heads, decoder_attention_heads=heads,
            encoder_ffn_dim=ffn_dim or d_model * 2, decoder_ffn_dim=ffn_dim or d_model * 2,
            max_position_embeddings=1024,
            scale_embedding=True,
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
            init_std=init_std,
            pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
            tokenizer_class="NllbTokenizer",
        )
        torch.manual_seed(seed)
        model = M2M100ForConditionalGeneration(config).eval()
        model.save_pretrained(str(out), safe_serialization=True)
        (out / _MARKER).write_text(json.dumps({"version": TINY_VERSION}))
        if directory.exists():
            shutil.rmtree(directory)
        out.rename(directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return directory


def ensure_tiny_model(directory: str | Path) -> Path:
    """The tiny model at ``directory``, built first if it is missing or stale."""
    if not is_tiny_model(directory):
        build_tiny_model(directory)
    return Path(directory)
