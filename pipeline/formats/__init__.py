"""Input formats: each parses a decoded file into a :class:`Document`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pipeline.document imports from this package
    from pipeline.document import Document

FORMATS = ("text", "markdown", "srt")

_BY_SUFFIX = {".md": "markdown", ".markdown": "markdown", ".srt": "srt"}


def detect_format(path: str | Path) -> str:
    """'markdown' for .md/.markdown, 'srt' for .srt, else 'text' (any case)."""
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "text")


def parse_document(text: str, fmt: str, *, jsonl_field: str = "") -> Document:
    """Parse decoded ``text`` (LF line endings, not normalised) as format ``fmt``."""
    if fmt == "jsonl":
        from pipeline.formats.jsonl import parse_jsonl

        return parse_jsonl(text, jsonl_field)
    if fmt == "text":
        from pipeline.formats.text import parse_text

        return parse_text(text)
    if fmt == "srt":
        from pipeline.formats.srt import parse_srt

        return parse_srt(text)
    if fmt == "markdown":
        # Imported here so text and SRT work without the Markdown parser's
        # dependencies (and while that module is being written).
        from pipeline.formats.markdown import parse_markdown

        return parse_markdown(text)
    raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
