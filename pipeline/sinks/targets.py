"""From the command line's ``--to``/``-o`` to the target a job stores."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import objects
from pipeline.errors import InvalidInput
from pipeline.sinks.grammar import HTTP_METHODS, STDOUT, check_url, is_http, redact_url
from pipeline.sinks.outputs import default_output, dir_output, relative_dir, resolve_output
from pipeline.sinks.writable import check_creatable, check_bucket

if TYPE_CHECKING:
    from pipeline.documents.inputs import InputFile


@dataclass(frozen=True)
class Target:
    """Where a job delivers, as stored in its parameters."""

    sink: str  # "file:/abs/path", "dir:/abs/dir", the URL (redacted), or STDOUT
    output: str  # the file to write, the URL (an object's under a prefix), or "-"
    http_method: str = ""  # PUT or POST for a URL, "" otherwise


def resolve_target(to: str | None, output: str | None, source: InputFile, tgt_lang: str, *,
                   http_method: str | None = None,
                   relative_to: str | os.PathLike | None = None,
                   storage: objects.Storage | None = None) -> Target:
    """The job's target from ``--to``/``-o``, checked before any work."""
    if to and output:
        raise InvalidInput("give either -o or --to, not both")
    if output == "-":
        return Target(STDOUT, "-")
    if objects.is_url(output):
        to, output = output, None  # -o s3://bucket/out.md reads as --to
    if to is None and output is None and source.url:  # NAME.<tgt>.EXT beside the object
        to = source.url.rsplit("/", 1)[0] + "/" + default_output(source.path, tgt_lang).name
    if http_method and not is_http(to):
        raise InvalidInput("--http-method applies only to an http(s):// --to")
    if relative_to is not None and not ((to or "").startswith("dir:")
                                        or (objects.is_url(to) and objects.is_prefix(to))):
        raise InvalidInput("--relative-to applies only to --to dir:DIR or a prefix URL "
                           "(ending with /)")
    if to is None or to.startswith("file:"):
        path = resolve_output(to[len("file:"):] if to else output, source, tgt_lang)
        return Target(f"file:{path}", str(path))
    if to.startswith("dir:"):
        if not to[len("dir:"):]:
            raise InvalidInput("--to dir: needs a directory, e.g. dir:translated")
        root = Path(to[len("dir:"):]).expanduser().resolve()
        path = dir_output(root, source, tgt_lang, relative_to)
        check_creatable(path, source.path)
        return Target(f"dir:{root}", str(path))
    if is_http(to):
        url = redact_url(check_url(to))  # the signature stays with this run, not the job
        method = (http_method or HTTP_METHODS[0]).upper()
        if method not in HTTP_METHODS:
            raise InvalidInput(f"--http-method must be {' or '.join(HTTP_METHODS)}, "
                               f"not {http_method!r}")
        return Target(url, url, method)
    if objects.is_url(to):
        url = objects.check_url(to)
        if objects.is_prefix(url):
            rel = relative_dir(source, relative_to)
            name = default_output(source.path, tgt_lang).name
            output = url + (f"{rel.as_posix()}/" if rel.parts else "") + name
        else:
            output = url
        if output == source.url:
            raise InvalidInput(f"output {output} is the input object itself")
        check_bucket(output, storage)
        return Target(url, output)
    raise InvalidInput(f"unknown --to {to!r}: use file:PATH, dir:DIR, an http(s):// URL or a "
                       "storage URL (s3://bucket/prefix/)")
