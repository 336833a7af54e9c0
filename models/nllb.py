"""NLLB (M2M100) checkpoints behind the pipeline's Translator protocol."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.config import JobParams, RunSettings
from pipeline.errors import ErrorClass, InvalidInput, Unsupported

log = logging.getLogger("nllb_pipeline.models")

SUPPORTED_MODEL_TYPES = ("m2m_100", "nllb-moe")


def looks_like_path(model: str) -> bool:
    """A hub id is NAME or ORG/NAME; anything else is meant as a directory."""
    return (
        model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model
        or os.path.isabs(model)
    )


def resolve_model(model: str) -> str:
    """A local checkpoint directory as an absolute path, or a hub id as given.

    Raises InvalidInput for a missing directory or one that is not a model.
    """
    path = Path(model).expanduser()
    if path.exists() or looks_like_path(model):
        if not path.is_dir():
            raise InvalidInput(f"model directory not found: {model}")
        if not (path / "config.json").is_file():
            raise InvalidInput(f"{model} is not a model directory (it has no config.json)")
        return str(path.resolve())
    return model


class NllbTranslator:
    """Translates batches with an NLLB checkpoint.

    The tokenizer and config load at construction (fast, and enough to count
    tokens and to check language codes); the weights load on the first
    ``translate_batch``, so a resumed job whose inference is done never loads
    them.
    """

    def __init__(self, model: str, params: JobParams, settings: RunSettings = RunSettings(),
                 *, fixed_length: bool = False):
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model_id = resolve_model(model)
        self.params = params
        self.settings = settings
        # Benchmarks only: random weights never stop, so make every method run
        # exactly its length budget.
        self.fixed_length = fixed_length
        try:
            self.config = AutoConfig.from_pretrained(self.model_id)
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_id)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInput(f"cannot load model {model!r}: {first}") from exc
        if self.config.model_type not in SUPPORTED_MODEL_TYPES:
            raise Unsupported(
                f"model {model!r} is a {self.config.model_type!r} model, not NLLB/M2M100"
            )
        limits = [self.config.max_position_embeddings]
        if 0 < getattr(self.tokenizer, "model_max_length", 0) < 100_000:
            limits.append(self.tokenizer.model_max_length)
        self.max_input_tokens = min(limits)
        self._model = None
        self._device = None
        self._dtype = None

    # -- the Translator protocol ----------------------------------------------

    def check_language(self, code: str) -> None:
        if self.tokenizer.convert_tokens_to_ids(code) == self.tokenizer.unk_token_id:
            raise Unsupported(f"model {self.model_id!r} does not know language {code}")

    def count_tokens(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return [len(x) for x in ids]

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str) -> list[str]:
        import torch

        model = self.load()
        self.tokenizer.src_lang = src_lang
        encoded = self.tokenizer(
            list(texts), return_tensors="pt", padding=True, truncation=False
        ).to(self._device)
        longest = encoded["input_ids"].shape[1]
        if longest > self.max_input_tokens:
            # Preprocess splits chunks to fit; this is a bug, never truncate.
            raise InvalidInput(f"an input of {longest} tokens exceeds the model's limit")
        # Each sequence gets the budget of its own input length; the batch runs
        # as long as its longest member and each output is cut to its own
        # budget, so a translation does not depend on what it was batched with.
        cap = self.max_input_tokens - 2
        budgets = [self.params.max_new_tokens(int(n), cap)
                   for n in encoded["attention_mask"].sum(dim=1).tolist()]
        budget = max(budgets)
        with torch.inference_mode():
            out = model.generate(
                **encoded,
                forced_bos_token_id=self.tokenizer.convert_tokens_to_ids(tgt_lang),
                max_new_tokens=budget,
                min_new_tokens=budget if self.fixed_length else None,
                num_beams=self.params.beams,
                do_sample=False,
            )
        # Row i: decoder start token, then up to budgets[i] new tokens.
        rows = [row[: 1 + b] for row, b in zip(out.tolist(), budgets)]
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)

    def classify(self, exc: BaseException) -> ErrorClass:
        from models.errors import classify

        return classify(exc)

    def recover(self, error_class: ErrorClass) -> None:
        """Free what an OOM left behind before the batch is retried in halves."""
        if error_class is ErrorClass.OOM and self._device is not None:
            from models.device import free_memory

            free_memory(self._device)

    # -- loading --------------------------------------------------------------

    @property
    def device_name(self) -> str:
        from models.device import resolve_device

        return str(self._device or resolve_device(self.settings.device))

    @property
    def dtype_name(self) -> str:
        from models.device import dtype_name, resolve_device, resolve_dtype

        device = self._device or resolve_device(self.settings.device)
        return dtype_name(self._dtype or resolve_dtype(self.settings.dtype, device))

    def default_batch_tokens(self) -> int:
        """Padded source tokens per batch when the user sets no budget."""
        # On CPU a batch runs as long as its longest member allows, so big
        # batches pay for padding: 1024-2048 was fastest in benchmarks/throughput.py.
        return 8192 if self.device_name.startswith("cuda") else 2048

    def load(self):
        if self._model is not None:
            return self._model
        from transformers import AutoModelForSeq2SeqLM

        from models.device import resolve_device, resolve_dtype

        device = resolve_device(self.settings.device)
        dtype = resolve_dtype(self.settings.dtype, device)
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)
        log.info("loading %s on %s (%s)", self.model_id, device, dtype)
        try:
            try:
                model = AutoModelForSeq2SeqLM.from_pretrained(
                    self.model_id, dtype=dtype, use_safetensors=True
                )
            except OSError as exc:
                if "safetensors" not in str(exc).lower():
                    raise
                # Some hub checkpoints only ship pytorch_model.bin; transformers
                # reads those with torch.load(weights_only=True): no code runs.
                log.warning("%s has no safetensors weights; loading the .bin file", self.model_id)
                model = AutoModelForSeq2SeqLM.from_pretrained(self.model_id, dtype=dtype)
        except OSError as exc:
            raise InvalidInput(f"cannot load model weights from {self.model_id!r}: {exc}") from exc
        self._model = model.to(device).eval()
        self._device, self._dtype = device, dtype
        return self._model

