"""What the command line writes on stderr besides the progress bar: one
format for warnings, errors and notes, ours and the libraries' log records
alike.

    nllb-pipeline: warning: fault injection is ON (oom=0.2,...)
    nllb-pipeline: error: no job 'b' (see 'nllb-pipeline status')
    nllb-pipeline: converting facebook/... to CTranslate2 ...   (a note)

Without ``-v`` only notes, warnings and errors show, without timestamps.
With ``-v`` (or ``--debug``) what happens is logged too (``info``), each
line after its time. With ``--log-format json`` every line is one JSON
object (``time`` in Unix seconds, ``level``, ``logger``, ``job``,
``batch``, ``trace_id``, ``error_class``, ``decision``: ``pipeline.monitoring.logs``;
``message``), the error that ends a command and the progress lines
included, for a service's journal or a log shipper.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

from pipeline.config import NOTE
from pipeline.monitoring.logs import FIELDS, fields_of

PREFIX = "nllb-pipeline"
LOG_FORMATS = ("text", "json")
logging.addLevelName(NOTE, "NOTE")


def level_name(levelno: int) -> str:
    return logging.getLevelName(levelno).lower()


def text_line(level: str, message: str, *, at: float | None = None) -> str:
    """``nllb-pipeline: warning: ...``; a note has no level word; ``at``
    (Unix time) puts the time in front."""
    line = f"{PREFIX}: {message}" if level == "note" else f"{PREFIX}: {level}: {message}"
    if at is None:
        return line
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    return f"{stamp},{int(at % 1 * 1000):03d} {line}"


def json_line(level: str, message: str, *, at: float, logger: str = "nllb_pipeline",
              record: logging.LogRecord | None = None, **fields) -> str:
    """One object: time, level, logger, job, batch, trace_id, error_class,
    decision (``pipeline.monitoring.logs``; null where they do not apply), message,
    and any further ``fields``."""
    return json.dumps({"time": round(at, 3), "level": level, "logger": logger,
                       **fields_of(record, **fields), "message": message,
                       **{k: v for k, v in fields.items() if k not in FIELDS}},
                      ensure_ascii=False)


class Formatter(logging.Formatter):
    """Log records as ``text_line`` or ``json_line`` (with a traceback, if any)."""

    def __init__(self, log_format: str = "text", *, timestamps: bool = False):
        super().__init__()
        self.log_format, self.timestamps = log_format, timestamps

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        level = level_name(record.levelno)
        if self.log_format == "json":
            return json_line(level, message, at=record.created, logger=record.name,
                             record=record)
        return text_line(level, message, at=record.created if self.timestamps else None)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (an
    embedding caller or a test may have replaced it since)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(*, verbose: bool = False, debug: bool = False, log_format: str = "text") -> None:
    """Route every log record (the libraries' too) through one handler on
    the root logger, in this format. Called once per command; calling it
    again replaces the handler it installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(Formatter(log_format,
                                   timestamps=verbose or debug or log_format == "json"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else NOTE)


def error(message: str, log_format: str = "text") -> None:
    """The one line that ends a command, whatever the log level."""
    say("error", message, log_format)


def say(level: str, message: str, log_format: str = "text", *,
        stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    line = (json_line(level, message, at=time.time()) if log_format == "json"
            else text_line(level, message))
    print(line, file=stream, flush=True)
