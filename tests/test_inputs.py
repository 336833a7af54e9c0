"""Reading input documents: encodings, line endings, and what is refused."""

from __future__ import annotations

import hashlib
import json
import unicodedata

import pytest

from pipeline.errors import InvalidInput
from pipeline.documents.inputs import BOM, read_input
from tests.conftest import corpus_file


def write(tmp_path, data: bytes, name: str = "doc.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_plain_utf8(tmp_path):
    data = "Hello, wörld.\nSecond line.\n".encode()
    src = read_input(write(tmp_path, data))
    assert src.text == "Hello, wörld.\nSecond line.\n"
    assert (src.eol, src.bom, src.data) == ("\n", False, data)
    assert src.sha256 == hashlib.sha256(data).hexdigest()
    assert src.path.is_absolute() and src.path == (tmp_path / "doc.txt").resolve()


def test_bom_is_noted_and_stripped(tmp_path):
    data = BOM + "Bonjour.\n".encode()
    src = read_input(write(tmp_path, data))
    assert src.bom is True
    assert src.text == "Bonjour.\n"
    assert src.data == data  # the raw bytes, BOM included
    assert src.sha256 == hashlib.sha256(data).hexdigest()


def test_crlf_becomes_lf_and_is_remembered(tmp_path):
    src = read_input(write(tmp_path, b"One.\r\nTwo.\r\n\r\nThree.\r\n"))
    assert src.text == "One.\nTwo.\n\nThree.\n"
    assert src.eol == "\r\n"


@pytest.mark.parametrize(
    ("data", "eol"),
    [
        (b"a.\r\nb.\r\nc.\nd.\r\n", "\r\n"),  # 3 CRLF, 1 LF
        (b"a.\nb.\nc.\r\nd.\n", "\n"),  # 3 LF, 1 CRLF
        (b"a.\r\nb.\nc.\r\nd.\n", "\r\n"),  # a tie keeps the Windows ending
    ],
)
def test_mixed_line_endings_pick_the_majority(tmp_path, data, eol):
    src = read_input(write(tmp_path, data))
    assert src.eol == eol
    assert src.text == "a.\nb.\nc.\nd.\n"


def test_lone_cr_is_a_line_break(tmp_path):
    src = read_input(write(tmp_path, b"Old Mac.\rSecond.\rThird.\r"))
    assert src.text == "Old Mac.\nSecond.\nThird.\n"
    assert "\r" not in src.text
    assert src.eol == "\n"


def test_nfd_input_is_not_normalised_here(tmp_path):
    # Normalising is the parser's job, for units only: code must keep its bytes.
    nfd = unicodedata.normalize("NFD", "Café crème, déjà vu.\n")
    assert len(nfd) > len("Café crème, déjà vu.\n")
    data = nfd.encode()
    src = read_input(write(tmp_path, data))
    assert src.text == nfd
    assert src.sha256 == hashlib.sha256(data).hexdigest()  # of the bytes as read


def test_mixed_line_endings_are_recorded_line_by_line(tmp_path):
    src = read_input(write(tmp_path, b"a.\r\nb.\nc.\rd.\r\n"))
    assert src.text == "a.\nb.\nc.\nd.\n"
    assert (src.eol, src.line_ends) == ("\r\n", "rncr")
    assert read_input(write(tmp_path, b"a.\r\nb.\r\n")).line_ends == ""  # one kind: not kept


def test_nul_bytes_mean_binary(tmp_path):
    with pytest.raises(InvalidInput, match=r"binary file \(it contains NUL bytes\)"):
        read_input(write(tmp_path, b"text\x00more text", "blob.bin"))
    with pytest.raises(InvalidInput, match=r"binary file"):  # NULs, but not in every other byte
        read_input(write(tmp_path, b"\x00\x01\x02\x03" * 50 + b"text", "blob.bin"))


TEXT = "Café au lait.\n\nA second paragraph.\n"


@pytest.mark.parametrize("codec, encoding, order, iconv", [
    ("utf-16", "UTF-16", "little-endian", "UTF-16LE"),  # with a BOM, as Notepad saves it
    ("utf-16-le", "UTF-16", "little-endian", "UTF-16LE"),  # no BOM: NUL in every odd byte
    ("utf-16-be", "UTF-16", "big-endian", "UTF-16BE"),
    ("utf-32", "UTF-32", "little-endian", "UTF-32LE"),
])
def test_utf16_and_utf32_are_named_with_a_hint_to_convert(tmp_path, codec, encoding, order,
                                                          iconv):
    path = write(tmp_path, TEXT.encode(codec), "notes.txt")
    with pytest.raises(InvalidInput) as info:
        read_input(path)
    assert str(info.value) == (
        f"{path.resolve()} is {encoding} ({order}) text, not UTF-8; convert it first, e.g. "
        f"iconv -f {iconv} -t UTF-8 'notes.txt' > 'notes.utf8.txt'")
    assert info.value.exit_code == 2


def test_invalid_utf8_names_byte_offset_and_line(tmp_path):
    path = write(tmp_path, b"First line.\nSecond line.\nCaf\xe9 au lait.\n", "latin1.txt")
    with pytest.raises(InvalidInput) as info:
        read_input(path)
    assert str(info.value) == (
        f"{path.resolve()} is not valid UTF-8 (byte 0xe9 at offset 28, line 3); "
        "convert it to UTF-8 first"
    )


def test_invalid_utf8_offset_counts_the_bom(tmp_path):
    with pytest.raises(InvalidInput, match=r"byte 0xff at offset 5, line 1\)"):
        read_input(write(tmp_path, BOM + b"ab\xff"))


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "is empty: nothing to translate"),
        (b"   \n\t\r\n  \n", "is empty: nothing to translate"),
        (BOM, "is empty: nothing to translate"),
        (b"12345\n67 89\n", "is without any words: nothing to translate"),
        (b"-- 3.14 --\n", "is without any words: nothing to translate"),
    ],
)
def test_nothing_to_translate(tmp_path, data, what):
    path = write(tmp_path, data)
    with pytest.raises(InvalidInput) as info:
        read_input(path)
    assert str(info.value) == f"{path.resolve()} {what}"


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInput) as info:
        read_input(tmp_path / "nope.txt")
    assert str(info.value) == f"input file not found: {tmp_path / 'nope.txt'}"
    assert info.value.exit_code == 2


def test_directory(tmp_path):
    with pytest.raises(InvalidInput, match="input is a directory, not a file"):
        read_input(tmp_path)


def test_real_file_with_mixed_line_endings():
    path = corpus_file("derived_mixed_eol_pride_and_prejudice_ch1-3.txt")
    data = path.read_bytes()
    crlf = data.count(b"\r\n")
    lf_only = data.count(b"\n") - crlf
    assert crlf > lf_only > 0  # chapters I and III CRLF, chapter II LF
    src = read_input(path)
    assert src.eol == "\r\n"
    assert "\r" not in src.text
    assert src.text.count("\n") == data.count(b"\n")
    assert src.text == data.decode("utf-8").replace("\r\n", "\n")
    assert src.sha256 == hashlib.sha256(data).hexdigest()
    assert "\nCHAPTER II.\n" in src.text and "\nCHAPTER III.\n" in src.text
    assert len(src.line_ends) == data.count(b"\n")
    assert src.line_ends.count("r") == crlf and src.line_ends.count("n") == lf_only


NFD = unicodedata.normalize("NFD", "café")


@pytest.mark.parametrize(("name", "fmt", "data", "literal"), [
    ("a.md", "markdown", f"Un {NFD}.\n\n```\n{NFD} = 1\n```\n\n[{NFD}](http://x/{NFD})\n",
     f"```\n{NFD} = 1\n```\n"),
    ("a.txt", "text", f"\u3000{NFD} au lait.\n\n* * *\n", "\n\n* * *\n"),
    ("a.txt", "lines", f"{NFD} one.\n{NFD} two.\n", "\n"),
    ("a.srt", "srt", f'1\n00:00:01,000 --> 00:00:02,000\n<font face="{NFD}">Un {NFD}.</font>\n',
     f'<font face="{NFD}">'),
    ("a.vtt", "vtt", f"WEBVTT\n\nNOTE {NFD}\n\n00:01.000 --> 00:02.000\n<c.{NFD}>Un {NFD}.</c>\n",
     f"NOTE {NFD}\n\n00:01.000 --> 00:02.000\n<c.{NFD}>"),
    ("a.jsonl", "jsonl", json.dumps({"id": NFD, "text": f"Un {NFD}."}, ensure_ascii=False) + "\n",
     f'"id": "{NFD}"'),
])
def test_only_units_are_normalised_in_every_format(tmp_path, name, fmt, data, literal):
    from pipeline.documents.formats import parse_document

    src = read_input(write(tmp_path, data.encode(), name))
    assert src.text == data and src.sha256 == hashlib.sha256(data.encode()).hexdigest()
    doc = parse_document(src.text, fmt, jsonl_field="text")
    assert doc.units and all(unicodedata.is_normalized("NFC", u.text) for u in doc.units)
    assert any("café" in u.text for u in doc.units)
    out = doc.render([u.text + " !" for u in doc.units])
    assert literal in out  # markup, code, tags and other fields keep their bytes
