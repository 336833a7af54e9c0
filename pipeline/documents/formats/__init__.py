"""Input formats: each parses a decoded file into a :class:`Document`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import FORMATS

if TYPE_CHECKING:  # pipeline.documents.document imports from this package
    from pipeline.documents.document import Document

log = logging.getLogger("nllb_pipeline")

_BY_SUFFIX = {".md": "markdown", ".markdown": "markdown", ".srt": "srt", ".vtt": "vtt",
              ".html": "html", ".htm": "html",
              ".po": "po", ".pot": "po", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
              ".parquet": "parquet"}


@dataclass(frozen=True)
class FormatOptions:
    """What a format's parser needs from the job besides the text (the
    JobParams fields that ``config.FORMAT_OPTIONS`` lists, and the target
    language a catalogue's header and a new column's name carry)."""

    jsonl_field: str = ""
    columns: str = ""
    delimiter: str = ""
    in_place: bool = False
    overwrite_translated: bool = False
    fuzzy: bool = True
    tgt_lang: str = ""
    wrap: str = "keep"

    @classmethod
    def of(cls, params) -> FormatOptions:
        return cls(params.jsonl_field, params.columns, params.delimiter, params.in_place,
                   params.overwrite_translated, params.fuzzy, params.tgt_lang, params.wrap)


def detect_format(path: str | Path, text: str | None = None) -> str:
    """The format for ``path``, by its suffix (any case): 'markdown' for .md
    and .markdown, 'html' for .html and .htm, 'srt', 'vtt', 'po' for .po and
    .pot, 'csv', 'tsv' for .tsv and .tab, 'parquet', else plain text.

    Plain text with more than one line and no blank line at all is read as
    'lines' (one unit per line, the output line-aligned with the input):
    joined as one paragraph it would come back as a single line, which is
    never what such a file (a sentence-per-line corpus, a word list) means.
    That choice is logged as a warning naming ``--format text``, the way to
    join the lines instead. ``text`` is the decoded content; without it the
    file is read.
    """
    fmt = _BY_SUFFIX.get(Path(path).suffix.lower(), "text")
    if fmt != "text":
        return fmt
    if text is None:
        try:
            with open(path, "rb") as f:
                if f.read(4) == b"PAR1":  # Parquet's magic, whatever the name
                    return "parquet"
            # Read line by line: the file may be too big to hold.
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                aligned = _aligned(f)
        except OSError:
            return "text"
    else:
        aligned = looks_line_aligned(text)
    if aligned:
        log.warning("%s has no blank lines: reading it as one sentence per line "
                    "(--format lines; give --format text to join its lines into paragraphs)",
                    path)
        return "lines"
    return "text"


def looks_line_aligned(text: str) -> bool:
    """Two or more non-blank lines and not one blank line between them."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    return len(lines) > 1 and all(line.strip() for line in lines)


def _aligned(lines: Iterable[str]) -> bool:
    """``looks_line_aligned`` of the text these lines (each with its "\n")
    make, read one line at a time: empty lines at the end do not count."""
    count, empty = 0, False
    for line in lines:
        body = line[:-1] if line.endswith("\n") else line
        if not body:
            empty = True
            continue
        if empty or not body.strip():
            return False
        count += 1
    return count > 1


def parse_document(text: str, fmt: str, *, jsonl_field: str = "",
                   options: FormatOptions | None = None, target: str = "") -> Document:
    """Parse decoded ``text`` (LF line endings, not normalised) as format
    ``fmt``; ``target`` (default: ``options.tgt_lang``), the language
    translated into, where the format names it (HTML's ``lang``)."""
    options = options or FormatOptions(jsonl_field=jsonl_field, tgt_lang=target)
    target = target or options.tgt_lang
    if fmt == "jsonl":
        from pipeline.documents.formats.jsonl import parse_jsonl

        return parse_jsonl(text, options.jsonl_field or jsonl_field, in_place=options.in_place)
    if fmt == "po":
        from pipeline.documents.formats.po import parse_po

        return parse_po(text, options)
    if fmt in ("csv", "tsv"):
        from pipeline.documents.formats.csv import parse_table

        return parse_table(text, fmt, options)
    if fmt == "text":
        from pipeline.documents.formats.text import parse_text

        return parse_text(text)
    if fmt == "lines":
        from pipeline.documents.formats.text import parse_lines

        return parse_lines(text)
    if fmt == "srt":
        from pipeline.documents.formats.srt import parse_srt

        return parse_srt(text)
    if fmt == "vtt":
        from pipeline.documents.formats.vtt import parse_vtt

        return parse_vtt(text)
    if fmt == "markdown":
        # Imported here so text and subtitles work without the Markdown
        # parser's dependencies.
        from pipeline.documents.formats.markdown import parse_markdown

        return _wrapped(parse_markdown(text), options.wrap)
    if fmt == "html":
        from pipeline.documents.formats.html import parse_html

        return _wrapped(parse_html(text, target), options.wrap)
    raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")


def _wrapped(doc: Document, wrap: str) -> Document:
    """``--wrap reflow``: each paragraph's translation on one line instead of
    as many lines as its source had (the units that keep a line count lose
    it, and the container prefixes of their continuation lines with it)."""
    if wrap == "reflow":
        doc.units = [replace(u, lines=0, prefixes=()) if u.lines else u for u in doc.units]
    return doc
