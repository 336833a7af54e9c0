"""``worker --metrics-port N`` / ``--metrics-addr HOST:PORT``: ``/metrics``
for a worker started on its own (``serve`` has it at ``/metrics``).

The figures come from the store, so one worker's endpoint shows every
worker's jobs; with ``$NLLB_PIPELINE_TOKEN`` set a scrape needs it as a
bearer token, as ``serve``'s API does.
"""

from __future__ import annotations

import argparse
import os

from pipeline.cli.options import at_least
from pipeline.errors import InvalidInput

TOKEN_ENV = "NLLB_PIPELINE_TOKEN"


def add_metrics_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--metrics-port", type=at_least(0, 65535), default=None, metavar="PORT",
                       help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics, "
                            "PORT 0-65535 (0: any free one)")
    group.add_argument("--metrics-addr", default=None, metavar="HOST:PORT",
                       help="serve Prometheus metrics at http://HOST:PORT/metrics")


def metrics_address(args) -> tuple[str, int] | None:
    """(host, port) the options ask for, or None; InvalidInput when malformed."""
    if getattr(args, "metrics_port", None) is not None:
        host, port, given = "127.0.0.1", args.metrics_port, f"--metrics-port {args.metrics_port}"
    elif getattr(args, "metrics_addr", None):
        given = f"--metrics-addr {args.metrics_addr}"
        host, sep, port_text = args.metrics_addr.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit():
            raise InvalidInput(f"{given}: expected HOST:PORT, e.g. 127.0.0.1:9101")
        port = int(port_text)
    else:
        return None
    if not 0 <= port <= 65535:
        raise InvalidInput(f"{given}: the port must be 0-65535")
    return host, port


def start_worker_metrics(args, db):
    """Start the endpoint the options ask for (None if none); ``.shutdown()`` it."""
    address = metrics_address(args)
    if address is None:
        return None
    from pipeline.monitoring.exposition import serve_metrics, store_registry
    from pipeline.store import Store
    import threading

    local = threading.local()

    def store():
        if getattr(local, "store", None) is None:
            local.store = Store(db)
        return local.store

    try:
        server = serve_metrics(*address, store_registry(store),
                               token=os.environ.get(TOKEN_ENV) or None)
    except OSError as exc:
        raise InvalidInput(f"cannot serve metrics on {address[0]}:{address[1]}: "
                           f"{exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    print(f"nllb-pipeline: metrics at http://{host}:{port}/metrics", flush=True)
    return server
