"""A real S3 server on loopback for the storage tests: ``moto_server`` in a
process of its own, behind a small forwarding proxy that can fail or hold
requests (the fault hook: throttled or failing PUTs and GETs, a PUT that
never gets its answer).

The proxy forwards every request unchanged, so what the pipeline talks to
is moto's S3, through ``AWS_ENDPOINT_URL``, with dummy credentials from the
environment as a user's would come.
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import wait_until

ACCESS_KEY = "AKIASTORAGETESTKEY42"  # dummy, and unique enough to grep a file for
SECRET_KEY = "storage-test-secret-0123456789abcdefXYZ"


def moto_server_binary() -> str | None:
    here = Path(sys.executable).with_name("moto_server")
    return str(here) if here.exists() else shutil.which("moto_server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    def listening() -> bool:
        assert proc.poll() is None, f"moto_server exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(listening, f"moto_server to listen on port {port}", timeout=timeout,
               interval=0.05)


@dataclass
class Faults:
    """What the proxy does to requests for keys containing ``key``."""

    key: str = ""
    fail_puts: int = 0  # answer this many PUTs with ``status`` before forwarding any
    fail_gets: int = 0  # the same for GETs (reads of an object's content)
    status: int = 503
    code: str = "ServiceUnavailable"
    hold_put: bool = False  # forward the PUT, then hold its answer until ``release``
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    log: list = field(default_factory=list)  # (method, path, status answered)

    def puts(self, key: str) -> list:
        return [entry for entry in self.log if entry[0] == "PUT" and key in entry[1]]

    def gets(self, key: str) -> list:
        return [entry for entry in self.log if entry[0] == "GET" and key in entry[1]]

    def failing(self, method: str) -> bool:
        """Whether this request (for our key) is one to fail; counts it down."""
        left = {"PUT": "fail_puts", "GET": "fail_gets"}.get(method)
        if left is None or getattr(self, left) <= 0:
            return False
        setattr(self, left, getattr(self, left) - 1)
        return True


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: int, faults: Faults):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.faults = upstream, faults


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        faults: Faults = self.server.faults
        body = self._body()
        ours = bool(faults.key) and faults.key in self.path
        if ours and faults.failing(self.command):
            faults.log.append((self.command, self.path, faults.status))
            error = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{faults.code}</Code>"
                     f"<Message>injected</Message></Error>").encode()
            self.send_response(faults.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        faults.log.append((self.command, self.path, response.status))
        if ours and self.command == "PUT" and faults.hold_put:
            faults.held.set()
            faults.release.wait(120)
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server",
                                 "date"):
                self.send_header(k, v)
        # A HEAD's Content-Length is the object's, not its (empty) body's.
        self.send_header("Content-Length", response.getheader("Content-Length", "0")
                         if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


class S3:
    """moto_server and the proxy in front of it."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.log = open(tmp / "moto.log", "wb")
        self.proc = subprocess.Popen([moto_server_binary(), "-H", "127.0.0.1", "-p",
                                      str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc)
        self.faults = Faults()
        self.proxy = _Proxy(self.port, self.faults)
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.proxy.server_address[1]}"

    def fault(self, **kwargs) -> Faults:
        self.faults.__init__(**kwargs)
        return self.faults

    def stop(self) -> None:
        self.faults.release.set()
        self.proxy.shutdown()
        self.proxy.server_close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def environment(endpoint: str, home: Path) -> dict[str, str]:
    """What a user's shell would hold: the endpoint and credentials, read by
    botocore's own chain; no profile file is read."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            # One HTTP attempt per call: the pipeline's own retries are what is tested.
            "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
            "NLLB_PIPELINE_CONFIG": str(home / "no-config.toml")}
