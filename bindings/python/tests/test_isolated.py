"""Tests that stall servers, flood the queue, fork, read the environment or exit: each in its own
interpreter, so the process-global queue of the main test process is never blocked."""

from __future__ import annotations

import os

import pytest

from conftest import Servers, run_script


def test_configure_from_env():
    with Servers() as s:
        env = {
            "BREAKGLASS_MAILER": s.smtp_url,
            "BREAKGLASS_FROM_EMAIL": "env-sender@example.com",
            "BREAKGLASS_OTP_EMAIL": "env-oncall@example.com",
            "BREAKGLASS_OTP_TTL_SECONDS": "1",
            "BREAKGLASS_DELIVERY_TIMEOUT_MS": "5000",
        }
        r = run_script(
            """
            breakglass.configure_from_env()
            code = breakglass.generate()
            breakglass.send_otp(code)
            breakglass.flush(30)
            time.sleep(1.2)
            try:
                breakglass.verify(code)
                outcome = "ok"
            except breakglass.VerifyError as e:
                outcome = type(e).__name__
            # A refused key: it and the keys after it keep the environment's values.
            try:
                breakglass.configure(mailer="bogus://x", otp_ttl_seconds=600)
            except ValueError:
                pass
            code2 = breakglass.generate()
            time.sleep(1.2)
            try:
                breakglass.verify(code2)
                outcome2 = "ok"
            except breakglass.VerifyError as e:
                outcome2 = type(e).__name__
            emit({"code": code, "outcome": outcome, "outcome2": outcome2})
            """,
            env=env,
        )
        assert s.wait_for(mails=1)
        [mail] = s.mails
    assert mail["mail_from"] == "env-sender@example.com"
    assert mail["rcpt_tos"] == ["env-oncall@example.com"]
    assert r["code"] in mail["data"] and "1 second(s)" in mail["data"]
    assert r["outcome"] == "Expired"
    assert r["outcome2"] == "Expired"


def test_configure_from_env_all_or_nothing():
    env = {
        "BREAKGLASS_MAILER": "smtp://127.0.0.1:25",
        "BREAKGLASS_FROM_EMAIL": "a@example.com",
        "BREAKGLASS_OTP_EMAIL": "b@example.com",
        "BREAKGLASS_OTP_TTL_SECONDS": "abc",
    }
    r = run_script(
        """
        try:
            breakglass.configure_from_env()
            error = None
        except ValueError as e:
            error = [type(e).__name__, e.status, isinstance(e, breakglass.BreakGlassError)]
        try:
            breakglass.send_otp("123456")
            sent = "queued"
        except breakglass.NotConfiguredError:
            sent = "not configured"
        emit({"error": error, "sent": sent})
        """,
        env=env,
    )
    assert r["error"] == ["ArgumentError", 6, True]
    assert r["sent"] == "not configured"  # none of the good variables was applied


def test_alert_returns_before_a_stalled_smtp_server_accepts_anything():
    r = run_script(
        """
        with Servers(smtp="stall", http="ok") as s:
            breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                                 alert_emails=["ops@example.com"], delivery_timeout_ms=300)
            before = stats()
            returned = breakglass.alert("203.0.113.50")
            mails_when_returned = len(s.mails)
            try:
                breakglass.flush(0.05)
                short_flush = "ok"
            except TimeoutError as e:
                short_flush = [type(e).__name__, e.status]
            code = breakglass.generate()   # the caller's other calls are not held up
            breakglass.verify(code)
            breakglass.flush(60)           # the stalled delivery finally fails
            emit({"returned": returned, "mails_when_returned": mails_when_returned,
                  "short_flush": short_flush, "delta": delta(before),
                  "errors": records.at(logging.ERROR), "mails": len(s.mails)})
        """
    )
    assert r["returned"] is None
    assert r["mails_when_returned"] == 0
    assert r["short_flush"] == ["FlushTimeoutError", 8]
    assert r["delta"]["queued"] == 1
    assert r["delta"]["emails_failed"] == 1 and r["delta"]["emails_sent"] == 0
    assert any("ops@example.com" in e for e in r["errors"])
    assert r["mails"] == 0


def test_webhook_hanging_past_the_timeout():
    r = run_script(
        """
        with Servers(http="hang") as s:
            breakglass.configure(alert_webhook_url=s.http_url, delivery_timeout_ms=300)
            before = stats()
            returned = breakglass.alert("203.0.113.51")
            breakglass.flush(60)
            emit({"returned": returned, "delta": delta(before), "requests": len(s.requests),
                  "errors": records.at(logging.ERROR)})
        """
    )
    assert r["returned"] is None
    assert r["delta"]["webhooks_failed"] == 1 and r["delta"]["webhooks_sent"] == 0
    assert 1 <= r["requests"] <= 3  # each attempt reached the server, then timed out
    assert any("webhook" in e for e in r["errors"]), r["errors"]


def test_flood_is_bounded():
    r = run_script(
        """
        def rss_kb():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        breakglass.set_log_level(logging.ERROR)
        with Servers(smtp="stall", http="hang") as s:
            breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                                 otp_email="oncall@example.com",
                                 alert_emails=["ops@example.com"],
                                 alert_webhook_url=s.http_url, delivery_timeout_ms=300)
            before = stats()
            rss_before = rss_kb()
            n = 100000
            for i in range(n):
                breakglass.alert("198.51.100.7")
            rss_after = rss_kb()
            d = delta(before)
            # Code emails have a lane of their own: the alert flood has not touched it, and
            # both mail workers are busy with alert mail, so it takes exactly its capacity.
            otp, otp_queued = None, 0
            for _ in range(300):
                try:
                    breakglass.send_otp("123456")
                    otp_queued += 1
                except breakglass.QueueFullError as e:
                    otp = [type(e).__name__, e.status, e.name]
                    break
            code = breakglass.generate()
            breakglass.verify(code)
            try:
                breakglass.flush(0.05)
                flushed = True
            except TimeoutError:
                flushed = False
            emit({"delta": d, "rss_growth_kb": rss_after - rss_before, "otp": otp,
                  "otp_queued": otp_queued,
                  "flushed": flushed, "errors": len(records.at(logging.ERROR)),
                  "warnings": len(records.at(logging.WARNING))})
        """,
        timeout=180,
    )
    d = r["delta"]
    # Each alert has two parts (its emails, its webhook), each dropped and counted on its own;
    # an alert counts as queued when at least one of them was.
    assert d["dropped"] > 0
    assert d["queued"] < 100000
    assert 100000 <= d["queued"] + d["dropped"] <= 2 * 100000
    assert r["rss_growth_kb"] < 50 * 1024, r
    assert r["otp"] == ["QueueFullError", 11, "queue full"], r
    assert 256 <= r["otp_queued"] <= 257, r
    assert r["flushed"] is False
    assert r["warnings"] == 0  # the library filtered them at ERROR
    assert 1 <= r["errors"] < 1000  # "queue full" is rate-limited, not once per alert


def test_a_stalled_mail_server_and_a_code_flood_never_cost_the_webhook_its_alerts():
    # An attacker asks for 300 codes while the mail server stalls: the alerts that follow must
    # still reach the healthy webhook (they used to be dropped whole with the mail lane full).
    r = run_script(
        """
        breakglass.set_log_level(logging.ERROR)
        with Servers(smtp="stall", http="ok") as s:
            breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                                 otp_email="oncall@example.com", alert_emails=["ops@example.com"],
                                 alert_webhook_url=s.http_url, delivery_timeout_ms=2000)
            before = stats()
            refused = 0
            for _ in range(300):
                try:
                    breakglass.send_otp("123456")
                except breakglass.QueueFullError:
                    refused += 1
            flood = delta(before)
            before = stats()
            for i in range(3):
                breakglass.alert(f"203.0.113.{90 + i}")
                time.sleep(0.3)
            arrived = s.wait_for(requests=3, timeout=20)
            bodies = [json.loads(r["body"]) for r in s.requests]
            emit({"refused": refused, "flood": flood, "alerts": delta(before), "arrived": arrived,
                  "ips": [b["ip"] for b in bodies], "reported": [b["message"] for b in bodies],
                  "errors": records.at(logging.ERROR)})
        """
    )
    assert r["refused"] > 0 and r["flood"]["dropped"] == r["refused"]
    assert r["arrived"] is True, r
    assert sorted(r["ips"]) == ["203.0.113.90", "203.0.113.91", "203.0.113.92"]
    assert r["alerts"]["dropped"] == 0 and r["alerts"]["queued"] == 3
    # The dropped code emails are reported in the next alert's text, and were logged.
    assert any(f"{r['refused']} earlier notification(s)" in m for m in r["reported"]), r["reported"]
    assert any("delivery queue full" in e and "code email" in e for e in r["errors"]), r["errors"]


def test_a_hung_webhook_with_a_full_lane_never_costs_the_mail_its_alerts():
    r = run_script(
        """
        breakglass.set_log_level(logging.ERROR)
        with Servers(smtp="ok", http="hang") as s:
            breakglass.configure(alert_webhook_url=s.http_url, delivery_timeout_ms=2000)
            before = stats()
            for _ in range(300):
                breakglass.alert("198.51.100.99")  # fills the webhook lane, then drops
            flood = delta(before)
            breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                                 alert_emails=["ops@example.com"])
            before = stats()
            for i in range(3):
                breakglass.alert(f"203.0.113.{70 + i}")
            arrived = s.wait_for(mails=3, timeout=20)
            deadline = time.monotonic() + 10  # the counter moves once the server has answered
            while delta(before)["emails_sent"] < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            emit({"flood": flood, "alerts": delta(before), "arrived": arrived,
                  "subjects": [m["data"] for m in s.mails]})
        """
    )
    assert r["flood"]["dropped"] > 0
    assert r["arrived"] is True, r
    for i in range(3):
        assert sum(f"203.0.113.{70 + i}" in m for m in r["subjects"]) == 1
    d = r["alerts"]
    assert (d["queued"], d["dropped"], d["emails_sent"]) == (3, 3, 3)  # only the webhooks dropped
    assert any("earlier notification(s)" in m for m in r["subjects"])


def test_retries_carry_the_alert_s_event_id():
    # Each peer takes the alert but answers after the timeout: the library retries, and every
    # copy says it is the same event.
    r = run_script(
        """
        with Servers(smtp="late:1", http="late:2") as s:
            breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                                 alert_emails=["ops@example.com"], alert_webhook_url=s.http_url,
                                 delivery_timeout_ms=500)
            before = stats()
            breakglass.alert("203.0.113.44")
            breakglass.flush(60)
            s.wait_for(mails=2, requests=3, timeout=10)
            breakglass.alert("203.0.113.45")
            breakglass.flush(60)
            s.wait_for(mails=3, requests=4, timeout=10)
            emit({"delta": delta(before), "mails": [m["data"] for m in s.mails],
                  "bodies": [json.loads(r["body"]) for r in s.requests]})
        """
    )
    import email
    import email.policy
    import re

    bodies = r["bodies"]
    assert [b["ip"] for b in bodies] == ["203.0.113.44"] * 3 + ["203.0.113.45"]
    first = bodies[0]["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert [b["id"] for b in bodies[:3]] == [first] * 3
    assert bodies[3]["id"] != first
    msgs = [email.message_from_string(m, policy=email.policy.default) for m in r["mails"]]
    assert len(msgs) == 3
    ids = [m["X-Breakglass-Event-Id"] for m in msgs]
    assert ids == [first, first, bodies[3]["id"]]
    for m, event_id in zip(msgs, ids):
        assert f"Event id: {event_id}" in m.get_content()
    d = r["delta"]
    assert (d["webhooks_sent"], d["emails_sent"], d["webhooks_failed"], d["emails_failed"]) == (2, 2, 0, 0)


FAULTS = [
    # (smtp mode or mailer, http mode, which channel fails)
    pytest.param("drop-data", None, "mail", id="smtp-drop-data"),
    pytest.param("garbage", None, "mail", id="smtp-garbage"),
    pytest.param("smtp://no-such-host.invalid:25", None, "mail", id="smtp-unresolvable"),
    pytest.param(None, "redirect", "webhook", id="http-redirect"),
    pytest.param(None, "bad-status", "webhook", id="http-bad-status"),
]


@pytest.mark.parametrize("smtp, http, channel", FAULTS)
def test_fault_is_counted_logged_and_survived(smtp, http, channel):
    r = run_script(
        f"""
        smtp, http, channel = {smtp!r}, {http!r}, {channel!r}
        raw_smtp = smtp if smtp and not smtp.startswith("smtp://") else "ok"
        with Servers(smtp=raw_smtp, http=http or "ok") as bad, Servers() as good:
            if channel == "mail":
                mailer = smtp if smtp.startswith("smtp://") else bad.smtp_url
                breakglass.configure(mailer=mailer, from_email="bg@example.com",
                                     alert_emails=["ops@example.com"], delivery_timeout_ms=300)
            else:
                breakglass.configure(alert_webhook_url=bad.http_url, delivery_timeout_ms=300)
            before = stats()
            returned = breakglass.alert("203.0.113.60")
            breakglass.flush(60)
            fault_delta = delta(before)
            errors = records.at(logging.ERROR)
            bad_requests = [r["method"] for r in bad.requests]
            bad_mails = len(bad.mails)
            # Still working afterwards.
            code = breakglass.generate()
            breakglass.verify(code)
            breakglass.configure(mailer=good.smtp_url, alert_webhook_url=good.http_url,
                                 from_email="bg@example.com", alert_emails=["ops@example.com"])
            before = stats()
            breakglass.alert("203.0.113.61")
            breakglass.flush(60)
            good.wait_for(mails=1, requests=1)
            emit({{"returned": returned, "fault_delta": fault_delta, "errors": errors,
                   "bad_requests": bad_requests, "bad_mails": bad_mails,
                   "good_delta": delta(before), "good": [len(good.mails), len(good.requests)]}})
        """
    )
    assert r["returned"] is None
    d = r["fault_delta"]
    if channel == "mail":
        assert (d["emails_sent"], d["emails_failed"]) == (0, 1)
        assert r["bad_mails"] == 0
        assert any("ops@example.com" in e for e in r["errors"]), r["errors"]
    else:
        assert (d["webhooks_sent"], d["webhooks_failed"]) == (0, 1)
        assert any("webhook" in e for e in r["errors"]), r["errors"]
        assert "GET" not in r["bad_requests"]  # a redirect is never followed
        if http == "redirect":
            assert r["bad_requests"] == ["POST"]  # and not retried
        else:
            assert 1 <= len(r["bad_requests"]) <= 3
    g = r["good_delta"]
    assert r["good"] == [1, 1]
    assert (g["emails_sent"], g["webhooks_sent"], g["emails_failed"], g["webhooks_failed"]) == (1, 1, 0, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork():
    r = run_script(
        """
        with Servers() as s:
            breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                                 alert_emails=["ops@example.com"], alert_webhook_url=s.http_url)
            breakglass.alert("parent-warmup")      # the parent's queue and workers exist
            breakglass.flush(30)
            code = breakglass.generate()
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    os.close(rfd)
                    res = {}
                    try:
                        breakglass.verify(code)
                        res["child_verify"] = "ok"
                    except breakglass.BreakGlassError as e:
                        res["child_verify"] = type(e).__name__
                    before = stats()
                    breakglass.alert("child-alert")
                    breakglass.flush(30)
                    res["child_delta"] = delta(before)
                    own = breakglass.generate()
                    breakglass.verify(own)
                    res["child_own_code"] = "ok"
                    res["child_records"] = any("child-alert" in m for m in records.at(logging.WARNING))
                    os.write(wfd, json.dumps(res).encode())
                    status = 0
                finally:
                    os._exit(status)
            os.close(wfd)
            chunks = []
            while True:
                chunk = os.read(rfd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            _, wstatus = os.waitpid(pid, 0)
            child = json.loads(b"".join(chunks) or b"{}")
            parent = []
            for _ in range(2):
                try:
                    breakglass.verify(code)
                    parent.append("ok")
                except breakglass.BreakGlassError as e:
                    parent.append(type(e).__name__)
            s.wait_for(mails=2, requests=2)
            breakglass.alert("parent-after-fork")
            breakglass.flush(30)
            s.wait_for(mails=3, requests=3)
            emit({"child": child, "child_exit": os.waitstatus_to_exitcode(wstatus) if hasattr(os, "waitstatus_to_exitcode") else wstatus,
                  "parent": parent,
                  "ips": sorted(json.loads(r["body"])["ip"] for r in s.requests),
                  "mails": len(s.mails)})
        """
    )
    assert r["child_exit"] == 0
    c = r["child"]
    assert c["child_verify"] == "NoPendingOtp"
    assert c["child_delta"]["queued"] == 1
    assert (c["child_delta"]["emails_sent"], c["child_delta"]["webhooks_sent"]) == (1, 1)
    assert c["child_own_code"] == "ok"
    assert c["child_records"] is True  # the log callback works in the child
    assert r["parent"] == ["ok", "NoPendingOtp"]
    assert r["ips"] == ["child-alert", "parent-after-fork", "parent-warmup"]
    assert r["mails"] == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_library_threads_are_logging():
    # os.fork() holds the GIL while the library's fork handler waits for log callbacks in
    # progress, which need the GIL: without the binding's at-fork hooks this deadlocks.
    r = run_script(
        """
        class Slow(logging.Handler):
            def emit(self, record):
                time.sleep(0.0005)
        logging.getLogger("breakglass").addHandler(Slow())
        breakglass.set_log_level(logging.INFO)
        with Servers() as s:
            breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                                 alert_emails=["ops@example.com"], alert_webhook_url=s.http_url)
            stop = threading.Event()
            def spam():
                while not stop.is_set():
                    breakglass.alert("10.9.8.7")
                    time.sleep(0.002)
            t = threading.Thread(target=spam)
            t.start()
            forks = 0
            try:
                for _ in range(40):
                    pid = os.fork()
                    if pid == 0:
                        os._exit(0)
                    os.waitpid(pid, 0)
                    forks += 1
            finally:
                stop.set()
                t.join()
            breakglass.flush(60)
            emit({"forks": forks, "logged": len(records.at(logging.INFO)) > 0})
        """,
        timeout=90,
    )
    assert r["forks"] == 40
    assert r["logged"] is True


def test_exit_with_deliveries_in_flight_detaches_the_logger():
    # An exit handler that runs after the binding's (atexit is LIFO) gives the delivery threads
    # time to fail and log: their records must reach stderr, not the exiting interpreter.
    r = run_script(
        """
        import atexit
        atexit.unregister(breakglass._at_exit)
        atexit.register(breakglass.flush, 60)  # runs after the binding detached: waits for
        atexit.register(breakglass._at_exit)   # the deliveries to fail and log
        breakglass.set_log_level(logging.DEBUG)
        s = Servers(smtp="stall", http="hang", lifetime=30).start()
        breakglass.configure(mailer=s.smtp_url, from_email="bg@example.com",
                             alert_emails=["ops@example.com"], alert_webhook_url=s.http_url,
                             delivery_timeout_ms=300)
        breakglass.alert("203.0.113.70")
        emit({"ok": True})
        """
    )
    assert r["ok"] is True
    assert "breakglass: error:" in r["_stderr"], r["_stderr"][-2000:]
    assert "Fatal Python error" not in r["_stderr"]
