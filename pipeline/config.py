"""Job parameters and run settings: frozen, validated once, passed down.

``JobParams`` is *what* is asked (it decides the output, so it is part of
the job's idempotency key). ``RunSettings`` is *how* this process runs it
(device, batch size, leases): changing them never changes which job a
command means, so a job started on one GPU can resume on another or on CPU.
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

DEFAULT_MODEL = "facebook/nllb-200-distilled-600M"
STAGES = ("preprocess", "inference", "postprocess", "upload")  # in order; a job's stage is one of these or "done"
FORMATS = ("text", "lines", "markdown", "srt", "vtt", "jsonl")
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
    # Where the output is delivered (pipeline/sinks.py): "file:/abs/path",
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
        if not self.sink:
            object.__setattr__(self, "sink", f"file:{self.output}")
        http = self.sink.startswith(("http://", "https://"))
        if not http and not self.sink.startswith(("file:", "dir:")) and self.sink != "stdout:":
            raise InvalidInput("a sink is file:PATH, dir:DIR, an http(s):// URL or stdout:")
        if http and not self.http_method:
            object.__setattr__(self, "http_method", "PUT")
        if (self.http_method not in ("PUT", "POST")) if http else self.http_method:
            raise InvalidInput("--http-method is PUT or POST, and only for an http(s):// sink")

    def canonical_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> JobParams:
        return cls(**json.loads(data))

    def output_budget(self, n_tokens: int, cap: int) -> int:
        """Output token budget of a chunk of ``n_tokens`` input tokens
        (``pipeline.budget``: a function of its own length, never its batch's)."""
        return output_budget(n_tokens, self.length_ratio, self.length_offset, cap)


def idempotency_key(params: JobParams, input_sha256: str) -> str:
    """SHA-256 of the canonical parameters plus the input's SHA-256."""
    return hashlib.sha256(f"{params.canonical_json()}\n{input_sha256}".encode()).hexdigest()


# The backends and number formats a run may ask for (models.backends picks,
# models.device and models.ct2 resolve "auto" for the device).
BACKENDS = ("auto", "hf", "ctranslate2")
DTYPES = ("auto", "float32", "float16", "bfloat16", "int8", "int8_float32", "int8_float16",
          "int8_bfloat16", "int16")  # int8*/int16: CTranslate2 only


def _check_device(option: str, spec: str) -> None:
    if spec != "auto" and spec != "cpu" and not spec.startswith("cuda"):
        raise InvalidInput(f"unknown {option} {spec!r} (auto, cpu, cuda or cuda:N)")


@dataclass(frozen=True)
class RunSettings:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # one of DTYPES; auto: int8 (CTranslate2) or float32 (transformers) on CPU
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
        if self.dtype not in DTYPES:
            raise InvalidInput(f"unknown dtype {self.dtype!r} ({', '.join(DTYPES)})")
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


def config_file_path() -> Path:
    if os.environ.get("NLLB_PIPELINE_CONFIG"):
        return Path(os.environ["NLLB_PIPELINE_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nllb-pipeline" / "config.toml"


def load_config_file(path: Path | None = None, *, required: bool = False) -> dict:
    """The TOML config file as a dict ({} if there is none).

    Sections: ``[retry]`` with the keys of ``--retry`` (chunk_attempts,
    batch_retries, base, factor, cap, and per-class limits such as
    device_transient = 3), and ``[run]`` with device, dtype, backend,
    tokenizer, fallback_device, batch_tokens, threads (``run_section``).
    Precedence: defaults, then this file, then the environment, then flags.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = path or config_file_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if required:
            raise InvalidInput(f"config file not found: {path}") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read config file {path}: {exc}") from None
    unknown = set(data) - {"retry", "run"}
    if unknown:
        raise InvalidInput(f"config file {path}: unknown section(s) {', '.join(sorted(unknown))}")
    return data


RUN_KEYS = ("device", "dtype", "backend", "tokenizer", "fallback_device", "batch_tokens",
            "threads", "eta_drift")
# The run settings an environment variable can set (between [run] and the flags).
RUN_ENV = {"backend": "NLLB_PIPELINE_BACKEND", "tokenizer": "NLLB_PIPELINE_TOKENIZER",
           "fallback_device": "NLLB_PIPELINE_FALLBACK_DEVICE",
           "eta_drift": "NLLB_PIPELINE_ETA_DRIFT"}


def run_section(data: dict, path: Path) -> dict:
    """The ``[run]`` section's settings, each checked, as RunSettings keyword
    arguments. Errors name the file, the section and the key."""
    section = data.get("run") or {}
    where = f"config file {path}: [run]"
    if not isinstance(section, dict):
        raise InvalidInput(f"{where} must be a table of settings")
    unknown = set(section) - set(RUN_KEYS)
    if unknown:
        raise InvalidInput(f"{where} has unknown key(s) {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(RUN_KEYS)})")
    settings = {}
    for key, value in section.items():
        if key in ("device", "dtype", "backend", "tokenizer", "fallback_device", "eta_drift"):
            if not isinstance(value, str):
                raise InvalidInput(f"{where} {key} must be a string, not {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"{where} {key} must be an integer, not {value!r}")
            minimum = 1 if key == "batch_tokens" else 0
            if value < minimum:
                hint = " (leave it out for the device's default)" if key == "batch_tokens" else ""
                raise InvalidInput(f"{where} {key} must be >= {minimum}, not {value}{hint}")
        try:
            RunSettings(**{key: value})
        except InvalidInput as exc:
            raise InvalidInput(f"{where} {key}: {exc}") from None
        settings[key] = value
    return settings

