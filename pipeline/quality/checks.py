"""Checks of one translation: is it the kind of output a model gives when
it fails?

Five reasons, judged on the text with its placeholders removed, each
against its own source so that repetition or copying the source itself
has is never held against the translation:

- ``loop``: an n-gram repeated back to back (``I'm sorry, but I'm sorry,
  but...``, fairseq #4639), or a long output that compresses like one
  (zlib ratio over 2.4, Whisper's test for the same failure);
- ``budget``: generation ran into its output budget without stopping;
- ``script``: the letters are not in the target code's script
  (``rus_Cyrl`` wants Cyrillic). Digits, punctuation and symbols are not
  letters; Latin letters in a non-Latin target are names and code, not
  judged, unless all the letters are Latin and mostly words the source
  does not have (the model answered in another language);
- ``copy``: the source came back (nearly) unchanged, for a source with
  enough words to need translating that is not all names;
- ``length``: far longer or shorter than the pair produces, in characters
  weighted by script (one Chinese character says about what three Latin
  letters do).

The thresholds are part of what decides a job's output, so they live in one
frozen ``Thresholds`` that ``pipeline.memory.scope.output_settings`` reports (a
translation memory keys on it).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass

from pipeline.quality.scripts import ALLOWED, code_script, count_in, letters_of, script_of

REASONS = ("loop", "budget", "script", "copy", "length")
# Character classes instead of a test per character: the checks run on every
# translation and must cost next to nothing (benchmarks/quality.py).
_CJK = ("\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u31a0-\u33ff\u3400-\u4dbf"
        "\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff")  # as linebreaks.is_cjk, letters
_NO_SPACE = re.compile(f"[{_CJK}\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")  # + Thai Lao Myanmar Khmer
_CJK_CHAR = re.compile(f"[{_CJK}]")
_HANGUL = re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_NOT_ALNUM = re.compile(r"[\W_]+")
_WORD = re.compile(r"\w+")
# Punctuation stripped from the ends of a word (marks inside it stay: a
# Devanagari vowel sign is not \w, but it is part of its word).
_PUNCT = "".join(chr(c) for c in range(0x21, 0x7f) if not chr(c).isalnum()) + (
    "«»‹›“”‘’„‚…–—―·•、。，．！？：；（）「」『』【】《》〈〉؟،؛۔।॥፡።")


@dataclass(frozen=True)
class Thresholds:
    loop_repeats: int = 4  # an n-gram repeated back to back this many times...
    loop_tokens: int = 8  # ...covering at least this many words...
    loop_vs_source: float = 2.0  # ...and this many times the source's own longest run
    max_ngram: int = 8  # longest repeated unit looked for, in words
    zlib_ratio: float = 2.4  # characters / zlib-compressed bytes of a looping output
    zlib_min_chars: int = 120  # shorter outputs do not compress enough to tell
    length_max: float = 3.0  # weighted characters of output per source character...
    length_slack: int = 20  # ...plus this many
    length_min: float = 0.25  # a shorter output lost content
    length_min_source: int = 30  # a shorter source is never judged too short for
    script_share: float = 0.5  # least share of judged letters in the target's script
    script_min_letters: int = 3
    copy_share: float = 0.9  # share of words in common that makes a copy
    copy_min_words: int = 4  # shorter sources (a name, "OK") may come back as they are

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Finding:
    reason: str  # one of REASONS (or "placeholders", from pipeline.documents.protect)
    detail: str


def inspect(source: str, text: str, *, stopped: bool, budget: int, src_lang: str,
            tgt_lang: str, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[Finding]:
    """What is wrong with translation ``text`` of ``source``, most telling
    first (REASONS order); empty when nothing is."""
    t = thresholds
    out_tokens, src_tokens = _tokens(text), _tokens(source)
    out_counts = Counter(out_tokens)
    found = []
    loop = _loop(text, out_tokens, out_counts, source, src_tokens, t)
    if loop:
        found.append(Finding("loop", loop))
    if not stopped:
        found.append(Finding("budget", f"ran into its budget of {budget} tokens without stopping"))
    script = _script(text, out_tokens, src_tokens, tgt_lang, t)
    if script:
        found.append(Finding("script", script))
    if src_lang != tgt_lang and _is_copy(source, src_tokens, out_counts, len(out_tokens), t):
        found.append(Finding("copy", "the source came back untranslated"))
    length = _length(source, text, t)
    if length:
        found.append(Finding("length", length))
    return found


def _tokens(text: str) -> list[str]:
    """Words, casefolded, without the punctuation around them; each
    character is a word where the script has no spaces."""
    if _NO_SPACE.search(text) is None:  # the common case, at C speed
        return [w for w in (x.strip(_PUNCT) for x in text.casefold().split()) if w]
    out: list[str] = []
    for word in text.casefold().split():
        word = word.strip(_PUNCT)
        if not word:
            continue
        if _NO_SPACE.search(word) is None:
            out.append(word)
        else:
            out.extend(ch for ch in word if ch not in _PUNCT)
    return out


def tandem(tokens: list[str], max_n: int = 8) -> tuple[int, int]:
    """(repeats, n) of the back-to-back repetition of one n-gram that covers
    the most tokens (ties: fewer repeats lose, then the smaller n and the
    earlier one win); (1, 0) when nothing repeats.

    One pass per n: a run of L positions j where ``tokens[j] == tokens[j +
    n]`` is an n-gram repeated ``L // n + 1`` times from the run's start, and
    no later start inside the run repeats it more often. (The judge runs
    this on every looping output: random weights loop on every chunk.)"""
    best = (1, 0)
    size = len(tokens)
    for n in range(1, min(max_n, size // 2) + 1):
        run = 0
        for j in range(size - n + 1):
            if j < size - n and tokens[j] == tokens[j + n]:
                run += 1
                continue
            if run >= n:
                reps = run // n + 1
                if (reps * n, reps) > (best[0] * best[1], best[0]):
                    best = (reps, n)
            run = 0
    return best


def _loop(text: str, out_tokens: list[str], out_counts: Counter, source: str,
          src_tokens: list[str], t: Thresholds) -> str | None:
    # Every word of a unit repeated k times occurs k times: most outputs are
    # cleared by one count, without looking for the unit.
    reps, n = (1, 0)
    if len(out_tokens) >= t.loop_tokens and max(out_counts.values()) >= t.loop_repeats:
        reps, n = tandem(out_tokens, t.max_ngram)
    if reps >= t.loop_repeats and reps * n >= t.loop_tokens:
        src_reps, _ = tandem(src_tokens, t.max_ngram)
        if reps >= t.loop_vs_source * src_reps:
            start = next(i for i in range(len(out_tokens)) if
                         out_tokens[i : i + n] * reps == out_tokens[i : i + n * reps])
            unit = " ".join(out_tokens[start : start + n])
            return f"{unit!r} repeated {reps} times"
    # A text that compresses like a loop repeats its words: with most of its
    # words different, there is no need to compress it.
    if len(text) >= t.zlib_min_chars and len(out_counts) < 0.6 * len(out_tokens):
        ratio = _compression(text)
        if ratio > t.zlib_ratio and ratio > 1.5 * _compression(source):
            return f"compresses {ratio:.1f} to 1 (repetitive)"
    return None


def _compression(text: str) -> float:
    """Characters per byte of zlib output, each distinct character written as
    one byte: UTF-8 would make Devanagari or Chinese (three bytes a
    character, the first shared) look repetitive when it is not."""
    ids: dict[str, int] = {}
    data = bytes(ids.setdefault(ch, len(ids)) % 256 for ch in text)
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _script(text: str, out_tokens: list[str], src_tokens: list[str], tgt_lang: str,
            t: Thresholds) -> str | None:
    target = code_script(tgt_lang)
    if target not in ALLOWED:
        return None
    letters = letters_of(text)
    latin = count_in(letters, "Latn") if target != "Latn" else 0
    judged = len(letters) - latin
    if judged >= t.script_min_letters:
        inside = count_in(letters, target)
        if inside < t.script_share * judged:
            others = Counter(script_of(ch) for ch in letters if script_of(ch) != "LATIN"
                             or target == "Latn")
            top = others.most_common(1)[0][0].title() if others else "?"
            return f"{inside / judged:.0%} of its letters are in {target} script; most are {top}"
        return None
    if judged == 0 and latin:
        # All Latin in a non-Latin target: names copied from the source are
        # fine; words of its own are another language.
        source_words = set(src_tokens)
        latin_words = [w for w in out_tokens if count_in(letters_of(w), "Latn")]
        novel = [w for w in latin_words if w not in source_words]
        if len(novel) >= 3 and len(novel) >= 0.5 * len(latin_words):
            return f"written in Latin letters, not {target} script"
    return None


def _is_copy(source: str, src_tokens: list[str], out_counts: Counter, out_len: int,
             t: Thresholds) -> bool:
    if len(src_tokens) < t.copy_min_words:
        return False
    common = sum((Counter(src_tokens) & out_counts).values())
    return common >= t.copy_share * max(len(src_tokens), out_len) and not _names_only(source)


def _names_only(source: str) -> bool:
    """Every word starts with a capital or a digit: a title or a list of names."""
    words = [w for w in _WORD.findall(source) if any(ch.isalpha() for ch in w)]
    return bool(words) and all(w[0].isupper() or w[0].isdigit() for w in words)


def weighted_length(text: str) -> int:
    """Letters and digits, a Han or kana character counting 3 and a Hangul
    syllable 2: about what one Latin letter says, per character."""
    core = _NOT_ALNUM.sub("", text)
    return len(core) + 2 * len(_CJK_CHAR.findall(core)) + len(_HANGUL.findall(core))


def _length(source: str, text: str, t: Thresholds) -> str | None:
    src, out = weighted_length(source), weighted_length(text)
    if out > t.length_max * src + t.length_slack:
        return f"{out / max(src, 1):.1f} times as long as its source"
    if src >= t.length_min_source and out < t.length_min * src:
        return f"{out / src:.2f} times as long as its source"
    return None
