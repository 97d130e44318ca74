"""Fixtures for pam_breakglass.so's tests (run as root: the module refuses a configuration file
that root does not own).

    build/venv/bin/python -m pytest -q tests/pam          # `make test-pam`

THE STORE: the module requires host-wide state. Every test gets it from the ``store`` fixture
below, chosen by one environment variable:
    BG_PAM_STORE=slot_url   (default) a redis-server started by the fixture on 127.0.0.1
    BG_PAM_STORE=state_dir  a fresh state directory in the test's temp dir
"""

from __future__ import annotations

import json
import os
import re
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Union

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for path in (REPO / "tests" / "redis", REPO / "tests" / "servers"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import slotkit  # noqa: E402

#: The one switch between the stores (see the module docstring).
STORE = os.environ.get("BG_PAM_STORE", "slot_url")
MODULE = Path(os.environ.get("BG_PAM_MODULE", REPO / "target" / "debug" / "pam_breakglass.so"))
USER = "bgadmin"
PASSWORD = "correct horse battery staple"
CODE_MARK = re.compile(r"one-time code is: ([0-9]{6})")

PAM_SUCCESS, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_IGNORE = 0, 7, 9, 25
DENIED = "Break-glass login denied."
PASSWORD_PROMPT = "Break-glass password: "
CODE_SENT = "A code was sent to the break-glass address."
CODE_PROMPT = "Break-glass code: "


def pytest_report_header(config) -> List[str]:
    return [f"pam_breakglass: {MODULE} on store {STORE} (BG_PAM_STORE)"]


def pytest_collection_modifyitems(config, items) -> None:
    why = None
    if os.geteuid() != 0:
        why = "pam_breakglass tests run as root: the module refuses a config root does not own"
    elif not MODULE.exists():
        why = f"{MODULE} is not built (make build)"
    if why:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def password_hash() -> str:
    from argon2 import PasswordHasher

    # OWASP's argon2id minimum, what `breakglass hash-password` makes.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD)


@pytest.fixture
def store(tmp_path) -> Iterator[Dict[str, str]]:
    """The configuration lines of the host-wide store every test runs on (BG_PAM_STORE)."""
    if STORE == "state_dir":
        yield {"BREAKGLASS_STATE_DIR": str(tmp_path / "state")}
    elif STORE == "slot_url":
        binary = slotkit.redis_server_binary()
        if not binary:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        server = slotkit.Server("redis", binary, tmp_path / "redis").start()
        try:
            yield {"BREAKGLASS_SLOT_URL": server.url}
        finally:
            server.kill()
    else:
        raise ValueError(f"BG_PAM_STORE={STORE!r}: want slot_url or state_dir")


class Outbox:
    """The file outbox: new code emails and alert emails, as a person would read them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: set = set()

    def new_code(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in sorted(self.path.iterdir()):
                if p in self.seen:
                    continue
                m = CODE_MARK.search(p.read_text(errors="replace"))
                if m:
                    self.seen.add(p)
                    return m.group(1)
            time.sleep(0.05)
        raise AssertionError("no new code email in the outbox")

    def alerts(self) -> List[str]:
        texts = [p.read_text(errors="replace") for p in sorted(self.path.iterdir())]
        return [t for t in texts if "X-Breakglass-Event-Id:" in t]


class Env:
    """One test's setup: a config file, a service directory, an outbox, an audit trail."""

    def __init__(self, tmp: Path, store: Dict[str, str], password_hash: str) -> None:
        self.tmp = tmp
        self.outbox = Outbox(tmp / "outbox")
        self.outbox.path.mkdir()
        self.audit = tmp / "audit.jsonl"
        self.config = tmp / "breakglass.conf"
        self.confdir = tmp / "pam.d"
        self.confdir.mkdir()
        self.settings: Dict[str, str] = {
            "BREAKGLASS_PASSWORD_HASH": password_hash,
            "BREAKGLASS_MAILER": self.outbox.path.as_uri(),
            "BREAKGLASS_FROM_EMAIL": "breakglass@example.com",
            "BREAKGLASS_OTP_EMAIL": "oncall@example.com",
            "BREAKGLASS_ALERT_EMAILS": "security@example.com",
            "BREAKGLASS_ALLOWED_IPS": "127.0.0.0/8, ::1/128",
            "BREAKGLASS_AUDIT_LOG": str(self.audit),
            **store,
        }
        self.write_config()
        self.service("bg", f"auth required {MODULE} config={self.config} user={USER}\n"
                           f"session optional {MODULE} config={self.config}\n")
        # What README recommends: other users fall through to the rest of the stack (here
        # pam_permit, so that "ignored" shows as a success without a single prompt).
        self.service("bg-stack",
                     f"auth [success=done ignore=ignore default=die] {MODULE} "
                     f"config={self.config} user={USER}\n"
                     "auth required pam_permit.so\n")

    def write_config(self, text: Optional[str] = None, mode: int = 0o600, **overrides) -> None:
        settings = {**self.settings, **overrides}
        body = text if text is not None else "".join(
            f"{k}={v}\n" for k, v in settings.items() if v is not None)
        self.config.write_text("# pam_breakglass test configuration\n\n" + body)
        os.chmod(self.config, mode)

    def service(self, name: str, text: str) -> Path:
        path = self.confdir / name
        path.write_text(text)
        return path

    def events(self) -> List[dict]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines() if line]

    def login(self, *, user: str = USER, password: Optional[str] = PASSWORD,
              code: Union[str, Callable[[], str], None] = "outbox", rhost: Optional[str] = "127.0.0.1",
              service: str = "bg", session: bool = False, fork_password: Optional[str] = None,
              syslog: bool = False, silent: bool = False, timeout: float = 60.0) -> dict:
        """One authentication through libpam (tests/pam/pamdrive.py). ``code="outbox"``
        answers the code prompt with the code read from the outbox; ``None`` ends the
        conversation there. Returns the driver's last line plus ``messages`` and, with
        ``syslog``, the datagrams the process sent to /dev/log (see :class:`SyslogCatcher`)."""
        cmd = [sys.executable, str(HERE / "pamdrive.py"), "--confdir", str(self.confdir),
               "--service", service, "--user", user]
        if rhost is not None:
            cmd += ["--rhost", rhost]
        if session:
            cmd.append("--session")
        if fork_password is not None:
            cmd += ["--fork-password", fork_password]
        if silent:
            cmd.append("--silent")
        catcher = SyslogCatcher(self.tmp) if syslog else None
        if catcher:
            cmd = catcher.wrap(cmd)
        answers = {PASSWORD_PROMPT: password}
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        messages: List[dict] = []
        lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put("")],
                         daemon=True).start()
        deadline = time.monotonic() + timeout
        try:
            assert proc.stdout is not None and proc.stdin is not None
            while True:
                try:
                    line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
                except queue.Empty:
                    raise AssertionError(f"pamdrive timed out; messages so far: {messages}")
                if not line:
                    raise AssertionError(f"pamdrive ended early: {proc.stderr.read()}")
                msg = json.loads(line)
                if "rc" in msg:
                    msg["messages"] = messages
                    msg["stderr"] = proc.stderr.read()
                    if catcher:
                        msg["syslog"] = catcher.lines()
                    return msg
                messages.append(msg)
                if msg["style"] not in (1, 2):
                    continue
                if msg["text"].endswith(PASSWORD_PROMPT):
                    answer = password
                elif msg["text"].endswith(CODE_PROMPT):
                    answer = (self.outbox.new_code() if code == "outbox"
                              else code() if callable(code) else code)
                else:
                    answer = answers.get(msg["text"])
                if answer is None:
                    proc.stdin.close()
                else:
                    proc.stdin.write(answer + "\n")
                    proc.stdin.flush()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if catcher:
                catcher.close()


class SyslogCatcher:
    """What a process sends to syslog(3): it runs in a private mount namespace whose /dev is a
    tmpfs holding null, zero, urandom and random from the real one and a /dev/log that is this
    test's socket. The host's /dev and its syslog are never touched."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "syslog"
        self.dir.mkdir(exist_ok=True)
        self.path = self.dir / "log.sock"
        if self.path.exists():
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)

    def wrap(self, cmd: List[str]) -> List[str]:
        old = self.dir / "realdev"
        old.mkdir(exist_ok=True)
        nodes = " ".join(("null", "zero", "urandom", "random"))
        script = (f"mount --bind /dev {old} && mount -t tmpfs tmpfs /dev && "
                  f"for n in {nodes}; do touch /dev/$n && mount --bind {old}/$n /dev/$n; done && "
                  f"ln -s {self.path} /dev/log && exec \"$@\"")
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *cmd]

    def lines(self) -> List[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(65536).decode(errors="replace"))
            except (socket.timeout, BlockingIOError):
                return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def env(tmp_path, store, password_hash) -> Env:
    return Env(tmp_path, store, password_hash)


def texts(result: dict, style: Optional[int] = None) -> List[str]:
    return [m["text"] for m in result["messages"] if style is None or m["style"] == style]


def wait_until(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def which(name: str) -> Optional[str]:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
