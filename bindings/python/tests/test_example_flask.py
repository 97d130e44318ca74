"""examples/flask_login.py end to end with Flask's test client: configured from BREAKGLASS_*
variables on a file outbox; password, code read from the outbox files, login, the protected
page, the alert email, logout, and the page refused afterwards; post/redirect/get (a reload
sends no new code), the messages, the security headers. test_example_browser.py drives the
same page in Chromium, test_example_gunicorn.py serves it with gunicorn."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import types
from pathlib import Path
from typing import Any, Iterator, Tuple

import socket

import pytest

import breakglass
from conftest import REPO
from outbox import Outbox

flask = pytest.importorskip("flask", reason="flask is installed by make deps")
argon2 = pytest.importorskip("argon2", reason="argon2-cffi is installed by make deps")

PASSWORD = "correct horse battery staple"
EXAMPLE = REPO / "examples" / "flask_login.py"


def load_example() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("flask_login_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tuple[Any, Outbox]]:
    box = Outbox(tmp_path / "outbox")
    box.path.mkdir()
    stored = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD)
    env = {
        "MAILER": box.mailer,
        "FROM_EMAIL": "bg@example.com",
        "OTP_EMAIL": "oncall@example.com",
        "ALERT_EMAILS": "ops@example.com",
        "PASSWORD_HASH": stored,
        "ALLOWED_IPS": "127.0.0.1",  # the test client's address
        "MAX_ATTEMPTS": "3",
        "MAX_GLOBAL_FAILURES": "1000000",
    }
    for key, value in env.items():
        monkeypatch.setenv("BREAKGLASS_" + key, value)
    application = load_example().create_app()
    try:
        yield application.test_client(), box
    finally:
        breakglass.flush(30)
        breakglass.reset_attempts("127.0.0.1")


def _follow(client: Any, r: Any) -> Any:
    """The GET a 303 leads to (post/redirect/get), as a browser makes it."""
    assert r.status_code == 303, (r.status_code, r.data)
    return client.get(r.headers["Location"])


def test_password_code_protected_page_alarm_logout(app: Tuple[Any, Outbox]):
    client, box = app
    assert client.get("/protected").status_code == 401
    page = client.get("/")
    # One step at a time: the password form only.
    assert page.status_code == 200 and b'action="/begin"' in page.data and b'action="/complete"' not in page.data

    r = client.post("/begin", data={"password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"] == "/?step=code&m=sent"
    page = _follow(client, r)
    assert b'action="/complete"' in page.data and b'action="/begin"' not in page.data
    assert b"A code is on its way" in page.data and b"for 10 minutes" in page.data
    code = box.new_code()
    r = client.post("/complete", data={"code": code})
    assert r.status_code == 303 and r.headers["Location"].endswith("/protected")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    token = client.get_cookie("breakglass_session").value
    breakglass.session_check(token)  # the cookie holds the library's session token

    r = client.get("/protected")
    assert r.status_code == 200 and b"session active" in r.data
    assert b'<form method="post" action="/logout">' in r.data  # the logout button
    alerts = box.alerts()
    assert len(alerts) == 1 and "127.0.0.1" in alerts[0] and "ops@example.com" in alerts[0]

    r = client.post("/logout")
    assert r.status_code == 303 and r.headers["Location"] == "/?m=ended"
    assert client.get_cookie("breakglass_session") is None
    assert b"Logged out." in _follow(client, r).data
    with pytest.raises(breakglass.NoSession):
        breakglass.session_check(token)
    # Even a client that kept the old cookie is refused.
    client.set_cookie("breakglass_session", token)
    assert client.get("/protected").status_code == 401


def test_reloading_the_code_page_sends_no_new_code(app: Tuple[Any, Outbox]):
    client, box = app
    r = client.post("/begin", data={"password": PASSWORD})
    for _ in range(3):  # what a reload does after post/redirect/get
        assert _follow(client, r).status_code == 200
    code = box.new_code()  # exactly one code email
    assert client.post("/complete", data={"code": code}).headers["Location"].endswith("/protected")


def test_a_typo_says_the_code_is_used_up(app: Tuple[Any, Outbox]):
    client, box = app
    client.post("/begin", data={"password": PASSWORD})
    code = box.new_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    r = client.post("/complete", data={"code": wrong})
    assert r.headers["Location"] == "/?m=used"
    page = _follow(client, r)
    assert b"now used up" in page.data and b'action="/begin"' in page.data
    r = client.post("/complete", data={"code": code})  # consumed by the typo
    assert r.headers["Location"] == "/?m=nocode"
    assert client.get("/protected").status_code == 401


def test_every_answer_carries_the_security_headers(app: Tuple[Any, Outbox]):
    client, _ = app
    example = load_example()
    for r in (client.get("/"), client.get("/protected"), client.post("/begin", data={"password": "x"}),
              client.post("/logout")):
        assert r.headers["Cache-Control"] == "no-store"
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert r.headers["X-Frame-Options"] == "DENY"
    page = client.get("/").data.decode()
    # A viewport, the one inline stylesheet the CSP admits by its hash, nothing external.
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in example.SECURITY_HEADERS["Content-Security-Policy"]
    assert "http:" not in page and "https:" not in page and "<script" not in page


def test_the_code_field_takes_a_recovery_code(app: Tuple[Any, Outbox]):
    client, _ = app
    page = client.get("/?step=code").data.decode()
    field = page.split('<input id="code"', 1)[1].split(">", 1)[0]
    assert 'type="text"' in field and "pattern" not in field and "numeric" not in field
    client.post("/begin", data={"password": PASSWORD})
    # The library decides what the text is; the page passes it on untouched (a library without
    # recovery codes refuses it as a wrong code).
    r = client.post("/complete", data={"code": " 7KQ2-M9XD-4TFA-PW3H "})
    assert r.status_code == 303


def test_the_cookie_is_secure_behind_tls(app: Tuple[Any, Outbox]):
    client, box = app
    client.post("/begin", data={"password": PASSWORD}, base_url="https://localhost")
    r = client.post("/complete", data={"code": box.new_code()}, base_url="https://localhost")
    assert "Secure" in r.headers["Set-Cookie"]


def test_wrong_password_then_lockout(app: Tuple[Any, Outbox]):
    client, box = app
    for left in (2, 1, 0):
        r = client.post("/begin", data={"password": "guess"})
        assert r.headers["Location"] == "/?m=denied"
        assert breakglass.attempts_left("127.0.0.1") == left
    assert b"Not accepted" in _follow(client, r).data
    r = client.post("/begin", data={"password": PASSWORD})
    assert r.headers["Location"] == "/?m=locked"
    assert b"Try again in 15 minutes" in _follow(client, r).data
    # No code was sent (a guessing alarm may have gone out: that is not a code email).
    assert [m for m in box.mails() if "Subject: Break-glass one-time code" in m] == []


def test_a_foreign_address_is_denied(app: Tuple[Any, Outbox]):
    client, box = app
    # Not in allowed_ips: the right password is refused, with the same words as a wrong one.
    r = client.post("/begin", data={"password": PASSWORD}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert r.headers["Location"] == "/?m=denied"
    assert box.mails() == []


def test_a_failing_mailer_offers_a_recovery_code(app: Tuple[Any, Outbox], tmp_path: Path):
    client, box = app
    # A mailer with nothing listening: the first code email fails in the background.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    breakglass.configure(mailer=f"smtp://127.0.0.1:{dead}?tls=opportunistic")
    try:
        assert client.post("/begin", data={"password": PASSWORD}).status_code == 303
        breakglass.flush(30)
        assert breakglass.code_email_failing()
        r = client.post("/begin", data={"password": PASSWORD})
        assert r.headers["Location"] == "/?step=code&m=mailfailing"
        page = _follow(client, r).data
        assert b"recovery codes" in page and b"failing" in page
    finally:
        breakglass.configure(mailer=box.mailer)
        breakglass.flush(30)
