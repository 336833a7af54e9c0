"""Protected placeholders: what is protected, what the model sees, how a
translation is checked and put back (pipeline.documents.protect)."""

from __future__ import annotations

import pytest

from pipeline.documents import protect
from pipeline.documents.document import Document
from pipeline.documents.formats.markdown import parse_markdown
from pipeline.documents.protect import Protected, build, check, chunk_view, find_tokens, restore
from pipeline.documents.segment import chunk_text, split_to_fit


def tokens(text: str) -> list[str]:
    return [text[a:b] for a, b in find_tokens(text)]


TOKEN_CASES = [
    ("See https://github.com/Textualize/rich_cli, then go.", ["https://github.com/Textualize/rich_cli"]),
    ("(see https://x.org/a?b=1&c=2).", ["https://x.org/a?b=1&c=2"]),
    ("Wiki: https://en.wikipedia.org/wiki/Rich_(software).", ["https://en.wikipedia.org/wiki/Rich_(software)"]),
    ("Go to www.example.org/path; now", ["www.example.org/path"]),
    ("Write to name.surname+tag@example.co.uk today.", ["name.surname+tag@example.co.uk"]),
    ("Edit ~/.config/rich.toml or /etc/hosts or ./run.sh or C:\\Tools\\seconv.exe",
     ["~/.config/rich.toml", "/etc/hosts", "./run.sh", "C:\\Tools\\seconv.exe"]),
    ("Open src/pipeline/main.py and README.md.", ["src/pipeline/main.py", "README.md"]),
    ("Thanks @willmcgugan and @org/team!", ["@willmcgugan", "@org/team"]),
    ("Needs 1.2.3, v2.0 and 2.0.0-beta.1 (not Python 3.8).", ["1.2.3", "v2.0", "2.0.0-beta.1"]),
    ("A citation [12] and a marker \U000F0003.", ["[12]", "\U000F0003"]),
    # autolinks whole: plain text lost the brackets and glued the URL on
    ("Read <https://fsf.org/> and <https://www.gnu.org/licenses/>.",
     ["<https://fsf.org/>", "<https://www.gnu.org/licenses/>"]),
    ("Mail <name@example.org> or <mailto:a@b.org>.", ["<name@example.org>", "<mailto:a@b.org>"]),
    # identifiers: translated away before
    ("Set snake_case_name and MAX_SIZE in __init__.py or setup.cfg.",
     ["snake_case_name", "MAX_SIZE", "__init__.py", "setup.cfg"]),
    ("Call os.path.join() on sys.argv, then __main__ and __dunder__.",
     ["os.path.join()", "sys.argv", "__main__", "__dunder__"]),
    ("Ship it :rocket: and :+1: now: done.", [":rocket:", ":+1:"]),
    # not tokens: prose that only looks a bit like one
    ("Yes and/or no, TCP/IP at 50 km/h, e.g. 3.8 or 1/2 of it.", []),
    ("The end. Mr. Smith said so; i.e. fine.", []),
    ("At 10:30:45 in the U.S. on a.m. time, Note: _this_ x.y works.Then", []),
]


@pytest.mark.parametrize(("text", "found"), TOKEN_CASES)
def test_untranslatable_tokens_are_found_in_running_text(text, found):
    assert tokens(text) == found


def _filter_cases() -> list[str]:
    """The parametrized cases, what fools a cheap filter, and every line of
    the shared corpus' text documents where it is present."""
    import re

    from tests.conftest import CORPUS

    texts = [t for t, _ in TOKEN_CASES] + [
        "www.!", "www1.x", "a\\b", "C:\\x", "x.y", "v1.2", "1.2.3", "[1]", "@a", "a@b.cd",
        "plain words only, and a full stop.", "...", ". a", "e.g. this", "\U000F0001",
        "ftp://h", "mailto:a@b.org", "http:x", "tab\there/there",
    ]
    if CORPUS.is_dir():
        for path in sorted(CORPUS.iterdir()):
            if path.suffix in (".txt", ".md", ".srt", ".vtt", ".po", ".html"):
                texts += path.read_text("utf-8", errors="replace").splitlines()
    return [t for t in texts if not re.fullmatch(r"\s*", t)]


def test_the_cheap_filter_never_changes_what_is_found(monkeypatch):
    """find_tokens skips _TOKEN's search where _MAYBE_TOKEN finds nothing
    it needs; on every case and corpus line the tokens are those of the
    search alone."""
    texts = _filter_cases()
    filtered = [find_tokens(t) for t in texts]
    monkeypatch.setattr(protect, "_MAYBE_TOKEN", __import__("re").compile(""))
    assert [find_tokens(t) for t in texts] == filtered
    assert sum(map(bool, filtered)) > 10  # the cases do have tokens


def test_build_marks_tokens_and_markup_and_pairs_by_key():
    marked, protected = build(["Read ", Protected("[", "open", "link"), "the ",
                               Protected("*", "open", "em"), "docs", Protected("*", "close", "em"),
                               Protected("](https://x.org)", "close", "link"),
                               " at https://y.org/a_b now."])
    m = [protect.marker(k) for k in range(4)]
    assert marked == f"Read {m[0]}the {m[1]}docs{m[2]}{m[3]} at {protect.marker(4)} now."
    assert protected == (("[", 3), ("*", 2), ("*", 1), ("](https://x.org)", 0),
                         ("https://y.org/a_b", -1))
    # A half pair (the other end in another unit) says which half it is.
    _, half = build([Protected("**", "close", "strong"), "a ", Protected("<i>", "open", "i")])
    assert half == (("**", -2), ("<i>", -3))


def test_escaped_text_is_never_part_of_a_token():
    marked, protected = build(["see https://x.org/a", protect.Escaped("*"), "b"])
    assert protected == (("https://x.org/a", -1),)
    assert marked.endswith("*b")


UNIT = build(["Click ", Protected("[", "open", "link"), "here", Protected("](u)", "close", "link"),
              ". Then ", Protected("**", "open", "s"), "stop", Protected("**", "close", "s"),
              " at https://x.org."])


def test_the_model_sees_numbered_brackets_and_the_spec_says_what_they_are():
    source, spec = chunk_view(UNIT[0], UNIT[1])
    assert source == "Click [1]here[2]. Then [3]stop[4] at [5]."
    assert spec == [[0, 2, "o"], [1, 1, "c"], [2, 4, "o"], [3, 3, "c"], [4, 0, ""]]
    # A chunk holding one end of a pair: its partner is elsewhere (0).
    first, second = UNIT[0].split(". ", 1)
    assert chunk_view(first + ".", UNIT[1]) == ("Click [1]here[2].", [[0, 2, "o"], [1, 1, "c"]])
    half, half_spec = chunk_view(second[: second.index("stop") + 4], UNIT[1])
    assert half == "Then [1]stop" and half_spec == [[2, 0, "o"]]


@pytest.mark.parametrize(("translation", "problem"), [
    ("Cliquez [1]ici[2]. Puis [3]arrêtez[4] à [5].", None),
    ("À [5], [3]arrêtez[4] puis cliquez [1]ici[2].", None),  # reordered, still nested right
    ("Cliquez [1]ici[2]. Puis arrêtez à [5].", "placeholder [3] 0 times, [4] 0 times"),
    ("Cliquez [1]ici[2] [2]. Puis [3]arrêtez[4] à [5].", "placeholder [2] 2 times"),
    ("Cliquez [2]ici[1]. Puis [3]arrêtez[4] à [5].", "pair [1] closes before it opens"),
    ("Cliquez [1]ici [3]et[2] arrêtez[4] à [5].", "pairs [1] and [3] are nested differently"),
    ("Cliquez [1]ici[2]. Puis [3]arrêtez[4] à [5] [7].", None),  # [7] is the model's own text
])
def test_each_placeholder_must_come_back_once_and_pairs_stay_balanced(translation, problem):
    _, spec = chunk_view(UNIT[0], UNIT[1])
    assert check(translation, spec) == problem


def test_half_pairs_stay_outside_the_chunks_pairs():
    # "a**" closes a pair opened in the previous chunk, "[x" opens one closed later.
    spec = [[0, 0, "c"], [1, 0, "o"]]
    assert check("a[1] b [2]x", spec) is None
    assert check("a [2]x b[1]", spec) == "pairs [1] and [2] are nested differently"


def test_restore_puts_markers_in_place_and_tightens_pairs():
    _, spec = chunk_view(UNIT[0], UNIT[1])
    m = [protect.marker(k) for k in range(5)]
    out = restore("Cliquez [1] ici [2]. Puis [3]arrêtez [4] à [5] [9].", spec)
    assert out == f"Cliquez {m[0]}ici{m[1]}. Puis {m[2]}arrêtez{m[3]} à {m[4]} [9]."
    assert restore("stray \U000F0002 marker [1]", []) == "stray  marker [1]"


def test_chunks_never_cut_a_protected_piece():
    url = "https://example.org/" + "a" * 40
    text = " ".join(f"word{i} {url}" for i in range(30))
    marked, protected = build([text])
    assert len(protected) == 30

    def count(texts):  # one token per character of what the model sees
        return [len(protect.visible(t)) + 2 for t in texts]

    pieces = chunk_text(marked, "eng_Latn", count, 40)
    assert "".join(pieces) == marked and len(pieces) > 5
    seen = []
    for piece in pieces:
        source, spec = chunk_view(piece.strip(), protected)
        assert source.count("[") == len(spec)  # every marker became a whole placeholder
        seen += [k for k, _, _ in spec]
    assert seen == list(range(30))
    # Even at the last tier (between characters) a marker stays whole.
    assert all(p for p in split_to_fit(marked[:200], count, 12))


def test_placeholders_are_stable_tokens_for_the_real_nllb_tokenizer(tiny_model):
    """"[n]" is made of characters NLLB's SentencePiece knows, tokenizes the
    same wherever it stands and decodes back exactly; rare brackets do not."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    tok.src_lang = "eng_Latn"

    def pieces(text):
        return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])

    for n in ("1", "12"):
        ph = f"[{n}]"
        body = ["[", *n, "]"]
        for context in (f"See the {ph} page.", f"See the{ph}docs{ph} and", f"{ph}Run",
                        f"end {ph}.", f"x{ph},"):
            ids = tok(context, add_special_tokens=False)["input_ids"]
            assert tok.decode(ids, skip_special_tokens=True) == context
            toks = pieces(context)
            starts = [i for i in range(len(toks)) if toks[i].lstrip("▁") == "["]
            assert starts and all(toks[i + 1 : i + len(body)] == body[1:] for i in starts)
    for rare in ("⟦1⟧", "【1】", "«1»", "{1}"):
        ids = tok(f"See {rare} here", add_special_tokens=False)["input_ids"]
        assert tok.decode(ids, skip_special_tokens=True) != f"See {rare} here"


def test_a_unit_keeps_its_protected_pieces_through_the_skeleton():
    doc = Document()
    doc.add_unit(["Run ", Protected("`x`"), " at https://x.org/a_b."], markdown=True)
    again = Document.from_json(doc.to_json())
    assert again.units == doc.units
    assert again.render([u.text for u in again.units]) == "Run `x` at https://x.org/a_b."
    # A translation's text is escaped around the pieces, never the pieces.
    text = again.units[0].text.replace("Run", "Lance *").replace("at", "sur")
    assert again.render([text]) == "Lance \\* `x` sur https://x.org/a_b."


def test_markdown_inline_markup_stays_inside_one_sentence():
    src = "Run `rich` and see the [docs](https://rich.rtfd.io) or **read** it.\n"
    doc = parse_markdown(src)
    assert len(doc.units) == 1
    source, spec = chunk_view(doc.units[0].text, doc.units[0].protected)
    assert source == "Run [1] and see the [2]docs[3] or [4]read[5] it."
    assert [role for _, _, role in spec] == ["", "o", "c", "o", "c"]


def test_markup_right_after_a_full_stop_stays_with_its_sentence():
    doc = parse_markdown("**Not bundled with `seconv`.** The `nocr` engine needs one.\n")
    unit = doc.units[0]
    from pipeline.documents.segment import split_sentences

    first, second = split_sentences(unit.text, "eng_Latn")
    assert chunk_view(first.strip(), unit.protected)[0] == "[1]Not bundled with [2].[3]"
    assert chunk_view(second.strip(), unit.protected)[0] == "The [1] engine needs one."
