"""Parquet: the text columns asked for translated, row group by row group.

Read and written with ``pyarrow`` (the ``parquet`` extra). Memory holds one
slice of rows in preprocess and one row group in postprocess, never the
table:

- preprocess reads only the columns to translate, a row group at a time in
  batches of ``size`` rows (``RowGroups``); each batch is a slice whose
  skeleton has one line per row, a JSON array of its cells (``null`` for a
  null cell, each paragraph of a text a unit, as in JSON Lines). Where it
  stops is a row number (the cursor's ``line``), so a resumed preprocess
  reads on from the batch after its last written slice.
- postprocess (``write_translated``) reads the input again (its SHA-256 is
  checked first, as for every format), one row group at a time with all
  its columns, renders the slices that cover it, and writes one output row
  group for each input one: the translated columns added after the others
  as ``<column>_<tgt>`` (same type, nullable), or, ``in_place``, put where
  the columns were. The schema's metadata, every other column and its type,
  and each column's compression are kept. A null cell stays null; an empty
  or wordless cell is copied.

Columns must hold text (string, large_string, or a dictionary of strings,
whose translation is written as its plain string type).

An input at a storage URL (``pipeline.objects``) is read the same way,
through a seekable fsspec file: pyarrow reads the footer, then the
row groups' column chunks it needs, as ranged reads, with no copy on
this machine's disk. Its failures are classified (``StorageError``), so preprocess
and postprocess retry a transient one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline import objects
from pipeline.documents.document import Document
from pipeline.documents.inputs import LineTally
from pipeline.errors import InvalidInput


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput("reading Parquet needs pyarrow: pip install "
                           "'nllb-pipeline[parquet]'") from None
    return pa, pq


@contextmanager
def parquet_source(location, storage: objects.Storage | None = None):
    """What pyarrow reads: a local path as it is, an object at a storage
    URL opened (seekable, its failures classified) for the block."""
    if not objects.is_url(str(location)):
        yield location
        return
    f = objects.open_object(str(location), storage)
    try:
        yield f
    finally:
        f.close()


def open_parquet(source, names: list[str], where=None):
    """(the ParquetFile, the columns' indexes in its schema); InvalidInput
    when it is not Parquet, or a column is missing or holds no text.
    ``source``: a path or an open file (``parquet_source``); ``where`` names
    it in messages (the path, or the URL)."""
    pa, pq = _pyarrow()
    where = where or source
    try:
        parquet = pq.ParquetFile(source)
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"{where} is not a Parquet file ({exc})") from None
    indexes = []
    for name in names:
        k = schema.get_field_index(name)
        if k < 0:
            shown = ", ".join(repr(n) for n in schema.names[:20])
            raise InvalidInput(f"no column {name!r} in {where} (columns: {shown})")
        if _text_type(schema.field(k).type) is None:
            raise InvalidInput(f"column {name!r} is {schema.field(k).type}, not text")
        indexes.append(k)
    return parquet, indexes


def _text_type(kind):
    pa, _ = _pyarrow()
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return kind if pa.types.is_string(kind) or pa.types.is_large_string(kind) else None


@dataclass(frozen=True)
class RowSlice:
    """A batch of rows: what ``formats.slices.Slice`` is for lines."""

    cells: list[list]  # per column, per row: str or None
    first_line: int  # its first row in the file
    lines: int  # rows
    end_byte: int  # progress in input bytes: rows done, pro rata
    text: str = ""
    ends: str = ""


class RowGroups:
    """The input's columns to translate, as slices of ``size`` rows, from
    row ``start`` on (what preprocess streams). ``tally`` and ``line``
    stand where ``InputLines``' do. ``path``: a local path or a storage URL
    (read with ``storage``'s options)."""

    def __init__(self, path, names: list[str], *, start: int = 0,
                 storage: objects.Storage | None = None):
        self.path, self.names, self.line, self.storage = path, names, start, storage
        self.tally = LineTally(letters=True)  # the parser says if there are words

    def slices(self, size: int) -> Iterator[RowSlice]:
        with parquet_source(self.path, self.storage) as source:
            parquet, _ = open_parquet(source, self.names, where=self.path)
            meta = parquet.metadata
            total, size_bytes = max(meta.num_rows, 1), self._size()
            first = 0
            for rg in range(meta.num_row_groups):
                rows = meta.row_group(rg).num_rows
                if first + rows <= self.line:
                    first += rows
                    continue
                skip = self.line - first if self.line > first else 0
                for batch in parquet.iter_batches(batch_size=size, row_groups=[rg],
                                                  columns=self.names, use_threads=False):
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    batch, skip = batch.slice(skip), 0
                    cells = [batch.column(k).to_pylist() for k in range(batch.num_columns)]
                    at = self.line
                    self.line += batch.num_rows
                    yield RowSlice(cells, at, batch.num_rows, size_bytes * self.line // total)
                first += rows

    def _size(self) -> int:
        if objects.is_url(str(self.path)):
            return int((objects.object_info(str(self.path), self.storage) or {}).get("size") or 0)
        return os.stat(self.path).st_size


class RowParser:
    """Each row of a slice as a line of the skeleton: a JSON array of its cells."""

    def __init__(self, state: dict | None = None):
        self.cells = (state or {}).get("cells", 0)  # cells with words, so far

    def parse(self, piece: RowSlice) -> Document:
        doc = Document()
        columns = piece.cells
        for row in range(piece.lines):
            doc.add_literal("[")
            for k, column in enumerate(columns):
                value = column[row]
                if k:
                    doc.add_literal(",")
                if value is None:
                    doc.add_literal("null")
                    continue
                if any(ch.isalpha() for ch in value):
                    self.cells += 1
                doc.add_literal('"')
                doc.add_json_string(value)
                doc.add_literal('"')
            doc.add_literal("]\n")
        return doc

    def to_dict(self) -> dict:
        return {"cells": self.cells}

    def finish(self, names: list[str]) -> list[str]:
        if not self.cells:
            raise InvalidInput(f"nothing to translate in column(s) {', '.join(names)}")
        return []


_CODECS = {"uncompressed": "none", "lz4_raw": "lz4"}  # as the writer names them


class _Stream:
    """A write-only stream over ``out`` (anything with ``write(bytes)``), as
    pyarrow's PythonFile wants one."""

    closed = False

    def __init__(self, out):
        self.out, self.position = out, 0

    def write(self, data) -> int:
        data = bytes(data)
        self.out.write(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass


def check_parquet(path, names: list[str], storage: objects.Storage | None = None) -> None:
    """What submitting checks: a Parquet file (or object) with these text columns."""
    with parquet_source(path, storage) as source:
        open_parquet(source, names, where=path)


def write_translated(location, out, parts: Iterator[tuple[int, str]], names: list[str], *,
                     tgt_lang: str, in_place: bool, progress=lambda rows: None,
                     storage: objects.Storage | None = None) -> None:
    """Write the output file to ``out`` (a binary stream): the input (a path
    or a storage URL) row group by row group, with the translated columns
    from ``parts``: (rows, the rendered skeleton text of those rows), in order."""
    with parquet_source(location, storage) as source:
        _write_translated(source, location, out, parts, names, tgt_lang=tgt_lang,
                          in_place=in_place, progress=progress)


def _write_translated(source, where, out, parts, names, *, tgt_lang, in_place, progress):
    pa, pq = _pyarrow()
    parquet, indexes = open_parquet(source, names, where=where)
    schema = parquet.schema_arrow
    fields = [pa.field(schema.field(k).name if in_place else f"{schema.field(k).name}_{tgt_lang}",
                       _text_type(schema.field(k).type)) for k in indexes]
    out_schema = schema
    for k, f in zip(indexes, fields):
        out_schema = out_schema.set(k, f) if in_place else out_schema.append(f)
    out_schema = out_schema.with_metadata(schema.metadata or {})
    meta = parquet.metadata
    codecs = {}
    if meta.num_row_groups:
        group = meta.row_group(0)
        codecs = {group.column(c).path_in_schema: group.column(c).compression.lower()
                  for c in range(group.num_columns)}
        for k, f in zip(indexes, fields):
            codecs.setdefault(f.name, codecs.get(schema.field(k).name, "snappy"))
    writer = pq.ParquetWriter(pa.PythonFile(_Stream(out), mode="w"), out_schema,
                              compression={n: _CODECS.get(c, c) for n, c in codecs.items()}
                              or "snappy")
    # Per column, the translated cells rendered so far and not yet written,
    # as Arrow arrays (one per slice): compact, never a row group of Python strings.
    pending = [pa.chunked_array([], type=f.type) for f in fields]
    done = 0
    try:
        for rg in range(meta.num_row_groups):
            table = parquet.read_row_group(rg, use_threads=False)
            n = table.num_rows
            while len(pending[0]) < n:
                rows, text = next(parts)
                values = list(zip(*(json.loads(line) for line in text.split("\n")[:rows])))
                pending = [pa.chunked_array([*p.chunks, pa.array(v, type=f.type)], type=f.type)
                           for p, v, f in zip(pending, values, fields)]
            for j, (k, f) in enumerate(zip(indexes, fields)):
                column = pending[j].slice(0, n)
                table = table.set_column(k, f, column) if in_place else table.append_column(
                    f, column)
            pending = [p.slice(n) for p in pending]
            if n:
                writer.write_table(table.replace_schema_metadata(schema.metadata),
                                   row_group_size=n)
            done += n
            progress(done)
    finally:
        writer.close()
