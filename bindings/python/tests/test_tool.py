"""``breakglass.hash_password()`` (``bg_hash_password``) and the ``breakglass`` tool through
Python (``python -m breakglass``, the console script); the wheel's copy is in test_wheel.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import breakglass
from conftest import PACKAGE_SRC

argon2 = pytest.importorskip("argon2", reason="argon2-cffi is installed by make deps")


def test_hash_password_makes_an_argon2id_hash_the_login_accepts(records):
    phc = breakglass.hash_password("correct horse battery")
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), phc
    assert argon2.PasswordHasher().verify(phc, "correct horse battery")
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(phc, "correct horse batterY")
    assert phc != breakglass.hash_password("correct horse battery")  # a salt of its own
    breakglass.configure(password_hash=phc)  # the library takes it as password_hash
    assert not any("correct horse" in m for m in records.messages())


def test_hash_password_refuses_bad_input_without_echoing_it():
    with pytest.raises(breakglass.ArgumentError, match="empty"):
        breakglass.hash_password("")
    with pytest.raises(breakglass.ArgumentError) as e:
        breakglass.hash_password("long secret " * 400)
    assert "long secret" not in str(e.value)
    with pytest.raises(ValueError, match="NUL"):
        breakglass.hash_password("a\0b")
    with pytest.raises(TypeError):
        breakglass.hash_password(b"bytes")  # type: ignore[arg-type]


def _module(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(PACKAGE_SRC)}
    import os

    env.update({k: v for k, v in os.environ.items() if k in ("PATH", "BREAKGLASS_LIBRARY", "HOME")})
    return subprocess.run([sys.executable, "-m", "breakglass", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def test_python_m_breakglass_runs_the_tool():
    proc = _module("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"breakglass {breakglass.version()}\n"
    proc = _module("hash-password", stdin="from the module\n")
    assert proc.returncode == 0, proc.stderr
    assert argon2.PasswordHasher().verify(proc.stdout.strip(), "from the module")
    # The tool's own exit statuses come through: 2 for a usage error.
    assert _module("no-such-command").returncode == 2


def test_the_tool_is_found_beside_the_loaded_library():
    from breakglass import __main__ as tool

    path = tool.tool_path()
    assert path is not None and Path(path).name == "breakglass"
    assert Path(path).parent == Path(breakglass._ffi.lib._name).resolve().parent
