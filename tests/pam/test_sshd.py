"""A real sshd on 127.0.0.1 with pam_breakglass.so, driven by the OpenSSH client.

sshd always uses the PAM service "sshd" (/etc/pam.d/sshd): it runs inside a private mount
namespace (``unshare -m``) in which the test's own directory is bind-mounted over /etc/pam.d,
so the host's PAM configuration is never touched. The test creates a user of its own
(``bgpamtest``, removed afterwards); sshd is stopped by its pid (and dies with the test run:
``setpriv --pdeathsig``, plus a lifetime bound).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, List

import pytest
from conftest import HERE, MODULE, PASSWORD, wait_until, which

SSHD = which("sshd")
SSH = which("ssh")
SSH_USER = "bgpamtest"
LIFETIME = 300.0

pytestmark = [
    pytest.mark.skipif(SSHD is None, reason="sshd is not installed (apt-get install openssh-server)"),
    pytest.mark.skipif(SSH is None, reason="ssh is not installed (apt-get install openssh-client)"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing"),
]


@pytest.fixture(scope="module")
def ssh_user() -> Iterator[str]:
    """A local account for the test, created and removed here."""
    try:
        pwd.getpwnam(SSH_USER)
        created = False
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", SSH_USER],
                       check=True)
        created = True
    try:
        yield SSH_USER
    finally:
        if created:
            subprocess.run(["userdel", SSH_USER], check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    def __init__(self, env, user: str) -> None:
        self.dir = env.tmp / "sshd"
        self.dir.mkdir()
        self.port = free_port()
        key = self.dir / "host_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        pamd = self.dir / "pam.d"
        pamd.mkdir()
        (pamd / "sshd").write_text(
            f"auth [success=done ignore=ignore default=die] {MODULE} config={env.config} "
            f"user={user}\n"
            "auth requisite pam_deny.so\n"
            "account required pam_permit.so\n"
            f"session optional {MODULE} config={env.config}\n"
            "session required pam_permit.so\n"
            "password requisite pam_deny.so\n")
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n"
            "PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n"
            "PermitRootLogin no\nUseDNS no\nLoginGraceTime 120\nMaxAuthTries 10\n"
            "MaxStartups 20:30:60\nStrictModes no\nPrintMotd no\n"
            f"AllowUsers {user}\n")
        self.log = self.dir / "sshd.log"
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        script = (f"mount --bind {pamd} /etc/pam.d && "
                  f"exec {SSHD} -D -e -f {self.config}")
        prefix = [shutil.which("setpriv"), "--pdeathsig", "KILL", "--"] if shutil.which(
            "setpriv") else []
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                prefix + ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.watchdog = threading.Timer(LIFETIME, self.stop)
        self.watchdog.daemon = True
        self.watchdog.start()
        if not wait_until(self.listening, 20):
            self.stop()
            raise RuntimeError(f"sshd did not start:\n{self.log.read_text()}")

    def listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"sshd exited:\n{self.log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        # setpriv and unshare exec in place: this pid is sshd's (the listener). Its connection
        # processes finish by themselves once their clients are gone: give them a moment, so
        # that none is orphaned half-way through its teardown.
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        wait_until(lambda: not children.exists() or not children.read_text().strip(), 10)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.watchdog.cancel()

    def ssh(self, env, user: str, *, code: str = "right", password: str = PASSWORD,
            tries: int = 1, command: str = "id") -> subprocess.CompletedProcess:
        askpass = self.dir / "askpass"
        if not askpass.exists():
            askpass.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'askpass.py'} \"$@\"\n")
            askpass.chmod(0o755)
        cmd = [SSH, "-F", "/dev/null", "-p", str(self.port),
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "PreferredAuthentications=keyboard-interactive",
               "-o", f"NumberOfPasswordPrompts={tries}", "-o", "ConnectTimeout=20",
               "-o", "LogLevel=ERROR", f"{user}@127.0.0.1", command]
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSH_ASKPASS": str(askpass),
                 "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0",
                 "BG_ASK_PASSWORD": password, "BG_ASK_OUTBOX": str(env.outbox.path),
                 "BG_ASK_CODE": code})


@pytest.fixture
def webhook() -> Iterator[object]:
    from bgserve import Servers

    with Servers(smtp="ok", http="ok", lifetime=LIFETIME) as s:
        yield s


@pytest.fixture
def sshd(env, ssh_user, webhook) -> Iterator[Sshd]:
    env.settings["BREAKGLASS_ALERT_WEBHOOK_URL"] = webhook.http_url
    env.write_config()
    server = Sshd(env, ssh_user)
    try:
        yield server
    finally:
        server.stop()


def events(env, kind: str) -> List[dict]:
    return [e for e in env.events() if e["event"] == kind]


def test_a_login_runs_id_and_raises_the_alarm(env, sshd, ssh_user, webhook):
    r = sshd.ssh(env, ssh_user)
    assert r.returncode == 0, (r.stderr, sshd.log.read_text()[-3000:])
    assert f"({ssh_user})" in r.stdout and "uid=" in r.stdout
    assert webhook.wait_for(requests=1, timeout=30), "the alarm did not reach the webhook"
    body = json.loads(webhook.requests[0]["body"])
    assert "127.0.0.1" in json.dumps(body)
    assert len(events(env, "login_succeeded")) == 1
    # The session ends when sshd closes the PAM session (in the process that holds it, or
    # not at all: sshd authenticates in a child of its own; both are fine).
    assert len(env.outbox.alerts()) == 1


def test_a_wrong_code_is_denied(env, sshd, ssh_user, webhook):
    r = sshd.ssh(env, ssh_user, code="wrong")
    assert r.returncode == 255 and "uid=" not in r.stdout
    assert len(events(env, "login_failed")) == 1 and not events(env, "login_succeeded")
    time.sleep(1)
    # No login alarm; the wrong code raised the guessing alarm only.
    posted = [json.loads(r["body"])["event"] for r in webhook.requests]
    assert posted == ["break_glass_guessing"], posted


def test_three_connections_share_one_set_of_limits(env, sshd, ssh_user):
    max_attempts = 3
    env.write_config(BREAKGLASS_MAX_ATTEMPTS=str(max_attempts), BREAKGLASS_LOCKOUT_SECONDS="900")
    # Three connections at once from 127.0.0.1, each allowed three keyboard-interactive tries
    # of right password + wrong code: nine tries, one address.
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: sshd.ssh(env, ssh_user, code="wrong", tries=3),
                                range(3)))
    assert all(r.returncode == 255 and "uid=" not in r.stdout for r in results)
    failed = events(env, "login_failed")   # codes evaluated and refused
    refused = events(env, "login_refused")  # refused before any evaluation (the lockout)
    assert 1 <= len(failed) <= max_attempts, [e.get("detail") for e in failed]
    assert any("locked out" in json.dumps(e) for e in refused), refused
