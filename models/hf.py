"""The transformers backend: NLLB (M2M100) checkpoints run by ``generate``."""

from __future__ import annotations

import logging
from dataclasses import replace

from models.checkpoint import Checkpoint, CheckpointBacked
from pipeline.budget import length_bucket
from pipeline.config import RunSettings
from pipeline.errors import ErrorClass, InvalidInput
from pipeline.translator import Decoding, Translation, TranslatorInfo

log = logging.getLogger("nllb_pipeline.models")

# Padded source tokens per batch when the run sets none. On CPU a batch runs
# as long as its longest member allows, so big batches pay for padding:
# 1024-2048 was fastest in benchmarks/throughput.py.
DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 8192}


class HfTranslator(CheckpointBacked):
    """Translates batches with an NLLB checkpoint through transformers.

    The tokenizer and config load at construction (fast, and enough to count
    tokens and to check language codes); the weights load on the first
    ``translate_batch`` (or ``load``), so a resumed job whose inference is
    done never loads them. Bound to a model and a device, not to a job:
    decoding settings come with each call.
    """

    backend = "hf"

    def __init__(self, model: str, settings: RunSettings = RunSettings(), *,
                 tokenizer: str | None = None, fixed_length: bool = False,
                 checkpoint: Checkpoint | None = None):
        self.checkpoint = checkpoint or Checkpoint(model, tokenizer)
        if self.checkpoint.converted:
            raise InvalidInput(f"{model} is a converted CTranslate2 model: it runs with "
                               "--backend ctranslate2 (or auto), not with transformers")
        from models.device import resolve_device

        resolve_device(settings.device)  # a device torch does not see: refused now, not at load
        self.model_id = self.checkpoint.model_id
        self.tokenizer = self.checkpoint.tokenizer
        self.settings = settings
        # Benchmarks only: random weights never stop, so make every call run
        # exactly its budget (min_new_tokens = max_new_tokens).
        self.fixed_length = fixed_length
        self._model = None
        self._device = None
        self._dtype = None
        self._lean = False  # models.hf_search.supports(model), set at load
        self._moved: dict[str, HfTranslator] = {}

    # -- the Translator protocol ----------------------------------------------

    def describe(self) -> TranslatorInfo:
        from models.device import dtype_name, resolve_device, resolve_dtype

        device = self._device or resolve_device(self.settings.device)
        dtype = self._dtype or resolve_dtype(self.settings.dtype, device)
        return TranslatorInfo(
            backend=self.backend, model=self.model_id, device=str(device),
            compute_type=dtype_name(dtype),
            default_batch_tokens=DEFAULT_BATCH_TOKENS[device.type],
            max_input_tokens=self.checkpoint.max_input_tokens,
            max_output_tokens=self.checkpoint.max_output_tokens,
            fingerprint=self.checkpoint.fingerprint,
        )

    def on_device(self, device: str) -> HfTranslator:
        """The same model on another device (the fallback after a fatal
        device error); ``--dtype auto`` is chosen again for that device."""
        if device not in self._moved:
            self._moved[device] = HfTranslator(
                self.model_id, replace(self.settings, device=device),
                fixed_length=self.fixed_length, checkpoint=self.checkpoint)
        return self._moved[device]

    # ``pipeline.translator.Staged``: tokenizing (to tensors on the device)
    # and detokenizing run beside the engine's thread, which runs ``generate``.

    def encode_batch(self, texts: list[str], src_lang: str):
        self._load()
        ids = self.checkpoint.encode(texts, src_lang)
        self.checkpoint.check_input_lengths(ids)
        longest = max(len(x) for x in ids)
        # Pad to the length bucket's edge, not to the longest member: a
        # sentence then meets the same padded shape alone, in a full batch
        # or in half of one after an OOM, which halves how often rounding
        # changes a translation (benchmarks/determinism.py).
        with self.checkpoint.tokenizer_lock:  # padding settings are the tokenizer's state
            return self.tokenizer(
                list(texts), return_tensors="pt", padding="max_length", truncation=False,
                max_length=min(length_bucket(longest), self.checkpoint.max_input_tokens),
            ).to(self._device)

    def run_encoded(self, encoded, tgt_lang: str, decoding: Decoding) -> list[list[int]]:
        import torch

        model = self._load()
        budget = decoding.max_new_tokens
        settings = dict(
            forced_bos_token_id=self.checkpoint.language_id(tgt_lang),
            max_new_tokens=budget,
            min_new_tokens=budget if self.fixed_length else None,
            num_beams=decoding.beams,
            no_repeat_ngram_size=decoding.no_repeat_ngram_size or None,
            repetition_penalty=(decoding.repetition_penalty
                                if decoding.repetition_penalty != 1.0 else None),
        )
        with torch.inference_mode():
            if self._lean:  # generate()'s ids without its per-step overhead
                from models.hf_search import search

                return search(model, encoded["input_ids"], encoded["attention_mask"], **settings)
            out = model.generate(**encoded, **settings, do_sample=False)
        return out.tolist()

    def decode_batch(self, raw: list[list[int]]) -> list[Translation]:
        with self.checkpoint.tokenizer_lock:
            return [self._translation(row) for row in raw]

    def classify(self, exc: BaseException) -> ErrorClass:
        from models.errors import classify_torch

        return classify_torch(exc)

    def recover(self, error_class: ErrorClass) -> None:
        """Free what an OOM left behind before the batch is retried in halves."""
        if error_class is ErrorClass.OOM and self._device is not None:
            from models.device import free_memory

            free_memory(self._device)

    def load(self) -> None:
        self._load()

    def close(self) -> None:
        """Drop the model and give its device memory back, and those
        ``on_device`` made."""
        if self._model is not None:
            self._model = None
            if self._device is not None:
                from models.device import free_memory

                free_memory(self._device)
        for moved in self._moved.values():
            moved.close()
        self._moved.clear()

    # -- internals --------------------------------------------------------------

    def _translation(self, row: list[int]) -> Translation:
        """A generated row: decoder start, language code, tokens, then EOS and
        padding if the model stopped before its budget."""
        tok = self.tokenizer
        body = row[2:]
        stopped = tok.eos_token_id in body
        if stopped:
            body = body[: body.index(tok.eos_token_id)]
        body = [t for t in body if t != tok.pad_token_id]
        return Translation(tok.decode(body, skip_special_tokens=True), len(body), stopped)

    def _load(self):
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
                    self.checkpoint.files, dtype=dtype, use_safetensors=True
                )
            except OSError as exc:
                if "safetensors" not in str(exc).lower():
                    raise
                # Some hub checkpoints only ship pytorch_model.bin; transformers
                # reads those with torch.load(weights_only=True): no code runs.
                log.warning("%s has no safetensors weights; loading the .bin file", self.model_id)
                model = AutoModelForSeq2SeqLM.from_pretrained(self.checkpoint.files, dtype=dtype)
        except OSError as exc:
            raise InvalidInput(f"cannot load model weights from {self.model_id!r}: {exc}") from exc
        self._model = model.to(device).eval()
        self._device, self._dtype = device, dtype
        from models.hf_search import supports

        self._lean = supports(self._model)
        return self._model
