"""The platform wheel (``make wheel``): tagged for the glibc its library needs, carrying the
library just built, and working when installed on its own.

Run by ``make test-wheel``, which builds the wheel and passes its directory in
``BG_TEST_WHEEL_DIR``; without it these tests skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict

import pytest

from conftest import REPO

WHEEL_DIR = os.environ.get("BG_TEST_WHEEL_DIR")
pytestmark = pytest.mark.skipif(not WHEEL_DIR, reason="no BG_TEST_WHEEL_DIR: run `make test-wheel`")


@pytest.fixture(scope="module")
def wheel() -> Path:
    found = sorted(Path(WHEEL_DIR or ".").glob("*.whl"))
    assert len(found) == 1, f"want exactly one wheel in {WHEEL_DIR}, found {found}"
    return found[0]


def glibc_needed_by(library: Path) -> int:
    """The newest GLIBC_2.x the library's dynamic symbols need, read with objdump -T (setup.py
    reads readelf's version section: two tools, so the test does not repeat the build's
    reasoning)."""
    out = subprocess.run(["objdump", "-T", str(library)], check=True, capture_output=True, text=True).stdout
    minors = [int(m) for m in re.findall(r"\bGLIBC_2\.(\d+)", out)]
    assert minors, out[:2000]
    return max(minors)


def test_the_wheel_is_tagged_for_the_glibc_its_library_needs(wheel: Path, tmp_path: Path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "breakglass/libbreakglass.so" in names, names
        library = tmp_path / "libbreakglass.so"
        library.write_bytes(z.read("breakglass/libbreakglass.so"))
        info = z.read("breakglass-0.1.0.dist-info/WHEEL").decode()
    tag = f"py3-none-manylinux_2_{glibc_needed_by(library)}_{platform.machine()}"
    assert wheel.name == f"breakglass-0.1.0-{tag}.whl"
    assert f"Tag: {tag}" in info.splitlines()
    assert "Root-Is-Purelib: false" in info.splitlines()  # a native library goes to platlib
    assert not wheel.name.endswith("-any.whl")


def test_the_wheel_carries_the_release_build_just_made(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        shipped = hashlib.sha256(z.read("breakglass/libbreakglass.so")).hexdigest()
    built = hashlib.sha256((REPO / "target" / "release" / "libbreakglass.so").read_bytes()).hexdigest()
    assert shipped == built


FLOW = """
import json, pathlib, re, sys
import breakglass

# The whole login, as a page would run it: password, the code from the (file) outbox, the
# session. The hash is bcrypt (cost 4, fast for a test) of "correct horse".
outbox = pathlib.Path(sys.argv[1])
breakglass.configure(mailer=outbox.as_uri(), from_email="bg@example.com",
                     otp_email="oncall@example.com", alert_emails=["ops@example.com"],
                     allowed_ips="203.0.113.0/24",
                     password_hash="$2b$04$yUBCyfGraBusVpGw0SNl7uamWW6f95K6JOgURFT3ZzI.xkfZpq2UC")
breakglass.login_begin("203.0.113.99", "correct horse")
breakglass.flush(30)
[code] = re.findall(r"one-time code is: (\\d{6})", "".join(p.read_text() for p in outbox.iterdir()))
token = breakglass.login_complete("203.0.113.99", code)   # raises unless the login succeeds
breakglass.session_check(token)
breakglass.flush(30)
print(json.dumps({"code": code, "package": breakglass.__file__,
                  "library": breakglass._ffi.lib._name,
                  "sent": breakglass.stats().emails_sent}))
"""


def clean_env() -> Dict[str, str]:
    """The environment of a machine with the wheel and nothing else: no library path, no
    Python path, nothing pointing into the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BREAKGLASS_", "PYTHON", "LD_", "VIRTUAL_ENV"))}
    for k, v in list(env.items()):
        if str(REPO) in v:
            del env[k]
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def test_the_wheel_installed_alone_runs_a_login(wheel: Path, tmp_path: Path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert REPO not in work.parents
    env = clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, env=env, cwd=work)
    python = work / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
        check=True, env=env, cwd=work, capture_output=True,
    )
    outbox = work / "outbox"
    outbox.mkdir()
    proc = subprocess.run(
        [str(python), "-I", "-c", FLOW, str(outbox)], env=env, cwd=work, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    site = work / "venv" / "lib"
    assert Path(r["package"]).is_relative_to(site), r  # the installed copy, not the checkout
    assert Path(r["library"]) == Path(r["package"]).parent / "libbreakglass.so", r  # the bundled library
    assert r["sent"] == 2
    mails = [p.read_text(errors="replace") for p in sorted(outbox.iterdir())]
    assert len(mails) == 2, mails
    assert sum(r["code"] in m and "oncall@example.com" in m for m in mails) == 1
    assert sum("203.0.113.99" in m and "ops@example.com" in m for m in mails) == 1

    # The operator tool comes with the wheel: the console script, and python -m breakglass.
    script = work / "venv" / "bin" / "breakglass"
    for cmd in ([str(script), "--version"], [str(python), "-I", "-m", "breakglass", "--version"]):
        proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.startswith("breakglass "), (cmd, proc.stderr)
    proc = subprocess.run([str(script), "hash-password"], input="wheel password\n", env=env, cwd=work,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("$argon2id$"), proc.stderr
    proc = subprocess.run([str(python), "-I", "-c", "import breakglass; print(breakglass.hash_password('pw'))"],
                          env=env, cwd=work, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("$argon2id$v=19$"), proc.stderr
