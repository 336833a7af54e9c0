"""A model named by a hub id, and the Hugging Face cache.

A hub id whose files are in the local cache is loaded from its cached
snapshot directory, so no request is made: on a machine without network
the hub client would otherwise retry every lookup (about 23 s of warnings
for a model it does not have, minutes for one it has) before it uses or
refuses the cache. A hub id that is not cached is said at once when it
cannot be downloaded: the hub client's offline mode is on
(``HF_HUB_OFFLINE=1``), or one request to the hub, without retries, finds
no answer. Only then does the hub client download it.

The cache is the hub client's own (``HF_HOME``, ``HF_HUB_CACHE``): what
``huggingface-cli download MODEL`` fills.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.errors import InvalidInput

# What a snapshot needs before it is loaded from the cache alone.
CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
PROBE_TIMEOUT_S = 10.0  # the one request that tells whether the hub answers


def route_library_logs() -> None:
    """Let the hub client's and transformers' log records reach the
    process's handlers only (the CLI's one format): each library adds a
    stderr handler of its own, and a record went out twice, in two formats."""
    import logging

    from huggingface_hub.utils import logging as hub_logging

    hub = hub_logging.get_logger()  # the library's root logger: its handler is there
    for handler in [h for h in hub.handlers if type(h) is logging.StreamHandler]:
        hub.removeHandler(handler)
    hub.propagate = True
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()


def cached_snapshot(model_id: str, *, weights: bool = True,
                    cache_dir: str | Path | None = None) -> Path | None:
    """The cached snapshot directory of ``model_id`` (its ``main``), if it
    holds a config (when ``weights``: and weights) and a tokenizer; else None."""
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> Path | None:
        found = try_to_load_from_cache(model_id, name, cache_dir=cache_dir)
        return Path(found) if isinstance(found, str) else None

    tokenizer = next((p for p in map(cached, TOKENIZER_FILES) if p), None)
    if tokenizer is None:
        return None
    snapshot = tokenizer.parent
    if weights and (cached(CONFIG_FILE) is None
                    or not any(cached(name) for name in WEIGHT_FILES)):
        return None
    return snapshot


def offline_mode() -> bool:
    """The hub client's offline mode (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


def cache_location() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def probe_hub(model_id: str) -> None:
    """One request for the model's config, without the client's retries;
    raises what the hub client raises."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    get_hf_file_metadata(hf_hub_url(model_id, CONFIG_FILE), timeout=PROBE_TIMEOUT_S,
                         retry_on_errors=False)


def _answered(exc: BaseException) -> bool:
    """The hub answered (the model is gated, missing...): the loader says
    what is wrong, once, without retries."""
    from huggingface_hub.errors import HfHubHTTPError

    return isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None


def files_of(model_id: str, *, weights: bool = True, offline: bool | None = None,
             probe: Callable[[str], None] = probe_hub,
             cache_dir: str | Path | None = None) -> str:
    """Where to load hub id ``model_id`` from: its cached snapshot
    directory, or the hub id itself when the hub client must download it
    and the hub answers. InvalidInput, at once, when it is not cached and
    cannot be downloaded. ``weights``: the weights are needed too (a
    tokenizer given on its own needs only its files)."""
    snapshot = cached_snapshot(model_id, weights=weights, cache_dir=cache_dir)
    if snapshot is not None:
        return str(snapshot)
    where = str(cache_dir) if cache_dir is not None else cache_location()
    get_it = (f"download it where there is internet (huggingface-cli download {model_id}) "
              f"into that cache and run with HF_HUB_OFFLINE=1, or copy the model's directory "
              f"here and pass --model DIR")
    if offline_mode() if offline is None else offline:
        raise InvalidInput(f"model {model_id!r} is not in the Hugging Face cache ({where}) and "
                           f"the hub's offline mode is on (HF_HUB_OFFLINE): {get_it}")
    try:
        probe(model_id)
    except Exception as exc:  # noqa: BLE001 - whatever stopped the one request
        if not _answered(exc):
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidInput(f"model {model_id!r} is not in the Hugging Face cache ({where}) "
                               f"and the hub cannot be reached ({reason}): {get_it}") from None
    return model_id
