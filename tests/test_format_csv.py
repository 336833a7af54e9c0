"""CSV and TSV: the cells of the columns asked for translated, every other cell
and byte kept. ``assert_same_table`` reads input and output with Python's
own ``csv`` module and compares them row by row and cell by cell."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.documents.document import Document
from pipeline.documents.formats import FormatOptions, parse_document
from pipeline.documents.formats.slices import SliceParser, slices
from pipeline.documents.inputs import InputLines
from pipeline.errors import InvalidInput

ROWS = ('id,text,note\r\n'
        '1,Hello there.,"keep, this"\r\n'
        '2,"A ""quoted"" cell.\r\n\r\nIts second paragraph\r\nwrapped.",x\r\n'
        '3, spaced cell ,\r\n'
        '4,42,\r\n'
        '\r\n'
        '5,Short row\r\n'
        '6,"Comma, inside.",last\r\n')


def table(text: str, delimiter: str = ",", quoting=csv.QUOTE_MINIMAL) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                           quoting=quoting))


def assert_same_table(source: str, output: str, columns: list[int], *, in_place: bool,
                      header: bool = True, delimiter: str = ",", quoting=csv.QUOTE_MINIMAL,
                      tgt: str = "fra_Latn", changed: bool = True) -> int:
    """Rows, untranslated cells and the header as they were; the columns'
    cells translated (non-empty where they had words) in place or in new
    cells at the end (``changed``: different from the source, for a fake
    translator; a model may copy a cell). Returns how many cells were translated."""
    before, after = table(source, delimiter, quoting), table(output, delimiter, quoting)
    assert len(before) == len(after)
    width = len(before[0])
    translated = 0
    for n, (was, now) in enumerate(zip(before, after)):
        if not was:
            assert now == []
            continue
        if header and n == 0:
            assert now == (was if in_place else was + [f"{was[k]}_{tgt}" for k in columns])
            continue
        if in_place:
            assert len(now) == len(was)
            kept = [c for k, c in enumerate(was) if k not in columns]
            assert [c for k, c in enumerate(now) if k not in columns] == kept
            new = [now[k] for k in columns if k < len(was)]
        else:
            padded = was + [""] * (width - len(was))
            assert now[:width] == padded and len(now) == width + len(columns)
            new = now[width:]
        for k, cell in zip(columns, new):
            if any(ch.isalpha() for ch in padded_cell(was, k)):
                assert cell.strip() and (cell != padded_cell(was, k) or not changed)
                translated += 1
            else:
                assert cell == padded_cell(was, k)
    return translated


def padded_cell(row: list[str], k: int) -> str:
    return row[k] if k < len(row) else ""


def fake(doc: Document) -> list[str]:
    """A 'translation' with what breaks a CSV: the delimiter, quotes, a line break."""
    return [f'T{i}, "q"\nline' for i, _ in enumerate(doc.units)]


def parse(text: str, fmt: str = "csv", **options) -> Document:
    return parse_document(text.replace("\r\n", "\n"), fmt,
                          options=FormatOptions(tgt_lang="fra_Latn", **options))


@pytest.mark.parametrize("in_place", [False, True])
def test_cells_translated_and_everything_else_kept(in_place):
    doc = parse(ROWS, columns="text", in_place=in_place)
    assert [u.text for u in doc.units] == [
        "Hello there.", 'A "quoted" cell.', "Its second paragraph wrapped.", "spaced cell",
        "Short row", "Comma, inside."]
    # Copied by the model, the file comes back byte for byte (added cells: the same bytes).
    same = doc.output([u.text for u in doc.units]).decode()
    if in_place:
        assert same == ROWS.replace("\r\n", "\n")
    out = doc.render(fake(doc))
    assert assert_same_table(ROWS.replace("\r\n", "\n"), out, [1], in_place=in_place) == 5
    # The paragraphs of a cell keep the blank line between them.
    cell = table(out)[2][1 if in_place else 3]
    assert cell == 'T1, "q"\nline\n\nT2, "q"\nline'


def test_the_delimiter_is_detected_and_headerless_columns_are_numbers():
    text = "Hello there;x;Good morning\nSee you;y;Bye now\n"
    doc = parse(text, columns="1,3")  # not header names: indexes, and no header row
    assert [u.text for u in doc.units] == ["Hello there", "Good morning", "See you", "Bye now"]
    out = doc.render(fake(doc))
    assert assert_same_table(text, out, [0, 2], in_place=False, header=False,
                             delimiter=";") == 4


def test_a_given_delimiter_wins_over_the_detected_one():
    text = "name;note, long\nHello there, friend;x\n"  # the first line has one of each
    with pytest.raises(InvalidInput, match=r"no column 'name' in the header row \('name;note'"):
        parse(text, columns="name")  # "," detected: a tie goes to ","
    doc = parse(text, columns="name", delimiter=";")
    assert [u.text for u in doc.units] == ["Hello there, friend"]
    assert doc.render(["Bonjour, ami"]) == ('name;note, long;name_fra_Latn\n'
                                            'Hello there, friend;x;Bonjour, ami\n')


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "tsv", "--columns", "a", "--delimiter", ";"], "--delimiter applies to csv"),
    (["--columns", "a", "--delimiter", '"'], "--delimiter is one character other than a quote"),
    (["--columns", "a", "--delimiter", "ab"], "--delimiter is one character"),
])
def test_bad_delimiters_are_refused_in_one_line(tmp_path, capsys, args, message):
    src = tmp_path / "t.csv"
    src.write_text("a,b\nHello,x\n")
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_tsv_has_no_quoting_and_keeps_one_record_per_line():
    text = 'id\ttext\n1\t"Quoted" words stay text.\n2\tA second line.\n'
    doc = parse(text, "tsv", columns="text", in_place=True)
    out = doc.render(fake(doc))
    assert out.count("\n") == 3
    assert assert_same_table(text, out, [1], in_place=True, delimiter="\t",
                             quoting=csv.QUOTE_NONE) == 2
    assert out.split("\n")[1] == '1\tT0, "q" line'


@pytest.mark.parametrize(("text", "columns", "message"), [
    ("id,text\n1,Hello\n", "body", r"no column 'body' in the header row \('id', 'text'\)"),
    ('id,text\n1,"Never closed\n', "text", "line 2: a quoted cell is never closed"),
    ("id,text\n1,42\n", "text", "nothing to translate in column text"),
])
def test_bad_tables_are_named(text, columns, message):
    with pytest.raises(InvalidInput, match=message):
        parse_document(text, "csv", options=FormatOptions(columns=columns))


def test_a_table_without_columns_is_refused_in_one_line(tmp_path, capsys):
    src = tmp_path / "t.csv"
    src.write_text("id,text\n1,Hello\n")
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn"])
    err = capsys.readouterr().err
    assert code == 2 and "csv input needs --columns" in err and len(err.splitlines()) == 1


def test_fifty_thousand_rows_in_slices_give_the_whole_files_units_and_bytes(tmp_path):
    # Multi-line quoted cells at every slice boundary; slices only where a
    # record starts, and each slice's units bounded by its size.
    rows = ["id,text,n"] + [
        f'{i},"Row {i} says ""hi"".\n\nAnd more, on a line of its own.",{i % 7}'
        if i % 3 == 0 else f"{i},Plain row {i}.,{i % 7}" for i in range(50_000)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n")
    options = FormatOptions(columns="text", tgt_lang="fra_Latn")
    whole = parse_document(path.read_text(), "csv", options=options)
    parser = SliceParser("csv", options=options)
    units, out, pieces = 0, [], 0
    for piece in slices(InputLines(path), "csv", size=2000, cut=parser.cut_rule()):
        doc = parser.parse(piece)
        assert len(doc.units) <= 2 * (piece.lines + 1)
        out.append(doc.render([u.text + "!" for u in doc.units]))
        units += len(doc.units)
        pieces += 1
    parser.finish()
    assert pieces > 20 and units == len(whole.units) == 50_000 + 50_000 // 3 + 1
    assert "".join(out) == whole.render([u.text + "!" for u in whole.units])


@pytest.mark.slow
def test_translate_a_csv_end_to_end(tmp_path, capsys, trained_model):
    src = tmp_path / "rows.csv"
    src.write_bytes(ROWS.encode())
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(trained_model), "--columns", "text",
                 "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    output = Path(json.loads(out)["output"])
    assert output.name == "rows.fra_Latn.csv"
    text = output.read_bytes().decode()
    assert text.count("\r\n") >= ROWS.count("\r\n")  # the file's line endings
    assert assert_same_table(ROWS, text, [1], in_place=False, changed=False) == 5


def test_tab_names_the_tab_delimiter(tmp_path, trained_model):
    from pipeline.documents.inputs import read_input
    from pipeline.service import JobOptions, job_params

    src = tmp_path / "t.csv"
    src.write_text('a\tb\n"Hello\tthere"\tx\n')
    for name in ("tab", "\\t", "\t"):
        params = job_params(JobOptions(src="eng_Latn", tgt="fra_Latn", model=str(trained_model),
                                       columns="a", delimiter=name), read_input(src))
        assert params.delimiter == "\t"
