"""A tiny NLLB model that translates: trained on the CPU into an invented language.

The random-weight tiny model (``models.tiny``) never ends a sentence and
never keeps a placeholder, so it exercises the pipeline's fallbacks, not the
paths users meet most. This one has the same architecture and tokenizer
and is trained, in a few minutes on two CPU cores, on a task that behaves
like translation (``eng_Latn`` → ``fra_Latn``, the README's pair):

- a fixed substitution of the tokenizer's pieces that start a lowercase
  word (a seeded permutation of the ``▁word`` pieces, so the output's
  spacing is the input's): "the river" becomes another pair of words,
  always the same ones;
- every other piece is copied: a word's later pieces, so words that start
  with a capital letter (names, a sentence's first word) come through as
  they are, and numbers, punctuation and the pipeline's placeholders
  ``[1]``;
- one output token per input token, then EOS: the output ends its
  sentences and its length follows its input.

Each output token is a function of the input token at its position, so the
model learns the alignment and a table, which a model of the random test
model's shape learns in a few minutes.

``invented_translation`` computes the task's answer, so a test can give
``nllb-pipeline eval`` a reference and expect chrF++ near 100.

Trained by a curriculum, in batches of a constant token budget, on two
processes of one thread each (``models.training``): sentences of 3 to 30
words for the first 800 steps, while it learns the alignment and the table,
then a mix in which about half of the tokens are in sentences of 40 to 110
words (up to about 190 tokens: the pipeline's longest chunk is 200), so that
it keeps its alignment and its placeholders over long chunks. The
alignment is found suddenly (the loss falls tenfold within 200 steps,
somewhere after step 400) and long sentences before it keep it from being
found: from the first step they never learnt (an earlier recipe), from step
600 of a 2,300-step run they still had not at step 800. Short sentences
alone lose the alignment past about 64 tokens. Under 5 minutes on a quiet
2-core machine. Deterministic: two ranks whose gradients are added in rank
order, a fixed seed and a fixed number of steps give the same weights from
the same recipe. The weights (1.5 MB) are committed in
``models/data/trained-tiny`` with the recipe's key (a hash of this file,
``models.training`` and ``models.tiny``), so CI never trains them;
``trained_model_dir`` falls back to training them once into the cache,
keyed the same way (as a CTranslate2 conversion is keyed), when the
committed copy is of another recipe. ``python3 scripts/make_tiny_model.py
--trained DIR`` regenerates them.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

SRC, TGT = "eng_Latn", "fra_Latn"
_MARKER = "nllb_pipeline_trained.json"
SHAPE = {"d_model": 64, "layers": 2, "heads": 4, "ffn_dim": 256}
STEPS = 2400  # the recipe: a fixed number of steps, not "until the clock says"
BUDGET = 1024  # padded source tokens a step (models.training.batches): the old
# 32 sentences' real tokens, without their padding
LR = 3e-3
# Sentence lengths in words, each drawn uniformly from a phase's tuple: the
# short ones, then as many words again in long ones (about 1.7 tokens a word).
LENGTHS = (3, 5, 8, 12, 16, 16, 20, 24, 30)
LONG = LENGTHS + LENGTHS + (40, 65, 90, 110)
PHASES = ((0, LENGTHS), (800, LONG))  # (first step, lengths): the curriculum
_WORD_START = re.compile(r"▁[a-z]+")
# The random model's tokenizer never saw K, V, Y, Z or 5 (its corpus has
# none): this one learns every printable ASCII character, so a placeholder
# such as [5] or a word such as "Visit" is text it can read.
ASCII_LINES = [" ".join(chr(c) for c in range(33, 127)),
               " ".join(f"[{n}]" for n in range(1, 100)),
               "Kyoto Vienna York Zurich Quebec Jakarta 5 15 25 50 55 500 5000"]


def recipe_key() -> str:
    """What identifies the weights this file trains: its own bytes, the
    training loop's and the random-weight builder's (which makes the
    tokenizer)."""
    from models import tiny, training

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for module in (tiny, training):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


COMMITTED = Path(__file__).parent / "data" / "trained-tiny"


def trained_model_dir(*, log=print) -> Path:
    """The committed model when it is of this recipe, else one trained once
    into the cache."""
    return COMMITTED if is_trained_model(COMMITTED) else ensure_trained_model(log=log)


def default_dir() -> Path:
    from pipeline.config import cache_dir

    return cache_dir() / "trained-tiny" / recipe_key()


def is_trained_model(directory: str | Path) -> bool:
    try:
        info = json.loads((Path(directory) / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("recipe") == recipe_key()


def ensure_trained_model(directory: str | Path | None = None, *, log=print) -> Path:
    """The trained model at ``directory`` (default: the cache), trained first
    if it is missing or was trained by another recipe."""
    directory = Path(directory) if directory else default_dir()
    if not is_trained_model(directory):
        log(f"training the tiny test model into {directory} (once; about 5 minutes on two cores)")
        build_trained_model(directory, log=log)
    return directory


# -- the task ---------------------------------------------------------------


class Task:
    """The invented language: the tokenizer's pieces and their substitutes."""

    def __init__(self, tokenizer, seed: int = 0):
        self.tokenizer = tokenizer
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        specials = set(tokenizer.all_special_ids)
        starts = [i for i, p in enumerate(pieces)
                  if i not in specials and _WORD_START.fullmatch(p)]
        shuffled = starts[:]
        random.Random(seed).shuffle(shuffled)
        self.substitute: dict[int, int] = dict(zip(starts, shuffled))

    def target_ids(self, ids: list[int]) -> list[int]:
        """The answer for a source's pieces (without language code or EOS):
        a substitute for each piece that starts a lowercase word, the rest
        as it is."""
        return [self.substitute.get(i, i) for i in ids]


@lru_cache(maxsize=4)
def _task(model_dir: str) -> Task:
    from transformers import AutoTokenizer

    return Task(AutoTokenizer.from_pretrained(model_dir))


def invented_translation(model_dir: str | Path, text: str) -> str:
    """What the trained model is taught to answer for ``text``."""
    task = _task(str(model_dir))
    tok = task.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return tok.decode(task.target_ids(ids), skip_special_tokens=True)


# -- the training sentences -------------------------------------------------


def _sentences(rng: random.Random, words: list[str], names: list[str], n: int,
               lengths: tuple[int, ...] = LENGTHS) -> list[str]:
    """English-like sentences over the tokenizer's words, with what must be
    copied: capitalised names, numbers, placeholders, punctuation."""
    out = []
    for _ in range(n):
        length = rng.choice(lengths)
        parts = []
        for k in range(length):
            r = rng.random()
            if r < 0.06:
                parts.append(rng.choice(names))
            elif r < 0.11:
                parts.append(str(rng.choice((rng.randint(0, 99), rng.randint(100, 99999)))))
            elif r < 0.14:
                parts.append(f"[{rng.randint(1, 99)}]")
            elif r < 0.16:
                parts.append(f"{rng.randint(0, 99)}.{rng.randint(0, 99)}")
            elif r < 0.22:  # letters in any order: every piece, in any company
                parts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                                     for _ in range(rng.randint(2, 9))))
            else:
                parts.append(rng.choice(words))
            if r >= 0.16 and rng.random() < 0.08:  # a capitalised word mid-sentence
                parts[-1] = parts[-1][:1].upper() + parts[-1][1:]
            if k < length - 1 and rng.random() < 0.08:
                parts[-1] += rng.choice((",", ";", ":"))
        for _ in range(length // 20 + (rng.random() < 0.35)):
            # inline markup's placeholders, glued: "[1]rich print[2]"
            a = rng.randrange(len(parts))
            b = min(len(parts) - 1, a + rng.randint(0, 2))
            k = rng.randint(1, 90)
            parts[a] = "".join(f"[{k + j}]" for j in range(rng.choice((1, 1, 1, 2, 3)))) + parts[a]
            parts[b] = parts[b] + f"[{k + 3}]" * rng.randint(1, 2)
        if rng.random() < 0.15:  # brackets and quotes around a word, a possessive
            i = rng.randrange(len(parts))
            left, right = rng.choice((("(", ")"), ('"', '"'), ("'", "'"), ("", "'s")))
            parts[i] = left + parts[i] + right
        first = parts[0]
        parts[0] = first[:1].upper() + first[1:]
        out.append(" ".join(parts) + rng.choice((".", ".", ".", "?", "!", ":")))
    return out


def _vocabulary(task: Task) -> tuple[list[str], list[str]]:
    from models.tiny import _training_text

    text = " ".join(_training_text())
    words = sorted({w for w in re.findall(r"[a-z]+", text) if len(w) > 1})
    names = sorted({w for w in re.findall(r"\b[A-Z][a-z]+\b", text)})
    # every word piece appears as a word of its own too
    pieces = task.tokenizer.convert_ids_to_tokens(list(task.substitute))
    words += sorted({p.lstrip("▁") for p in pieces if len(p.lstrip("▁")) > 1})
    return words, names + ["Paris", "Lisbon", "Ada", "Turing", "Nairobi", "Kyoto", "Mei"]


# -- training ---------------------------------------------------------------


def build_trained_model(directory: str | Path, *, seed: int = 0, steps: int = STEPS,
                        log=print) -> Path:
    """Train the model and write it to ``directory`` (whole or not at all)."""
    from transformers import AutoTokenizer

    from models.tiny import build_tiny_model
    from models.training import train

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".trained-", dir=directory.parent))
    try:
        base = build_tiny_model(work / "model", d_model=SHAPE["d_model"], layers=SHAPE["layers"],
                                heads=SHAPE["heads"], ffn_dim=SHAPE["ffn_dim"], init_std=0.02,
                                seed=seed, extra_text=ASCII_LINES)
        out = work / "out"
        train(base, out, seed=seed, steps=steps, budget=BUDGET, lr=LR, phases=PHASES, log=log)
        AutoTokenizer.from_pretrained(str(base), src_lang=SRC).save_pretrained(str(out))
        (out / _MARKER).write_text(json.dumps({"recipe": recipe_key(), "seed": seed,
                                               "steps": steps, "src": SRC, "tgt": TGT}))
        if directory.exists():
            shutil.rmtree(directory)
        out.rename(directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return directory
