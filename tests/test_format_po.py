"""gettext catalogues: every msgid translated into its msgstr, everything else kept.

A structure checker (``assert_same_catalogue``) reads input and output with
polib and compares them entry by entry; ``msgfmt -c`` (GNU gettext) checks
the output as translators' tools will, where it is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import polib
import pytest

from pipeline.cli import main
from pipeline.documents import protect
from pipeline.documents.formats import FormatOptions, parse_document
from pipeline.documents.formats.po import segments
from pipeline.errors import InvalidInput
from tests.conftest import corpus_file

DATA = Path(__file__).parent / "data"
DJANGO = DATA / "django_admin_excerpt.po"
EDGES = r'''# A hand-written catalogue.
# Copyright (C) 2026 Nobody
#
#, fuzzy
msgid ""
msgstr ""
"Project-Id-Version: edge 1.0\n"
"POT-Creation-Date: 2026-01-01 00:00+0000\n"
"PO-Revision-Date: YEAR-MO-DA HO:MI+ZONE\n"
"Language: \n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=CHARSET\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\n"

#. An extracted comment for translators.
#: src/main.c:10 src/main.c:20
#, c-format
msgid "Open %s in %1$d windows"
msgstr ""

#: src/menu.c:5
msgctxt "menu"
msgid "&File"
msgstr ""

#: src/menu.c:6
msgctxt "verb"
msgid "File"
msgstr ""

#, c-format
msgid "One file was removed."
msgid_plural "%d files were removed."
msgstr[0] ""
msgstr[1] ""

#, python-brace-format
msgid "Hello {name}, you have {0} new messages."
msgstr ""

msgid ""
"A long message that spans\n"
"two lines in the source.\n"
"\n"
"And a second paragraph with \"quotes\", a tab\tand a backslash \\.\n"
msgstr ""

# A translator's comment.
#, fuzzy
msgid "Already drafted."
msgstr "Déjà esquissé."

msgid "Already done."
msgstr "Déjà fait."

msgid "42"
msgstr ""

#~ msgid "An obsolete entry."
#~ msgstr "Une entrée obsolète."
'''


def translate_all(doc, mark=lambda i: f"Tr{i}"):
    """A translation per unit that keeps its placeholders (markers) in order."""
    return [mark(i) + " " + "".join(protect.marker(k) for k in range(len(u.protected)))
            for i, u in enumerate(doc.units)]


def msgfmt_check(path: Path) -> None:
    if not shutil.which("msgfmt"):
        pytest.skip("msgfmt (GNU gettext) is not installed: apt-get install gettext")
    done = subprocess.run(["msgfmt", "-c", "--use-fuzzy", "-o", "/dev/null", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def assert_same_catalogue(source: str, output: str, tgt_lang: str, *, overwrite=False,
                          fuzzy=True) -> int:
    """Entries, contexts, comments, references, flags and obsolete entries
    as they were; each untranslated entry now translated (every plural form
    the target has), translated ones untouched. Returns how many were translated."""
    before, after = polib.pofile(source), polib.pofile(output)
    assert len(before) == len(after)
    assert after.metadata["Language"] == {"fra_Latn": "fr", "rus_Cyrl": "ru",
                                          "zho_Hans": "zh_CN"}.get(tgt_lang, after.metadata[
                                              "Language"])
    nplurals = int(after.metadata["Plural-Forms"].split(";")[0].split("=")[1])
    translated = 0
    for was, now in zip(before, after):
        for attr in ("msgid", "msgid_plural", "msgctxt", "comment", "tcomment", "occurrences",
                     "obsolete", "previous_msgid"):
            assert getattr(was, attr) == getattr(now, attr), (attr, was.msgid)
        had = bool(was.msgstr) or any(was.msgstr_plural.values())
        if was.obsolete or (had and not overwrite):
            assert (now.msgstr, now.msgstr_plural, now.flags) == (
                was.msgstr, was.msgstr_plural, was.flags)
            continue
        translated += 1
        assert [f for f in now.flags if f != "fuzzy"] == [f for f in was.flags if f != "fuzzy"]
        assert ("fuzzy" in now.flags) == (fuzzy or "fuzzy" in was.flags)
        if was.msgid_plural:
            assert sorted(now.msgstr_plural) == list(range(nplurals))
            assert all(now.msgstr_plural.values())
        else:
            assert now.msgstr
    return translated


def parse(text: str, tgt: str = "fra_Latn", **options):
    return parse_document(text, "po", options=FormatOptions(tgt_lang=tgt, **options))


@pytest.mark.parametrize("tgt", ["fra_Latn", "rus_Cyrl", "zho_Hans"])
def test_edge_cases_keep_their_structure_and_pass_msgfmt(tmp_path, tgt):
    doc = parse(EDGES, tgt)
    out = tmp_path / "out.po"
    out.write_text(doc.render(translate_all(doc)))
    assert assert_same_catalogue(EDGES, out.read_text(), tgt) == 7
    msgfmt_check(out)
    header = polib.pofile(str(out)).metadata
    assert header["Content-Type"] == "text/plain; charset=UTF-8"
    assert not polib.pofile(str(out)).metadata_is_fuzzy


def test_placeholders_and_accelerators_travel_as_placeholders():
    doc = parse(EDGES)
    assert [p for u in doc.units for p, _ in u.protected] == [
        "%s", "%1$d", "&", "%d", "%d", "{name}", "{0}"]
    assert doc.units[1].text == protect.marker(0) + "File"
    # A string copied by the model comes back as it was, escapes and line breaks included.
    rendered = polib.pofile(doc.render([u.text for u in doc.units]))
    long = next(e for e in rendered if e.msgid.startswith("A long message"))
    assert long.msgstr == long.msgid
    # Translated, its paragraphs keep the blank line between them and the
    # line break at the end; the lines of one paragraph are joined.
    units = [u.text for u in doc.units]
    first = units.index("A long message that spans two lines in the source.")
    units[first], units[first + 1] = "Un long message.", 'Et un second avec "guillemets".'
    rendered = polib.pofile(doc.render(units))
    long = next(e for e in rendered if e.msgid.startswith("A long message"))
    assert long.msgstr == 'Un long message.\n\nEt un second avec "guillemets".\n'


@pytest.mark.parametrize(("text", "kept"), [
    ("Delete %(count)d files, %s of %5.2f%% (%1$s, %-10s)?",
     ["%(count)d", "%s", "%5.2f", "%%", "%1$s", "%-10s"]),
    ("Hello {name}, {0} and {user.email!r:>10} but {{literal}}.",
     ["{name}", "{0}", "{user.email!r:>10}", "{{", "}}"]),
    ("&Save, E&xit, Tom &amp; Jerry, R & D", ["&", "&"]),
    ("I am 100% sure, 50 % off.", []),
])
def test_which_placeholders_are_protected(text, kept):
    assert [p.text for p in segments(text) if not isinstance(p, str)] == kept


def test_plural_forms_follow_the_target_language():
    ru = polib.pofile(parse(EDGES, "rus_Cyrl").render(translate_all(parse(EDGES, "rus_Cyrl"))))
    plural = next(e for e in ru if e.msgid_plural)
    assert sorted(plural.msgstr_plural) == [0, 1, 2]
    assert ru.metadata["Plural-Forms"].startswith("nplurals=3;")
    # Chinese has one form, which must carry the count: the plural's translation.
    zh_doc = parse(EDGES, "zho_Hans")
    zh = polib.pofile(zh_doc.render(translate_all(zh_doc)))
    assert list(next(e for e in zh if e.msgid_plural).msgstr_plural) == [0]
    # English has form 0 for one alone: the singular's.
    fr_doc = parse(EDGES, "eng_Latn")
    assert [u.text for u in fr_doc.units if "removed" in u.text][0].startswith("One file")


def test_an_unknown_plural_rule_is_a_warning_of_the_job(tmp_path):
    from pipeline.documents.formats.slices import SliceParser, slices
    from pipeline.documents.inputs import InputLines

    path = tmp_path / "edges.po"
    path.write_text(EDGES)
    parser = SliceParser("po", options=FormatOptions(tgt_lang="quy_Latn"))
    for piece in slices(InputLines(path), "po"):
        parser.parse(piece)
    assert "plural rule of quy_Latn is not known" in parser.finish()[0]


def test_an_unknown_plural_rule_is_said_and_two_forms_written():
    doc = parse(EDGES, "quy_Latn")
    assert "plural rule of quy_Latn is not known" in doc.notes[0]
    out = polib.pofile(doc.render(translate_all(doc)))
    assert out.metadata["Plural-Forms"] == "nplurals=2; plural=(n != 1);"
    assert out.metadata["Language"] == "quy"


def test_overwrite_translated_and_no_fuzzy():
    doc = parse(EDGES, overwrite_translated=True, fuzzy=False)
    out = doc.render(translate_all(doc))
    assert assert_same_catalogue(EDGES, out, "fra_Latn", overwrite=True, fuzzy=False) == 9
    assert "Déjà fait." not in out and "Une entrée obsolète." in out


def test_entries_without_blank_lines_between_them_are_written_by_polib(tmp_path):
    packed = ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
              '#: a.c:1\nmsgid "Open the door."\nmsgstr ""\n'
              '#: a.c:2\nmsgid "Close it."\nmsgstr "Fermez-la."\n')
    doc = parse(packed)
    out = tmp_path / "packed.po"
    out.write_text(doc.render(translate_all(doc)))
    assert assert_same_catalogue(packed, out.read_text(), "fra_Latn") == 1
    msgfmt_check(out)


def test_not_a_catalogue_is_refused():
    with pytest.raises(InvalidInput, match=r"not a gettext catalogue: .*\(line 2\)"):
        parse('msgid "a"\nmsgstr "b" junk\n')


@pytest.mark.parametrize("path", [DJANGO, "django_admin_en.po"])
def test_a_real_catalogue(tmp_path, path):
    path = path if isinstance(path, Path) else corpus_file(path)
    source = path.read_text()
    doc = parse(source)
    out = tmp_path / "django.fr.po"
    out.write_text(doc.render(translate_all(doc)))
    assert assert_same_catalogue(source, out.read_text(), "fra_Latn") > 10
    msgfmt_check(out)
    # Every msgid (and msgctxt, comment, reference) is written as the input
    # wrote it, wrapping included: only msgstr, flags and the header change.
    def kept(text):
        out, section = [], ""
        for line in text.split("\n"):
            if not line.startswith('"'):
                section = line.split(" ")[0]
            if not section.startswith(("msgstr", "#,")):
                out.append(line)
        return out
    assert kept(out.read_text()) == kept(source)
    # The model copying every unit gives each msgstr its msgid exactly (the
    # plural's for the other forms), spaces and line breaks included.
    same = polib.pofile(doc.render([u.text for u in doc.units]))
    for entry in same:
        if entry.msgid and not entry.msgid_plural:
            assert entry.msgstr == entry.msgid
        elif entry.msgid:
            assert entry.msgstr_plural[1] == entry.msgid_plural


def test_options_that_do_not_apply_are_refused(tmp_path, capsys):
    src = tmp_path / "a.txt"
    src.write_text("Hello there.\n\nBye.\n")
    for option in ("--no-fuzzy", "--overwrite-translated", "--columns=a", "--in-place"):
        code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                     "--tgt", "fra_Latn", option])
        err = capsys.readouterr().err
        assert code == 2 and "applies to" in err and "not text" in err, err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_translate_a_template_end_to_end(tmp_path, capsys, trained_model):
    # At the defaults users run: beams 4, --quality repair.
    src = tmp_path / "django.pot"
    shutil.copy(DJANGO, src)
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(trained_model), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["output"].endswith("django.fra_Latn.po")  # a template's translation is a .po
    output = Path(result["output"])
    assert assert_same_catalogue(src.read_text(), output.read_text(), "fra_Latn") == 17
    msgfmt_check(output)
