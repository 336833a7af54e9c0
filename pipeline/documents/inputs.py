"""Reading an input document: bytes, checks, decoding, line endings.

The decoded text is *not* Unicode-normalised: a format's parser keeps
literal parts (code, markup, timings) exactly as they were and NFC-normalises
only the units it hands to the model (``Document.add_unit``).

Two ways in: :func:`read_input` holds the whole file, and
:func:`scan_input` makes the same checks and finds the same facts reading
it a block at a time (what submitting a document of any size does), with
:class:`InputLines`: the file as decoded lines with their byte offsets,
from any line start on (what preprocessing streams).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline import objects
from pipeline.documents.document import line_end_codes
from pipeline.errors import InvalidInput
from pipeline.objects import Storage

BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class InputFile:
    """A checked input document: its facts, and its content when it was
    read whole (``read_input``); ``scan_input`` keeps none of it, and
    ``lines()`` reads it again from the file."""

    path: Path  # absolute
    data: bytes | None  # None: scanned, not held
    sha256: str  # of the bytes as read
    text: str | None  # LF line endings, no BOM, not normalised; None: scanned
    eol: str  # the dominant line ending of the file: "\n" or "\r\n"
    bom: bool
    # One letter per line break (n LF, r CRLF, c CR) when the file mixes
    # them, "" when it uses one kind (Document.line_ends); read whole only.
    line_ends: str = ""
    size: int = 0  # bytes
    # A storage URL (pipeline.objects) when the document is an object; then
    # ``path`` is its path inside the store, for its name and suffix.
    url: str | None = None

    @property
    def location(self) -> str:
        """What the job stores as its input: the URL or the absolute path."""
        return self.url or str(self.path)

    def lines(self, storage: Storage | None = None) -> Iterator[InputLine]:
        """Its decoded lines, from memory or read from the file (or object,
        with ``storage``'s options) in blocks."""
        if self.text is None:
            return iter(InputLines(self.location, storage=storage))
        return _text_lines(self.text)


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


def _refuse_wide(path: Path, data: bytes) -> None:
    wide = wide_encoding(data)
    if wide:
        encoding, order = wide
        codec = encoding + ("LE" if order == "little-endian" else "BE")
        raise InvalidInput(
            f"{path} is {encoding} ({order}) text, not UTF-8; convert it first, e.g. "
            f"iconv -f {codec} -t UTF-8 '{path.name}' > '{path.stem}.utf8{path.suffix}'")


def _binary(path: Path) -> InvalidInput:
    return InvalidInput(f"{path} is a binary file (it contains NUL bytes), not text")


PARQUET_MAGIC = b"PAR1"  # a Parquet file starts (and ends) with it


def decode_input(path: Path, data: bytes) -> InputFile:
    if data.startswith(PARQUET_MAGIC):
        # Binary, read by its format (pipeline.documents.formats.parquet), never decoded.
        return InputFile(path, data, hashlib.sha256(data).hexdigest(), None, "\n", False, "",
                         len(data))
    _refuse_wide(path, data)
    if b"\x00" in data:
        raise _binary(path)
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
                     line_end_codes(endings) if mixed else "", len(data))


STDIN_NAME = "stdin.txt"  # read as a .txt file is: text, or lines without blank lines
SPOOL_PIECE = 1 << 16


def spool(stream: BinaryIO, directory: Path, name: str = STDIN_NAME) -> Path:
    """Copy ``stream`` (standard input) a piece at a time to
    ``directory/<sha256>/name`` and return that path: content-addressed,
    so the same document read again is the same file, and a job's input
    (what a resumed run or a worker reads) never changes under it."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".stdin-", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            while piece := stream.read(SPOOL_PIECE):
                digest.update(piece)
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        target = directory / digest.hexdigest() / name
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp, target)  # the same bytes, if it was there already
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def scan_input(path: str | os.PathLike, storage: Storage | None = None) -> InputFile:
    """``read_input``'s checks and facts (no ``line_ends``), reading the file
    (or the object at a storage URL) a block at a time and keeping none of
    it: for documents of any size."""
    if objects.is_url(path):
        return _scan_object(objects.check_url(str(path), "input"), storage)
    path = Path(path).expanduser()
    if path.is_dir():
        raise InvalidInput(f"input is a directory, not a file: {path}")
    if not path.exists():
        raise InvalidInput(f"input file not found: {path}")
    if _starts_with(path, PARQUET_MAGIC):
        return _scan_binary(path.resolve())
    reader, blank = InputLines(path.resolve()), True
    for line in reader:
        if blank and line.text.strip():
            blank = False
    tally = reader.tally
    if not tally.letters:
        what = "empty" if blank else "without any words"
        raise InvalidInput(f"{reader.path} is {what}: nothing to translate")
    return InputFile(reader.path, None, reader.digest.hexdigest(), None, tally.eol, tally.bom,
                     "", reader.size)


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None


def _scan_binary(path: Path, url: str | None = None, storage: Storage | None = None) -> InputFile:
    """The facts of a binary input (Parquet), a file or an object: its hash and size."""
    digest, size = hashlib.sha256(), 0
    with objects.open_object(url, storage) if url else open(path, "rb") as f:
        while piece := f.read(BLOCK_BYTES):
            digest.update(piece)
            size += len(piece)
    return InputFile(path, None, digest.hexdigest(), None, "\n", False, "", size, url=url)


def _scan_object(url: str, storage: Storage | None) -> InputFile:
    if objects.is_prefix(url):
        raise InvalidInput(f"input is a prefix, not an object: {url} (submit expands a prefix)")
    info = objects.object_info(url, storage)
    if info is None:
        raise InvalidInput(f"input object not found: {url}")
    if info.get("type") == "directory":
        raise InvalidInput(f"input is a prefix, not an object: {url} (submit expands a prefix)")
    size = info.get("size")  # an empty object has no range to read
    if (size is None or size >= len(PARQUET_MAGIC)) and objects.first_bytes(
            url, len(PARQUET_MAGIC), storage) == PARQUET_MAGIC:
        return _scan_binary(objects.local_path(url), url, storage)
    reader, blank = InputLines(url, storage=storage), True
    for line in reader:
        if blank and line.text.strip():
            blank = False
    tally = reader.tally
    if not tally.letters:
        raise InvalidInput(f"{url} is {'empty' if blank else 'without any words'}: "
                           "nothing to translate")
    return InputFile(objects.local_path(url), None, reader.digest.hexdigest(), None, tally.eol,
                     tally.bom, "", reader.size, url=url)


def _text_lines(text: str) -> Iterator[InputLine]:
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield InputLine(text[start:], "", len(text))
            return
        yield InputLine(text[start:end + 1], "n", end + 1)
        start = end + 1


# -- streaming --------------------------------------------------------------------

BLOCK_BYTES = 1 << 20  # read at a time; a line longer than this is read whole
_BREAK = re.compile(rb"\r\n|\r|\n")
_CODE_OF_BREAK = {b"\n": "n", b"\r\n": "r", b"\r": "c"}


@dataclass
class LineTally:
    """What reading has found so far, the whole-file facts that
    :func:`decode_input` gives at once: stored with a preprocess's cursor,
    so reading resumed mid-file ends with the same answers."""

    crlf: int = 0  # CRLF line breaks
    lf: int = 0  # LF line breaks
    kinds: str = ""  # the kinds of line break seen, as Document.line_ends letters
    bom: bool = False
    letters: bool = False  # a letter somewhere: something to translate

    @property
    def eol(self) -> str:
        """The dominant line ending, as decode_input decides it (CR-only breaks count for neither)."""
        return "\r\n" if self.crlf and self.crlf >= self.lf else "\n"

    @property
    def mixed(self) -> bool:
        return len(self.kinds) > 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class InputLine:
    text: str  # decoded, its line break as "\n" (none on a last line without one)
    end: str  # its line break as a Document.line_ends letter; "" for none
    end_byte: int  # the input offset just past its line break


class InputLines:
    """A UTF-8 input file as decoded lines, read a block at a time.

    From ``start`` (a line start; 0 is the file's start, where a BOM is
    noted and skipped) to the end, tallying line breaks in ``tally``. Raises
    InvalidInput as :func:`decode_input` does (wide encodings, NUL bytes,
    bytes that are not UTF-8, with the offset and line), when it reaches
    them; ``line`` is the number of the line at ``start``, for messages.
    """

    def __init__(self, path: str | os.PathLike, *, start: int = 0, line: int = 0,
                 tally: LineTally | None = None, block_bytes: int = BLOCK_BYTES,
                 storage: Storage | None = None):
        # A storage URL is read through fsspec (pipeline.objects), from any
        # machine that reaches the store; ``path`` then names it in messages.
        self.url = str(path) if objects.is_url(path) else None
        self.path = objects.local_path(self.url) if self.url else Path(path)
        self.where = self.url or self.path
        self.storage, self.start, self.line = storage, start, line
        self.tally = tally or LineTally()
        self.block_bytes = block_bytes
        # Of the bytes read from ``start`` on (the file's, read from 0).
        self.digest, self.size = hashlib.sha256(), 0

    def __iter__(self) -> Iterator[InputLine]:
        if self.url:
            f = objects.open_object(self.url, self.storage)
        else:
            try:
                f = open(self.path, "rb")
            except OSError as exc:
                raise InvalidInput(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with f:
            f.seek(self.start)
            offset, pending, opening = self.start, b"", self.start == 0
            while True:
                try:
                    # The opening block is enough to tell a BOM or UTF-16 by.
                    block = f.read(max(self.block_bytes, 4096) if opening else self.block_bytes)
                except Exception as exc:
                    raise self._read_error(exc) from None
                self.digest.update(block)
                self.size += len(block)
                if opening:
                    _refuse_wide(self.path, block)
                    if block.startswith(BOM):
                        self.tally.bom, block, offset = True, block[len(BOM):], len(BOM)
                    opening = False
                if b"\x00" in block:
                    raise _binary(self.where)
                data, at_end = pending + block, not block
                pos = 0
                for m in _BREAK.finditer(data):
                    if m.end() == len(data) and m.group() == b"\r" and not at_end:
                        break  # maybe the first half of a CRLF: wait for the next block
                    yield self._line(data[pos:m.start()], m.group(), offset + m.end())
                    pos = m.end()
                offset += pos
                pending = data[pos:]
                if at_end:
                    if pending:
                        yield self._line(pending, b"", offset + len(pending))
                    return

    def _read_error(self, exc: Exception) -> Exception:
        if self.url:
            from pipeline.objects.errors import storage_error

            return storage_error(exc, f"cannot read {self.url}")
        if isinstance(exc, OSError):
            return InvalidInput(f"cannot read {self.path}: {exc.strerror or exc}")
        return exc

    def _line(self, raw: bytes, brk: bytes, end_byte: int) -> InputLine:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            offset = end_byte - len(brk) - len(raw) + exc.start
            raise InvalidInput(
                f"{self.where} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                f"{offset}, line {self.line + 1}); convert it to UTF-8 first") from None
        tally, code = self.tally, _CODE_OF_BREAK.get(brk, "")
        if code:
            text += "\n"
            self.line += 1
            if code == "r":
                tally.crlf += 1
            elif code == "n":
                tally.lf += 1
            if code not in tally.kinds:
                tally.kinds += code
        if not tally.letters and any(ch.isalpha() for ch in text):
            tally.letters = True
        return InputLine(text, code, end_byte)
