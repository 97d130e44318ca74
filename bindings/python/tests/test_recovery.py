"""Mail down: recovery codes through the binding, the health call, and the headers a real SMTP
server (aiosmtpd) receives. Recovery codes are made by the project's own CLI
(``breakglass recovery-codes new``), as an operator would."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import List

import pytest

import breakglass
from bgserve import free_port
from conftest import REPO

argon2 = pytest.importorskip("argon2", reason="argon2-cffi is installed by make deps")

PASSWORD = "correct horse battery staple"
IP = "192.0.2.30"
CLI = Path(os.environ.get("BREAKGLASS_CLI", REPO / "target" / "debug" / "breakglass"))


def new_codes(path: Path, n: int) -> List[str]:
    if not CLI.exists():
        pytest.skip(f"{CLI} is not built (cargo build)")
    out = subprocess.run(
        [str(CLI), "recovery-codes", "new", "-n", str(n), "--file", str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    codes = re.findall(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$", out.stdout, re.M)
    assert len(codes) == n, out.stdout
    return codes


def configure_login(mailer: str, codes_file: Path) -> None:
    quick = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD)
    breakglass.configure(
        mailer=mailer,
        from_email="bg@example.com",
        otp_email="oncall@example.com",
        password_hash=quick,
        allowed_ips="192.0.2.0/24",
        delivery_timeout_ms=1000,
        recovery_codes_file=str(codes_file),
        max_global_failures=1_000_000,
    )


def dead_mailer() -> str:
    return f"smtp://127.0.0.1:{free_port()}?tls=opportunistic"


def test_health_names_the_failing_code_email_and_a_recovery_code_logs_in(
    tmp_path: Path, records
) -> None:
    codes = new_codes(tmp_path / "codes", 3)
    configure_login(dead_mailer(), tmp_path / "codes")
    try:
        breakglass.login_begin(IP, PASSWORD)  # queued: no exception, though mail is down
        breakglass.flush(30)
        said = " ".join(records.messages())
        assert "one-time code email queued" in said and "code sent" not in said, said
        rows = breakglass.delivery_health()
        assert rows[0].path == "code email" and rows[1].path == "alert email"
        assert breakglass.code_email_failing()
        assert rows[0].failing and rows[0].last_failure and rows[0].last_failure_reason
        # Earlier tests in this process may have delivered: the failure is the later outcome.
        assert rows[0].last_failure >= (rows[0].last_success or 0)

        token = breakglass.login_complete(IP, codes[2].lower().replace("-", " "))
        breakglass.session_check(token)
        # Used: refused, and counted.
        breakglass.login_begin(IP, PASSWORD)
        with pytest.raises(breakglass.LoginInvalid):
            breakglass.login_complete(IP, codes[2])
        assert breakglass.attempts_left(IP) == 4
        # A wrong one is one failure too.
        breakglass.login_begin(IP, PASSWORD)
        with pytest.raises(breakglass.LoginInvalid):
            breakglass.login_complete(IP, "ZZZZ-ZZZZ-ZZZZ-ZZZZ")
        assert breakglass.attempts_left(IP) == 3
    finally:
        breakglass.reset_attempts(IP)


def test_the_received_message_has_a_message_id_and_a_date_and_health_recovers(
    servers, tmp_path: Path
) -> None:
    s = servers()
    breakglass.configure(mailer=dead_mailer(), from_email="bg@example.com",
                         otp_email="oncall@example.com", delivery_timeout_ms=1000)
    breakglass.send_otp(breakglass.generate())
    breakglass.flush(30)
    assert breakglass.code_email_failing()
    breakglass.configure(mailer=s.smtp_url)
    breakglass.send_otp(breakglass.generate())
    breakglass.flush(30)
    assert s.wait_for(mails=1)
    data = s.mails[0]["data"]
    headers = data.split("\n\n", 1)[0]
    assert re.search(r"^Message-ID: <[0-9a-f]{32}@example\.com>\r?$", headers, re.M), headers
    assert re.search(r"^Date: ", headers, re.M), headers
    assert not breakglass.code_email_failing()
    row = breakglass.delivery_health()[0]
    assert row.last_success and row.last_failure and row.last_success >= row.last_failure


def test_a_drill_with_a_dead_mailer_fails_naming_the_code_email() -> None:
    breakglass.configure(mailer=dead_mailer(), from_email="bg@example.com",
                         otp_email="oncall@example.com", delivery_timeout_ms=1000)
    with pytest.raises(breakglass.DrillFailed) as e:
        breakglass.drill()
    assert "code email oncall@example.com" in str(e.value)
