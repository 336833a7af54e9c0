"""The translators a process keeps: one per model and backend, shared by
every job that names them (decoding settings come with each call)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from pipeline.config import NOTE, JobParams, RunSettings
from pipeline.errors import WorkerStopping
from pipeline.translator import Translator

log = logging.getLogger("nllb_pipeline")

Key = tuple[str, str]  # (model, backend)


def _silent(text: str) -> None:
    pass


def _go_on() -> None:
    pass


class TranslatorCache:
    """One translator per model and backend (decoding settings come with
    each call), built on first use, its languages checked for every job it
    serves. A job that moved to the fallback device got its translator from
    ``on_device``, which keeps it: the next job that needs it does not load
    the weights again.

    A worker's job holds its translator with ``lease``, so the cache knows
    which translators no job is using: a cache that must give one back
    before it can build another (``_make_room``: a Ray cluster with room for
    one pool of actors) gives back only those, and waits for the rest."""

    def __init__(self, settings: RunSettings, *, inject_faults: str | None = None):
        self.settings, self.inject_faults = settings, inject_faults
        self._translators: dict[Key, Translator] = {}
        self._users: dict[Key, int] = {}  # jobs holding each translator (``lease``)
        self._building: set[Key] = set()
        self._room_wanted: set[Key] = set()  # keys waiting in ``_make_room``
        self._closed = False
        self._lock = threading.Lock()  # a worker's job threads share the cache
        self._changed = threading.Condition(self._lock)

    def __call__(self, params: JobParams) -> Translator:
        """The translator for ``params``, for a caller that keeps it for the
        life of the process (a one-job command, the benchmark)."""
        with self._lock:
            translator = self._get(self._key(params), _go_on, _silent)
        self._check_languages(translator, params)
        return translator

    @contextlib.contextmanager
    def lease(self, params: JobParams, *, check: Callable[[], None] = _go_on,
              say: Callable[[str], None] = _silent) -> Iterator[Translator]:
        """The translator for one job's run, counted as in use until the
        block ends. ``say`` hears what the job waits for, if it waits: the
        model loading, or room for it. While it waits for room, ``check``
        is called every half second and ends the wait by raising (the
        worker stopping, the job canceled); the cache closing ends it with
        WorkerStopping."""
        key = self._key(params)
        with self._lock:
            translator = self._get(key, check, say)
            self._users[key] = self._users.get(key, 0) + 1
        try:
            self._check_languages(translator, params)
            yield translator
        finally:
            with self._lock:
                self._users[key] -= 1
                self._changed.notify_all()

    def _key(self, params: JobParams) -> Key:
        return params.model, self.settings.backend

    @staticmethod
    def _check_languages(translator: Translator, params: JobParams) -> None:
        translator.check_language(params.src_lang)
        translator.check_language(params.tgt_lang)

    def _get(self, key: Key, check: Callable[[], None],
             say: Callable[[str], None]) -> Translator:
        """The translator for ``key``, built if need be; called under the lock."""
        # A job that waits for room goes first: others do not take up the
        # translators it waits to see given back (one model's jobs would
        # otherwise keep another's waiting for as long as they keep coming).
        while key in self._building or (self._room_wanted - {key}):
            self._wait(check)
        if key not in self._translators:
            self._building.add(key)
            try:
                self._make_room(key, check, say)
                say("loading the model")
                self._translators[key] = self._build(key[0])
            finally:
                self._building.discard(key)
                self._changed.notify_all()
        return self._translators[key]

    def _wait(self, check: Callable[[], None]) -> None:
        """Wait, under the lock, for a translator to be given back or built."""
        self._changed.wait(0.5)
        if self._closed:
            raise WorkerStopping("the worker is stopping")
        check()

    def _has_room(self) -> bool:
        """Whether a translator can be built beside those held now. In a
        process they live side by side; a Ray cluster has CPUs and GPUs for
        so many actors (``models.ray_cluster``)."""
        return True

    def _make_room(self, key: Key, check: Callable[[], None],
                   say: Callable[[str], None]) -> None:
        """Give back the translators no job holds until there is room for
        ``key``'s, and wait for the jobs holding the others to end (called
        under the lock, with ``key`` in ``_building``)."""
        announced = False
        self._room_wanted.add(key)
        try:
            while not self._has_room():
                idle = [k for k in self._translators if not self._users.get(k)]
                for k in idle:
                    log.info("giving back the translator of %s, which no job is using, to make "
                             "room for %s", k[0], key[0])
                    self._evict(k)
                if not self._translators:
                    # What was given back frees its room as it goes (a Ray
                    # actor's CPUs): the new one starts then. What holds the
                    # rest is not ours to give back.
                    return
                if not idle and not announced:
                    others = ", ".join(k[0] for k in self._translators)
                    log.log(NOTE, "no room for the translator of %s beside that of %s: waiting "
                            "for their jobs to end", key[0], others)
                    say(f"waiting for room to load the model: the jobs on {others} hold it")
                    announced = True
                self._wait(check)
        finally:
            self._room_wanted.discard(key)

    def _evict(self, key: Key) -> None:
        """Give back a translator no job holds (under the lock)."""
        self._translators.pop(key).close()
        self._users.pop(key, None)

    def check(self) -> None:
        """Refuse, before any job is claimed or created, what this run's
        settings ask of the machine and it lacks (a CUDA device)."""
        from models.device import check_devices

        check_devices(self.settings)

    def _build(self, model: str) -> Translator:
        from models import open_translator

        translator = open_translator(model, self.settings)
        if self.inject_faults:
            from models.faults import FaultInjectingTranslator, FaultSpec

            spec = FaultSpec.parse(self.inject_faults)
            log.warning("fault injection is ON (%s); failures are simulated", spec)
            translator = FaultInjectingTranslator(translator, spec)
        return translator

    def close(self) -> None:
        """Close every translator built here (the process is done with them)."""
        with self._lock:
            translators, self._translators = list(self._translators.values()), {}
            self._closed = True
            self._changed.notify_all()
        for translator in translators:
            translator.close()
