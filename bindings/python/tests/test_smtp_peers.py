"""SMTP and sendmail peers that misbehave, each started by the test on 127.0.0.1: every session
ends within ``delivery_timeout_ms`` however slowly the peer speaks, a hung sendmail program is
killed, and ``tls=opportunistic`` falls back to plaintext only where RFC 7435 says it may."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import List

import pytest

import breakglass
from conftest import free_port, stats_delta

FROM = "breakglass@example.com"


def test_a_trickling_smtp_server_cannot_hold_a_mail_worker(servers, records):
    # The greeting never ends: one byte every 0.3 s, each read well inside any per-read
    # timeout. Only a deadline over the whole session ends it.
    s = servers(smtp="trickle")
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, alert_emails=["ops@example.com"],
                         delivery_timeout_ms=1000)
    before = breakglass.stats()
    breakglass.alert("198.51.100.9")
    # Three attempts of at most 1 s, 0.25 s and 1 s apart; the server would trickle for its
    # whole lifetime (120 s).
    breakglass.flush(20)
    d = stats_delta(before)
    assert (d["emails_sent"], d["emails_failed"]) == (0, 1)
    errors = records.at(logging.ERROR)
    assert any("ops@example.com" in e and "timed out" in e for e in errors), errors
    assert len([w for w in records.at(logging.WARNING) if "attempt" in w]) == 2


def test_a_hung_sendmail_program_is_killed_at_the_deadline(tmp_path, records):
    pidfile = tmp_path / "pid"
    prog = tmp_path / "sendmail"
    prog.write_text(f"#!/bin/sh\necho $$ >> {pidfile}\nexec sleep 600\n")
    prog.chmod(0o755)
    breakglass.configure(mailer=f"sendmail://{prog}", from_email=FROM,
                         alert_emails=["ops@example.com"], delivery_timeout_ms=500)
    before = breakglass.stats()
    breakglass.alert("198.51.100.10")
    breakglass.flush(20)
    d = stats_delta(before)
    assert (d["emails_sent"], d["emails_failed"]) == (0, 1)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 3  # every attempt ran the program, and each run was ended
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    assert any("did not finish in time" in e for e in records.at(logging.ERROR))


def test_a_failing_sendmail_program_is_final_and_says_why(tmp_path, records):
    prog = tmp_path / "sendmail"
    prog.write_text("#!/bin/sh\ncat >/dev/null\necho 'no such user here' >&2\nexit 67\n")
    prog.chmod(0o755)
    breakglass.configure(mailer=f"sendmail://{prog}", from_email=FROM,
                         alert_emails=["ops@example.com"])
    before = breakglass.stats()
    breakglass.alert("198.51.100.11")
    breakglass.flush(20)
    assert stats_delta(before)["emails_failed"] == 1
    errors = records.at(logging.ERROR)
    assert any("exited with 67" in e and "no such user here" in e for e in errors), errors


class BrokenStarttls:
    """Offers STARTTLS, answers 220, then speaks no TLS (``mode="close"``: hangs up) or pipelines
    a forged plaintext reply behind its 220 (``mode="inject"``). A session that skips
    STARTTLS can deliver in plaintext; the messages it received are in ``mails``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        self.mails: List[str] = []
        self.starttls_seen = 0
        self._stop = threading.Event()
        self._srv = socket.create_server(("127.0.0.1", self.port))
        self._srv.settimeout(0.2)
        threading.Thread(target=self._loop, daemon=True).start()
        threading.Timer(60, self._stop.set).start()  # stops by itself

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        self._srv.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        f = conn.makefile("rb")
        try:
            conn.sendall(b"220 broken.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-broken.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
                elif verb == b"STAR":
                    self.starttls_seen += 1
                    if self.mode == "inject":
                        conn.sendall(b"220 go ahead\r\n250 forged\r\n")
                    else:
                        conn.sendall(b"220 go ahead\r\n")
                        conn.shutdown(socket.SHUT_RDWR)
                    return
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    body = []
                    for raw in iter(f.readline, b""):
                        if raw == b".\r\n":
                            break
                        body.append(raw.decode("utf-8", "replace"))
                    self.mails.append("".join(body))
                    conn.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 OK\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def broken_starttls():
    made: List[BrokenStarttls] = []

    def make(mode: str) -> BrokenStarttls:
        made.append(BrokenStarttls(mode))
        return made[-1]

    yield make
    breakglass.flush(30)
    for m in made:
        m.close()


def test_opportunistic_falls_back_to_plaintext_when_the_handshake_fails(broken_starttls, records):
    srv = broken_starttls("close")
    breakglass.configure(mailer=f"smtp://127.0.0.1:{srv.port}?tls=opportunistic", from_email=FROM,
                         alert_emails=["ops@example.com"])
    before = breakglass.stats()
    breakglass.alert("203.0.113.20")
    breakglass.flush(30)
    assert stats_delta(before)["emails_sent"] == 1
    assert srv.starttls_seen == 1 and len(srv.mails) == 1
    assert "203.0.113.20" in srv.mails[0]
    assert any("handshake failed" in w and "plaintext" in w for w in records.at(logging.WARNING))


def test_required_never_falls_back_to_plaintext(broken_starttls, records):
    srv = broken_starttls("close")
    breakglass.configure(mailer=f"smtp://127.0.0.1:{srv.port}", from_email=FROM,
                         alert_emails=["ops@example.com"])
    before = breakglass.stats()
    breakglass.alert("203.0.113.21")
    breakglass.flush(30)
    d = stats_delta(before)
    assert (d["emails_sent"], d["emails_failed"]) == (0, 1)
    assert srv.mails == [] and srv.starttls_seen >= 1


@pytest.mark.parametrize("level", ["", "?tls=opportunistic"])
def test_plaintext_pipelined_after_starttls_is_refused(broken_starttls, level):
    # The forged "250" sent in the clear behind the 220 must never be read as if it had come
    # over TLS (the STARTTLS command-injection class of bugs).
    srv = broken_starttls("inject")
    breakglass.configure(mailer=f"smtp://127.0.0.1:{srv.port}{level}", from_email=FROM,
                         alert_emails=["ops@example.com"], delivery_timeout_ms=2000)
    before = breakglass.stats()
    breakglass.alert("203.0.113.22")
    breakglass.flush(30)
    d = stats_delta(before)
    assert d["emails_failed"] == 1 and srv.mails == []


def test_credentials_need_a_verified_connection():
    with pytest.raises(breakglass.ArgumentError):
        breakglass.configure(mailer="smtp://bob:secret@127.0.0.1:25?tls=opportunistic")
