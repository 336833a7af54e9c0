"""The CTranslate2 backend: NLLB run by ``ctranslate2.Translator``.

CTranslate2 runs the same weights 2-5x faster than transformers on a CPU
(int8) and keeps GPU memory low (int8 weights, float16 activations). The
checkpoint is converted once into the cache (``models.conversion``), or
used as is when ``--model`` already names a converted directory.

The contract with the pipeline is the transformers backend's, exactly:

- one ``translate_batch`` call of the pipeline is one call of
  CTranslate2's (``max_batch_size=0``: it never re-batches);
- the source is the tokenizer's ids as tokens (language code first, EOS
  last) and the target language is ``target_prefix``, as transformers'
  forced BOS;
- ``max_decoding_length`` counts the target prefix (CTranslate2 returns the
  prefix, ``return_prefix``, and then stops at ``step + 1 == max_length``),
  as ``max_new_tokens`` counts the forced language code: the budget passes
  through unchanged, and a translation that runs into it has
  ``max_new_tokens - 1`` tokens on both backends;
- ``max_input_length=0``: CTranslate2 would silently cut inputs at 1,024
  tokens by default; the pipeline never sends an input over the limit.

What differs: the arithmetic (the same text for 299 of 300 test sentences
in float32, tests/test_ct2.py); the padding (CTranslate2 pads a batch to
its longest member, its API takes no padding, where transformers pads to
the length bucket's edge: ``benchmarks/determinism.py --backend
ctranslate2`` measures what that leaves); and, in beam search only,
``no_repeat_ngram_size`` and ``repetition_penalty``, which CTranslate2
applies to logits before normalising and transformers to log-probabilities
(greedy, they agree).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from models.backends import check_compute_type
from models.checkpoint import Checkpoint, CheckpointBacked
from models.device import device_name, parse_device
from pipeline.config import RunSettings
from pipeline.errors import ErrorClass, InvalidInput, Unsupported
from pipeline.translator import Decoding, Translation, TranslatorInfo

log = logging.getLogger("nllb_pipeline.models")

# --dtype auto: int8 weights everywhere, float16 activations on a GPU.
AUTO_COMPUTE_TYPES = {"cuda": ("int8_float16", "float16", "float32"), "cpu": ("int8", "float32")}
# Padded source tokens per batch when the run sets none: the transformers
# backend's figures (benchmarks/throughput.py), not yet tuned for CTranslate2.
DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 8192}
CONVERTIBLE_MODEL_TYPES = ("m2m_100",)  # NLLB-MoE has no CTranslate2 converter


def available() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_compute_type(spec: str, kind: str, supported: set[str]) -> str:
    """``auto``: the first of ``AUTO_COMPUTE_TYPES[kind]`` the device runs;
    anything else must be a compute type the device runs."""
    if spec == "auto":
        return next(t for t in AUTO_COMPUTE_TYPES[kind] if t in supported)
    check_compute_type("ctranslate2", spec)  # one it knows (models.backends.COMPUTE_TYPES)
    if spec not in supported:
        raise InvalidInput(f"--dtype {spec} does not run on {kind} with CTranslate2 (this "
                           f"{kind} runs {', '.join(sorted(supported))})")
    return spec


def translate_options(decoding: Decoding, *, fixed_length: bool = False) -> dict:
    """The keywords of one ``ctranslate2.Translator.translate_batch`` call
    for ``decoding`` (the contract above), besides the source and the
    target prefix. One definition, so that a hand-written loop that
    compares itself with the pipeline (``benchmarks/``) decodes alike."""
    budget = decoding.max_new_tokens
    return {
        "max_batch_size": 0,
        "beam_size": decoding.beams,
        "max_decoding_length": budget,
        "min_decoding_length": budget if fixed_length else 1,
        "max_input_length": 0,
        "no_repeat_ngram_size": decoding.no_repeat_ngram_size,
        "repetition_penalty": decoding.repetition_penalty,
        "return_end_token": True,
    }


class Ct2Translator(CheckpointBacked):
    """Translates batches with an NLLB checkpoint through CTranslate2.

    The tokenizer loads at construction; the conversion (first time only)
    and the weights on the first ``translate_batch`` (or ``load``). Bound to
    a model, a device and a compute type, not to a job.
    """

    backend = "ctranslate2"

    def __init__(self, model: str, settings: RunSettings = RunSettings(), *,
                 tokenizer: str | None = None, fixed_length: bool = False,
                 checkpoint: Checkpoint | None = None):
        if not available():
            raise Unsupported("the ctranslate2 backend needs the ctranslate2 package "
                              "(pip install ctranslate2)")
        import ctranslate2

        self.checkpoint = checkpoint or Checkpoint(model, tokenizer)
        self.model_id = self.checkpoint.model_id
        config = self.checkpoint.config
        if config is not None and config.model_type not in CONVERTIBLE_MODEL_TYPES:
            raise Unsupported(f"CTranslate2 cannot convert a {config.model_type!r} model "
                              "(use --backend hf)")
        self.settings = settings
        # Benchmarks only: random weights never stop, so make every call run
        # exactly its budget (min_decoding_length = max_decoding_length).
        self.fixed_length = fixed_length
        self.kind, self.index = parse_device(settings.device, ctranslate2.get_cuda_device_count())
        self.compute_type = resolve_compute_type(
            settings.dtype, self.kind, ctranslate2.get_supported_compute_types(self.kind))
        self._translator = None
        self._path: str | None = None
        self._moved: dict[str, Ct2Translator] = {}

    # -- the Translator protocol ----------------------------------------------

    def describe(self) -> TranslatorInfo:
        return TranslatorInfo(
            backend=self.backend, model=self.model_id, device=device_name(self.kind, self.index),
            compute_type=self.compute_type,
            default_batch_tokens=DEFAULT_BATCH_TOKENS[self.kind],
            max_input_tokens=self.checkpoint.max_input_tokens,
            max_output_tokens=self.checkpoint.max_output_tokens,
            fingerprint=self.checkpoint.fingerprint,
        )

    def load(self) -> None:
        self._load()

    # ``pipeline.translator.Staged``: the local executor tokenizes on the
    # stage's thread and detokenizes on a thread of its own, so the engine's
    # thread runs CTranslate2 (which releases the GIL) and nothing else.

    def encode_batch(self, texts: list[str], src_lang: str) -> list[list[str]]:
        ids = self.checkpoint.encode(texts, src_lang)
        self.checkpoint.check_input_lengths(ids)
        with self.checkpoint.tokenizer_lock:
            return [self.checkpoint.tokenizer.convert_ids_to_tokens(x) for x in ids]

    def run_encoded(self, encoded: list[list[str]], tgt_lang: str, decoding: Decoding) -> list:
        return self._load().translate_batch(
            encoded, target_prefix=[[tgt_lang]] * len(encoded),
            **translate_options(decoding, fixed_length=self.fixed_length))

    def decode_batch(self, raw: list) -> list[Translation]:
        with self.checkpoint.tokenizer_lock:
            return [self._translation(r.hypotheses[0]) for r in raw]

    def classify(self, exc: BaseException) -> ErrorClass:
        from models.errors import classify_ct2

        return classify_ct2(exc)

    def recover(self, error_class: ErrorClass) -> None:
        """Nothing to free: CTranslate2's CUDA allocator gives its cached
        blocks back and tries again before it reports out of memory."""

    def on_device(self, device: str) -> Ct2Translator:
        """The same model on another device (the fallback after a fatal
        device error). The compute type is kept if that device runs it,
        else chosen again as for ``--dtype auto``."""
        import ctranslate2

        if device in self._moved:
            return self._moved[device]
        kind, _ = parse_device(device, ctranslate2.get_cuda_device_count())
        dtype = self.settings.dtype
        if dtype != "auto" and dtype not in ctranslate2.get_supported_compute_types(kind):
            log.warning("%s does not run %s with CTranslate2; using its default", device, dtype)
            dtype = "auto"
        moved = Ct2Translator(self.model_id, replace(self.settings, device=device, dtype=dtype),
                              fixed_length=self.fixed_length, checkpoint=self.checkpoint)
        self._moved[device] = moved
        return moved

    def close(self) -> None:
        """Drop the engine (CTranslate2 frees its memory with it), and those
        ``on_device`` made."""
        self._translator = None
        for moved in self._moved.values():
            moved.close()
        self._moved.clear()

    # -- internals --------------------------------------------------------------

    def _translation(self, hypothesis: list[str]) -> Translation:
        """A hypothesis: the target language code, the tokens, then EOS if
        the model stopped before its budget."""
        tok = self.checkpoint.tokenizer
        body = hypothesis[1:]
        stopped = bool(body) and body[-1] == tok.eos_token
        if stopped:
            body = body[:-1]
        return Translation(tok.decode(tok.convert_tokens_to_ids(body), skip_special_tokens=True),
                           len(body), stopped)

    def prepare(self) -> str:
        """The converted directory this translator loads: the model itself,
        or its conversion in the cache (converted now if there is none)."""
        if self._path is None:
            if self.checkpoint.converted:
                self._path = self.model_id
            else:
                from models.conversion import converted_model, quantization_for
                from pipeline.config import cache_dir

                self._path = str(converted_model(
                    self.model_id, self.checkpoint.fingerprint,
                    quantization_for(self.compute_type), cache_dir()))
        return self._path

    def _load(self):
        if self._translator is not None:
            return self._translator
        import ctranslate2

        path = self.prepare()
        log.info("loading %s on %s (%s) with CTranslate2", path,
                 device_name(self.kind, self.index), self.compute_type)
        try:
            self._translator = ctranslate2.Translator(
                path, device=self.kind, device_index=self.index,
                compute_type=self.compute_type, inter_threads=1,
                intra_threads=self.settings.threads)
        except (RuntimeError, ValueError) as exc:
            if self.classify(exc) is not ErrorClass.INTERNAL:
                raise  # out of memory, a device error: the retry policy decides
            raise InvalidInput(f"cannot load the CTranslate2 model {path}: "
                               f"{str(exc).strip().splitlines()[0]}") from exc
        return self._translator
