"""Generated documents of a given size, for tests and benchmarks.

Deterministic for a seed. Sentence lengths are mixed on purpose (most short,
some long, a few very long), as in real prose: that mix is what
length-sorted batching is for.
"""

from __future__ import annotations

import random

_WORDS = (
    "the pipeline reads every document and splits it into sentences before the model "
    "translates them in batches while progress is measured in tokens so that a long job "
    "shows an honest estimate of when it will end even after a crash or an error of memory "
    "on the graphics card which is retried with smaller batches until the work is done and "
    "nothing that was finished is ever translated twice by the workers of the queue"
).split()


def sentence(rng: random.Random) -> str:
    roll = rng.random()
    n = rng.randint(4, 12) if roll < 0.7 else rng.randint(13, 35) if roll < 0.95 else rng.randint(36, 80)
    words = [rng.choice(_WORDS) for _ in range(n)]
    if n > 10:
        words[n // 2] += ","
    return " ".join(words).capitalize() + rng.choice(".....?!")


def generate_text(n_sentences: int, *, seed: int = 0, per_paragraph: int = 5) -> str:
    """Plain text: paragraphs of a few sentences separated by blank lines."""
    rng = random.Random(seed)
    paragraphs, current = [], []
    for _ in range(n_sentences):
        current.append(sentence(rng))
        if len(current) >= rng.randint(1, per_paragraph * 2 - 1):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs) + "\n"


def generate_markdown(n_sentences: int, *, seed: int = 0) -> str:
    """Markdown with headings, lists, quotes, tables, links and code blocks."""
    rng = random.Random(seed)
    out: list[str] = []
    written = 0
    section = 0
    while written < n_sentences:
        section += 1
        out.append(f"## Section {section}: {sentence(rng).rstrip('.?!')}\n")
        kind = section % 4
        if kind == 0:
            for _ in range(3):
                out.append(f"- {sentence(rng)} See [the guide](https://example.org/s{section}).")
            out.append("")
            written += 3
        elif kind == 1:
            out.append(f"> {sentence(rng)}\n> {sentence(rng)}\n")
            written += 2
        elif kind == 2:
            out.append("| Name | Value |\n|------|------:|")
            out.append(f"| {sentence(rng)} | {section} |\n")
            written += 1
        else:
            out.append(f"```python\nprint('section {section}')  # not translated\n```\n")
        out.append(" ".join(sentence(rng) for _ in range(3)) + "\n")
        written += 3
    return "\n".join(out)
