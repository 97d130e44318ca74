"""The fire drill through the Python binding, against the real test servers (aiosmtpd and
http.server from bgserve.py): every channel delivered; a refusal with the peer's answer; a
hung receiver timed out; what arrives is marked as a drill and signed."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json

import pytest

import breakglass
from conftest import stats_delta

SECRET = "drill-secret"


def test_every_channel_delivered_and_marked_as_a_drill(servers):
    s = servers()
    breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                         alert_emails=["ops@example.com", "sec@example.com"],
                         alert_webhook_url=s.http_url, alert_webhook_secret=SECRET,
                         alert_webhooks=f"slack=http://127.0.0.1:{s.http_port}/slack")
    before = breakglass.stats()
    reports = breakglass.drill(30)
    assert [(r.channel, r.outcome) for r in reports] == [
        ("email ops@example.com", "delivered"),
        ("email sec@example.com", "delivered"),
        (f"webhook json http://127.0.0.1:{s.http_port}", "delivered"),
        (f"webhook slack http://127.0.0.1:{s.http_port}", "delivered"),
    ]
    assert s.wait_for(mails=2, requests=2)
    for mail in s.mails:
        msg = email.message_from_string(mail["data"], policy=email.policy.default)
        assert msg["Subject"].startswith("[DRILL]"), msg["Subject"]
        assert "no one used the emergency login" in msg.get_content()
    by_path = {r["path"]: r for r in s.requests}
    for req in by_path.values():
        expected = "sha256=" + hmac.new(SECRET.encode(), req["body"].encode(), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(req["headers"]["x-breakglass-signature"], expected)
    body = json.loads(by_path["/hook"]["body"])
    assert (body["event"], body["severity"]) == ("break_glass_drill", "info")
    slack = json.loads(by_path["/slack"]["body"])
    assert slack["text"].startswith("[DRILL]") and slack["blocks"]
    assert stats_delta(before) == {k: 0 for k in stats_delta(before)}, "a drill is not counted"


def test_a_refusal_carries_the_peer_s_answer(servers):
    s = servers(http="status:400")
    breakglass.configure(alert_webhook_url=s.http_url)
    with pytest.raises(breakglass.DrillFailed) as e:
        breakglass.drill(30)
    [report] = e.value.reports
    assert report.outcome == "refused"
    assert report.detail == "HTTP 400: ok"  # bgserve's answer body
    assert len(s.requests) == 1, "400 is final"


def test_a_hung_receiver_is_reported_as_timed_out_and_the_others_as_delivered(servers):
    hung = servers(http="hang")
    ok = servers()
    breakglass.configure(delivery_timeout_ms=300, alert_webhook_url=hung.http_url,
                         alert_webhooks=f"alertmanager=http://127.0.0.1:{ok.http_port}")
    with pytest.raises(breakglass.DrillFailed) as e:
        breakglass.drill(30)
    outcomes = [(r.channel.split()[1], r.outcome) for r in e.value.reports]
    assert outcomes == [("json", "timed out"), ("alertmanager", "delivered")]
    [req] = ok.requests
    assert req["path"] == "/api/v2/alerts"
    assert json.loads(req["body"])[0]["labels"]["alertname"] == "BreakGlassDrill"


def test_no_channel_is_not_configured():
    with pytest.raises(breakglass.NotConfiguredError):
        breakglass.drill()
