"""SMTP transport security against a real aiosmtpd server: STARTTLS through rustls with a CA the
test makes and trusts through SSL_CERT_FILE, `tls=required` (the default) refusing a server
without STARTTLS, and one connection reused for every message of an alert."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

import breakglass
from conftest import Servers, run_script, stats_delta

FROM = "breakglass@example.com"


def make_ca_and_cert(d: Path) -> ssl.SSLContext:
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("the openssl command-line tool is not installed")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2", "-subj", "/CN=bg test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"), "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey",
        str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "2",
        "-extfile", str(d / "ext.cnf"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(d / "server.pem"), str(d / "server.key"))
    return ctx


class TlsServers(Servers):
    """bgserve's servers, with the SMTP server offering (and requiring) STARTTLS."""

    def __init__(self, tls_context: ssl.SSLContext) -> None:
        super().__init__()
        self.tls_context = tls_context

    def start(self) -> "TlsServers":
        from aiosmtpd.controller import Controller

        import bgserve

        super().start()
        self._controller.stop()
        handler = bgserve._Handler(self.rec, set(), False)
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.smtp_port,
                                      tls_context=self.tls_context, require_starttls=True)
        self._controller.start()
        return self


SEND_ONE = """
breakglass.configure(mailer=MAILER, from_email="{from_}", otp_email="oncall@example.com",
                     delivery_timeout_ms=3000)
before = stats()
code = breakglass.generate()
breakglass.send_otp(code)
breakglass.flush(30)
emit({{"code": code, "delta": delta(before)}})
"""


def test_starttls_with_a_ca_trusted_through_ssl_cert_file(tmp_path):
    ctx = make_ca_and_cert(tmp_path)
    with TlsServers(ctx) as s:
        mailer = f"smtp://localhost:{s.smtp_port}"  # tls=required is the default
        r = run_script("MAILER = " + repr(mailer) + SEND_ONE.format(from_=FROM),
                       env={"SSL_CERT_FILE": str(tmp_path / "ca.pem"), "SSL_CERT_DIR": str(tmp_path)})
        assert r["delta"]["emails_sent"] == 1 and r["delta"]["emails_failed"] == 0
        assert s.wait_for(mails=1)
        [mail] = s.mails
        assert mail["tls"] is True
        assert r["code"] in mail["data"]


def test_an_untrusted_certificate_is_a_counted_failure(tmp_path):
    ctx = make_ca_and_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    make_ca_and_cert(other)  # a CA that did not sign the server's certificate
    with TlsServers(ctx) as s:
        mailer = f"smtp://localhost:{s.smtp_port}"
        r = run_script("MAILER = " + repr(mailer) + SEND_ONE.format(from_=FROM),
                       env={"SSL_CERT_FILE": str(other / "ca.pem"), "SSL_CERT_DIR": str(other)})
        assert r["delta"]["emails_sent"] == 0 and r["delta"]["emails_failed"] == 1
        assert s.mails == []


def test_tls_required_refuses_a_server_without_starttls(servers, records):
    s = servers()  # plain aiosmtpd: no STARTTLS offered
    before = breakglass.stats()
    breakglass.configure(mailer=f"smtp://127.0.0.1:{s.smtp_port}", from_email=FROM,
                         otp_email="oncall@example.com")
    breakglass.send_otp(breakglass.generate())
    breakglass.flush(30)
    d = stats_delta(before)
    assert d["emails_sent"] == 0 and d["emails_failed"] == 1
    assert s.mails == []
    assert any("STARTTLS" in m for m in records.at(40))


def test_one_connection_carries_every_message_of_an_alert(servers):
    s = servers()
    rcpts = [f"ops{i}@example.com" for i in range(5)]
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, alert_emails=rcpts)
    breakglass.alert("192.0.2.10")
    breakglass.flush(30)
    assert s.wait_for(mails=5)
    mails = s.mails
    assert sorted(m["rcpt_tos"][0] for m in mails) == rcpts
    assert len({m["peer_port"] for m in mails}) == 1, "each message opened its own connection"
