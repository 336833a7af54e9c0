"""JSON Lines: the field is translated, every other field and blank line kept."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from pipeline.errors import InvalidInput
from pipeline.documents.formats.jsonl import parse_jsonl

SOURCE = (
    '{"id": 1, "text": "Hello there. How are you?", "lang": "en"}\n'
    "\n"
    '{"id": 2, "text": "She said \\"no\\" and left.", "meta": {"a": [1, 2]}}\n'
    '{"id": 3, "text": "42"}\n'
)


def test_identity_and_hostile_translations_give_valid_json_with_every_field():
    doc = parse_jsonl(SOURCE, "text")
    assert [u.text for u in doc.units] == ["Hello there. How are you?", 'She said "no" and left.']
    for translate in (lambda t: t, lambda t: t + ' "quoted" \\ back\nslash}'):
        out = doc.render([translate(u.text) for u in doc.units])
        lines = out.split("\n")
        assert len(lines) == len(SOURCE.split("\n")) and lines[1] == "" and out.endswith("\n")
        records = [json.loads(line) for line in lines if line]
        originals = [json.loads(line) for line in SOURCE.split("\n") if line]
        for got, was in zip(records, originals):
            assert {k: v for k, v in got.items() if k != "translation"} == was
        assert records[0]["translation"] == translate("Hello there. How are you?")
        assert records[2]["translation"] == "42"  # nothing to translate: copied


@pytest.mark.parametrize(("text", "message"), [
    ('{"text": "ok"}\nnot json\n', "line 2 is not valid JSON"),
    ('["a list"]\n', "line 1 is not a JSON object"),
    ('{"text": 42}\n', r"no line has a string in field 'text' \(line 1: a number\)"),
    ('{"body": "no text field"}\n{"text": null}\n', "no line has a field 'text'"),
    ('{"text": "x", "translation": "y"}\n', "already has a 'translation' field"),
])
def test_bad_lines_are_named(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_jsonl(text, "text")


def test_paragraph_breaks_inside_a_field_are_kept():
    value = "First paragraph. Two sentences.\n\nSecond one,\nwrapped.\n\n\n  Third."
    line = json.dumps({"id": 7, "text": value}) + "\n"
    doc = parse_jsonl(line, "text")
    assert [u.text for u in doc.units] == [
        "First paragraph. Two sentences.", "Second one, wrapped.", "Third."]
    out = json.loads(doc.render(["Un. Deux.", "Deux, enroulé.", "Trois."]))
    assert out["translation"] == "Un. Deux.\n\nDeux, enroulé.\n\n\n  Trois."
    assert json.loads(doc.render([u.text for u in doc.units]))["translation"] == value


def test_null_or_missing_fields_are_copied_and_reported():
    text = (
        '{"id": 1, "text": "Hello."}\n'
        '{"id": 2, "text": null}\n'
        '{"id": 3}\n'
        '{"id": 4, "text": "Bye."}\n'
    )
    doc = parse_jsonl(text, "text")
    assert [u.text for u in doc.units] == ["Hello.", "Bye."]
    lines = doc.render(["Bonjour.", "Au revoir."]).split("\n")
    assert lines[1:3] == text.split("\n")[1:3]  # kept exactly, no translation added
    assert json.loads(lines[0])["translation"] == "Bonjour."
    assert json.loads(lines[3])["translation"] == "Au revoir."
    assert doc.notes == [
        "2 JSON Lines record(s) with 'text' null or missing were copied untranslated: line(s) 2, 3"]


def test_translate_a_jsonl_file_end_to_end(tmp_path, capsys, tiny_model):
    src = tmp_path / "corpus.jsonl"
    src.write_text(SOURCE)
    db = str(tmp_path / "j.db")
    args = ["--db", db, "translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn",
            "--model", str(tiny_model), "--beams", "1", "--json", "--jsonl", "text"]
    assert main(args) == 0
    out = (tmp_path / "corpus.fra_Latn.jsonl").read_text()
    assert [json.loads(line)["id"] for line in out.splitlines() if line] == [1, 2, 3]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{oops\n')
    assert main(args[:3] + [str(bad)] + args[4:]) == 2
    assert "line 2 is not valid JSON" in capsys.readouterr().err


def test_every_byte_but_the_new_field_is_kept():
    # What json.dumps would change: exponents, trailing zeros, \u escapes,
    # duplicate keys (the last one is the field, as json.loads reads it), spacing.
    lines = ['{"id": 1e5, "v": 1.10, "text": "old", "x": "caf\\u00e9", "text": "Hello there."}',
             '{"id":2,"text":"Compact line.","n":[1 , 2]}',
             '  {  "text" :  "Spaced line."  }  ']
    source = "\n".join(lines) + "\n"
    doc = parse_jsonl(source, "text")
    out = doc.render(["Un.", "Deux.", "Trois."]).split("\n")
    assert out[0] == lines[0][:-1] + ', "translation": "Un."}'
    assert out[1] == lines[1][:-1] + ',"translation":"Deux."}'
    # One field: no separator to copy, so ", " (the colon's spacing is the line's).
    assert out[2] == '  {  "text" :  "Spaced line.", "translation" :  "Trois."  }  '
    assert [json.loads(line)["translation"] for line in out if line] == ["Un.", "Deux.", "Trois."]


def test_in_place_replaces_the_value_where_it_stands():
    source = '{"id": 1e5, "text": "Hello there.", "after": 1.10}\n{"text": "caf\\u00e9 ok"}\n'
    doc = parse_jsonl(source, "text", in_place=True)
    assert doc.render([u.text for u in doc.units]) == source  # unchanged: the very bytes
    out = doc.render(['Bonjour "toi".', "Café."]).split("\n")
    assert out[0] == '{"id": 1e5, "text": "Bonjour \\"toi\\".", "after": 1.10}'
    assert out[1] == '{"text": "Café."}'


def test_a_field_that_is_not_a_string_is_copied_and_named():
    source = ('{"text": "Hello."}\n{"text": 42}\n{"text": {"a": 1}}\n{"text": [1]}\n'
              '{"text": true}\n{"text": "Bye."}\n')
    doc = parse_jsonl(source, "text")
    out = doc.render(["Salut.", "Au revoir."]).split("\n")
    assert out[1:5] == source.split("\n")[1:5]
    assert doc.notes == ["4 JSON Lines record(s) with 'text' not a string were copied "
                         "untranslated: line(s) 2 (number), 3 (object), 4 (array), 5 (boolean)"]


@pytest.mark.slow
def test_defaults_end_to_end_keep_every_other_byte_and_name_what_was_copied(
        tmp_path, capsys, trained_model):
    # At the defaults users run (beams 4, --quality repair), on the model that translates.
    lines = ['{"id": 1e5, "text": "The river is near the garden.", "score": 1.10}',
             '{"id": 2, "text": 42}',
             '{"id":3,"text":"A letter for the city.","x":"caf\\u00e9"}']
    src = tmp_path / "rows.jsonl"
    src.write_text("\n".join(lines) + "\n")
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(trained_model), "--jsonl", "text",
                 "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{src}: 1 JSON Lines record(s) with 'text' not a string" in err
    assert "line(s) 2 (number)" in err
    output = (tmp_path / "rows.fra_Latn.jsonl").read_text().split("\n")
    assert output[1] == lines[1]
    for line, head in ((output[0], lines[0][:-1] + ', "translation": "'),
                       (output[2], lines[2][:-1] + ',"translation":"')):
        assert line.startswith(head) and line.endswith('"}')
        assert json.loads(line)["translation"].strip()
