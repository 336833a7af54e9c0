"""The command line: ``main`` parses, calls a verb of ``pipeline.service``
and renders; the option groups live once in ``options``."""

from pipeline.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
