"""Delivery against real SMTP and HTTP servers, and the log records, in this process.

Only servers that answer promptly are used here; anything that stalls, hangs or floods the
process-global queue runs in a subprocess (test_isolated.py).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import logging
import re
import sys
import threading
from datetime import datetime, timezone

import pytest

import breakglass
from conftest import free_port, main_thread_ident, stats_delta

FROM = "breakglass@example.com"
OTP_TO = "oncall@example.com"
ALERT_HEADERS = {"from", "to", "subject", "content-type", "content-transfer-encoding", "date", "mime-version", "message-id",
                 "x-breakglass-event-id"}
EVENT_ID = re.compile(r"[0-9a-f]{32}")


def parse(mail: dict) -> email.message.EmailMessage:
    return email.message_from_string(mail["data"], policy=email.policy.default)  # type: ignore[return-value]


def header_names(raw: str) -> list:
    head = re.split(r"\r?\n\r?\n", raw, maxsplit=1)[0]
    return [line.split(":", 1)[0].strip().lower() for line in re.split(r"\r?\n", head) if line and not line[0].isspace()]


# ---------------------------------------------------------------------------------- the OTP email
def test_otp_email_envelope_headers_and_body(servers, records):
    s = servers()
    breakglass.set_log_level(logging.INFO)
    breakglass.configure(mailer=s.smtp_url, from_email=f"Break Glass <{FROM}>", otp_email=OTP_TO)
    before = breakglass.stats()
    code = breakglass.generate()
    assert breakglass.send_otp(code) is None
    breakglass.flush(30)
    assert s.wait_for(mails=1)
    [mail] = s.mails
    assert mail["mail_from"] == FROM
    assert mail["rcpt_tos"] == [OTP_TO]
    msg = parse(mail)
    assert FROM in msg["From"] and "Break Glass" in msg["From"]
    assert msg["To"] == OTP_TO
    subject = msg["Subject"].lower()
    assert "break-glass" in subject and "one-time code" in subject
    body = msg.get_content()
    assert code in body
    assert "valid for 10 minute(s)" in body
    assert stats_delta(before) == dict(stats_delta(before), queued=1, emails_sent=1, emails_failed=0)
    # Sending does not consume: the code still verifies, once.
    breakglass.verify(code)
    # The logger saw the delivery from a library thread, and never the code.
    accepted = [r for r in records.items if "accepted" in r.getMessage()]
    assert accepted and accepted[0].levelno == logging.INFO
    assert accepted[0].breakglass_level == 3  # type: ignore[attr-defined]
    assert accepted[0].thread != main_thread_ident()
    assert not any(code in m for m in records.messages())


def test_otp_validity_follows_the_ttl_and_bad_settings_change_nothing(servers, records):
    s = servers()
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, otp_email=OTP_TO, otp_ttl_seconds=90)
    bad_settings = [
        {"otp_ttl_seconds": 0},
        {"otp_ttl_seconds": "abc"},
        {"mailer": "ftp://127.0.0.1"},
        {"mailer": "smtp://127.0.0.1:1?tls=maybe"},
        {"from_email": "not-an-address"},
        {"otp_email": "x@example.com\r\nBcc: evil@example.com"},
        {"dev_otp_log": "yes"},
        {"mailer": "bogus://x", "otp_ttl_seconds": 45},
        {"otp_email": "nope", "from_email": "other@example.com"},
        {"unknown_key": 1, "otp_ttl_seconds": 45},
    ]
    for bad in bad_settings:
        with pytest.raises(ValueError):
            breakglass.configure(**bad)
    code = breakglass.generate()
    breakglass.send_otp(code)
    breakglass.flush(30)
    assert s.wait_for(mails=1)
    [mail] = s.mails
    assert mail["mail_from"] == FROM and mail["rcpt_tos"] == [OTP_TO]
    assert "valid for 90 second(s)" in parse(mail).get_content()
    assert not any(code in m for m in records.messages())  # dev_otp_log is still off
    # Each refusal was logged (at warn level) without its value.
    warnings = " ".join(records.at(logging.WARNING))
    assert "bg_configure(mailer)" in warnings
    assert "evil@example.com" not in warnings


def test_dev_otp_log_puts_the_code_in_a_warning(records):
    breakglass.configure(dev_otp_log=True)
    code = breakglass.generate()
    with pytest.raises(breakglass.NotConfiguredError):
        breakglass.send_otp(code)  # logged even though email is not configured
    assert any(code in m for m in records.at(logging.WARNING))
    breakglass.configure(dev_otp_log=False)
    records.items.clear()
    with pytest.raises(breakglass.NotConfiguredError):
        breakglass.send_otp(code)
    assert not any(code in m for m in records.messages())


# ---------------------------------------------------------------------------------- alert emails
def test_alert_to_three_recipients_one_rejected(servers, records):
    s = servers(smtp="reject:b@example.com")
    breakglass.configure(
        mailer=s.smtp_url,
        from_email=FROM,
        alert_emails=["a@example.com", "b@example.com", "c@example.com"],
    )
    before = breakglass.stats()
    assert breakglass.alert("203.0.113.7") is None
    breakglass.flush(30)
    assert s.wait_for(mails=2)
    mails = s.mails
    assert len(mails) == 2
    assert sorted(tuple(m["rcpt_tos"]) for m in mails) == [("a@example.com",), ("c@example.com",)]
    for m in mails:
        msg = parse(m)
        assert msg["To"] == m["rcpt_tos"][0]  # one message per recipient, addressed to it alone
        assert "203.0.113.7" in msg["Subject"] and "203.0.113.7" in msg.get_content()
        assert m["mail_from"] == FROM
    d = stats_delta(before)
    assert (d["queued"], d["emails_sent"], d["emails_failed"]) == (1, 2, 1)
    errors = records.at(logging.ERROR)
    assert any("b@example.com" in e for e in errors), errors
    assert not any("a@example.com" in e or "c@example.com" in e for e in errors)


def test_smtp_connection_refused_is_counted_and_logged(records):
    port = free_port()  # nothing listens there
    breakglass.configure(mailer=f"smtp://127.0.0.1:{port}", from_email=FROM, alert_emails=["ops@example.com"])
    before = breakglass.stats()
    assert breakglass.alert("198.51.100.1") is None
    breakglass.flush(30)
    d = stats_delta(before)
    assert (d["emails_sent"], d["emails_failed"]) == (0, 1)
    assert any("ops@example.com" in e for e in records.at(logging.ERROR))
    code = breakglass.generate()  # the caller is unaffected
    breakglass.verify(code)


# ---------------------------------------------------------------------------------- the webhook
def test_webhook_json_and_signature(servers):
    s = servers()
    secret = "s3cret-key"
    breakglass.configure(alert_webhook_url=s.http_url, alert_webhook_secret=secret)
    before = breakglass.stats()
    breakglass.alert("203.0.113.9")
    breakglass.flush(30)
    assert s.wait_for(requests=1)
    [req] = s.requests
    assert req["method"] == "POST" and req["path"] == "/hook"
    assert req["headers"]["content-type"].startswith("application/json")
    body = json.loads(req["body"])
    assert set(body) == {"id", "event", "ip", "timestamp", "severity", "message", "audit_head"}
    assert EVENT_ID.fullmatch(body["id"])
    assert body["event"] == "break_glass_login"
    assert body["severity"] == "critical"
    assert body["ip"] == "203.0.113.9"
    assert "203.0.113.9" in body["message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["timestamp"])
    stamp = datetime.strptime(body["timestamp"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 86400  # a current time
    expected = "sha256=" + hmac.new(secret.encode(), req["body"].encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req["headers"]["x-breakglass-signature"], expected)
    d = stats_delta(before)
    assert (d["queued"], d["webhooks_sent"], d["webhooks_failed"]) == (1, 1, 0)


def test_webhook_without_secret_and_unknown_ip(servers):
    s = servers()
    breakglass.configure(alert_webhook_url=s.http_url)
    breakglass.alert(None)
    breakglass.flush(30)
    assert s.wait_for(requests=1)
    [req] = s.requests
    assert "x-breakglass-signature" not in req["headers"]
    assert json.loads(req["body"])["ip"] == "unknown"


def test_webhook_500_is_retried_then_counted(servers, records):
    s = servers(http="status:500")
    breakglass.configure(alert_webhook_url=s.http_url)
    before = breakglass.stats()
    assert breakglass.alert("203.0.113.10") is None
    breakglass.flush(30)
    assert len(s.requests) == 3
    assert all(r["method"] == "POST" for r in s.requests)
    d = stats_delta(before)
    assert (d["webhooks_sent"], d["webhooks_failed"]) == (0, 1)
    assert any("webhook" in e and "500" in e for e in records.at(logging.ERROR))


def test_alert_emails_and_webhook_together(servers):
    s = servers()
    breakglass.configure(
        mailer=s.smtp_url, from_email=FROM, alert_emails="ops@example.com", alert_webhook_url=s.http_url
    )
    before = breakglass.stats()
    breakglass.alert("192.0.2.55")
    breakglass.flush(30)
    assert s.wait_for(mails=1, requests=1)
    d = stats_delta(before)
    assert (d["queued"], d["emails_sent"], d["webhooks_sent"]) == (1, 1, 1)


def test_one_alert_has_one_event_id_on_every_channel(servers, records):
    s = servers()
    breakglass.set_log_level(logging.INFO)
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, alert_emails=["a@example.com", "b@example.com"],
                         alert_webhook_url=s.http_url)
    breakglass.alert("192.0.2.31")
    breakglass.flush(30)
    assert s.wait_for(mails=2, requests=1)
    breakglass.alert("192.0.2.32")
    breakglass.flush(30)
    assert s.wait_for(mails=4, requests=2)

    def by_ip(ip):
        mails = [m for m in s.mails if ip in parse(m)["Subject"]]
        [req] = [r for r in s.requests if json.loads(r["body"])["ip"] == ip]
        return mails, json.loads(req["body"])

    ids = []
    for ip in ("192.0.2.31", "192.0.2.32"):
        mails, body = by_ip(ip)
        assert len(mails) == 2
        # The five old keys keep their meaning; "id" is the one new key.
        assert set(body) == {"id", "event", "ip", "timestamp", "severity", "message", "audit_head"}
        assert (body["event"], body["severity"]) == ("break_glass_login", "critical")
        event_id = body["id"]
        assert EVENT_ID.fullmatch(event_id)
        for mail in mails:
            msg = parse(mail)
            raw_headers = re.split(r"\r?\n\r?\n", mail["data"], maxsplit=1)[0]
            assert f"X-Breakglass-Event-Id: {event_id}" in raw_headers.splitlines()
            assert msg["X-Breakglass-Event-Id"] == event_id
            assert f"Event id: {event_id}" in msg.get_content()
        # The records about this alert name it.
        named = [m for m in records.messages() if event_id in m]
        assert any("raising the alarm" in m for m in named), named
        assert any("webhook" in m and "accepted" in m for m in named), named
        assert sum("alert email" in m and "accepted" in m for m in named) == 2, named
        ids.append(event_id)
    assert ids[0] != ids[1]


# ---------------------------------------------------------------------------------- untrusted ip
INJECTIONS = [
    "1.2.3.4\r\nBcc: evil@example.com",
    "1.2.3.4\nBcc: evil@example.com",
    "1.2.3.4\rBcc: evil@example.com",
    "\n\nbody injected",
    "1.2.3.4\r\n\r\nX-Injected: 1",
    "1.2.3.4\x0bX-Injected: 1\x0c",
    "1.2.3.4\x85X-Injected: 1\u2028Bcc: evil@example.com",
    "1.2.3.4\x1b[31m\x7f",
    "1.2.3.4\0Bcc: evil@example.com",  # NUL: sent as the text \u{0}
]


def test_header_injection_through_ip(servers):
    s = servers()
    breakglass.configure(
        mailer=s.smtp_url, from_email=FROM, alert_emails=["ops@example.com"], alert_webhook_url=s.http_url
    )
    for ip in INJECTIONS:
        assert breakglass.alert(ip) is None
    breakglass.flush(30)
    n = len(INJECTIONS)
    assert s.wait_for(mails=n, requests=n)
    assert len(s.mails) == n
    for mail in s.mails:
        assert mail["rcpt_tos"] == ["ops@example.com"]
        names = header_names(mail["data"])
        assert set(names) <= ALERT_HEADERS, names
        assert names.count("to") == 1 and "bcc" not in names and "x-injected" not in names
        msg = parse(mail)
        assert msg["To"] == "ops@example.com"
        assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
        assert "evil@example.com" not in (msg["To"] + msg["From"])
    # The JSON carries the text exactly (properly escaped), NUL aside.
    ips = sorted(json.loads(r["body"])["ip"] for r in s.requests)
    assert ips == sorted(ip.replace("\0", "\\u{0}") for ip in INJECTIONS)


def test_alert_accepts_odd_python_values(servers):
    import ipaddress

    s = servers()
    breakglass.configure(alert_webhook_url=s.http_url)
    breakglass.alert(ipaddress.ip_address("2001:db8::1"))  # type: ignore[arg-type]
    breakglass.alert("\udcff-lone-surrogate")
    breakglass.alert("x" * 5000)
    breakglass.flush(30)
    assert s.wait_for(requests=3)
    ips = [json.loads(r["body"])["ip"] for r in s.requests]
    assert "2001:db8::1" in ips
    assert "\\udcff-lone-surrogate" in ips
    assert any(ip.endswith("(truncated)") and len(ip) < 400 for ip in ips)


def test_every_cut_of_the_ip_is_marked_whatever_its_encoding(servers):
    s = servers()
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, alert_emails=["ops@example.com"],
                         alert_webhook_url=s.http_url)
    emoji = "\U0001F600" * 300  # 1200 bytes: the byte bound leaves exactly 256 characters
    wide = "\u00e9" * 400  # 800 bytes: only the character bound cuts
    ascii_ = "7" * 5000  # both bounds
    exact = "\U0001F600" * 256  # 1024 bytes and 256 characters: nothing is cut
    for ip in (emoji, wide, ascii_, exact):
        breakglass.alert(ip)
    breakglass.flush(30)
    assert s.wait_for(mails=4, requests=4)
    json_ips = {json.loads(r["body"])["ip"] for r in s.requests}
    assert emoji[:256] + "...(truncated)" in json_ips
    assert wide[:256] + "...(truncated)" in json_ips
    assert ascii_[:256] + "...(truncated)" in json_ips
    assert exact in json_ips
    bodies = [parse(m).get_content() for m in s.mails]
    subjects = [parse(m)["Subject"] for m in s.mails]
    for cut in (emoji, wide, ascii_):
        marked = cut[:256] + "...(truncated)"
        assert any(f"IP address: {marked}" in b for b in bodies), cut[:8]
        assert any(marked in subj for subj in subjects), cut[:8]
    assert any(f"IP address: {exact}" in b and "(truncated)" not in b for b in bodies)


# ---------------------------------------------------------------------------------- logging
def test_log_levels_follow_set_log_level(servers, records):
    s = servers()
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, alert_emails=["ops@example.com"])
    breakglass.set_log_level(logging.WARNING)
    breakglass.alert("192.0.2.1")
    breakglass.flush(30)
    assert any("raising the alarm" in m for m in records.at(logging.WARNING))
    assert records.at(logging.INFO) == []
    records.items.clear()
    breakglass.set_log_level(logging.ERROR)
    breakglass.alert("192.0.2.2")
    breakglass.flush(30)
    assert records.items == []
    breakglass.set_log_level(logging.INFO)
    breakglass.alert("192.0.2.3")
    breakglass.flush(30)
    assert any("accepted" in m for m in records.at(logging.INFO))
    assert logging.getLogger("breakglass").level == logging.INFO


def test_no_code_in_records_even_at_debug(servers, records):
    s = servers()
    breakglass.set_log_level(logging.DEBUG)
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, otp_email=OTP_TO)
    code = breakglass.generate()
    breakglass.send_otp(code)
    breakglass.flush(30)
    assert s.wait_for(mails=1)
    assert records.at(logging.DEBUG) or records.at(logging.INFO)
    assert not any(code in m for m in records.messages())


def test_no_webhook_secrets_in_records_at_debug(servers, records):
    s = servers()
    breakglass.set_log_level(logging.DEBUG)
    url = f"http://hookuser:hunter2pw@127.0.0.1:{s.http_port}/hook/T0KEN123?token=QSECRET"
    breakglass.configure(alert_webhook_url=url, alert_webhook_secret="s3cret")
    breakglass.alert("192.0.2.1")
    breakglass.flush(30)
    assert s.wait_for(requests=1)
    # Dependencies' debug records once carried the URL's path and query and a hex dump of the
    # headers (Authorization: Basic ...). The dump spreads a header over lines: join them up.
    dump = "".join(m[-16:] for m in records.messages() if re.match(r"^[0-9a-f]{4} ", m))
    everything = "\n".join(records.messages()) + "\n" + dump
    for secret in ("hunter2pw", "T0KEN123", "QSECRET", "aG9va3VzZXI6aHVudGVyMnB3"):
        assert secret not in everything, secret


def test_callback_swallows_its_own_exceptions(monkeypatch, records):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u))

    class Boom(logging.Filter):
        def filter(self, record):
            raise RuntimeError("handler failure")

    logger = logging.getLogger("breakglass")
    boom = Boom()
    logger.addFilter(boom)
    try:
        assert breakglass.alert("192.0.2.9") is None  # logs a warning and an error synchronously
        with pytest.raises(ValueError):
            breakglass.configure(otp_ttl_seconds=0)  # logs a warning
    finally:
        logger.removeFilter(boom)
    assert unraisable == []
    breakglass.alert("192.0.2.10")
    assert any("192.0.2.10" in m for m in records.at(logging.WARNING))


def test_records_from_many_threads(servers, records):
    s = servers()
    breakglass.set_log_level(logging.INFO)
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, alert_emails=["ops@example.com"],
                         alert_webhook_url=s.http_url)
    threads = [threading.Thread(target=breakglass.alert, args=(f"10.0.0.{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    breakglass.flush(60)
    assert s.wait_for(mails=8, requests=8)
    accepted = [r for r in records.items if "accepted" in r.getMessage()]
    assert len(accepted) == 16
    assert {r.thread for r in accepted}.isdisjoint({main_thread_ident()})


def test_set_log_level_from_a_handler_is_refused_not_a_deadlock(servers):
    s = servers()
    breakglass.set_log_level(logging.INFO)
    seen = []

    class Reconfigure(logging.Handler):
        def emit(self, record):
            try:
                breakglass.set_log_level(logging.DEBUG)
                seen.append("returned")
            except RuntimeError:
                seen.append("refused")

    handler = Reconfigure()
    logger = logging.getLogger("breakglass")
    logger.addHandler(handler)
    try:
        breakglass.configure(alert_webhook_url=s.http_url)
        breakglass.alert("192.0.2.77")  # a warning on this thread, an info on a library thread
        breakglass.flush(30)
    finally:
        logger.removeHandler(handler)
    assert seen and set(seen) == {"refused"}
    assert logger.level == logging.INFO


def test_smtp_4xx_is_retried_and_then_delivered(servers, records):
    s = servers(smtp="tempfail-once")  # 451 for the first RCPT, then accepts
    breakglass.set_log_level(logging.WARNING)
    before = breakglass.stats()
    breakglass.configure(mailer=s.smtp_url, from_email=FROM, otp_email=OTP_TO)
    code = breakglass.generate()
    breakglass.send_otp(code)
    breakglass.flush(30)
    d = stats_delta(before)
    assert d["emails_sent"] == 1 and d["emails_failed"] == 0
    assert s.wait_for(mails=1) and len(s.mails) == 1
    warnings = records.at(logging.WARNING)
    assert any("attempt 1 of 3" in m and "451" in m for m in warnings), warnings
