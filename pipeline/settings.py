"""How this process runs jobs, layered once: defaults, then the config file,
then the environment, then flags.

``load(Flags(...))`` is the one way to get them. The command line builds
its ``Flags`` from its options (``Flags.from_args``), ``serve`` gives its
worker children the same flags (``Flags.argv``: the child layers the same
file and environment under them), and a library caller passes the ones it
wants (``load(Flags(device="cpu", threads=2))``).

Every value is checked where it enters, and its error names where it came
from: the config file's path, section and key, the environment variable,
or the flag. What a job *is* (languages, model, decoding) is not here: that
is ``config.JobParams``, part of the job's idempotency key; nothing here
changes which job a command means.

The config file (TOML, ``--config``, ``$NLLB_PIPELINE_CONFIG`` or
``~/.config/nllb-pipeline/config.toml``) has two sections: ``[run]`` with
device, dtype, backend, tokenizer, fallback_device, batch_tokens and
threads, ``[retry]`` with the keys of ``--retry``, and ``[storage.PROTOCOL]``
tables of fsspec storage options for storage URLs (``pipeline.objects``:
e.g. ``[storage.s3] endpoint_url = "http://127.0.0.1:9000"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from pipeline.config import RunSettings, default_db_path
from pipeline.errors import InvalidInput
from pipeline.faults import FaultSpec
from pipeline.retry import RetryPolicy, parse_policy, policy_from_items
from pipeline.sinks.delivery import DeliveryOptions, parse_headers

CONFIG_ENV = "NLLB_PIPELINE_CONFIG"
DB_ENV = "NLLB_PIPELINE_DB"
RETRY_ENV = "NLLB_PIPELINE_RETRY"
FAULTS_ENV = "NLLB_PIPELINE_INJECT_FAULTS"

# The run settings the config file's [run] may set, and those an environment
# variable can set too (between [run] and the flags).
RUN_KEYS = ("device", "dtype", "backend", "tokenizer", "fallback_device", "batch_tokens",
            "threads", "eta_drift")
RUN_ENV = {"backend": "NLLB_PIPELINE_BACKEND", "tokenizer": "NLLB_PIPELINE_TOKENIZER",
           "fallback_device": "NLLB_PIPELINE_FALLBACK_DEVICE",
           "eta_drift": "NLLB_PIPELINE_ETA_DRIFT"}
DEFAULT_HTTP_TIMEOUT_S = DeliveryOptions().timeout_s

# The command line's option for each flag (``Flags.argv``), and the argparse
# dest where it differs from the flag's name (``Flags.from_args``).
FLAG_OPTIONS = {"device": "--device", "dtype": "--dtype", "backend": "--backend",
                "tokenizer": "--tokenizer", "fallback_device": "--fallback-device",
                "batch_tokens": "--batch-tokens", "threads": "--threads", "retry": "--retry",
                "eta_drift": "--eta-drift",
                "inject_faults": "--inject-faults", "headers": "--header",
                "signed_urls": "--signed-url",
                "http_timeout": "--http-timeout", "overwrite": "--overwrite"}
FLAG_DESTS = {"retry": "retry_policy"}


@dataclass(frozen=True)
class Flags:
    """The top layer: what a command line or a library caller sets. None
    (or empty) is "not set": the layers under it decide."""

    config: Path | None = None  # the config file; None: $NLLB_PIPELINE_CONFIG or the default
    device: str | None = None
    dtype: str | None = None
    backend: str | None = None
    tokenizer: str | None = None
    fallback_device: str | None = None
    batch_tokens: int | None = None
    threads: int | None = None
    eta_drift: str | None = None  # an --eta-drift spec (pipeline.monitoring.drift)
    retry: str | None = None  # a --retry spec
    inject_faults: str | None = None  # an --inject-faults spec
    headers: tuple[str, ...] = ()  # 'Name: value' specs, $VAR not yet expanded
    signed_urls: tuple[str, ...] = ()  # presigned http(s) --to URLs, whole (never stored)
    http_timeout: float | None = None  # seconds
    overwrite: bool = False

    @classmethod
    def from_args(cls, args) -> Flags:
        """The flags in an argparse namespace (options a command lacks are unset)."""
        given = {f.name: getattr(args, FLAG_DESTS.get(f.name, f.name), None) for f in fields(cls)}
        given["headers"] = tuple(given["headers"] or ())
        given["signed_urls"] = tuple(given["signed_urls"] or ())
        given["overwrite"] = bool(given["overwrite"])
        return cls(**given)

    def argv(self) -> list[str]:
        """The run options that give a child process these flags (``--config``
        is a global option: the caller puts it before the subcommand)."""
        argv = []
        for name, option in FLAG_OPTIONS.items():
            value = getattr(self, name)
            if name in ("headers", "signed_urls"):
                for spec in value:
                    argv += [option, spec]
            elif name == "overwrite":
                argv += [option] if value else []
            elif value is not None:
                argv += [option, str(value)]
        return argv


@dataclass(frozen=True)
class Settings:
    """Everything about how this process runs jobs, every part checked."""

    run: RunSettings
    retry: RetryPolicy
    delivery: DeliveryOptions
    faults: FaultSpec | None = None  # simulated failures; None: off
    config: Path | None = None  # the config file that was read, if there was one


def load(flags: Flags = Flags(), environ: Mapping[str, str] = os.environ) -> Settings:
    """Defaults, then the config file, then the environment, then ``flags``.

    The fault spec is checked first, so that a bad one is refused even for a
    job that turns out to be done."""
    faults_spec, source = _spec(flags.inject_faults, "--inject-faults", FAULTS_ENV, environ)
    faults = FaultSpec.parse(faults_spec, source=source) if faults_spec else None
    path = Path(flags.config).expanduser() if flags.config else config_file_path(environ)
    data = load_config_file(path, required=flags.config is not None)
    run = _run_settings(flags, data, path, environ)
    retry = _retry_policy(flags, data, path, environ)
    delivery = DeliveryOptions(
        headers=parse_headers(flags.headers, environ),
        timeout_s=DEFAULT_HTTP_TIMEOUT_S if flags.http_timeout is None else flags.http_timeout,
        overwrite=flags.overwrite, signed_urls=tuple(flags.signed_urls),
        storage=storage_section(data, path))
    return Settings(run, retry, delivery, faults, path if data else None)


def db_path(flag: str | os.PathLike | None,
            environ: Mapping[str, str] = os.environ) -> tuple[Path, str | None]:
    """The job database and who named it: "--db", "$NLLB_PIPELINE_DB", or
    None for the default path."""
    if flag:
        return Path(flag).expanduser(), "--db"
    if environ.get(DB_ENV):
        return Path(environ[DB_ENV]).expanduser(), f"${DB_ENV}"
    return default_db_path(), None


def config_file_path(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nllb-pipeline" / "config.toml"


def load_config_file(path: Path | None = None, *, required: bool = False) -> dict:
    """The TOML config file as a dict ({} if there is none)."""
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
    unknown = set(data) - {"retry", "run", "storage"}
    if unknown:
        raise InvalidInput(f"config file {path}: unknown section(s) {', '.join(sorted(unknown))}")
    return data


def storage_section(data: dict, path: Path) -> dict:
    """``[storage.PROTOCOL]`` tables: fsspec storage options per protocol."""
    section = data.get("storage") or {}
    for protocol, options in section.items():
        if not isinstance(options, dict):
            raise InvalidInput(f"config file {path}: [storage] holds one table per protocol, "
                               f"e.g. [storage.s3]; {protocol} = ... is not a table")
    return section


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
            if key == "dtype":
                check_compute_type("auto", value)
        except InvalidInput as exc:
            raise InvalidInput(f"{where} {key}: {exc}") from None
        settings[key] = value
    return settings


def check_compute_type(backend: str, dtype: str) -> None:
    """``dtype`` is ``auto`` or a compute type that ``backend`` accepts
    (``auto``: any backend's). Each backend declares its own
    (``models.backends.COMPUTE_TYPES``, which imports no model library)."""
    from models.backends import check_compute_type as check

    check(backend, dtype)


def _run_settings(flags: Flags, data: dict, path: Path, environ: Mapping[str, str]) -> RunSettings:
    settings = run_section(data, path)
    for key, var in RUN_ENV.items():
        if environ.get(var):
            try:
                RunSettings(**{key: environ[var]})
            except InvalidInput as exc:
                raise InvalidInput(f"${var}: {exc}") from None
            settings[key] = environ[var]
    for key in RUN_KEYS:
        if getattr(flags, key) is not None:
            settings[key] = getattr(flags, key)
    run = RunSettings(**settings)
    check_compute_type(run.backend, run.dtype)
    return run


def _retry_policy(flags: Flags, data: dict, path: Path,
                  environ: Mapping[str, str]) -> RetryPolicy:
    section = data.get("retry") or {}
    if not isinstance(section, dict):
        raise InvalidInput(f"config file {path}: [retry] must be a table of settings")
    base = policy_from_items(section.items(), RetryPolicy(),
                             source=f"config file {path}: [retry]")
    spec, source = _spec(flags.retry, "--retry", RETRY_ENV, environ)
    return parse_policy(spec, base, source=source)


def _spec(value: str | None, flag: str, env: str,
          environ: Mapping[str, str]) -> tuple[str | None, str]:
    """A spec from its flag, else from its environment variable, with its source."""
    if value:
        return value, flag
    return environ.get(env) or None, f"${env}"
