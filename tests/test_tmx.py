"""TMX 1.4 export and import: a round trip keeps every unit and its key; a
bad file is refused with one line and exit code 2, and changes nothing."""

from __future__ import annotations

import json

import pytest

from models import HfTranslator
from pipeline.cli import main
from pipeline.config import RunSettings
from pipeline.languages import FLORES_CODES
from pipeline.memory.exchange import export_tmx, import_tmx
from pipeline.memory.scope import MemoryScope
from pipeline.memory.tmx import TmxError, flores_for_tag, language_tag
from pipeline.store import Store
from tests.test_memory import Counting, distinct_sentences, translate

SCOPE = MemoryScope("model:/m", "hf", "cpu", "float32", "eng_Latn", "fra_Latn",
                    '{"beams":1,"length_offset":4,"length_ratio":0.5}', model="/m")
TRICKY = [
    ("Fish & chips <b>not markup</b>.", 'Poisson & frites "<b>"'),
    ("Tab\there, a carriage\rreturn.", "  leading spaces kept, trailing too  "),
    ("Ünïcödé — ok 🙂", "日本語のテキスト"),
]


def test_every_flores_code_survives_its_tmx_language_tag():
    assert {flores_for_tag(language_tag(code)) for code in FLORES_CODES} == set(FLORES_CODES)
    assert [language_tag(c) for c in ("eng_Latn", "zho_Hant", "ace_Arab")] == [
        "en-Latn", "zh-Hant", "ace-Arab"]
    other_tools = {"en-US": "eng_Latn", "fr-FR": "fra_Latn", "FR": "fra_Latn",
                   "zh-TW": "zho_Hant", "zh-CN": "zho_Hans", "pt_BR": "por_Latn",
                   "eng_Latn": "eng_Latn", "ace": "ace_Arab", "xx-YY": None, "english": None,
                   "en-Cyrl": None}
    assert {tag: flores_for_tag(tag) for tag in other_tools} == other_tools


def test_export_then_import_keeps_every_unit_under_its_scope(tmp_path):
    a = Store(tmp_path / "a.db")
    other = MemoryScope("model:/m", "ctranslate2", "cuda", "int8", "eng_Latn", "fra_Latn",
                        '{"beams":4,"length_offset":16,"length_ratio":2.0}', model="/m")
    a.import_memory([(SCOPE, s, t) for s, t in TRICKY] + [(other, "Hello.", "Bonjour.")])
    report = export_tmx(a, tmp_path / "m.tmx")
    assert (report.units, report.left_out) == (4, 0)

    b = Store(tmp_path / "b.db")
    done = import_tmx(b, tmp_path / "m.tmx", SCOPE)
    assert (done.units, done.added, done.same) == (4, 4, 0)
    key = lambda store: sorted((e.scope.digest, e.source, e.translation)  # noqa: E731
                               for e in store.memory_entries())
    assert key(b) == key(a)
    assert {e.scope for e in b.memory_entries()} == {SCOPE, other}
    again = import_tmx(b, tmp_path / "m.tmx", SCOPE)
    assert (again.added, again.same) == (0, 4)
    a.import_memory([(SCOPE, "A form\x0cfeed.", "XML 1.0 cannot hold it")])
    assert export_tmx(a, tmp_path / "ff.tmx").left_out == 1


def test_a_memory_exported_and_imported_elsewhere_serves_the_same_output(
        tmp_path, tiny_model, capsys):
    hf = HfTranslator(str(tiny_model), RunSettings(device="cpu"))
    doc = tmp_path / "doc.txt"
    doc.write_text("\n".join(distinct_sentences(10, seed=12)) + "\n")
    translate(Store(tmp_path / "a.db"), doc, tiny_model, Counting(hf), tmp_path / "a.txt",
              fmt="lines")
    assert main(["--db", str(tmp_path / "a.db"), "tm", "export", str(tmp_path / "m.tmx"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["units"] == 10
    assert main(["--db", str(tmp_path / "b.db"), "tm", "import", str(tmp_path / "m.tmx"),
                 "--model", str(tiny_model), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 10
    fresh = Counting(hf)
    translate(Store(tmp_path / "b.db"), doc, tiny_model, fresh, tmp_path / "b.txt", fmt="lines")
    assert fresh.texts == []
    assert (tmp_path / "b.txt").read_bytes() == (tmp_path / "a.txt").read_bytes()


FOREIGN = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE tmx SYSTEM "tmx14.dtd">
<tmx version="1.4">
  <header creationtool="SomeCAT" creationtoolversion="9" segtype="sentence" o-tmf="x"
          adminlang="en-US" srclang="en-US" datatype="plaintext"><prop type="client">Acme</prop></header>
  <body>
    <tu tuid="1"><note>checked</note>
      <tuv xml:lang="en-US"><seg>The red button stops the machine.</seg></tuv>
      <tuv xml:lang="fr-FR"><seg>Le bouton rouge arr\u00eate la machine.</seg></tuv>
    </tu>
    <tu tuid="2">
      <tuv xml:lang="EN-us"><seg>Press <ph x="1">&lt;b&gt;</ph>Start<ph x="2">&lt;/b&gt;</ph>.</seg></tuv>
      <tuv xml:lang="fr-fr"><seg>Appuyez sur D\u00e9marrer.</seg></tuv>
    </tu>
    <tu tuid="3">
      <tuv xml:lang="en-US"><seg>   </seg></tuv>
      <tuv xml:lang="fr-FR"><seg>vide</seg></tuv>
    </tu>
  </body>
</tmx>
"""


def test_a_tmx_from_another_tool_is_filed_under_the_named_model(tmp_path, tiny_model, capsys):
    (tmp_path / "cat.tmx").write_text(FOREIGN)
    assert main(["--db", str(tmp_path / "j.db"), "tm", "import", str(tmp_path / "cat.tmx"),
                 "--model", str(tiny_model), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 "--beams", "1", "--length-ratio", "0.5", "--length-offset", "4",
                 "--backend", "hf", "--quality", "off", "--json"]) == 0  # the job's backend
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["skipped_markup"], report["skipped_empty"]) == (1, 1, 1)
    # A job with that model and those settings takes the imported translation.
    doc = tmp_path / "doc.txt"
    doc.write_text("The red button stops the machine.\n")
    counting = Counting(HfTranslator(str(tiny_model), RunSettings(device="cpu")))
    translate(Store(tmp_path / "j.db"), doc, tiny_model, counting, tmp_path / "out.txt",
              fmt="lines")
    assert counting.texts == []
    assert (tmp_path / "out.txt").read_text() == "Le bouton rouge arrête la machine.\n"


def _unit(src_tag: str, tgt_tag: str, source: str = "Hello.", target: str = "Bonjour.",
          props: str = "") -> str:
    return (f"<tu>{props}<tuv xml:lang=\"{src_tag}\"><seg>{source}</seg></tuv>"
            f"<tuv xml:lang=\"{tgt_tag}\"><seg>{target}</seg></tuv></tu>\n")


def _tmx(*units: str, version: str = "1.4", srclang: str = "en", head: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{head}<tmx version="{version}">\n'
            f'<header creationtool="t" creationtoolversion="1" segtype="sentence" o-tmf="t" '
            f'adminlang="en" srclang="{srclang}" datatype="plaintext"/>\n<body>\n'
            + "".join(units) + "</body>\n</tmx>\n")


GOOD = _unit("en", "fr")
BAD_FILES = {
    "malformed": (_tmx(GOOD).replace("</body>", ""), "line 7: not well-formed XML"),
    "billion laughs": (_tmx(GOOD, head='<!DOCTYPE tmx [<!ENTITY a "aaaaaaaaaa">'
                                       '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'),
                       "declares entities"),
    "not tmx": ('<?xml version="1.0"?><xliff version="1.2"/>', "not a TMX file"),
    "version": (_tmx(GOOD, version="1.1"), "TMX version '1.1'; this reads TMX 1.4"),
    "no header": ('<tmx version="1.4"><body></body></tmx>', "no <header> with a srclang"),
    "other pair": (_tmx(GOOD, GOOD, _unit("en", "de-DE")),
                   "line 7: a de-DE (deu_Latn) variant: another language pair"),
    "other source": (_tmx(GOOD, srclang="de"), "source language is de (deu_Latn)"),
    "unknown code": (_tmx(GOOD, _unit("en", "qq-ZZ")), "line 6: unknown language code 'qq-ZZ'"),
    "missing variant": (_tmx(GOOD, "<tu><tuv xml:lang=\"en\"><seg>Hi.</seg></tuv></tu>\n"),
                        "line 6: a unit without a fra_Latn variant"),
    "no lang": (_tmx("<tu><tuv><seg>x</seg></tuv></tu>\n"), "<tuv> without xml:lang"),
    "other model": (_tmx(GOOD, _unit("en", "fr", props="".join(
        f'<prop type="x-nllb-{k}">{v}</prop>' for k, v in {
            "identity": "model:/elsewhere", "backend": "hf", "device": "cpu",
            "compute-type": "float32", "settings": "{}", "src": "eng_Latn",
            "tgt": "fra_Latn"}.items()))), "line 6: made by model:/elsewhere"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_tmx_is_refused_before_anything_is_stored(tmp_path, case):
    text, message = BAD_FILES[case]
    (tmp_path / "bad.tmx").write_text(text)
    store = Store(tmp_path / "j.db")
    store.import_memory([(SCOPE, "Kept.", "Gardé.")])
    with pytest.raises(TmxError, match=f"^{tmp_path / 'bad.tmx'}.*{_escape(message)}") as err:
        import_tmx(store, tmp_path / "bad.tmx", SCOPE)
    assert "\n" not in str(err.value)
    assert [(e.source, e.translation) for e in store.memory_entries()] == [("Kept.", "Gardé.")]


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_the_cli_says_what_is_wrong_in_one_line_with_exit_code_2(tmp_path, tiny_model, capsys):
    (tmp_path / "bad.tmx").write_text(BAD_FILES["other pair"][0])
    code = main(["--db", str(tmp_path / "j.db"), "tm", "import", str(tmp_path / "bad.tmx"),
                 "--model", str(tiny_model), "--src", "eng_Latn", "--tgt", "fra_Latn"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "another language pair than eng_Latn -> fra_Latn" in err
    assert Store(tmp_path / "j.db").memory_summary() == []
    assert main(["--db", str(tmp_path / "j.db"), "tm", "import", str(tmp_path / "bad.tmx"),
                 "--model", str(tiny_model), "--src", "eng_Latn", "--tgt", "fr"]) == 2
    assert "unknown language code 'fr' (did you mean fra_Latn?)" in capsys.readouterr().err


def test_import_keeps_stored_translations_unless_told_to_replace(tmp_path):
    (tmp_path / "m.tmx").write_text(_tmx(_unit("en", "fr", "Hello.", "Salut.")))
    store = Store(tmp_path / "j.db")
    store.import_memory([(SCOPE, "Hello.", "Bonjour.")])
    kept = import_tmx(store, tmp_path / "m.tmx", SCOPE)
    assert (kept.kept, kept.replaced) == (1, 0)
    assert [e.translation for e in store.memory_entries()] == ["Bonjour."]
    replaced = import_tmx(store, tmp_path / "m.tmx", SCOPE, replace=True)
    assert (replaced.kept, replaced.replaced) == (0, 1)
    assert [e.translation for e in store.memory_entries()] == ["Salut."]
