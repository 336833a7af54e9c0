"""Parquet: text columns translated row group by row group, everything else kept.

``assert_same_table`` compares input and output with pyarrow: schema and
its metadata, every other column, types, row groups, compression, nulls.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (the parquet extra)")
pq = pytest.importorskip("pyarrow.parquet")

from pipeline.cli import main  # noqa: E402
from pipeline.documents.document import Document  # noqa: E402
from pipeline.documents.formats.parquet import RowGroups, RowParser, write_translated  # noqa: E402
from pipeline.errors import InvalidInput  # noqa: E402

TEXTS = ["The river is near the garden.", None, "First paragraph.\n\nSecond one.", "",
         "42", "A window, a letter and a city.", None, "Bread for the horse."]


def make(path: Path, *, rows: int = 8, group: int = 3) -> Path:
    table = pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "text": pa.array([TEXTS[i % len(TEXTS)] for i in range(rows)], pa.string()),
        "note": pa.array([f"note {i}" if i % 2 else None for i in range(rows)],
                         pa.large_string()),
        "score": pa.array([i / 3 for i in range(rows)], pa.float32()),
    }).replace_schema_metadata({b"origin": b"tests", b"pandas": b"{}"})
    pq.write_table(table, path, row_group_size=group, compression="zstd")
    return path


def translate_file(src: Path, names: list[str], translate, *, in_place=False, size=2,
                   start=0) -> bytes:
    """Preprocess's slices and postprocess's writer, with ``translate`` for the model."""
    reader, parser = RowGroups(src, names, start=start), RowParser()
    parts = []
    for piece in reader.slices(size):
        doc = Document.from_json(parser.parse(piece).to_json())
        parts.append((piece.lines, doc.render([translate(u.text) for u in doc.units])))
    parser.finish(names)
    out = io.BytesIO()
    write_translated(src, out, iter(parts), names, tgt_lang="fra_Latn", in_place=in_place)
    return out.getvalue()


def assert_same_table(src: Path, output: bytes, names: list[str], *, in_place: bool,
                      changed: bool = True) -> int:
    """Returns the number of cells translated."""
    before, after = pq.ParquetFile(src), pq.ParquetFile(io.BytesIO(output))
    was, now = before.read(), after.read()
    assert now.schema.metadata == was.schema.metadata
    assert after.metadata.num_row_groups == before.metadata.num_row_groups
    assert [after.metadata.row_group(k).num_rows for k in range(after.metadata.num_row_groups)] \
        == [before.metadata.row_group(k).num_rows for k in range(before.metadata.num_row_groups)]
    assert {after.metadata.row_group(0).column(c).compression
            for c in range(after.metadata.num_columns)} == {"ZSTD"}
    new = {n: n if in_place else f"{n}_fra_Latn" for n in names}
    expected_names = was.column_names + ([] if in_place else [new[n] for n in names])
    assert now.column_names == expected_names
    for name in was.column_names:
        if name not in names or not in_place:
            assert now.column(name).equals(was.column(name)) and (
                now.schema.field(name) == was.schema.field(name))
    cells = 0
    for name in names:
        source, translated = was.column(name).to_pylist(), now.column(new[name]).to_pylist()
        assert now.schema.field(new[name]).type == was.schema.field(name).type
        for a, b in zip(source, translated):
            if a is None or not any(ch.isalpha() for ch in a):
                assert b == a  # null stays null; nothing to translate: copied
            else:
                assert b and (b != a or not changed)
                cells += 1
    return cells


@pytest.mark.parametrize("in_place", [False, True])
def test_columns_translated_and_the_rest_kept(tmp_path, in_place):
    src = make(tmp_path / "t.parquet")
    out = translate_file(src, ["text", "note"], lambda t: t.upper() + " ¡", in_place=in_place)
    assert assert_same_table(src, out, ["text", "note"], in_place=in_place) == 8
    column = pq.read_table(io.BytesIO(out)).column("text" if in_place else "text_fra_Latn")
    assert column[2].as_py() == "FIRST PARAGRAPH. ¡\n\nSECOND ONE. ¡"  # paragraphs kept


def test_a_copy_is_the_same_table(tmp_path):
    src = make(tmp_path / "t.parquet")
    out = translate_file(src, ["text"], lambda t: t, in_place=True)
    assert pq.read_table(io.BytesIO(out)).equals(pq.read_table(src))


def test_resumed_from_a_row_the_slices_go_on_where_they_stopped(tmp_path):
    src = make(tmp_path / "t.parquet", rows=20, group=7)
    whole = [(p.first_line, p.lines, p.cells) for p in RowGroups(src, ["text"]).slices(3)]
    # Slices never cross a row group, and a resumed read starts at any row.
    assert [lines for _, lines, _ in whole] == [3, 3, 1, 3, 3, 1, 3, 3]
    resumed = [(p.first_line, p.lines, p.cells) for p in
               RowGroups(src, ["text"], start=whole[4][0]).slices(3)]
    assert resumed == whole[4:]
    assert list(RowGroups(src, ["text"]).slices(3))[-1].end_byte == src.stat().st_size


def test_fifty_thousand_rows_stream_in_bounded_slices(tmp_path):
    src = make(tmp_path / "big.parquet", rows=50_000, group=20_000)
    parser, sizes, units = RowParser(), [], 0
    for piece in RowGroups(src, ["text"]).slices(2000):
        doc = parser.parse(piece)
        sizes.append(piece.lines)
        units += len(doc.units)
        assert doc.render([u.text for u in doc.units]).count("\n") == piece.lines
    assert max(sizes) == 2000 and sum(sizes) == 50_000 and len(sizes) == 25
    assert units == sum(1 for i in range(50_000) if TEXTS[i % 8] and TEXTS[i % 8] != "42") + \
        sum(1 for i in range(50_000) if i % 8 == 2)  # the two-paragraph cell is two units


@pytest.mark.parametrize(("names", "message"), [
    (["body"], r"no column 'body' in .* \(columns: 'id', 'text', 'note', 'score'\)"),
    (["score"], "column 'score' is float, not text"),
])
def test_bad_columns_are_named(tmp_path, names, message):
    src = make(tmp_path / "t.parquet")
    with pytest.raises(InvalidInput, match=message):
        list(RowGroups(src, names).slices(2))


def test_cli_refusals_are_one_line(tmp_path, capsys, trained_model):
    src = make(tmp_path / "t.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\0" * 20)
    for path, extra, message in ((src, [], "parquet input needs --columns"),
                                 (src, ["--columns", "score"], "column 'score' is float"),
                                 (src, ["--columns", "text", "--no-fuzzy"], "applies to po"),
                                 (broken, ["--columns", "text"], "is not a Parquet file")):
        code = main(["--db", str(tmp_path / "j.db"), "translate", str(path), "--src",
                     "eng_Latn", "--tgt", "fra_Latn", "--model", str(trained_model), *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_translate_a_parquet_file_end_to_end(tmp_path, capsys, trained_model):
    # At the defaults users run: beams 4, --quality repair.
    src = make(tmp_path / "rows.parquet", rows=16, group=5)
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(trained_model), "--columns", "text,note",
                 "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    output = Path(json.loads(out)["output"])
    assert output.name == "rows.fra_Latn.parquet"
    assert assert_same_table(src, output.read_bytes(), ["text", "note"], in_place=False,
                             changed=False) == 16


def test_a_dictionary_column_is_translated_as_its_plain_string_type(tmp_path):
    src = tmp_path / "d.parquet"
    pq.write_table(pa.table({"cat": pa.array(["Red apple.", "Green pear.", "Red apple.", None])
                             .dictionary_encode()}), src)
    out = pq.read_table(io.BytesIO(translate_file(src, ["cat"], str.upper, in_place=True)))
    assert out.schema.field("cat").type == pa.string()
    assert out.column("cat").to_pylist() == ["RED APPLE.", "GREEN PEAR.", "RED APPLE.", None]
