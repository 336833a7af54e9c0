"""Job parameters and run settings: frozen, validated once, passed down.

``JobParams`` is *what* is asked (it decides the output, so it is part of
the job's idempotency key). ``RunSettings`` is *how* this process runs it
(device, batch size, leases): changing them never changes which job a
command means, so a job started on one GPU can resume on another or on CPU.
``pipeline.settings`` builds it from defaults, the config file, the
environment and flags.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.budget import output_budget
from pipeline.errors import InvalidInput
from pipeline.languages import validate_language
from pipeline.sinks.grammar import check_sink

DEFAULT_MODEL = "facebook/nllb-200-distilled-600M"
STAGES = ("preprocess", "inference", "postprocess", "upload")  # in order; a job's stage is one of these or "done"
FORMATS = ("text", "lines", "markdown", "srt", "vtt", "jsonl", "html", "po", "csv", "tsv",
           "parquet")
# The formats each format option applies to (JobParams checks them).
TABLE_FORMATS = ("csv", "tsv", "parquet")
FORMAT_OPTIONS = {
    "columns": ("--columns", TABLE_FORMATS),
    "delimiter": ("--delimiter", ("csv",)),
    "in_place": ("--in-place", ("jsonl", *TABLE_FORMATS)),
    "overwrite_translated": ("--overwrite-translated", ("po",)),
    "fuzzy": ("--no-fuzzy", ("po",)),
    "wrap": ("--wrap", ("markdown", "html")),
}
WRAPS = ("keep", "reflow")  # --wrap: a paragraph keeps its line count, or is one line
# A log level between INFO and WARNING for what a user must know without -v
# but is not a warning (a conversion that takes a while, a server's stop).
NOTE = 25


@dataclass(frozen=True)
class JobParams:
    model: str  # hub id, or the absolute path of a local checkpoint directory
    src_lang: str  # FLORES-200 code, e.g. eng_Latn
    tgt_lang: str
    fmt: str  # one of FORMATS
    output: str  # absolute path of the output file
    # Beam search width. 4 is what NLLB was evaluated with (NLLB Team 2022);
    # greedy (1) is about 2-3x faster and slightly worse.
    beams: int = 4
    max_chunk_tokens: int = 200  # tokens per chunk, special tokens included
    # Output budget per chunk: ceil(length_ratio * its length bucket) + length_offset
    # tokens (pipeline/budget.py). Bounds a looping model instead of letting it
    # run to 1,024 tokens.
    length_ratio: float = 2.0
    length_offset: int = 16
    missing: str = "source"  # a chunk that failed for good: "source" text or "marker"
    # Where the output is delivered (pipeline/sinks/grammar.py): "file:/abs/path",
    # "dir:/abs/dir" (output is then the file in it), an http(s) URL without
    # credentials (output is then the URL), or "stdout:" (-o -; output "-":
    # printed by the command from the store). "" means "file:" + output.
    sink: str = ""
    http_method: str = ""  # PUT or POST for an HTTP sink, "" for the others
    jsonl_field: str = ""  # the field holding the text, for the jsonl format
    # What happens to a translation that fails the output checks
    # (pipeline/quality/): "repair" (decode again with a repetition guard,
    # then split it, then accept it with a flag), "flag" (accept it with a
    # flag) or "off" (no checks; placeholders are always checked).
    quality: str = "repair"
    # Format options (FORMAT_OPTIONS says which formats take each). Left out
    # of the canonical JSON at their defaults, so keys made before they
    # existed still name their jobs.
    columns: str = ""  # csv, tsv, parquet: the columns to translate, "a,b" (or "2,3")
    delimiter: str = ""  # csv: the delimiter, one character; "" = detected
    in_place: bool = False  # replace the field or column instead of adding one
    overwrite_translated: bool = False  # po: translate entries that have a msgstr too
    fuzzy: bool = True  # po: mark machine translations fuzzy
    wrap: str = "keep"  # markdown, html: a paragraph keeps its line count, or "reflow": one line

    def __post_init__(self) -> None:
        validate_language(self.src_lang)
        validate_language(self.tgt_lang)
        if self.fmt not in FORMATS:
            raise InvalidInput(f"unknown format {self.fmt!r} (one of {', '.join(FORMATS)})")
        if not 1 <= self.beams <= 16:
            raise InvalidInput(f"--beams must be between 1 and 16, not {self.beams}")
        if not 16 <= self.max_chunk_tokens <= 1024:
            raise InvalidInput(
                f"--max-chunk-tokens must be between 16 and 1024, not {self.max_chunk_tokens}"
            )
        if not (math.isfinite(self.length_ratio) and self.length_ratio > 0):
            raise InvalidInput(f"--length-ratio must be a finite number > 0, not {self.length_ratio}")
        if self.length_offset < 0:
            raise InvalidInput(f"--length-offset must be >= 0, not {self.length_offset}")
        if self.quality not in ("repair", "flag", "off"):
            raise InvalidInput(f"--quality must be repair, flag or off, not {self.quality!r}")
        if self.missing not in ("source", "marker"):
            raise InvalidInput(f"--missing must be 'source' or 'marker', not {self.missing!r}")
        if (self.fmt == "jsonl") != bool(self.jsonl_field):
            raise InvalidInput("JSON Lines input needs --jsonl FIELD (the field to translate)")
        if self.wrap not in WRAPS:
            raise InvalidInput(f"--wrap must be keep or reflow, not {self.wrap!r}")
        for name, (flag, formats) in FORMAT_OPTIONS.items():
            if getattr(self, name) != FORMAT_DEFAULTS[name] and self.fmt not in formats:
                named = ", ".join(formats[:-1]) + " and " + formats[-1] if len(formats) > 1 \
                    else formats[0]
                raise InvalidInput(f"{flag} applies to {named} input, not {self.fmt}")
        if self.fmt in TABLE_FORMATS:
            names = [c.strip() for c in self.columns.split(",")] if self.columns else []
            if not names or not all(names):
                raise InvalidInput(f"{self.fmt} input needs --columns NAME[,NAME...] "
                                   "(the columns to translate)")
            object.__setattr__(self, "columns", ",".join(names))
        if self.delimiter and (len(self.delimiter) != 1 or self.delimiter in '"\r\n'):
            raise InvalidInput(f"--delimiter is one character other than a quote or a line "
                               f"break, not {self.delimiter!r}")
        if not self.sink:
            object.__setattr__(self, "sink", f"file:{self.output}")
        object.__setattr__(self, "http_method", check_sink(self.sink, self.http_method))

    def canonical_json(self) -> str:
        data = {k: v for k, v in asdict(self).items()
                if k not in FORMAT_DEFAULTS or v != FORMAT_DEFAULTS[k]}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> JobParams:
        return cls(**json.loads(data))

    def output_budget(self, n_tokens: int, cap: int) -> int:
        """Output token budget of a chunk of ``n_tokens`` input tokens
        (``pipeline.budget``: a function of its own length, never its batch's)."""
        return output_budget(n_tokens, self.length_ratio, self.length_offset, cap)


FORMAT_DEFAULTS = {"columns": "", "delimiter": "", "in_place": False,
                   "overwrite_translated": False, "fuzzy": True, "wrap": "keep"}


def idempotency_key(params: JobParams, input_sha256: str) -> str:
    """SHA-256 of the canonical parameters plus the input's SHA-256."""
    return hashlib.sha256(f"{params.canonical_json()}\n{input_sha256}".encode()).hexdigest()


# The backends a run may ask for (models.backends picks for auto). Which
# number formats (--dtype) each accepts, it declares itself
# (models.backends.COMPUTE_TYPES); pipeline.settings checks a run against it.
BACKENDS = ("auto", "hf", "ctranslate2")


def _check_device(option: str, spec: str) -> None:
    if spec != "auto" and spec != "cpu" and not spec.startswith("cuda"):
        raise InvalidInput(f"unknown {option} {spec!r} (auto, cpu, cuda or cuda:N)")


@dataclass(frozen=True)
class RunSettings:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # "auto" or a compute type of the backend (models.backends.COMPUTE_TYPES);
    # auto: int8 (CTranslate2) or float32 (transformers) on CPU
    dtype: str = "auto"
    backend: str = "auto"  # one of BACKENDS; auto: CTranslate2 when it can run the model
    tokenizer: str = ""  # hub id or directory of the tokenizer; "" = the model's own
    # Where to go on when the device fails in a way retrying on it cannot fix
    # (DEVICE_FATAL, or OOM on a single sentence); "" = fail the job instead.
    fallback_device: str = ""
    batch_tokens: int = 0  # padded source tokens per batch; 0 = chosen by device
    max_batch_size: int = 256  # sequences per batch, whatever the budget
    threads: int = 0  # CPU threads for the backend; 0 = its default
    lease_seconds: float = 30.0  # a lease not renewed for this long is reclaimable
    # When a profile's ETAs drift, and what then (pipeline.monitoring.drift)
    eta_drift: str = "threshold=25,mark=50,jobs=10"

    def __post_init__(self) -> None:
        _check_device("device", self.device)
        if self.fallback_device:
            _check_device("fallback device", self.fallback_device)
            if self.fallback_device == "auto":
                raise InvalidInput("--fallback-device names a device (cpu, cuda:N), not auto")
        if not self.dtype:
            raise InvalidInput("dtype must be auto or a compute type, not empty")
        if self.backend not in BACKENDS:
            raise InvalidInput(f"unknown backend {self.backend!r} ({', '.join(BACKENDS)})")
        if self.batch_tokens < 0:
            raise InvalidInput(f"batch_tokens must be >= 1 (0: chosen by device), not "
                               f"{self.batch_tokens}")
        if self.threads < 0:
            raise InvalidInput(f"threads must be >= 0, not {self.threads}")
        if self.max_batch_size < 1:
            raise InvalidInput(f"max_batch_size must be >= 1, not {self.max_batch_size}")
        from pipeline.monitoring.drift import EtaDrift

        EtaDrift.parse(self.eta_drift)
        if not (math.isfinite(self.lease_seconds) and self.lease_seconds > 0):
            raise InvalidInput(f"lease_seconds must be a finite number > 0, not "
                               f"{self.lease_seconds}")


def package_version() -> str:
    """The installed nllb-pipeline's version; "unknown" when run from a
    checkout that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nllb-pipeline")
    except PackageNotFoundError:
        return "unknown"


def default_db_path() -> Path:
    if os.environ.get("NLLB_PIPELINE_DB"):
        return Path(os.environ["NLLB_PIPELINE_DB"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "nllb-pipeline" / "jobs.db"


def default_model() -> str:
    return os.environ.get("NLLB_PIPELINE_MODEL") or DEFAULT_MODEL


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nllb-pipeline"
