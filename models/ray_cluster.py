"""The Ray executor's cluster side: joining Ray, sizing and starting a pool
of ``TranslatorActor``s (``models.ray_pool``), and the worker's translator
factory (``RayTranslators``), which starts one pool per model on first use.

Actors are sized from the cluster unless told: one per GPU (``--gpus-per-
actor 1``), or up to two on CPU. Ray restarts a dead actor up to the retry
policy's WORKER_LOST limit; the driver resends the batches it held.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from dataclasses import dataclass, replace

import ray
import ray.exceptions as rex

from models.ray_pool import ActorPool, RemoteTranslator, TranslatorActor, Where
from pipeline.config import RunSettings
from pipeline.errors import ErrorClass, InvalidInput, PipelineError
from pipeline.executors.cache import TranslatorCache
from pipeline.retry import RetryPolicy

log = logging.getLogger("nllb_pipeline")


@dataclass(frozen=True)
class PoolOptions:
    """``--actors --gpus-per-actor --cpus-per-actor``; None: from the cluster."""

    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float = 1.0


def connect(address: str) -> None:
    """Join (``auto``, ``ray://HOST:PORT``) or start (``local``) a Ray instance."""
    if ray.is_initialized():
        return
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                  configure_logging=False)
    ours = signal.getsignal(signal.SIGTERM)
    # A new private instance turns token authentication on by itself and
    # says so in Ray's own format: the safe default, nothing for the user
    # to do, and the only line a worker's stderr had that was not ours.
    auth_log = logging.getLogger("ray._private.authentication")
    auth_level = auth_log.level
    if address == "local":
        auth_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # Ray Client warns before it raises: one line is ours
            warnings.simplefilter("ignore")
            if address == "local":
                ray.init(address="local", num_cpus=os.cpu_count() or 1, **kwargs)
            else:
                ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        hint = (" (is a cluster running here? 'ray start --head' starts one; "
                "'--ray-address local' starts a private one)" if address == "auto" else "")
        raise PipelineError(f"cannot reach the Ray cluster at {address!r}: {first}{hint}") from exc
    finally:
        auth_log.setLevel(auth_level)
        # ray.init replaces SIGTERM's handler with one that exits at once,
        # which shuts Ray down under the jobs' batches in flight: they were
        # lost, and the job failed. The worker's own handler gives its jobs
        # back to the queue first, and its close() shuts Ray down after.
        if callable(ours) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, ours)


def pool_shape(options: PoolOptions) -> tuple[int, float]:
    """How many actors a pool gets and the GPUs each takes, from the options
    or the cluster; a one-line error where the cluster can never hold them."""
    total = ray.cluster_resources()  # one read: a job waiting for room asks twice a second
    cluster_gpus = float(total.get("GPU", 0))
    gpus = options.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if cluster_gpus >= 1 else 0.0
    actors = options.actors
    if actors is None:
        if gpus > 0:
            actors = int(cluster_gpus // gpus)
        else:
            cpus = float(total.get("CPU", 1))
            actors = max(1, min(2, int(cpus // options.cpus_per_actor)))
    if actors < 1:
        raise InvalidInput(f"the cluster has {cluster_gpus:g} GPUs: not enough for one actor "
                           f"at --gpus-per-actor {gpus:g}")
    for name, each, flag in (("CPU", options.cpus_per_actor, "--cpus-per-actor"),
                             ("GPU", gpus, "--gpus-per-actor")):
        if actors * each > float(total.get(name, 0)) + 1e-9:
            # Ray would keep the actors pending for ever, and the job with them.
            raise InvalidInput(
                f"{actors} actor(s) at {flag} {each:g} need {actors * each:g} {name}s; the Ray "
                f"cluster has {float(total.get(name, 0)):g} (fewer --actors, or a bigger cluster)")
    return actors, gpus


def pool_fits(options: PoolOptions) -> bool:
    """Whether the cluster has the CPUs and GPUs free for a pool now."""
    actors, gpus = pool_shape(options)
    free = ray.available_resources()
    return (actors * options.cpus_per_actor <= free.get("CPU", 0) + 1e-9
            and actors * gpus <= free.get("GPU", 0) + 1e-9)


def start_pool(model: str, settings: RunSettings, options: PoolOptions, *,
               policy: RetryPolicy = RetryPolicy(), inject_faults: str | None = None) -> ActorPool:
    """Start the actors and wait until each has loaded the model."""
    actors, gpus = pool_shape(options)
    device = "cuda" if gpus > 0 else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES per actor
    actor_settings = replace(settings, device=device, fallback_device="",
                             threads=settings.threads or max(1, int(options.cpus_per_actor)))
    limit = policy.limit(ErrorClass.WORKER_LOST, policy.chunk_attempts)
    remote = ray.remote(TranslatorActor).options(
        num_gpus=gpus, num_cpus=options.cpus_per_actor,
        # Ray restarts a dead actor up to the policy's limit; the driver
        # resends the batches it held (task retries stay off, so every
        # resend is an attempt row the driver wrote).
        max_restarts=limit, max_task_retries=0,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": str(max(1, int(options.cpus_per_actor))),
                                  "TOKENIZERS_PARALLELISM": "false"}})
    handles = [remote.remote(n, model, actor_settings, inject_faults)
               for n in range(1, actors + 1)]
    try:
        pool = ActorPool(handles, _await_actors(handles, model), give_up_after=limit)
    except rex.RayTaskError as exc:  # an actor failed to load the model
        for handle in handles:
            ray.kill(handle, no_restart=True)
        cause = exc.cause if exc.cause is not None else exc
        raise PipelineError(f"the Ray actors could not load {model}: "
                            f"{(str(cause).strip().splitlines() or [''])[0][:300]}") from exc
    log.info("%d Ray actor(s) on %s: %s", pool.size, device,
             "; ".join(str(w) for w in pool.wheres()))
    return pool


def _await_actors(handles: list, model: str, every_s: float = 30.0) -> list[Where]:
    """Where each actor runs, once all have loaded the model. Ray keeps an
    actor pending while the cluster has no room for it: say so every
    ``every_s`` seconds rather than wait in silence."""
    refs = [handle.where.remote() for handle in handles]
    waited = 0.0
    while True:
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=every_s)
        if not pending:
            return ray.get(refs)  # raises RayTaskError where an actor could not load it
        waited += every_s
        free = ray.available_resources()
        log.warning("%d of %d Ray actor(s) for %s not up after %.0f s (the cluster has %g CPUs "
                    "and %g GPUs free)", len(pending), len(refs), model, waited,
                    free.get("CPU", 0), free.get("GPU", 0))


class RayTranslators(TranslatorCache):
    """The worker's translator factory on Ray: a ``TranslatorCache`` whose
    translator for a model is a pool of actors, started on first use and
    shared by every job that names it. Faults are injected in the actors.

    A cluster without room for a second model's pool gives back the pools
    no job is using, and a job for another model waits for the jobs that
    use them to end: the actors of two models never wait for each other's
    CPUs for ever."""

    def __init__(self, settings: RunSettings, options: PoolOptions, *,
                 policy: RetryPolicy = RetryPolicy(), inject_faults: str | None = None):
        super().__init__(settings, inject_faults=inject_faults)
        self.options, self.policy = options, policy

    def _build(self, model: str) -> RemoteTranslator:
        from models.backends import open_translator

        # The driver's copy first: it converts a CTranslate2 model into the
        # cache before the actors look for it there.
        local = open_translator(model, self.settings)
        pool = start_pool(model, self.settings, self.options, policy=self.policy,
                          inject_faults=self.inject_faults)
        return RemoteTranslator(local, pool)

    def _has_room(self) -> bool:
        return pool_fits(self.options)

    def pools(self) -> list[ActorPool]:
        with self._lock:
            return [t.pool for t in self._translators.values()]

    def close(self) -> None:
        super().close()
        if ray.is_initialized():
            ray.shutdown()
