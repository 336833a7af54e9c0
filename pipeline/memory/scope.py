"""What a translation memory's key is made of.

A memory may only reuse what its key determines (DESIGN.md, "Determinism"):
a sentence's translation depends on the model, the languages, the decoding
settings and the sentence, never on its batch. So a key is a *scope* (every
part except the text) plus the exact text the model was given:

- the model's identity: its content fingerprint where the backend reports
  one (``TranslatorInfo.fingerprint``), else its id (hub id or absolute
  directory). ``model_identity`` is the one place that decides;
- the backend, the device kind (``cpu``, ``cuda``; not the index) and the
  compute type. They are how a job runs, not what it is, and a job may
  resume on another device; but transformers float32 and CTranslate2 int8,
  or CPU float32 and CUDA bfloat16, give different words for the same
  sentence, and a memory that mixed them would hand a job output that its
  own inference would not have produced. Same kind on different hardware
  (two GPU models) is one scope: their kernels can differ in the last bit,
  which the job itself already accepts when it resumes elsewhere;
- the source and target languages;
- the output settings (``output_settings``): beam width and the output
  length rule (which, with the model's own cap, sets every sentence's
  budget), and the repair ladder's settings;
- the version of the rules in this code that turn a sentence into a
  translation (``OUTPUT_RULES``): the length buckets of the budget, the
  padding, what a backend is asked to decode; a change to them makes every
  earlier translation one this code would not produce;
- the source text exactly as the model sees it: a chunk's ``source``, which
  is what inference sends (``pipeline.stages.inference``).

What is not in the key does not change a chunk's translation: chunking
(``--max-chunk-tokens``, the format) decides which texts there are, not what
one becomes; ``--missing``, the sink and the run settings act after or
around the model.
"""

from __future__ import annotations

import json

from pipeline.config import JobParams
# MODES and MemoryScope live beside the store's records (the store keeps
# scopes and modes, and imports nothing from this package); named here too.
from pipeline.store.records import MODES, MemoryScope
from pipeline.translator import TranslatorInfo

# Bump when code changes what a sentence becomes for the same model and
# settings: pipeline.budget (buckets, the budget rule), the padding and the
# decoding call of a backend in models/. Old units then stay in the memory
# under the old rules (``tm prune`` drops them once unused) and are not reused.
OUTPUT_RULES = 1


def output_settings(params: JobParams) -> dict:
    """The job settings that change a chunk's translation, and only those:
    the beam width, the length rule, and the repair ladder (its mode, the
    repetition guard of a decode again, the checks' thresholds: with
    ``--quality repair`` a sentence's translation may be its guarded decode).

    The one place to extend when a setting that changes output is added."""
    from pipeline.quality import ladder

    return {"beams": params.beams, "length_ratio": params.length_ratio,
            "length_offset": params.length_offset, **ladder.settings(params.quality)}


def model_identity(info: TranslatorInfo) -> str:
    """``fingerprint:HEX`` when the backend knows the model's content
    fingerprint, else ``model:ID`` (a renamed copy of a directory is then a
    different model, and an edited one in place is not: the fingerprint
    fixes both). Both backends report one (``models.fingerprint``); a
    stand-in translator without a model does not."""
    return f"fingerprint:{info.fingerprint}" if info.fingerprint else f"model:{info.model}"


def scope_for(params: JobParams, info: TranslatorInfo) -> MemoryScope:
    """The scope of the translations this translator makes for this job."""
    return MemoryScope(
        identity=model_identity(info), backend=info.backend,
        device=info.device.split(":")[0], compute_type=info.compute_type,
        src_lang=params.src_lang, tgt_lang=params.tgt_lang,
        settings=canonical_settings({**output_settings(params), "rules": OUTPUT_RULES}),
        model=params.model,
    )


def canonical_settings(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


__all__ = ["MODES", "OUTPUT_RULES", "MemoryScope", "canonical_settings", "model_identity",
           "output_settings", "scope_for"]
