"""The Ray executor: model actors on a Ray cluster, one driver that owns the store.

``nllb-pipeline worker --executor ray`` runs the queue as a local worker
does (``pipeline.worker``: leases, heartbeats, priorities, cancel, every
stage but inference in the driver's process), with one difference: the
translator it hands each job is a ``RemoteTranslator``, whose batches run
on a pool of ``TranslatorActor``s, one per GPU (or N on CPU), anywhere in
the cluster. The actors load the model once with the translator a local
worker would use (``models.backends.open_translator``, either backend) and
hold nothing that matters: the store is the only checkpoint (Ray Core, not
Ray Data, for that reason: a second checkpoint would disagree with it).

The driver keeps ``depth`` batches in flight per actor (``concurrency``
of the translator; the inference stage's window) and several jobs at once
(``--jobs``), and commits each result as it comes back. Joining the
cluster, sizing and starting a pool, and the worker's translator factory
are ``models.ray_cluster``.

Faults. An actor or node that dies (``ERROR_TABLE``) fails its batches in
flight with WORKER_LOST: the inference stage sends them again, and the pool
routes them to another actor while Ray restarts the dead one
(``max_restarts``). An actor whose device broke for good (DEVICE_FATAL: a
poisoned CUDA context) is restarted on purpose, which is the one cure for
it, and its batch is WORKER_LOST too. Deaths are counted per actor (once
per process, however many batches it held); an actor that died
``give_up_after`` times is given up and the job goes on with the others.
When none is left the job fails with a message that says so.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, replace

import ray
import ray.exceptions as rex

from pipeline.config import RunSettings
from pipeline.errors import ErrorClass, PipelineError
from pipeline.translator import BatchResult, Decoding, Translation, TranslatorInfo

log = logging.getLogger("nllb_pipeline")

# What Ray raises when the process or node that held a batch is gone, or its
# result with it. Each is WORKER_LOST: the batch is fine, run it elsewhere.
ERROR_TABLE: tuple[tuple[type[BaseException], str], ...] = (
    (rex.RayActorError, "the actor died or cannot be reached (ActorDiedError, "
                        "ActorUnavailableError)"),
    (rex.NodeDiedError, "the node running the actor died"),
    (rex.ObjectLostError, "the batch's result was lost with the node that held it "
                          "(OwnerDiedError, ObjectReconstructionFailedError, ...)"),
    (rex.WorkerCrashedError, "the worker process crashed"),
    (rex.LocalRayletDiedError, "this node's raylet died"),
    (rex.OutOfMemoryError, "Ray's memory monitor killed the worker (host memory, not the GPU's)"),
)
DEPTH = 2  # batches in flight per actor: one running, one waiting in its queue


class RemoteFailure(Exception):
    """A batch failed inside an actor; classified there, by the backend that
    knows its library's exceptions (``Translator.classify``)."""

    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class = error_class

    def __reduce__(self):
        return RemoteFailure, (self.error_class, str(self))


def classify(exc: BaseException) -> ErrorClass | None:
    """The class of an exception a pool's future raised; None if it is not Ray's."""
    cause = exc.cause if isinstance(exc, rex.RayTaskError) else exc
    if isinstance(cause, RemoteFailure):
        return ErrorClass(cause.error_class)
    if isinstance(exc, rex.TaskCancelledError):
        return ErrorClass.WORKER_LOST
    if any(isinstance(exc, types) for types, _ in ERROR_TABLE):
        return ErrorClass.WORKER_LOST
    return None


@dataclass(frozen=True)
class Where:
    """Where an actor runs: what attempt rows and batches record."""

    actor: int
    pid: int
    node: str  # Ray's node id (hex)
    host: str
    info: TranslatorInfo

    def __str__(self) -> str:
        return f"actor {self.actor} pid {self.pid} on {self.host} (node {self.node[:8]})"


class TranslatorActor:
    """One loaded model in a Ray worker process. Stateless as far as the
    pipeline cares: it can die at any time and be started again."""

    def __init__(self, number: int, model: str, settings: RunSettings,
                 inject_faults: str | None = None):
        from models.backends import open_translator

        translator = open_translator(model, settings)
        if inject_faults:
            from models.faults import FaultInjectingTranslator, FaultSpec

            translator = FaultInjectingTranslator(translator, FaultSpec.parse(inject_faults))
        translator.load()
        self.number, self.translator = number, translator

    def where(self) -> Where:
        import socket

        ctx = ray.get_runtime_context()
        return Where(self.number, os.getpid(), ctx.get_node_id(), socket.gethostname(),
                     self.translator.describe())

    def translate(self, texts: list[str], src_lang: str, tgt_lang: str,
                  decoding: Decoding) -> tuple[int, list, float]:
        """(this process's pid, the translations, seconds the model took):
        the pid says which incarnation ran it, so a batch records the
        process that really did; the seconds show the round trip's cost."""
        start = time.perf_counter()
        try:
            out = list(self.translator.translate_batch(texts, src_lang, tgt_lang, decoding))
            return os.getpid(), out, time.perf_counter() - start
        except Exception as exc:  # classified here, where torch/ctranslate2 are known
            error_class = self.translator.classify(exc)
            self.translator.recover(error_class)  # free memory after an OOM
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]
            raise RemoteFailure(error_class.value, first) from None


class ActorPool:
    """Actors and the batches in flight on each; picks the least loaded."""

    def __init__(self, handles: list, wheres: list[Where], *, give_up_after: int):
        self._handles = dict(enumerate(handles, 1))
        self._load = dict.fromkeys(self._handles, 0)
        self._deaths = dict.fromkeys(self._handles, 0)
        self._counted: set[tuple[int, int]] = set()  # (actor, pid) deaths already counted
        self._restarting: set[int] = set()
        self._lock = threading.Lock()
        # (seconds from submit to result, seconds the model took) of recent batches
        self.timings: deque[tuple[float, float]] = deque(maxlen=10_000)
        self.give_up_after = give_up_after
        self._where = {w.actor: w for w in wheres}
        self.info = wheres[0].info

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._handles)

    def wheres(self) -> list[Where]:
        """Where each live actor runs now (its pid changes when Ray restarts it)."""
        with self._lock:
            return [self._where[n] for n in sorted(self._handles)]

    def submit(self, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        with self._lock:
            if not self._handles:
                raise PipelineError(
                    f"every Ray actor was given up after dying {self.give_up_after} times; "
                    "see the actors' logs (ray logs), then start the worker again")
            ready = [n for n in self._handles if n not in self._restarting] or list(self._handles)
            n = min(ready, key=lambda k: (self._load[k], k))
            self._load[n] += 1
            handle, where = self._handles[n], self._where[n]
        outer: Future = Future()
        outer.submitted_at = time.perf_counter()
        try:
            inner = handle.translate.remote(texts, src_lang, tgt_lang, decoding).future()
        except Exception as exc:  # a handle of a dead actor can refuse at once
            inner = Future()
            inner.set_exception(exc)
        inner.add_done_callback(lambda f: self._done(n, handle, where, f, outer))
        return outer

    def _done(self, n: int, handle, where: Where, inner: Future, outer: Future) -> None:
        """Settle ``outer`` from ``inner``, whatever goes wrong on the way: an
        exception in a future's callback is only logged, and a job would wait
        for ``outer`` for ever."""
        try:
            self._settle(n, handle, where, inner, outer)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting job instead
            if not outer.done():
                outer.set_exception(exc)

    def _settle(self, n: int, handle, where: Where, inner: Future, outer: Future) -> None:
        with self._lock:
            self._load[n] = max(0, self._load.get(n, 0) - 1)
        exc = inner.exception()
        if exc is None:
            pid, translations, compute_s = inner.result()
            self.timings.append((time.perf_counter() - outer.submitted_at, compute_s))
            if pid != where.pid:  # Ray restarted it since we last asked
                where = replace(where, pid=pid)
                with self._lock:
                    self._where[n] = where
            outer.set_result(BatchResult(translations, ran_on=str(where), call_s=compute_s))
            return
        error_class = classify(exc)
        if error_class is ErrorClass.DEVICE_FATAL:
            # A broken device is cured by a fresh process: restart the actor.
            log.error("%s: the device broke (%s); restarting the actor", where, exc)
            ray.kill(handle, no_restart=False)
            exc = RemoteFailure(ErrorClass.WORKER_LOST.value,
                                f"device broke on {where} ({exc}); actor restarted")
            error_class = ErrorClass.WORKER_LOST
        if error_class is ErrorClass.WORKER_LOST:
            self._lost(n, handle, where, exc)
        outer.set_result(BatchResult(error=exc, ran_on=str(where)))

    def _lost(self, n: int, handle, where: Where, exc: BaseException) -> None:
        """Count the death of actor ``n``'s process once; give the actor up
        after ``give_up_after`` deaths, else learn its new pid when Ray has
        restarted it."""
        with self._lock:
            if (n, where.pid) in self._counted or n not in self._handles:
                return
            self._counted.add((n, where.pid))
            self._deaths[n] += 1
            deaths = self._deaths[n]
            give_up = deaths >= self.give_up_after
            if give_up:
                del self._handles[n]
            else:
                self._restarting.add(n)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if give_up:
            log.error("%s lost %d times (%s); giving it up, %d actor(s) left", where, deaths,
                      first, self.size)
            ray.kill(handle, no_restart=True)
            return
        log.warning("%s lost (%s); its batches go to another actor while Ray restarts it",
                    where, first)
        threading.Thread(target=self._await_restart, args=(n, handle), daemon=True,
                         name=f"ray-actor-{n}-restart").start()

    def _await_restart(self, n: int, handle, timeout_s: float = 600.0) -> None:
        """Learn the restarted actor's new process; until then new batches
        go to the others (if there are others)."""
        deadline = time.monotonic() + timeout_s
        where = None
        while time.monotonic() < deadline:
            try:
                where = ray.get(handle.where.remote(), timeout=60)
                break
            except rex.ActorUnavailableError:
                time.sleep(0.5)  # restarting: ask again
            except Exception as exc:  # noqa: BLE001 - died for good, or the driver is closing
                log.debug("actor %d did not come back: %s", n, exc)
                break
        with self._lock:
            self._restarting.discard(n)
            if where is not None and n in self._handles:
                self._where[n] = where
        if where is not None:
            log.info("%s is back", where)

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            try:
                ray.kill(handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


class RemoteTranslator:
    """The Translator protocol over an actor pool. Tokens are counted and
    languages checked here, on the driver (it needs the model's tokenizer
    files); batches run on the actors."""

    def __init__(self, local, pool: ActorPool):
        self.local, self.pool = local, pool

    def describe(self) -> TranslatorInfo:
        return replace(self.pool.info, concurrency=max(1, self.pool.size * DEPTH))

    def load(self) -> None:
        pass  # the actors loaded it

    def check_language(self, code: str) -> None:
        self.local.check_language(code)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def unknown_characters(self, texts: list[str]) -> set[str]:
        return self.local.unknown_characters(texts)

    def submit(self, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        return self.pool.submit(texts, src_lang, tgt_lang, decoding)

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str,
                        decoding: Decoding) -> list[Translation]:
        result = self.submit(texts, src_lang, tgt_lang, decoding).result()
        if result.error is not None:
            raise result.error
        return result.translations

    def classify(self, exc: BaseException) -> ErrorClass:
        found = classify(exc)
        return found if found is not None else self.local.classify(exc)

    def recover(self, error_class: ErrorClass) -> None:
        pass  # the actor that failed recovered itself (or was restarted)

    def on_device(self, device: str) -> RemoteTranslator:
        return self  # the CLI refuses --fallback-device with the Ray executor

    def close(self) -> None:
        self.pool.close()
