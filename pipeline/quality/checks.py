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
frozen ``Thresholds`` that ``JobParams.output_settings`` reports.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass

from pipeline.formats.linebreaks import is_cjk
from pipeline.quality.scripts import ALLOWED, code_script, letter_scripts, script_of

REASONS = ("loop", "budget", "script", "copy", "length")
_KNOWN_SCRIPTS = frozenset().union(*ALLOWED.values())
_NO_SPACES = frozenset({"THAI", "LAO", "KHMER", "MYANMAR"})
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Thresholds:
    loop_repeats: int = 4  # an n-gram repeated back to back this many times...
    loop_tokens: int = 8  # ...covering at least this many words...
    loop_vs_source: float = 2.0  # ...and this many times the source's own longest run
    max_ngram: int = 8  # longest repeated unit looked for, in words
    zlib_ratio: float = 2.4  # bytes / zlib-compressed bytes of a looping output
    zlib_min_bytes: int = 120  # shorter outputs do not compress enough to tell
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
    reason: str  # one of REASONS (or "placeholders", from pipeline.protect)
    detail: str


def inspect(source: str, text: str, *, stopped: bool, budget: int, src_lang: str,
            tgt_lang: str, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[Finding]:
    """What is wrong with translation ``text`` of ``source``, most telling
    first (REASONS order); empty when nothing is."""
    t = thresholds
    out_tokens, src_tokens = _tokens(text), _tokens(source)
    found = []
    loop = _loop(text, out_tokens, source, src_tokens, t)
    if loop:
        found.append(Finding("loop", loop))
    if not stopped:
        found.append(Finding("budget", f"ran into its budget of {budget} tokens without stopping"))
    script = _script(text, out_tokens, src_tokens, tgt_lang, t)
    if script:
        found.append(Finding("script", script))
    if src_lang != tgt_lang and _is_copy(source, src_tokens, out_tokens, t):
        found.append(Finding("copy", "the source came back untranslated"))
    length = _length(source, text, t)
    if length:
        found.append(Finding("length", length))
    return found


def _no_space_letter(ch: str) -> bool:
    return is_cjk(ch) or script_of(ch) in _NO_SPACES


def _tokens(text: str) -> list[str]:
    """Words, casefolded; each character is a word where the script has no spaces."""
    out: list[str] = []
    for word in _WORD.findall(text.casefold()):
        if not any(_no_space_letter(ch) for ch in word):
            out.append(word)
            continue
        run = ""
        for ch in word:
            if _no_space_letter(ch):
                if run:
                    out.append(run)
                    run = ""
                out.append(ch)
            else:
                run += ch
        if run:
            out.append(run)
    return out


def tandem(tokens: list[str], max_n: int = 8) -> tuple[int, int]:
    """(repeats, n) of the back-to-back repetition of one n-gram that covers
    the most tokens; (1, 0) when nothing repeats."""
    best = (1, 0)
    size = len(tokens)
    for n in range(1, min(max_n, size // 2) + 1):
        i = 0
        while i + 2 * n <= size:
            reps, j = 1, i
            while j + 2 * n <= size and tokens[j : j + n] == tokens[j + n : j + 2 * n]:
                reps, j = reps + 1, j + n
            if reps > 1 and (reps * n, reps) > (best[0] * best[1], best[0]):
                best = (reps, n)
            i = j + 1 if reps > 1 else i + 1
    return best


def _loop(text: str, out_tokens: list[str], source: str, src_tokens: list[str],
          t: Thresholds) -> str | None:
    reps, n = tandem(out_tokens, t.max_ngram)
    if reps >= t.loop_repeats and reps * n >= t.loop_tokens:
        src_reps, _ = tandem(src_tokens, t.max_ngram)
        if reps >= t.loop_vs_source * src_reps:
            start = next(i for i in range(len(out_tokens)) if
                         out_tokens[i : i + n] * reps == out_tokens[i : i + n * reps])
            unit = " ".join(out_tokens[start : start + n])
            return f"{unit!r} repeated {reps} times"
    data = text.encode()
    if len(data) >= t.zlib_min_bytes:
        ratio = _compression(data)
        if ratio > t.zlib_ratio and ratio > 1.5 * _compression(source.encode()):
            return f"compresses {ratio:.1f} to 1 (repetitive)"
    return None


def _compression(data: bytes) -> float:
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _script(text: str, out_tokens: list[str], src_tokens: list[str], tgt_lang: str,
            t: Thresholds) -> str | None:
    target = code_script(tgt_lang)
    allowed = ALLOWED.get(target)
    if allowed is None:
        return None
    counts = Counter({k: v for k, v in letter_scripts(text).items() if k in _KNOWN_SCRIPTS})
    latin = counts.pop("LATIN", 0) if "LATIN" not in allowed else 0
    judged = sum(counts.values())
    if judged >= t.script_min_letters:
        inside = sum(v for k, v in counts.items() if k in allowed)
        if inside < t.script_share * judged:
            top = counts.most_common(1)[0][0].title()
            return f"{inside / judged:.0%} of its letters are in {target} script; most are {top}"
        return None
    if judged == 0 and latin:
        # All Latin in a non-Latin target: names copied from the source are
        # fine; words of its own are another language.
        source_words = set(src_tokens)
        latin_words = [w for w in out_tokens if any(script_of(ch) == "LATIN" for ch in w)]
        novel = [w for w in latin_words if w not in source_words]
        if len(novel) >= 3 and len(novel) >= 0.5 * len(latin_words):
            return f"written in Latin letters, not {target} script"
    return None


def _is_copy(source: str, src_tokens: list[str], out_tokens: list[str], t: Thresholds) -> bool:
    if len(src_tokens) < t.copy_min_words or _names_only(source):
        return False
    common = sum((Counter(src_tokens) & Counter(out_tokens)).values())
    return common >= t.copy_share * max(len(src_tokens), len(out_tokens))


def _names_only(source: str) -> bool:
    """Every word starts with a capital or a digit: a title or a list of names."""
    words = [w for w in _WORD.findall(source) if any(ch.isalpha() for ch in w)]
    return bool(words) and all(w[0].isupper() or w[0].isdigit() for w in words)


def weighted_length(text: str) -> float:
    """Letters and digits, a Han or kana character counting 3 and a Hangul
    syllable 2: about what one Latin letter says, per character."""
    total = 0.0
    for ch in text:
        if not ch.isalnum():
            continue
        if is_cjk(ch):
            total += 3
        elif script_of(ch) == "HANGUL":
            total += 2
        else:
            total += 1
    return total


def _length(source: str, text: str, t: Thresholds) -> str | None:
    src, out = weighted_length(source), weighted_length(text)
    if out > t.length_max * src + t.length_slack:
        return f"{out / max(src, 1):.1f} times as long as its source"
    if src >= t.length_min_source and out < t.length_min * src:
        return f"{out / src:.2f} times as long as its source"
    return None
