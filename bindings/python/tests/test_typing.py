"""The hints: mypy --strict accepts correct calls and rejects a wrong type or an unknown key
in configure(); the TypedDict holds exactly the library's keys."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path
from typing import List, Tuple

import pytest

import breakglass
from breakglass import _settings
from conftest import PACKAGE_SRC


def _mypy_or_skip() -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        if os.environ.get("BG_TEST_PYTHON"):  # under make: the venv must have it
            raise
        pytest.skip("mypy is not installed (make deps installs it)")


def run_mypy(tmp_path: Path, code: str) -> Tuple[int, List[str]]:
    """mypy --strict on ``code`` against the working tree's package; (exit status, errors)."""
    _mypy_or_skip()
    path = tmp_path / "user.py"
    path.write_text(textwrap.dedent(code))
    env = dict(os.environ, MYPYPATH=str(PACKAGE_SRC))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), str(path)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    return proc.returncode, errors


GOOD = """
    import ipaddress
    import logging
    import breakglass

    breakglass.configure(otp_ttl_seconds=600, delivery_timeout_ms="2500", dev_otp_log=False,
                         alert_emails=["a@example.com"], mailer="file:///tmp/outbox",
                         from_email="bg@example.com", otp_email=None)
    breakglass.configure(alert_emails=("a@example.com", "b@example.com"), dev_otp_log="true")
    breakglass.configure(alert_emails="a@example.com, b@example.com", slot_url=None)
    options: breakglass.ConfigureOptions = {"slot_key": "svc:otp", "slot_wait_replicas": 1}
    breakglass.configure(**options)
    code: str = breakglass.generate()
    breakglass.send_otp(code)
    breakglass.verify(code)
    breakglass.alert("192.0.2.1")
    breakglass.alert(ipaddress.ip_address("192.0.2.1"))
    breakglass.alert(b"192.0.2.1")
    breakglass.alert()
    breakglass.flush(30)
    breakglass.flush(0.5)
    queued: int = breakglass.stats().queued
    breakglass.set_log_level(logging.INFO)
    breakglass.set_log_level("DEBUG")
    name: str = breakglass.status_name(2)
    breakglass.configure(password_hash="$argon2id$...", allowed_ips="192.0.2.0/24",
                         max_attempts=5, lockout_seconds="900", session_ttl_seconds=3600)
    breakglass.login_begin("192.0.2.1", "password")
    token: str = breakglass.login_complete(ipaddress.ip_address("192.0.2.1"), "123456")
    breakglass.session_check(token)
    breakglass.session_end(token)
    left: int = breakglass.attempts_left("192.0.2.1")
    breakglass.reset_attempts("192.0.2.1")
    keys: tuple[breakglass.ConfigKey, ...] = breakglass.config_keys()
    try:
        breakglass.login_begin("192.0.2.1", "password")
    except breakglass.LoginDenied as e:
        why: str = e.reason
"""

# Each line is one misuse; the test expects an error on each of them.
BAD = [
    "breakglass.configure(otp_ttl_seconds=1.5)",
    "breakglass.configure(otp_ttl=5)",
    "breakglass.configure(alert_emails=[1])",
    "breakglass.configure(mailer=b'smtp://x')",
    "breakglass.configure(dev_otp_log=1.0)",
    "breakglass.configure(alert_emails={'a@example.com'})",
    "breakglass.verify(123456)",
    "breakglass.flush('1')",
    "n: int = breakglass.generate()",
    "breakglass.configure(max_attempts=2.5)",
    "breakglass.configure(password_hash=b'x')",
    "t: int = breakglass.login_complete('192.0.2.1', '123456')",
    "breakglass.login_begin(3232235777, 'pw')",
    "s: str = breakglass.attempts_left('192.0.2.1')",
]


def test_mypy_strict_accepts_correct_calls(tmp_path: Path):
    status, errors = run_mypy(tmp_path, GOOD)
    assert (status, errors) == (0, []), errors


def test_mypy_strict_rejects_wrong_types_and_unknown_keys(tmp_path: Path):
    status, errors = run_mypy(tmp_path, "import breakglass\n" + "\n".join(BAD) + "\n")
    assert status == 1
    lines = {int(m.group(1)) for e in errors if (m := re.search(r"user\.py:(\d+):", e))}
    for n, code in enumerate(BAD, start=2):
        assert n in lines, f"mypy accepted: {code}\n" + "\n".join(errors)


def test_configure_options_hold_the_runtime_keys():
    assert set(breakglass.ConfigureOptions.__annotations__) == set(breakglass.CONFIG_KEYS)
    assert breakglass.ConfigureOptions.__optional_keys__ == frozenset(breakglass.CONFIG_KEYS)
    assert _settings.INT_KEYS | _settings.BOOL_KEYS | _settings.LIST_KEYS <= set(breakglass.CONFIG_KEYS)


# What configure() accepts for each kind in the library's table (bg_config_key).
TYPES_BY_KIND = {
    "integer": _settings.IntValue,
    "boolean": _settings.BoolValue,
    "string": _settings.TextValue,
    "secret": _settings.TextValue,
    "email_list": _settings.ListValue,
}


def test_configure_options_match_the_librarys_key_table():
    """The library's table (bg_config_key), the runtime tuple and the TypedDict: the same keys
    in the same order, each typed for its kind: int for "integer", bool for "boolean", str
    for "string" and "secret", a list/tuple of str or one str for "email_list"."""
    table = breakglass.config_keys()
    hints = typing.get_type_hints(breakglass.ConfigureOptions)
    assert tuple(hints) == tuple(k.name for k in table) == breakglass.CONFIG_KEYS
    for k in table:
        assert hints[k.name] == TYPES_BY_KIND[k.kind], (k.name, k.kind, hints[k.name])
    assert _settings.INT_KEYS == {k.name for k in table if k.kind == "integer"}
    assert _settings.BOOL_KEYS == {k.name for k in table if k.kind == "boolean"}
    assert _settings.LIST_KEYS == {k.name for k in table if k.kind == "email_list"}


def test_the_package_itself_passes_mypy_strict(tmp_path: Path):
    _mypy_or_skip()
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "-p", "breakglass"],
        cwd=str(tmp_path), env=dict(os.environ, MYPYPATH=str(PACKAGE_SRC)),
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout


def test_the_flask_example_passes_mypy_strict(tmp_path: Path):
    _mypy_or_skip()
    pytest.importorskip("flask", reason="flask is installed by make deps")
    example = PACKAGE_SRC.parents[2] / "examples" / "flask_login.py"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), str(example)],
        cwd=str(tmp_path), env=dict(os.environ, MYPYPATH=str(PACKAGE_SRC)),
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout
