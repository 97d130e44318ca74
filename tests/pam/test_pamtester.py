"""pamtester against the test's own service files (pam_wrapper points libpam at the test's
service directory: no root, nothing in /etc/pam.d), answering the prompts on stdin."""

from __future__ import annotations

import glob
import os
import subprocess
from typing import Callable, Union

import pytest
from conftest import PASSWORD, USER, which

PAMTESTER = which("pamtester")
WRAPPER = next(iter(glob.glob("/usr/lib/*/libpam_wrapper.so") + glob.glob("/usr/lib/libpam_wrapper.so")),
               None)

pytestmark = [
    pytest.mark.skipif(PAMTESTER is None, reason="pamtester is not installed (apt-get install pamtester)"),
    pytest.mark.skipif(WRAPPER is None,
                       reason="pam_wrapper is not installed (apt-get install libpam-wrapper)"),
]

OK = "successfully authenticated"


def pamtester(env, *, user: str = USER, service: str = "bg", password: str = PASSWORD,
              code: Union[str, Callable[[], str], None] = "outbox", rhost: str = "127.0.0.1"):
    """(exit status, output). The password goes in at once; the code once it is in the outbox."""
    proc = subprocess.Popen(
        [PAMTESTER, "-v", "-I", f"rhost={rhost}", service, user, "authenticate"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "LD_PRELOAD": WRAPPER, "PAM_WRAPPER": "1",
             "PAM_WRAPPER_SERVICE_DIR": str(env.confdir)})

    def send(line: str) -> None:
        # pamtester may be gone already (a refusal before any prompt): nothing to answer then.
        try:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass

    try:
        send(password)
        if code is not None:
            send(env.outbox.new_code() if code == "outbox" else code() if callable(code) else code)
        try:
            proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        out = proc.stdout.read() if proc.stdout else ""
        return proc.wait(timeout=60), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_right_password_and_code(env):
    rc, out = pamtester(env)
    assert rc == 0 and OK in out, out
    assert "Break-glass password: " in out and "A code was sent to the break-glass address." in out
    assert len(env.outbox.alerts()) == 1


def test_wrong_password(env):
    rc, out = pamtester(env, password="not it", code=None)
    assert rc != 0 and OK not in out
    assert "Break-glass login denied." in out and "Authentication failure" in out
    assert "Break-glass code: " not in out


def test_wrong_code(env):
    def wrong() -> str:
        c = env.outbox.new_code()
        return c[:-1] + str((int(c[-1]) + 1) % 10)

    rc, out = pamtester(env, code=wrong)
    assert rc != 0 and OK not in out and "Authentication failure" in out
    # No login alarm; a wrong code after the right password raises the guessing alarm.
    alerts = env.outbox.alerts()
    assert not [a for a in alerts if "Emergency login from" in a]
    assert [a for a in alerts if "guessing the emergency code" in a]


def test_another_user_is_ignored(env):
    rc, out = pamtester(env, user="alice", service="bg-stack", code=None)
    assert rc == 0 and OK in out  # the rest of the stack (pam_permit) decided
    assert "Break-glass" not in out
    assert env.events() == []


def test_missing_config(env):
    env.config.unlink()
    rc, out = pamtester(env, code=None)
    assert rc != 0 and OK not in out
    assert "cannot retrieve authentication info" in out


def test_world_writable_config(env):
    env.write_config(mode=0o646)
    rc, out = pamtester(env, service="bg-stack", code=None)
    assert rc != 0 and OK not in out
    assert "cannot retrieve authentication info" in out
