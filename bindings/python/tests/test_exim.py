"""Mail through a real MTA: Debian's exim4 (exim4-daemon-light), started by the test on a free
loopback port with a configuration the test writes (its own spool and maildir, a certificate it
makes, STARTTLS offered, every address delivered locally: nothing leaves the machine).

Each TLS level and the sendmail transport deliver a code email and an alert; the test reads the
delivered files and checks headers, body, the event id and that nothing was injected."""

from __future__ import annotations

import email
import email.policy
import getpass
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import breakglass
from conftest import free_port, run_script, stats_delta
from test_smtp_tls import make_ca_and_cert

FROM = "breakglass@example.com"
HOSTILE_IP = "203.0.113.50\r\nBcc: evil@example.com"

EXIM = shutil.which("exim") or shutil.which("exim4") or (
    "/usr/sbin/exim" if os.path.exists("/usr/sbin/exim") else None)

CONFIG = """
primary_hostname = mta.test
exim_user = {user}
exim_group = {group}
spool_directory = {d}/spool
log_file_path = {d}/log/%slog
pid_file_path = {d}/exim.pid
daemon_smtp_ports = {port} : {tls_port}
tls_on_connect_ports = {tls_port}
local_interfaces = 127.0.0.1
tls_advertise_hosts = *
tls_certificate = {d}/server.pem
tls_privatekey = {d}/server.key
host_lookup =
rfc1413_hosts =
keep_environment =
acl_smtp_rcpt = accept_all
trusted_users = {user} : root

begin acl
accept_all:
  accept

begin routers
everyone:
  driver = accept
  transport = maildir

begin transports
maildir:
  driver = appendfile
  directory = {d}/mail
  maildir_format
  create_directory
  user = {user}
  group = {group}
  envelope_to_add
  return_path_add

begin retry
* * F,1m,1m
"""


class Exim:
    def __init__(self, d: Path) -> None:
        if os.geteuid() == 0:
            user = group = "Debian-exim"
        else:
            user, group = getpass.getuser(), str(os.getegid())
        self.dir = d
        self.port = free_port()
        self.tls_port = free_port()  # TLS from the first byte, for smtps://
        for sub in ("spool", "log", "mail"):
            (d / sub).mkdir()
            shutil.chown(d / sub, user, group if not group.isdigit() else int(group))
        make_ca_and_cert(d)  # server.pem is signed by ca.pem, which nobody trusts by default
        (d / "server.key").chmod(0o644)
        self.config = d / "exim.conf"
        self.config.write_text(CONFIG.format(d=d, port=self.port, tls_port=self.tls_port, user=user,
                                              group=group))
        # The daemon stops by itself: `timeout` ends it if the test's own cleanup never runs.
        self.proc = subprocess.Popen(
            ["timeout", "300", EXIM, "-C", str(self.config), "-bdf"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"exim did not start: {self.log()}")
                time.sleep(0.05)
        self.sendmail = d / "sendmail"
        self.sendmail.write_text(f'#!/bin/sh\nexec {EXIM} -C {self.config} "$@"\n')
        self.sendmail.chmod(0o755)

    def log(self) -> str:
        p = self.dir / "log" / "mainlog"
        return p.read_text() if p.exists() else ""

    def messages(self, count: int, timeout: float = 20) -> List[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        new = self.dir / "mail" / "new"
        while True:
            files = sorted(new.glob("*")) if new.exists() else []
            if len(files) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
                for f in files]

    def clear(self) -> None:
        for f in (self.dir / "mail" / "new").glob("*"):
            f.unlink()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def exim() -> Iterator[Exim]:
    if EXIM is None:
        pytest.skip("exim is not installed (apt-get install exim4-daemon-light; .ci/deps.sh "
                    "installs it)")
    # Not under pytest's tmp_path: that is private to the test's user, and exim delivers as
    # its own user, which must reach the spool and the mailbox.
    d = Path(tempfile.mkdtemp(prefix="bg-exim-"))
    d.chmod(0o755)
    try:
        m = Exim(d)
        try:
            yield m
        finally:
            m.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def _empty_mailbox(request):
    if "exim" in request.fixturenames:
        request.getfixturevalue("exim").clear()
    yield


def deliver_code_and_alert(mailer: str) -> tuple:
    breakglass.configure(mailer=mailer, from_email=FROM, otp_email="oncall@example.com",
                         alert_emails=["ops@example.com", "ops@EXAMPLE.com"],
                         delivery_timeout_ms=5000)
    before = breakglass.stats()
    code = breakglass.generate()
    breakglass.send_otp(code)
    breakglass.alert(HOSTILE_IP)
    breakglass.flush(60)
    return code, stats_delta(before)


def check_delivered(exim: Exim, code: str) -> List[email.message.EmailMessage]:
    msgs = exim.messages(2)
    # The same address twice in alert_emails (domain in another case) is one alert.
    assert len(msgs) == 2, exim.log()
    by_to = {m["Envelope-to"]: m for m in msgs}
    assert set(by_to) == {"oncall@example.com", "ops@example.com"}, exim.log()
    otp, alert = by_to["oncall@example.com"], by_to["ops@example.com"]
    assert otp["Return-path"] == f"<{FROM}>" and alert["Return-path"] == f"<{FROM}>"
    assert otp["Subject"] == "Break-glass one-time code"
    assert code in otp.get_content()
    # The alert: the hostile ip is escaped, never a header of its own; the event id is in a
    # header and in the body; the code is nowhere in it.
    assert alert["Subject"].startswith("[BREAK-GLASS] Emergency login from 203.0.113.50")
    assert alert["Bcc"] is None and "evil@example.com" not in alert["Envelope-to"]
    assert "\\u{d}\\u{a}Bcc" in alert["Subject"]
    event_id = alert["X-Breakglass-Event-Id"]
    assert event_id and re.fullmatch(r"[0-9a-f]{32}", event_id), alert
    body = alert.get_content()
    assert event_id in body and code not in body
    return msgs


def test_opportunistic_tls_encrypts_to_an_mta_with_an_untrusted_certificate(exim, records):
    breakglass.set_log_level(logging.INFO)
    code, d = deliver_code_and_alert(f"smtp://127.0.0.1:{exim.port}?tls=opportunistic")
    assert (d["emails_sent"], d["emails_failed"]) == (2, 0)
    msgs = check_delivered(exim, code)
    for m in msgs:
        assert "with esmtps" in m["Received"], m["Received"]  # it went over TLS
    infos = records.at(logging.INFO)
    assert any("certificate not verified" in i for i in infos), infos
    # Once per session: the code email and the alert each had one.
    assert len([i for i in infos if "certificate not verified" in i]) == 2


def test_required_tls_refuses_an_untrusted_certificate_and_never_falls_back(exim, records):
    code, d = deliver_code_and_alert(f"smtp://127.0.0.1:{exim.port}")
    assert (d["emails_sent"], d["emails_failed"]) == (0, 2)
    assert exim.messages(0, timeout=0) == []
    assert any("certificate" in e.lower() for e in records.at(logging.ERROR)), records.at(40)


def deliver_trusting_the_test_ca(exim: Exim, mailer: str) -> None:
    """Code email and alert through `mailer`, in a process that trusts the test CA only."""
    body = f"""
breakglass.configure(mailer={mailer!r}, from_email={FROM!r}, otp_email="oncall@example.com",
                     alert_emails=["ops@example.com", "ops@EXAMPLE.com"])
before = stats()
code = breakglass.generate()
breakglass.send_otp(code)
breakglass.alert({HOSTILE_IP!r})
breakglass.flush(60)
emit({{"code": code, "delta": delta(before)}})
"""
    r = run_script(body, env={"SSL_CERT_FILE": str(exim.dir / "ca.pem")})
    assert (r["delta"]["emails_sent"], r["delta"]["emails_failed"]) == (2, 0), r["_stderr"]
    for m in check_delivered(exim, r["code"]):
        assert "with esmtps" in m["Received"]


def test_required_tls_delivers_when_the_relays_ca_is_trusted(exim):
    deliver_trusting_the_test_ca(exim, f"smtp://localhost:{exim.port}")


def test_smtps_delivers_over_tls_from_the_first_byte(exim):
    deliver_trusting_the_test_ca(exim, f"smtps://localhost:{exim.tls_port}")


def test_the_sendmail_transport_delivers_through_exims_own_sendmail(exim):
    code, d = deliver_code_and_alert(f"sendmail://{exim.sendmail}")
    assert (d["emails_sent"], d["emails_failed"]) == (2, 0), exim.log()
    check_delivered(exim, code)
