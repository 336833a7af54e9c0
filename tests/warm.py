"""Real processes of the CLI without an interpreter start each: a fork server.

A test that runs ``python -m pipeline translate`` on the tiny model spends
most of its time before ``main`` is called: importing torch, transformers
and CTranslate2 takes 5-10 s on a loaded 2-core machine, and the crash and
resume tests start dozens of such processes. So one process (the zygote)
imports all of it once, with no thread started, and forks a child per
command. The child is a real process of its own, with its own pid, its own
environment, working directory and standard streams (passed as file
descriptors over a Unix socket), and it is killed, signalled and waited for
like one that ``subprocess.Popen`` started: ``WarmProcess`` has Popen's
methods. What it runs is what ``python -m pipeline`` or ``python SCRIPT``
runs, from ``__main__`` on.

Only the import step is shared, and one thing with it: the zygote's native
libraries (OpenMP, MKL, OpenBLAS) run one thread each, since they would
otherwise start threads at import and a process with threads must not
fork. The tests' own processes run one thread anyway (conftest sets
OMP_NUM_THREADS). Tests about what a fresh interpreter
imports (tests/test_boundaries.py, ``-X importtime``) start real
interpreters, as do tests of processes that are not the CLI.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What a translate, worker or benchmark run imports, lazily or not. A
# module that fails to import here is simply imported by the child later.
PRELOAD = (
    "pipeline.cli.main", "pipeline.cli.translate", "pipeline.cli.queue", "pipeline.cli.read",
    "pipeline.cli.tm", "pipeline.cli.executor", "pipeline.service", "pipeline.runner",
    "pipeline.worker", "pipeline.executors", "pipeline.progress.bench", "pipeline.progress.stats",
    "models", "models.backends", "models.ct2", "models.hf", "models.conversion", "models.faults",
    "models.fingerprint", "models.device", "models.tiny", "models.errors",
    "ctranslate2", "ctranslate2.converters", "sentencepiece", "tokenizers", "torch",
    "transformers", "transformers.models.m2m_100.modeling_m2m_100",
    "transformers.models.nllb.tokenization_nllb",
    "transformers.models.nllb.tokenization_nllb_fast",
)
_MAX_MESSAGE = 1 << 20
ONE_THREAD = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


# -- the zygote --------------------------------------------------------------


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # transformers resolves these lazily, on first attribute access.
    import transformers

    for name in ("AutoTokenizer", "AutoModelForSeq2SeqLM", "AutoConfig", "NllbTokenizer",
                 "NllbTokenizerFast", "M2M100Config", "M2M100ForConditionalGeneration"):
        getattr(transformers, name, None)
    # The schema a new store is made from, made once here for every child
    # that creates a database (most of them).
    from pipeline.store.base import latest_schema
    from pipeline.store.migrations import MIGRATIONS

    latest_schema(MIGRATIONS)


def serve(fd: int) -> None:
    """The zygote's loop: one request (a message with the child's three
    standard streams attached) forks one child; the answers are ``pid N``
    and, when the child has ended, ``exit N CODE`` (CODE as Popen reports
    it: -9 for SIGKILL)."""
    sock = socket.socket(fileno=fd)
    _preload()
    if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
        raise SystemExit("the zygote must not run threads before it forks")
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(sock)
        if sock in ready:
            message, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 3)
            if not message:  # the tests are done
                return
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                sock.close()
                os.close(wake_r)
                os.close(wake_w)
                _child(json.loads(message), fds)  # never returns
            for f in fds:
                os.close(f)
            sock.send(f"pid {pid}".encode())
            _reap(sock)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(f"exit {pid} {os.waitstatus_to_exitcode(status)}".encode())


def _child(request: dict, fds: list[int]) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if request["new_session"]:
            os.setsid()
        for target, f in enumerate(fds):
            os.dup2(f, target)
            os.close(f)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = _run_main(request["argv"])
    finally:
        os._exit(code)


def _run_main(argv: list[str]) -> int:
    """``python -m MODULE ARGS`` or ``python SCRIPT ARGS``, from __main__ on,
    ending as the interpreter would: SystemExit's code, 1 and a traceback
    for an exception, exit functions run, streams flushed."""
    import atexit as child_atexit
    import runpy
    import traceback

    code = 0
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[0] = str(Path(argv[0]).resolve().parent)
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    child_atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


# -- the tests' side ---------------------------------------------------------


class Zygote:
    """The fork server, started on first use and stopped when the tests end."""

    def __init__(self, env: dict[str, str]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from tests.warm import serve; serve({theirs.fileno()})"],
            pass_fds=[theirs.fileno()], cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._sock = ours
        self._lock = threading.Lock()  # one request at a time
        self._changed = threading.Condition()
        self._started: list[int] = []
        self._exits: dict[int, int] = {}
        self._gone = False
        threading.Thread(target=self._listen, name="zygote-listener", daemon=True).start()

    def spawn(self, argv: list[str], *, env: dict, cwd: str | Path, fds: list[int],
              new_session: bool = False, timeout: float = 300) -> int:
        request = json.dumps({"argv": argv, "env": env, "cwd": str(cwd),
                              "new_session": new_session}).encode()
        with self._lock:
            socket.send_fds(self._sock, [request], fds)
            with self._changed:
                if not self._changed.wait_for(lambda: self._started or self._gone, timeout):
                    raise RuntimeError("the zygote did not answer")
                if not self._started:
                    raise RuntimeError(f"the zygote is gone (exit {self._proc.poll()})")
                return self._started.pop()

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or self._gone, timeout)
            return self._exits.get(pid)

    def close(self) -> None:
        # shutdown, not only close: the listener thread is blocked in recv()
        # on this socket, and a plain close would leave it open (no EOF).
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _listen(self) -> None:
        while True:
            try:
                message = self._sock.recv(256).decode()
            except OSError:
                message = ""
            with self._changed:
                if not message:
                    self._gone = True
                    self._changed.notify_all()
                    return
                kind, pid, *code = message.split()
                if kind == "pid":
                    self._started.append(int(pid))
                else:
                    self._exits[int(pid)] = int(code[0])
                self._changed.notify_all()


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def zygote() -> Zygote:
    global _zygote
    with _zygote_lock:
        if _zygote is None:
            # One thread per native library, as conftest sets for the tests'
            # processes: OpenBLAS, for one, starts its threads when numpy is
            # imported, and a process with threads must not fork.
            env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                   **{var: "1" for var in ONE_THREAD}}
            _zygote = Zygote(env)
            atexit.register(_zygote.close)
        return _zygote


class WarmProcess:
    """``subprocess.Popen`` for a command the zygote forks: the same
    arguments (``stdin``, ``stdout``, ``stderr`` as None, PIPE, DEVNULL, a
    file or STDOUT; ``text``, ``env``, ``cwd``, ``start_new_session``) and
    the same methods the tests use."""

    def __init__(self, argv: list[str], *, env: dict | None = None, cwd: str | Path | None = None,
                 stdin=None, stdout=None, stderr=None, text: bool = False,
                 start_new_session: bool = False):
        self.args = argv
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None
        child_fds, ours, close_after = [], {}, []
        for n, spec in enumerate((stdin, stdout, stderr)):
            if spec is None:
                child_fds.append(n)
            elif spec == subprocess.DEVNULL:
                f = os.open(os.devnull, os.O_RDWR)
                child_fds.append(f)
                close_after.append(f)
            elif spec == subprocess.PIPE:
                r, w = os.pipe()
                child_fds.append(r if n == 0 else w)
                close_after.append(r if n == 0 else w)
                ours[n] = w if n == 0 else r
            elif spec == subprocess.STDOUT and n == 2:
                child_fds.append(child_fds[1])
            else:
                child_fds.append(spec if isinstance(spec, int) else spec.fileno())
        self._zygote = zygote()
        try:
            self.pid = self._zygote.spawn(argv, env=dict(os.environ if env is None else env),
                                          cwd=cwd or os.getcwd(), fds=child_fds,
                                          new_session=start_new_session)
        finally:
            for f in close_after:
                os.close(f)
        for n, f in ours.items():
            stream = os.fdopen(f, "wb" if n == 0 else "rb")
            if text:
                stream = io.TextIOWrapper(stream, write_through=n == 0)
            setattr(self, ("stdin", "stdout", "stderr")[n], stream)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid, timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, input=None, timeout: float | None = None):
        if self.stdin is not None:
            if input:
                self.stdin.write(input)
            self.stdin.close()
        results: dict[str, object] = {}
        readers = [threading.Thread(target=lambda n=n, s=s: results.__setitem__(n, s.read()),
                                    daemon=True)
                   for n, s in (("stdout", self.stdout), ("stderr", self.stderr)) if s]
        for r in readers:
            r.start()
        for r in readers:
            r.join(timeout)
            if r.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(timeout)
        for name in ("stdout", "stderr"):
            if getattr(self, name) is not None:
                getattr(self, name).close()
        return results.get("stdout"), results.get("stderr")

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for s in (self.stdin, self.stdout, self.stderr):
            if s is not None:
                s.close()
        self.wait()


def run(argv: list[str], *, env: dict | None = None, cwd: str | Path | None = None,
        timeout: float | None = None, text: bool = True) -> subprocess.CompletedProcess:
    """``subprocess.run(..., capture_output=True)`` for a forked command."""
    proc = WarmProcess(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=text)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
