"""examples/flask_login.py end to end with Flask's test client: configured from BREAKGLASS_*
variables on a file outbox; password, code read from the outbox files, login, the protected
page, the alert email, logout, and the page refused afterwards."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path
from typing import Any, Iterator, Tuple

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


def test_password_code_protected_page_alarm_logout(app: Tuple[Any, Outbox]):
    client, box = app
    assert client.get("/protected").status_code == 401
    page = client.get("/")
    assert page.status_code == 200 and b'action="/begin"' in page.data

    r = client.post("/begin", data={"password": PASSWORD})
    assert r.status_code == 200, r.data
    code = box.new_code()
    r = client.post("/complete", data={"code": code})
    assert r.status_code == 303 and r.headers["Location"].endswith("/protected")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    token = client.get_cookie("breakglass_session").value
    breakglass.session_check(token)  # the cookie holds the library's session token

    r = client.get("/protected")
    assert r.status_code == 200 and b"session active" in r.data
    alerts = box.alerts()
    assert len(alerts) == 1 and "127.0.0.1" in alerts[0] and "ops@example.com" in alerts[0]

    r = client.post("/logout")
    assert r.status_code == 303
    assert client.get_cookie("breakglass_session") is None
    with pytest.raises(breakglass.NoSession):
        breakglass.session_check(token)
    # Even a client that kept the old cookie is refused.
    client.set_cookie("breakglass_session", token)
    assert client.get("/protected").status_code == 401


def test_wrong_password_then_lockout(app: Tuple[Any, Outbox]):
    client, box = app
    for left in (2, 1, 0):
        r = client.post("/begin", data={"password": "guess"})
        assert r.status_code == 403 and b"Denied" in r.data
        assert breakglass.attempts_left("127.0.0.1") == left
    r = client.post("/begin", data={"password": PASSWORD})
    assert r.status_code == 429 and b"Locked out" in r.data
    assert box.mails() == []


def test_wrong_code_and_foreign_address_are_denied(app: Tuple[Any, Outbox]):
    client, box = app
    assert client.post("/begin", data={"password": PASSWORD}).status_code == 200
    code = box.new_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert client.post("/complete", data={"code": wrong}).status_code == 403
    assert client.post("/complete", data={"code": code}).status_code == 403  # consumed
    assert client.get("/protected").status_code == 401
    # Not in allowed_ips: the right password is refused.
    r = client.post("/begin", data={"password": PASSWORD}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert r.status_code == 403
    # No login alarm; the wrong code after a right password raised the guessing alarm.
    assert [a for a in box.alerts() if "Emergency login from" in a] == []
    assert [a for a in box.alerts() if "guessing the emergency code" in a] != []
