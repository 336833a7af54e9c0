"""Fault injection: the exceptions a failing device really raises, at a seeded rate.

``--inject-faults "oom=0.2,transient=0.05,device_fatal=0.01,seed=7"`` (or
the environment variable NLLB_PIPELINE_INJECT_FAULTS) wraps the real
translator so anyone can watch the retry machinery work on their own
machine, on CPU too. The exceptions are the ones the wrapped backend's
library raises (``torch.OutOfMemoryError`` and torch's CUDA messages for
transformers, CTranslate2's ``CUDA failed with error ...`` messages for
CTranslate2), so they go through the same classification as real ones.

- ``oom``: probability that a call with more than one sentence runs out of
  memory (memory pressure grows with the batch; one sentence always fits).
- ``transient``: probability, per sentence in a call, of a transient device
  error that fails the whole call.
- ``device_fatal``: probability, per call, that the device breaks (an
  illegal memory access): that call and every later one on it fail, as a
  poisoned CUDA context does. The fallback device (``on_device``) does not
  break: a simulated broken GPU, a working CPU.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import replace

from pipeline.faults import ENV_VAR, KINDS, FaultSpec  # noqa: F401 - the spec lives without torch

log = logging.getLogger("nllb_pipeline")
_TAG = " (injected by --inject-faults)"


def simulated(backend: str, kind: str) -> BaseException:
    """The exception ``backend``'s library raises for a fault of ``kind``."""
    if backend == "ctranslate2":  # src/cuda/utils.h: CUDA_CHECK
        text = {"oom": "out of memory",
                "transient": "the launch timed out and was terminated",
                "device_fatal": "an illegal memory access was encountered"}[kind]
        return RuntimeError(f"CUDA failed with error {text}{_TAG}")
    if kind == "oom":
        import torch

        return torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB{_TAG}")
    text = {"transient": "the launch timed out and was terminated",
            "device_fatal": "an illegal memory access was encountered"}[kind]
    return RuntimeError(f"CUDA error: {text}{_TAG}")


class _Draws:
    """The random draws of one call: seeded by the spec's seed, the call's
    texts and how many calls with those texts came before. A call's faults
    so depend on what it translates and on its own retries, never on which
    other calls ran before it: the inference window's calls and a failed
    batch's retries on the stage's thread may interleave in any order, and
    Ray's actors take batches in any order, yet a seed repeats the same
    faults on the same batches (one stream shared by all calls did not)."""

    def __init__(self, seed: int):
        self.seed = seed
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}

    def of(self, texts: list[str]) -> random.Random:
        key = hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).hexdigest()
        with self._lock:
            n = self._calls[key] = self._calls.get(key, -1) + 1
        return random.Random(f"{self.seed}:{key}:{n}")


class FaultInjectingTranslator:
    """Wraps a translator; raises its library's real exceptions at the spec's rates."""

    def __init__(self, inner, spec: FaultSpec, *, draws: _Draws | None = None,
                 injected: dict[str, int] | None = None):
        self.inner, self.spec = inner, spec
        self.draws = draws or _Draws(spec.seed)
        self.injected = injected if injected is not None else dict.fromkeys(KINDS, 0)
        self.broken = False
        self._moved: dict[str, FaultInjectingTranslator] = {}
        if draws is None:
            # Announced once by whoever turns it on (the CLI: "fault injection is ON").
            log.debug("fault injection wraps %s (%s)", type(inner).__name__, spec)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str, decoding):
        if self.spec.slow:
            time.sleep(self.spec.slow)
        rng = self.draws.of(texts)
        # No draw for a kind that is off: the other kinds' draws stay as they were.
        if self.broken or (self.spec.device_fatal and rng.random() < self.spec.device_fatal):
            self.broken = True
            raise self._fault("device_fatal")
        if len(texts) > 1 and rng.random() < self.spec.oom:
            raise self._fault("oom")
        if any(rng.random() < self.spec.transient for _ in texts):
            raise self._fault("transient")
        return self.inner.translate_batch(texts, src_lang, tgt_lang, decoding)

    def on_device(self, device: str) -> FaultInjectingTranslator:
        """The inner translator on ``device``, with the same OOM and transient
        faults (same draws and counts) but a device that does not break."""
        if device not in self._moved:
            self._moved[device] = FaultInjectingTranslator(
                self.inner.on_device(device), replace(self.spec, device_fatal=0.0),
                draws=self.draws, injected=self.injected)
        return self._moved[device]

    def _fault(self, kind: str) -> BaseException:
        self.injected[kind] += 1
        return simulated(self.inner.describe().backend, kind)
