"""``nllb-pipeline serve``: the page and the HTTP API over the job store,
with the queue workers that run what is submitted.

The workers are ``nllb-pipeline worker`` children given the run options
``serve`` was given (``pipeline.api.supervisor``). SIGTERM or Ctrl-C stops
the server and asks each worker to stop (within seconds; a model call in
flight finishes first); the job goes back to the queue and the next worker, or the next ``serve``, resumes
it. The exit code is 0 for a stop asked by a signal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from pipeline import config
from pipeline.cli.options import add_run_options, at_least, finite, runtime, settings_of
from pipeline.config import NOTE
from pipeline.errors import InvalidInput
from pipeline.settings import Flags

log = logging.getLogger("nllb_pipeline")

TOKEN_ENV = "NLLB_PIPELINE_TOKEN"


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=at_least(0, 65535), default=8765, metavar="0-65535",
                   help="port, 0-65535 (default 8765; 0: any free one)")
    p.add_argument("--workers", type=at_least(0), default=1, metavar="N",
                   help="queue workers to run as child processes, >= 0 (default 1; 0: serve "
                        "only, for workers started with 'nllb-pipeline worker')")
    p.add_argument("--token", default=None,
                   help=f"every API call needs 'Authorization: Bearer TOKEN' (or ${TOKEN_ENV})")
    p.add_argument("--max-upload-mb", type=finite(0, above=True), default=50.0, metavar="MB",
                   help="largest request body accepted, in MB, > 0 (default 50)")
    p.add_argument("--files-dir", type=Path, default=None,
                   help="where uploads are kept and translations delivered (default: the "
                        "database's directory)")
    add_run_options(p)


def worker_command(args, db: Path) -> list[str]:
    """``nllb-pipeline worker`` with the global options and the run flags
    this ``serve`` was given (``settings.Flags.argv``; those not given are
    left out, so the child layers the same config file and environment under
    the same flags, and its settings are ``serve``'s)."""
    argv = [sys.executable, "-m", "pipeline", "--db", str(db)]
    if getattr(args, "config", None):
        argv += ["--config", str(Path(args.config).resolve())]
    if getattr(args, "debug", False):
        argv.append("--debug")
    if getattr(args, "verbose", False):
        argv.append("-v")
    if getattr(args, "log_format", "text") != "text":
        argv += ["--log-format", args.log_format]
    argv.append("worker")
    argv += Flags.from_args(args).argv()
    # The page shows progress; a bar per worker would garble serve's terminal
    # (their jobs' start and end still show).
    argv.append("--no-progress")
    return argv


def listen(host: str, port: int) -> socket.socket:
    """A bound socket, or InvalidInput saying why not (port in use, ...)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


@contextlib.contextmanager
def _signals_handled_by_uvicorn():
    """Uvicorn re-raises the signal that stopped it once it has shut down;
    with these handlers in place that ends nothing, and ``serve`` stops its
    workers and exits 0 instead of dying of its own SIGTERM."""
    previous = {sig: signal.signal(sig, lambda *a: None) for sig in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from pipeline.api import ApiSettings, create_app
        from pipeline.api.security import is_loopback, loopback_hosts
        from pipeline.api.supervisor import WorkerSupervisor
    except ImportError as exc:
        raise InvalidInput(f"serve needs {exc.name}: pip install 'nllb-pipeline[serve]'") from None
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and token is None:
        raise InvalidInput(f"refusing to serve on {args.host} without a token: anyone who can "
                           f"reach it could submit and cancel jobs; pass --token (or set "
                           f"${TOKEN_ENV}), or keep the default --host 127.0.0.1")
    if args.workers:  # bad run options, or a --device this machine lacks, are refused
        runtime(args).translators.check()  # before anything starts
    db = Path(args.db or config.default_db_path()).expanduser().resolve()
    settings = ApiSettings(db=db, files=args.files_dir, token=token,
                           max_upload_bytes=int(args.max_upload_mb * 2**20),
                           allowed_hosts=None if token else loopback_hosts(args.host),
                           storage=settings_of(args).delivery.storage)
    supervisor = (WorkerSupervisor(worker_command(args, db), args.workers) if args.workers
                  else None)
    app = create_app(settings, supervisor=supervisor)
    sock = listen(args.host, args.port)
    stopping = threading.Event()

    def on_signal() -> None:
        if stopping.is_set():
            return
        stopping.set()
        app.state.api.stopping.set()  # event streams end, so connections close at once
        if supervisor is not None:  # workers finish their batch while the server stops
            threading.Thread(target=supervisor.stop, daemon=True).start()

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            on_signal()
            super().handle_exit(sig, frame)

    # log_config=None: uvicorn's records go through our handler, in our text
    # or JSON format (pipeline.cli.messages), not in a format of its own.
    server = Server(uvicorn.Config(app, log_level="info" if args.verbose else "warning",
                                   access_log=bool(args.verbose), lifespan="off", log_config=None,
                                   timeout_graceful_shutdown=5))
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"nllb-pipeline: serving http://{shown}:{port}/ over {db} with {args.workers} "
          f"worker(s)" + ("; API calls need the token" if token else ""), flush=True)
    if supervisor is not None:
        supervisor.start()
    try:
        with _signals_handled_by_uvicorn():
            server.run(sockets=[sock])
    finally:
        on_signal()
        if supervisor is not None:
            codes = supervisor.stop()
            log.log(NOTE, "stopped; workers exited with %s", codes)
        sock.close()
    return 0
