#!/usr/bin/env python3
"""Real SMTP and HTTP servers on 127.0.0.1 for libbreakglass's tests.

Used two ways:
  * imported (Python tests): ``with Servers(smtp="ok", http="ok") as s: ... s.mails ... s.requests``
  * as a program (Go, C and Rust tests):
        python3 bgserve.py --smtp ok --http status:500 --lifetime 60
    prints one JSON line ``{"smtp_port": N, "http_port": M}``, then one JSON line per
    received message (``{"kind": "mail", ...}``) or request (``{"kind": "http", ...}``), and
    exits when stdin closes or the lifetime ends, whichever comes first.

SMTP modes: ``ok`` (aiosmtpd, accepts everything), ``reject:ADDR[,ADDR]`` (aiosmtpd, 550 for
those recipients), ``tempfail-once`` (aiosmtpd, 451 for the first RCPT, then ok),
``late:N`` (aiosmtpd; takes the first N messages but answers their DATA only after
``LATE_SECONDS``, then accepts at once), ``stall`` (accepts the TCP connection, never says a
word), ``garbage`` (answers nonsense), ``drop-data`` (speaks SMTP until DATA, then drops the
connection mid-message), ``trickle`` (an endless multi-line greeting, one byte every 0.3 s:
each read is quick, the session never ends).
HTTP modes: ``ok`` (200), ``status:N``, ``hang`` (reads the request, never answers),
``late:N`` (reads the first N requests and answers 200 only after ``LATE_SECONDS``, then at
once), ``redirect`` (302 to /elsewhere), ``bad-status`` (an invalid status line).

Servers bind 127.0.0.1 only and stop by themselves after ``lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List, Optional

#: How long ``late:N`` servers take to answer: longer than any delivery timeout the tests set.
LATE_SECONDS = 2.0


def free_port() -> int:
    # aiosmtpd's Controller cannot bind port 0 (it connects to itself to check readiness).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder:
    def __init__(self, on_event: Optional[Callable[[dict], None]]):
        self.lock = threading.Condition()
        self.mails: List[dict] = []
        self.requests: List[dict] = []
        self.on_event = on_event

    def add(self, kind: str, item: dict) -> None:
        with self.lock:
            (self.mails if kind == "mail" else self.requests).append(item)
            self.lock.notify_all()
        if self.on_event:
            self.on_event(dict(item, kind=kind))


# ---------------------------------------------------------------- SMTP (aiosmtpd)
class _Handler:
    def __init__(self, rec: _Recorder, reject: set, tempfail_once: bool, late: int = 0):
        self.rec, self.reject, self.tempfail_once, self.late = rec, reject, tempfail_once, late

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 mailbox unavailable"
        if self.tempfail_once:
            self.tempfail_once = False
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.rec.add(
            "mail",
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf-8", "replace"),
                "peer": session.peer[0],
                "peer_port": session.peer[1],
                "tls": session.ssl is not None,
            },
        )
        if self.late > 0:
            # The message is taken, but the client gives up before hearing so: it will retry.
            self.late -= 1
            await asyncio.sleep(LATE_SECONDS)
        return "250 Message accepted"


# ---------------------------------------------------------------- raw fault servers
def _raw_server(port: int, mode: str, stop: threading.Event) -> threading.Thread:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    srv.settimeout(0.2)
    held: list = []

    def serve(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if mode == "stall":
                held.append(conn)  # keep it open and silent until stop
                return
            if mode == "trickle":
                line = b"220-slow.test still greeting\r\n"
                while not stop.is_set():
                    for b in line:
                        conn.sendall(bytes([b]))
                        if stop.wait(0.3):
                            return
                return
            if mode == "garbage":
                conn.sendall(b"\x00\xffHELLO?? this is not SMTP\r\n%%%\r\n")
                conn.recv(1024)
                conn.sendall(b"999 ???\r\n")
                return
            # drop-data: a plausible SMTP dialogue until the message body starts.
            f = conn.makefile("rb")
            conn.sendall(b"220 fault.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250-fault.test\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    f.readline()  # first line of the message, then hang up
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 OK\r\n")
        except OSError:
            pass
        finally:
            if mode != "stall":
                conn.close()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        for c in held:
            c.close()
        srv.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------- HTTP
def _http_server(mode: str, rec: _Recorder, stop: threading.Event) -> ThreadingHTTPServer:
    late = {"left": int(mode.split(":", 1)[1]) if mode.startswith("late:") else 0}
    late_lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            rec.add(
                "http",
                {
                    "method": "POST",
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                },
            )
            self._answer()

        def do_GET(self):
            rec.add("http", {"method": "GET", "path": self.path, "headers": {}, "body": ""})
            self._answer()

        def _answer(self):
            if mode == "hang":
                stop.wait()
                return
            if mode.startswith("late:"):
                with late_lock:
                    is_late = late["left"] > 0
                    late["left"] -= int(is_late)
                if is_late:
                    stop.wait(LATE_SECONDS)  # the client has timed out by then
                    try:
                        self._send_ok()
                    except OSError:
                        pass
                    return
                self._send_ok()
                return
            if mode == "bad-status":
                self.wfile.write(b"HTTP/1.1 OK-ish\r\n\r\n")
                return
            if mode == "redirect":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = int(mode.split(":", 1)[1]) if mode.startswith("status:") else 200
            self._send_ok(status)

        def _send_ok(self, status: int = 200):
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return httpd


class Servers:
    """An SMTP server and an HTTP server on 127.0.0.1; a context manager."""

    def __init__(self, smtp: str = "ok", http: str = "ok", lifetime: float = 120.0,
                 on_event: Optional[Callable[[dict], None]] = None):
        self.smtp_mode, self.http_mode, self.lifetime = smtp, http, lifetime
        self.rec = _Recorder(on_event)
        self._stop = threading.Event()
        self._controller = None
        self._httpd = None
        self.smtp_port = 0
        self.http_port = 0

    # what the tests read
    @property
    def mails(self) -> List[dict]:
        with self.rec.lock:
            return list(self.rec.mails)

    @property
    def requests(self) -> List[dict]:
        with self.rec.lock:
            return list(self.rec.requests)

    def wait_for(self, mails: int = 0, requests: int = 0, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.rec.lock:
            while len(self.rec.mails) < mails or len(self.rec.requests) < requests:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.rec.lock.wait(left)
        return True

    @property
    def smtp_url(self) -> str:
        return f"smtp://127.0.0.1:{self.smtp_port}?tls=opportunistic"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/hook"

    def start(self) -> "Servers":
        self.smtp_port = free_port()
        if self.smtp_mode in ("stall", "garbage", "drop-data", "trickle"):
            _raw_server(self.smtp_port, self.smtp_mode, self._stop)
        else:
            from aiosmtpd.controller import Controller

            reject = set()
            if self.smtp_mode.startswith("reject:"):
                reject = {a.strip().lower() for a in self.smtp_mode[7:].split(",")}
            late = int(self.smtp_mode[5:]) if self.smtp_mode.startswith("late:") else 0
            handler = _Handler(self.rec, reject, self.smtp_mode == "tempfail-once", late)
            self._controller = Controller(handler, hostname="127.0.0.1", port=self.smtp_port)
            self._controller.start()
        self._httpd = _http_server(self.http_mode, self.rec, self._stop)
        self.http_port = self._httpd.server_address[1]
        # The lifetime bound: a crashed test leaves nothing running for long.
        timer = threading.Timer(self.lifetime, self.stop)
        timer.daemon = True
        timer.start()
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._controller is not None:
            try:
                self._controller.stop()
            except Exception:
                pass
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "Servers":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smtp", default="ok")
    ap.add_argument("--http", default="ok")
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()
    out_lock = threading.Lock()

    def emit(obj: dict) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    servers = Servers(args.smtp, args.http, args.lifetime, on_event=emit).start()
    emit({"smtp_port": servers.smtp_port, "http_port": servers.http_port})
    done = threading.Event()

    def watch_stdin() -> None:
        try:
            while sys.stdin.read(1):
                pass
        except (OSError, ValueError):
            pass
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(args.lifetime)
    servers.stop()


if __name__ == "__main__":
    main()
