#!/usr/bin/env python3
"""Reading and writing a whole-file format at size: HTML and Markdown.

    python benchmarks/documents.py [--sizes 25000,50000]

HTML pages and Markdown files are parsed whole (one slice: an element, a
list or a fence may span any stretch of lines), so their cost per line must
stay flat as a file grows. For each size, a page is made of repeats of the
libffi manual's page in ``tests/data`` (and a Markdown file of repeats of
the SubtitleEdit manual in ``../shared/corpus`` where it is present, else of
a small Markdown sample), and the CPU seconds are printed for parsing it
into a skeleton (units and literal parts, the skeleton's JSON included) and
for writing it back with every unit "translated" (upper case, so every
paragraph is re-wrapped to its line count), with the microseconds per line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.documents.document import Document  # noqa: E402
from pipeline.documents.formats.html import parse_html  # noqa: E402
from pipeline.documents.formats.markdown import parse_markdown  # noqa: E402

PAGE = ROOT / "tests" / "data" / "libffi_memory_usage.html"
MANUAL = ROOT.parent / "shared" / "corpus" / "markdown_subtitleedit_seconv_command_line.md"
SAMPLE = """# A heading

A paragraph with a [link](https://example.org/a_b) and `code`, wrapped
over two lines, with an ![image](x.png) and <b title="Bold">HTML</b>.

<details>
<summary>A summary</summary>

| Size | Note |
|---|---|
| 209.2 | A cell. |

</details>
"""


def html_of(lines: int) -> str:
    page = PAGE.read_text(encoding="utf-8")
    head, body = page.split('<body lang="en">', 1)
    body = body.rsplit("</body>", 1)[0]
    return head + '<body lang="en">' + body * (lines // body.count("\n") + 1) + "</body></html>\n"


def markdown_of(lines: int) -> str:
    text = MANUAL.read_text(encoding="utf-8") if MANUAL.is_file() else SAMPLE
    return text * (lines // text.count("\n") + 1)


def measure(name: str, text: str, parse) -> None:
    start = time.process_time()
    doc = Document.from_json(parse(text).to_json())
    parsed = time.process_time() - start
    start = time.process_time()
    out = doc.render([u.text.upper() for u in doc.units])
    rendered = time.process_time() - start
    lines = text.count("\n")
    assert out.count("\n") == lines, "a paragraph lost its line count"
    print(f"{name:8} | {lines:7,} lines | {len(doc.units):7,} units | parse {parsed:6.2f} s"
          f" ({parsed / lines * 1e6:5.0f} us/line) | write {rendered:5.2f} s"
          f" ({rendered / lines * 1e6:4.0f} us/line)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="25000,50000", help="lines, comma-separated")
    args = ap.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        measure("html", html_of(size), lambda t: parse_html(t, "fra_Latn"))
        measure("markdown", markdown_of(size), parse_markdown)


if __name__ == "__main__":
    main()
