"""Fault injection: real OOM and transient CUDA exceptions at a seeded rate.

``--inject-faults "oom=0.2,transient=0.05,seed=7"`` (or the environment
variable NLLB_PIPELINE_INJECT_FAULTS) wraps the real translator so anyone can
watch the retry machinery work on their own machine, on CPU too. The
exceptions are the ones torch raises (``torch.OutOfMemoryError``, a
``RuntimeError`` with CUDA's launch-timeout message), so they go through the
same classification as real ones.

- ``oom``: probability that a call with more than one sentence runs out of
  memory (memory pressure grows with the batch; one sentence always fits).
- ``transient``: probability, per sentence in a call, of a transient device
  error that fails the whole call.
"""

from __future__ import annotations

import logging
import random

import torch

from pipeline.faults import ENV_VAR, FaultSpec  # noqa: F401 - the spec lives without torch

log = logging.getLogger("nllb_pipeline")


class FaultInjectingTranslator:
    """Wraps a translator; raises real torch exceptions at the spec's rates."""

    def __init__(self, inner, spec: FaultSpec):
        self.inner, self.spec = inner, spec
        self.rng = random.Random(spec.seed)
        self.injected = {"oom": 0, "transient": 0}
        # Announced once by whoever turns it on (the CLI: "fault injection is ON").
        log.debug("fault injection wraps %s (%s)", type(inner).__name__, spec)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str, decoding):
        if len(texts) > 1 and self.rng.random() < self.spec.oom:
            self.injected["oom"] += 1
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (injected by --inject-faults)"
            )
        if any(self.rng.random() < self.spec.transient for _ in texts):
            self.injected["transient"] += 1
            raise RuntimeError(
                "CUDA error: the launch timed out and was terminated (injected by --inject-faults)"
            )
        return self.inner.translate_batch(texts, src_lang, tgt_lang, decoding)
