"""Reading an input document: bytes, checks, decoding, line endings.

The decoded text is *not* Unicode-normalised: a format's parser keeps
literal parts (code, markup, timings) exactly as they were and NFC-normalises
only the units it hands to the model (``Document.add_unit``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.document import line_end_codes
from pipeline.errors import InvalidInput

BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class InputFile:
    path: Path  # absolute
    data: bytes
    sha256: str  # of ``data``, the bytes as read
    text: str  # LF line endings, no BOM, not normalised
    eol: str  # the dominant line ending of the file: "\n" or "\r\n"
    bom: bool
    # One letter per line break (n LF, r CRLF, c CR) when the file mixes
    # them, "" when it uses one kind (Document.line_ends).
    line_ends: str = ""


def read_input(path: str | os.PathLike) -> InputFile:
    """Read and decode a document; InvalidInput with a one-line reason if it
    is missing, unreadable, binary, not UTF-8, or has nothing to translate."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"input is a directory, not a file: {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_input(path.resolve(), data)


# Byte order marks of the encodings a text editor may save in instead of
# UTF-8, longest first (UTF-32 LE starts with UTF-16 LE's mark).
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32", "little-endian"),
    (b"\x00\x00\xfe\xff", "UTF-32", "big-endian"),
    (b"\xff\xfe", "UTF-16", "little-endian"),
    (b"\xfe\xff", "UTF-16", "big-endian"),
)


def wide_encoding(data: bytes) -> tuple[str, str] | None:
    """(encoding, byte order) when ``data`` looks like UTF-16 or UTF-32 text:
    a byte order mark, or, without one, the NUL bytes that mostly-ASCII
    UTF-16 has in every other position."""
    for bom, encoding, order in _WIDE_BOMS:
        if data.startswith(bom):
            return encoding, order
    sample = data[:4096]
    if len(sample) < 4:
        return None
    for order, zeros, letters in (("little-endian", sample[1::2], sample[0::2]),
                                  ("big-endian", sample[0::2], sample[1::2])):
        if zeros.count(0) >= 0.9 * len(zeros) and letters.count(0) <= 0.1 * len(letters):
            codec = "utf-16-le" if order == "little-endian" else "utf-16-be"
            try:
                data[: len(data) // 2 * 2].decode(codec)
            except UnicodeDecodeError:
                return None
            return "UTF-16", order
    return None


def decode_input(path: Path, data: bytes) -> InputFile:
    wide = wide_encoding(data)
    if wide:
        encoding, order = wide
        codec = encoding + ("LE" if order == "little-endian" else "BE")
        raise InvalidInput(
            f"{path} is {encoding} ({order}) text, not UTF-8; convert it first, e.g. "
            f"iconv -f {codec} -t UTF-8 '{path.name}' > '{path.stem}.utf8{path.suffix}'")
    if b"\x00" in data:
        raise InvalidInput(f"{path} is a binary file (it contains NUL bytes), not text")
    bom = data.startswith(BOM)
    try:
        text = data[len(BOM) if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(BOM) if bom else 0)
        line = data[:offset].count(b"\n") + 1
        raise InvalidInput(
            f"{path} is not valid UTF-8 (byte 0x{data[offset]:02x} at offset {offset}, "
            f"line {line}); convert it to UTF-8 first"
        ) from None
    crlf = text.count("\r\n")
    eol = "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"
    endings = _LINE_END.findall(text)
    mixed = len(set(endings)) > 1
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not any(ch.isalpha() for ch in text):
        what = "empty" if not text.strip() else "without any words"
        raise InvalidInput(f"{path} is {what}: nothing to translate")
    return InputFile(path, data, hashlib.sha256(data).hexdigest(), text, eol, bom,
                     line_end_codes(endings) if mixed else "")
