"""A translator that answers every batch at once, for benchmarks of what
is left: the pipeline's own work per batch (``durability.py``, the driver's
ceiling in ``ray_executor.py``)."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

from pipeline.config import JobParams
from pipeline.documents.inputs import read_input
from pipeline.errors import ErrorClass
from pipeline.jobs import submit
from pipeline.runner import run_job
from pipeline.translator import BatchResult, Translation, TranslatorInfo

SHIFT = str.maketrans("abcdefghijklmnopqrstuvwxyz", "bcdefghijklmnopqrstuvwxyza")


class InstantTranslator:
    """Each letter shifted by one: not a copy, the same length and script,
    so the output checks pass and each batch is judged and committed once.
    ``concurrency`` above 1 makes it a ``Submitting`` translator, as a pool
    of Ray actors is."""

    def __init__(self, concurrency: int = 1):
        self.concurrency = concurrency

    def describe(self) -> TranslatorInfo:
        return TranslatorInfo("instant", "instant", "cpu", "float32", default_batch_tokens=2048,
                              max_input_tokens=1024, max_output_tokens=1024,
                              concurrency=self.concurrency)

    def load(self) -> None:
        pass

    def check_language(self, code: str) -> None:
        pass

    def count_tokens(self, texts):
        return [len(t.split()) + 2 for t in texts]

    def unknown_characters(self, texts):
        return set()

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        return [Translation(t.translate(SHIFT), len(t.split()), True) for t in texts]

    def submit(self, texts, src_lang, tgt_lang, decoding) -> Future:
        future: Future = Future()
        future.set_result(BatchResult(self.translate_batch(texts, src_lang, tgt_lang, decoding)))
        return future

    def classify(self, exc):
        return ErrorClass.INTERNAL

    def recover(self, error_class) -> None:
        pass

    def on_device(self, device: str):
        return self

    def close(self) -> None:
        pass


def run_lines_job(store, src: Path, output: Path) -> tuple[str, int]:
    """Translate ``src`` (``--format lines``, the job's defaults otherwise)
    into ``store`` with an :class:`InstantTranslator`: the job's id and how
    many batches it committed."""
    params = JobParams(model="instant", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="lines",
                       output=str(output))
    job, _ = submit(store, params, read_input(src))
    final = run_job(store, job.id, InstantTranslator())
    if final.state != "SUCCEEDED":
        raise SystemExit(f"the instant job on {src.name} ended {final.state}: "
                         f"{final.error_message}")
    return job.id, sum(b.state == "committed" for b in store.batches(job.id))
