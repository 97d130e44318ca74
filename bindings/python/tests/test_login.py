"""The login flow through the binding, against the real library on a file outbox: password, code
read from the outbox, session, the alarm, and each denial with the exception and failure count
it must give. Password hashes are made by the two reference implementations, argon2-cffi and
bcrypt (installed by the Makefile's venv recipe), and must verify through the library."""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path
from typing import Iterator

import pytest

import breakglass
from outbox import Outbox

argon2 = pytest.importorskip("argon2", reason="argon2-cffi is installed by make deps")
bcrypt = pytest.importorskip("bcrypt", reason="bcrypt is installed by make deps")

PASSWORD = "correct horse battery staple"
ALLOWED = "192.0.2.0/24, 2001:db8::/32"
IP = "192.0.2.10"


@pytest.fixture(scope="module")
def argon2_hash() -> str:
    # argon2-cffi's own defaults (argon2id, m=64 MiB t=3 p=4): what a user of it would store.
    return str(argon2.PasswordHasher().hash(PASSWORD))


@pytest.fixture(scope="module")
def bcrypt_hash() -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode()


@pytest.fixture(scope="module")
def quick_hash() -> str:
    # The flow tests check many passwords: a cheaper argon2id (the library's own default
    # parameters, OWASP's minimum) keeps them quick on a debug build.
    return str(argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD))


@pytest.fixture
def login(tmp_path: Path, quick_hash: str) -> Iterator[Outbox]:
    """The login flow configured on a file outbox; every address used is reset afterwards."""
    box = Outbox(tmp_path / "outbox")
    box.path.mkdir()
    breakglass.configure(
        mailer=box.mailer,
        from_email="bg@example.com",
        otp_email="oncall@example.com",
        alert_emails=["ops@example.com"],
        password_hash=quick_hash,
        allowed_ips=ALLOWED,
        # Failures add up over the whole test process; only the per-address limit is tested.
        max_global_failures=1_000_000,
    )
    try:
        yield box
    finally:
        breakglass.flush(30)
        for ip in (IP, "192.0.2.11", "192.0.2.12", "2001:db8::1"):
            breakglass.reset_attempts(ip)


def test_password_code_session_alarm_and_logout(login: Outbox):
    left = breakglass.attempts_left(IP)
    assert left == 5  # max_attempts' default
    assert breakglass.login_begin(IP, PASSWORD) is None
    code = login.new_code()
    token = breakglass.login_complete(IP, code)
    assert isinstance(token, str) and re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert breakglass.session_check(token) is None
    alerts = login.alerts()
    assert len(alerts) == 1 and IP in alerts[0] and "ops@example.com" in alerts[0]
    assert breakglass.attempts_left(IP) == left  # success counts nothing
    breakglass.session_end(token)
    with pytest.raises(breakglass.NoSession) as e:
        breakglass.session_check(token)
    assert isinstance(e.value, breakglass.LoginDenied) and e.value.status == 15
    with pytest.raises(breakglass.NoSession):
        breakglass.session_end(token)


def test_a_new_login_replaces_the_session(login: Outbox):
    breakglass.login_begin(IP, PASSWORD)
    first = breakglass.login_complete(IP, login.new_code())
    breakglass.login_begin(IP, PASSWORD)
    second = breakglass.login_complete(IP, login.new_code())
    assert first != second
    breakglass.session_check(second)
    with pytest.raises(breakglass.NoSession):
        breakglass.session_check(first)
    for bad in ("", "x" * 43, second[:-1]):
        with pytest.raises(breakglass.NoSession):
            breakglass.session_check(bad)
    breakglass.session_end(second)


def test_wrong_password_is_counted_and_locks_out(login: Outbox):
    breakglass.configure(max_attempts=3)
    with pytest.raises(breakglass.WrongPassword) as e:
        breakglass.login_begin(IP, PASSWORD + "!")
    assert isinstance(e.value, breakglass.LoginDenied) and e.value.status == 14
    # The library's reason is the status name itself, which the message does not repeat.
    assert str(e.value) == "login_begin(): wrong password (status 14)"
    assert PASSWORD not in str(e.value)
    assert breakglass.attempts_left(IP) == 2
    for left in (1, 0):
        with pytest.raises(breakglass.WrongPassword):
            breakglass.login_begin(IP, "nope")
        assert breakglass.attempts_left(IP) == left
    # Locked out: even the right password is refused, before it is checked.
    with pytest.raises(breakglass.LockedOut) as e:
        breakglass.login_begin(IP, PASSWORD)
    assert e.value.status == 13 and "address" in e.value.reason
    # Only that address: another one still gets in.
    breakglass.login_begin("192.0.2.11", PASSWORD)
    login.new_code()
    # The operator lifts it.
    breakglass.reset_attempts(IP)
    assert breakglass.attempts_left(IP) == 3
    breakglass.login_begin(IP, PASSWORD)
    breakglass.login_complete(IP, login.new_code())
    assert not [m for m in login.mails() if PASSWORD in m]


def test_wrong_code_is_counted_and_is_both_a_verify_error_and_a_denial(login: Outbox):
    breakglass.login_begin(IP, PASSWORD)
    code = login.new_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(breakglass.LoginInvalid) as e:
        breakglass.login_complete(IP, wrong)
    assert isinstance(e.value, breakglass.Invalid) and isinstance(e.value, breakglass.VerifyError)
    assert isinstance(e.value, breakglass.LoginDenied) and e.value.status == 1
    assert breakglass.attempts_left(IP) == 4
    # The code was consumed by the wrong try.
    with pytest.raises(breakglass.LoginNoPendingOtp) as e2:
        breakglass.login_complete(IP, code)
    assert isinstance(e2.value, breakglass.NoPendingOtp)
    assert breakglass.attempts_left(IP) == 3
    assert login.alerts() == []  # no login, no alarm


def test_expired_code_is_a_login_expired(login: Outbox):
    breakglass.configure(otp_ttl_seconds=1)
    breakglass.login_begin(IP, PASSWORD)
    code = login.new_code()
    time.sleep(1.2)
    with pytest.raises(breakglass.LoginExpired) as e:
        breakglass.login_complete(IP, code)
    assert isinstance(e.value, breakglass.Expired) and isinstance(e.value, breakglass.LoginDenied)


@pytest.mark.parametrize("ip", ["203.0.113.5", "10.0.0.1", "not an address", "", "192.0.2.300"])
def test_ip_not_allowed(login: Outbox, ip: str):
    with pytest.raises(breakglass.IpNotAllowed) as e:
        breakglass.login_begin(ip, PASSWORD)
    assert isinstance(e.value, breakglass.LoginDenied) and e.value.status == 12
    assert e.value.reason
    with pytest.raises(breakglass.IpNotAllowed):
        breakglass.login_complete(ip, "123456")
    assert login.mails() == []


def test_ip_objects_and_ipv6(login: Outbox):
    addr = ipaddress.ip_address("2001:db8::1")
    breakglass.login_begin(addr, PASSWORD)
    token = breakglass.login_complete(addr, login.new_code())
    breakglass.session_check(token)
    assert breakglass.attempts_left(addr) == 5
    with pytest.raises(TypeError):
        breakglass.login_begin(42, PASSWORD)  # type: ignore[arg-type]


def test_attempts_left_needs_an_address(login: Outbox):
    with pytest.raises(breakglass.ArgumentError) as e:
        breakglass.attempts_left("not an address")
    assert e.value.reason


def test_nul_never_reaches_c(login: Outbox):
    for call in (
        lambda: breakglass.login_begin(IP + "\0", PASSWORD),
        lambda: breakglass.login_begin(IP, PASSWORD + "\0"),
        lambda: breakglass.login_complete(IP, "123456\0"),
        lambda: breakglass.session_check("t\0"),
    ):
        with pytest.raises(ValueError):
            call()
    assert breakglass.attempts_left(IP) == 5  # nothing was counted


def test_without_a_password_hash_the_flow_is_not_configured(login: Outbox):
    breakglass.configure(password_hash=None)
    with pytest.raises(breakglass.NotConfiguredError) as e:
        breakglass.login_begin(IP, PASSWORD)
    assert not isinstance(e.value, breakglass.LoginDenied)
    assert "password_hash" in e.value.reason


# ---------------------------------------------------------------------------------- hash formats
@pytest.mark.parametrize("kind", ["argon2id", "bcrypt"])
def test_hashes_from_the_reference_implementations_verify(
    login: Outbox, kind: str, request: pytest.FixtureRequest
):
    stored = request.getfixturevalue(f"{kind.replace('id', '')}_hash")
    assert stored.startswith("$argon2id$" if kind == "argon2id" else "$2b$")
    breakglass.configure(password_hash=stored)
    breakglass.login_begin(IP, PASSWORD)
    login.new_code()
    with pytest.raises(breakglass.WrongPassword):
        breakglass.login_begin(IP, PASSWORD.upper())
    with pytest.raises(breakglass.WrongPassword):
        breakglass.login_begin(IP, "")


def test_bcrypt_refuses_passwords_over_72_bytes(login: Outbox):
    long_password = "p" * 72
    stored = bcrypt.hashpw(long_password.encode(), bcrypt.gensalt(rounds=4)).decode()
    breakglass.configure(password_hash=stored)
    breakglass.login_begin(IP, long_password)  # exactly 72: fine
    login.new_code()
    # bcrypt itself would accept any continuation (it reads 72 bytes); the library refuses.
    assert bcrypt.checkpw((long_password + "xyz").encode()[:72], stored.encode())
    with pytest.raises(breakglass.WrongPassword):
        breakglass.login_begin(IP, long_password + "xyz")


@pytest.mark.parametrize(
    "bad", ["plaintext", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$2b$04$short"]
)
def test_bad_hashes_are_refused_with_a_reason_that_does_not_show_them(bad: str):
    with pytest.raises(breakglass.ArgumentError) as e:
        breakglass.configure(password_hash=bad)
    assert e.value.reason.startswith("password_hash")
    assert bad not in str(e.value)

