"""Score a line-aligned test set through the ordinary pipeline.

``nllb-pipeline eval SRC --ref REF`` translates SRC as any job is
translated (``--format lines``: one output line per input line), then
scores the output against REF with sacrebleu: chrF++ (chrF with word
bigrams) and BLEU, each with its signature, so a figure can be compared
with a published one. Beside the scores: the generated tokens per second
of the inference stage, and the chunks the quality checks flagged, so a
user sees what int8, greedy search or another backend costs on their own
data before a long job.

A score must come from the model: the jobs run with the translation memory
off unless the caller asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InvalidInput


@dataclass(frozen=True)
class Scores:
    chrf: float
    bleu: float
    chrf_signature: str
    bleu_signature: str


def read_lines(path: Path, what: str) -> list[str]:
    """A test set's lines (UTF-8, a BOM and line endings dropped)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"{what} not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} {path} is not UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return text.splitlines()


def check_aligned(sources: list[str], references: list[str], src: Path, ref: Path) -> None:
    if len(sources) != len(references):
        raise InvalidInput(f"{src} has {len(sources)} lines and {ref} has {len(references)}: "
                           "a test set is line-aligned")
    if not any(line.strip() for line in sources):
        raise InvalidInput(f"{src} has no text to translate")


def bleu_tokenizer(tgt: str) -> str:
    """sacrebleu's tokenizer for the target language: its own for Chinese,
    Japanese and Korean where it needs no extra package, else 13a."""
    script = tgt.split("_")[-1] if "_" in tgt else ""
    if tgt.startswith(("zho", "yue")) or script in ("Hans", "Hant"):
        return "zh"
    if script in ("Jpan", "Hang", "Thai", "Khmr", "Laoo", "Mymr", "Tibt"):
        return "char"
    return "13a"


def score(hypotheses: list[str], references: list[str], tgt: str) -> Scores:
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:  # pragma: no cover - a dependency
        raise InvalidInput("nllb-pipeline eval needs sacrebleu: pip install sacrebleu") from None
    chrf = CHRF(word_order=2)
    bleu = BLEU(tokenize=bleu_tokenizer(tgt))
    c = chrf.corpus_score(hypotheses, [references])
    b = bleu.corpus_score(hypotheses, [references])
    return Scores(chrf=round(c.score, 2), bleu=round(b.score, 2),
                  chrf_signature=str(chrf.get_signature()),
                  bleu_signature=str(bleu.get_signature()))
