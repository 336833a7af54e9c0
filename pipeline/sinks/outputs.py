"""Where a file target writes: the default name beside the input, an ``-o``
path made absolute, a file in a ``dir:`` target."""

from __future__ import annotations

import os
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING

from pipeline import objects
from pipeline.errors import InvalidInput
from pipeline.sinks.writable import check_writable

if TYPE_CHECKING:
    from pipeline.documents.inputs import InputFile


def default_output(input_path: PurePath, tgt_lang: str) -> PurePath:
    """NAME.<tgt>.EXT next to the input: book.txt -> book.fra_Latn.txt (a
    gettext template's translation is a catalogue: app.pot -> app.fra_Latn.po)."""
    suffix = ".po" if input_path.suffix.lower() == ".pot" else input_path.suffix
    return input_path.with_name(f"{input_path.stem}.{tgt_lang}{suffix}")


def resolve_output(output: str | None, source: InputFile, tgt_lang: str) -> Path:
    """The absolute output path, checked to be writable before any work."""
    path = Path(output).expanduser() if output else default_output(source.path, tgt_lang)
    path = path.resolve()
    if path.is_dir():
        raise InvalidInput(f"output path {path} is a directory; give a file name")
    if path == source.path:
        raise InvalidInput(f"output path {path} is the input file itself")
    parent = path.parent
    if not parent.is_dir():
        raise InvalidInput(f"cannot write output: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidInput(f"cannot write output: {path} is not writable")
    check_writable(parent)
    return path


def dir_output(root: Path, source: InputFile | PurePath, tgt_lang: str,
               relative_to: str | os.PathLike | None = None) -> Path:
    """DIR/NAME.<tgt>.EXT; with a base, the input's directory under it is kept."""
    path = getattr(source, "path", source)
    return root / relative_dir(source, relative_to) / default_output(path, tgt_lang).name


def relative_dir(source: InputFile | PurePath,
                 relative_to: str | os.PathLike | None) -> PurePosixPath:
    """The input's (a file's, or an object's) directory under ``relative_to``
    (a directory, or a prefix URL for an object); empty without one."""
    if relative_to is None:
        return PurePosixPath()
    path, url = getattr(source, "path", source), getattr(source, "url", None)
    if url or objects.is_url(relative_to):
        if not (url and objects.is_url(relative_to)):
            raise InvalidInput(f"input {url or path} is not under --relative-to {relative_to}")
        return PurePosixPath(objects.relative_name(url, str(relative_to))).parent
    base = Path(relative_to).expanduser().resolve()
    try:
        return PurePosixPath(path.parent.relative_to(base).as_posix())
    except ValueError:
        raise InvalidInput(f"input {path} is not under --relative-to {base}") from None
