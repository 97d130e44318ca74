"""A hostile stand-in for Redis: a RESP server on 127.0.0.1 that answers each command the way a
test tells it to, with a crafted reply, a trickle, or an endless flood.

It bounds itself: it binds 127.0.0.1 only, serves on daemon threads, and stops serving (and
sending) after ``lifetime`` seconds even if the test that started it hangs or crashes.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Union


@dataclass
class Trickle:
    """Send ``data`` one byte every ``interval`` seconds."""

    data: bytes
    interval: float


@dataclass
class Flood:
    """Send ``head``, then ``chunk`` again and again, as fast as the client takes it."""

    head: bytes
    chunk: bytes


Plan = Union[bytes, Trickle, Flood, None]  # None: answer nothing, keep the connection open


def bulk(value: Union[bytes, str, int]) -> bytes:
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = value.encode()
    return b"$%d\r\n%s\r\n" % (len(value), value)


def array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


def take_reply(record: Union[bytes, str], secs: Union[int, str], micros: Union[int, str]) -> bytes:
    """What the take script returns: {record or '', TIME seconds, TIME microseconds}."""
    return array(bulk(record), bulk(secs), bulk(micros))


class FakeResp:
    """``respond(args)`` gets each command as a list of bytes (``[b"EVALSHA", sha, b"1", key,
    ...]``) and returns a :data:`Plan`. AUTH and SELECT reach it too. With ``tls`` (a server
    context), every connection is TLS."""

    def __init__(self, respond: Callable[[List[bytes]], Plan], lifetime: float = 60.0,
                 tls: Optional[ssl.SSLContext] = None) -> None:
        self.respond = respond
        self.tls = tls
        self.stop_at = time.monotonic() + lifetime
        self.commands: List[List[bytes]] = []
        self.sent = 0  # bytes of trickles and floods sent so far
        self.trickle_done = threading.Event()  # a trickle sent its last byte
        self.client_gone = threading.Event()  # a send failed: the client closed the connection
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return time.monotonic() < self.stop_at

    def stop(self) -> None:
        self.stop_at = 0.0

    def __enter__(self) -> "FakeResp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def names(self) -> List[str]:
        """The command names received so far, upper case."""
        with self._lock:
            return [c[0].decode().upper() for c in self.commands if c]

    # -- serving
    def _accept(self) -> None:
        try:
            while self.alive():
                try:
                    conn, _ = self._listener.accept()
                except socket.timeout:
                    continue
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        finally:
            self._listener.close()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            if self.tls is not None:
                conn.settimeout(5.0)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(0.2)
            while self.alive():
                parsed = _parse_command(buf)
                if parsed is None:
                    try:
                        chunk = conn.recv(65536)
                    except socket.timeout:
                        continue
                    if not chunk:
                        return
                    buf += chunk
                    continue
                args, buf = parsed
                with self._lock:
                    self.commands.append(args)
                self._carry_out(conn, self.respond(args))
        except OSError:
            self.client_gone.set()
        except ValueError:
            pass  # not our client: drop it
        finally:
            conn.close()

    def _carry_out(self, conn: socket.socket, plan: Plan) -> None:
        if plan is None:
            return
        if isinstance(plan, bytes):
            conn.sendall(plan)
        elif isinstance(plan, Trickle):
            for i in range(len(plan.data)):
                if not self.alive():
                    return
                conn.sendall(plan.data[i:i + 1])
                self.sent += 1
                time.sleep(plan.interval)
            self.trickle_done.set()
        elif isinstance(plan, Flood):
            conn.settimeout(1.0)
            conn.sendall(plan.head)
            while self.alive():
                try:
                    conn.sendall(plan.chunk)
                except socket.timeout:
                    continue  # the client is not reading: it is not gone either
                self.sent += len(plan.chunk)


def _parse_command(buf: bytes) -> Optional[tuple]:
    """One ``*n`` array of ``$len`` bulk strings from the front of ``buf``, or None if more is
    needed."""
    if not buf.startswith(b"*"):
        if buf:
            raise ValueError(f"not a RESP command: {buf[:20]!r}")
        return None
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    count, pos, args = int(buf[1:end]), end + 2, []
    for _ in range(count):
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        size = int(buf[pos + 1:end])
        start = end + 2
        if len(buf) < start + size + 2:
            return None
        args.append(buf[start:start + size])
        pos = start + size + 2
    return args, buf[pos:]
