"""examples/flask_login.py as it is deployed, for the gunicorn and browser tests: the example
served by gunicorn with examples/gunicorn.conf.py in a process of its own (on 127.0.0.1, stopped
by pid, with a lifetime bound), a webhook receiver that fails a set number of times, and a
plain HTTP client that does not follow redirects."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import breakglass
from conftest import REPO, free_port

EXAMPLES = REPO / "examples"
GUNICORN_CONF = EXAMPLES / "gunicorn.conf.py"
PASSWORD = "correct horse battery staple"


def library_has_key(name: str) -> bool:
    """Whether the loaded library knows configuration key ``name`` (its own key table)."""
    return any(k.name == name for k in breakglass.config_keys())


def password_hash() -> str:
    import argon2

    return argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD)


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 503 to the first ``fail`` POSTs (and to the one
    after each :meth:`fail_next`), 200 to the others."""

    def __init__(self, fail: int = 0) -> None:
        self.failing = set(range(fail))
        self.answers: List[int] = []
        self.bodies: List[bytes] = []
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = 503 if len(receiver.answers) in receiver.failing else 200
                    receiver.answers.append(status)
                    receiver.bodies.append(body)
                    receiver.lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail_next(self) -> None:
        with self.lock:
            self.failing.add(len(self.answers))

    def wait_for(self, n: int, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: len(self.answers) >= n, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Gunicorn:
    """``gunicorn -c examples/gunicorn.conf.py`` with ``env`` on a free port."""

    def __init__(self, env: Dict[str, str], workers: int, log: Path, extra: Tuple[str, ...] = (),
                 lifetime: float = 120) -> None:
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
        full.update(env)
        full["BREAKGLASS_LIBRARY"] = os.environ.get("BREAKGLASS_LIBRARY", "")
        full["PYTHONPATH"] = str(Path(breakglass.__file__).resolve().parents[1])
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "-w", str(workers),
             "-b", f"127.0.0.1:{self.port}", *extra],
            env=full, stdout=self._log_file, stderr=subprocess.STDOUT, cwd=str(EXAMPLES),
        )
        # The lifetime bound: a test that dies leaves no server behind.
        self._timer = threading.Timer(lifetime, self.kill)
        self._timer.daemon = True
        self._timer.start()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(OSError):
                if get(self.port, "/")[0] == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"gunicorn did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM to the master, as a service manager stops it; its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._timer.cancel()
        self._log_file.close()


def _request(port: int, method: str, path: str, form: Optional[Dict[str, str]] = None,
             cookie: str = "") -> Tuple[int, Dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def get(port: int, path: str, cookie: str = "") -> Tuple[int, Dict[str, str], str]:
    return _request(port, "GET", path, cookie=cookie)


def post(port: int, path: str, form: Dict[str, str], cookie: str = "") -> Tuple[int, Dict[str, str], str]:
    return _request(port, "POST", path, form, cookie)


def session_cookie(headers: Dict[str, str]) -> str:
    """``name=value`` of the session cookie a /complete answer set."""
    return headers["set-cookie"].split(";", 1)[0]


@contextlib.contextmanager
def receiver(fail: int = 0) -> Iterator[Receiver]:
    r = Receiver(fail)
    try:
        yield r
    finally:
        r.close()
