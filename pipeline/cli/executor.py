"""``worker --executor local|ray``: where the worker's batches run.

``local`` (the default) translates in the worker's own process. ``ray``
keeps the worker as the one driver that owns the store and sends batches
to model actors on a Ray cluster (``models.ray_pool``, started by
``models.ray_cluster``). Ray is an optional
extra; everything here is checked before Ray is imported, so a wrong
option is a one-line error and ``import pipeline`` never imports ray.
"""

from __future__ import annotations

import argparse

from pipeline.cli.options import at_least, finite
from pipeline.errors import InvalidInput, PipelineError

INSTALL_HINT = "pip install 'nllb-pipeline[ray]'"
RAY_ONLY = ("ray_address", "actors", "gpus_per_actor", "cpus_per_actor")


def add_executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where batches run: in this process (local, the default) or on model "
                        "actors of a Ray cluster (ray; this process stays the one driver that "
                        "owns the database)")
    p.add_argument("--ray-address", default=None, metavar="auto|ray://HOST:PORT|local",
                   help="with --executor ray: the cluster to join (auto, the default: the one "
                        "this machine belongs to), or local: start a private one here")
    p.add_argument("--actors", type=at_least(1), default=None, metavar="N",
                   help="with --executor ray: model actors, >= 1 (default: one per GPU of the "
                        "cluster, or 2 on CPU)")
    p.add_argument("--gpus-per-actor", type=finite(0), default=None, metavar="G",
                   help="with --executor ray: GPUs per actor, >= 0 (default 1 when the "
                        "cluster has GPUs, else 0: actors on CPU)")
    p.add_argument("--cpus-per-actor", type=finite(0, above=True), default=None, metavar="K",
                   help="with --executor ray: CPUs per actor, > 0, also its threads "
                        "(default 1)")
    p.add_argument("--jobs", type=at_least(1, 64), default=None, metavar="N",
                   help="jobs run at once, 1-64 (default 1; with --executor ray 2, so the actors "
                        "stay busy while a job is in preprocess, postprocess or upload)")


def check_executor_options(args) -> None:
    """Refuse options that do not go together; fill the Ray defaults."""
    if args.executor == "local":
        given = [f"--{name.replace('_', '-')}" for name in RAY_ONLY
                 if getattr(args, name) is not None]
        if given:
            raise InvalidInput(f"{given[0]} needs --executor ray")
        if (args.jobs or 1) > 1:
            raise InvalidInput("--jobs above 1 needs --executor ray (a local worker runs one "
                               "model in one process: start more workers instead)")
        args.jobs = 1
        return
    if getattr(args, "fallback_device", None):
        raise InvalidInput("--fallback-device does not apply with --executor ray: an actor whose "
                           "device breaks is restarted by Ray and its batches run elsewhere")
    address = args.ray_address or "auto"
    if address not in ("auto", "local") and not address.startswith("ray://"):
        raise InvalidInput(f"--ray-address takes auto, local or ray://HOST:PORT, not {address!r}")
    args.ray_address = address
    args.jobs = args.jobs or 2


def ray_translators(args, runtime):
    """The translator factory of a Ray worker, connected to its cluster.
    A one-line error when the ray extra is missing or the cluster is not there."""
    try:
        from models import ray_cluster
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise PipelineError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}"
                            ) from None
    ray_cluster.connect(args.ray_address)
    options = ray_cluster.PoolOptions(actors=args.actors, gpus_per_actor=args.gpus_per_actor,
                                      cpus_per_actor=args.cpus_per_actor or 1.0)
    ray_cluster.pool_shape(options)  # one the cluster can never hold: refused before a claim
    return ray_cluster.RayTranslators(runtime.settings, options, policy=runtime.policy,
                                      inject_faults=runtime.translators.inject_faults)
