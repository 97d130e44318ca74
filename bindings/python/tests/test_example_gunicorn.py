"""examples/flask_login.py under gunicorn with examples/gunicorn.conf.py, as it is deployed:
SIGTERM right after a login still lets the alarm's retry land (the receiver fails once), a
dead mailer's error reaches gunicorn's stderr, and more than one worker needs ``state_dir``.

The several-worker tests need the library's ``state_dir`` key (issue 18): they skip, saying
so, when the loaded library does not have it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict

import pytest

from examplekit import PASSWORD, Gunicorn, get, library_has_key, password_hash, post, receiver, session_cookie
from outbox import CODE_MARK, Outbox

pytest.importorskip("gunicorn", reason="gunicorn is installed by make deps")
pytest.importorskip("argon2", reason="argon2-cffi is installed by make deps")

needs_state_dir = pytest.mark.skipif(
    not library_has_key("state_dir"),
    reason="the loaded libbreakglass has no state_dir key (issue 18): several gunicorn workers "
           "cannot share the login state without it",
)


def _env(box: Outbox, hook_url: str, **extra: str) -> Dict[str, str]:
    env = {
        "BREAKGLASS_MAILER": box.mailer,
        "BREAKGLASS_FROM_EMAIL": "bg@example.com",
        "BREAKGLASS_OTP_EMAIL": "oncall@example.com",
        "BREAKGLASS_PASSWORD_HASH": password_hash(),
        "BREAKGLASS_ALLOWED_IPS": "127.0.0.1",
        "BREAKGLASS_ALERT_WEBHOOK_URL": hook_url,
        "BREAKGLASS_DELIVERY_TIMEOUT_MS": "2000",
    }
    env.update({"BREAKGLASS_" + k.upper(): v for k, v in extra.items()})
    return env


def _wait_code(box: Outbox, timeout: float = 15) -> str:
    """The code of the next code email the server's worker writes (it writes asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(CODE_MARK in p.read_text(errors="replace") for p in box.path.iterdir() if p not in box.seen):
            return box.new_code()
        time.sleep(0.05)
    raise AssertionError("no code email arrived")


def _login(port: int, box: Outbox) -> str:
    status, headers, _ = post(port, "/begin", {"password": PASSWORD})
    assert status == 303 and headers["location"].endswith("/?step=code&m=sent"), (status, headers)
    status, headers, _ = post(port, "/complete", {"code": _wait_code(box)})
    assert status == 303 and headers["location"].endswith("/protected"), (status, headers)
    return session_cookie(headers)


def _box(tmp_path: Path) -> Outbox:
    box = Outbox(tmp_path / "outbox")
    box.path.mkdir()
    return box


def test_sigterm_right_after_a_login_still_delivers_the_retried_alarm(tmp_path: Path):
    # One worker: the login state lives in it, no state_dir needed (verifiable today).
    box = _box(tmp_path)
    with receiver(fail=1) as hook:
        server = Gunicorn(_env(box, hook.url), workers=1, log=tmp_path / "gunicorn.log")
        try:
            server.wait_ready()
            cookie = _login(server.port, box)
            assert get(server.port, "/protected", cookie)[0] == 200
            # At once, while the first POST is failing or its retry is waiting.
            rc = server.terminate()
        finally:
            server.kill()
        out = server.output()
        assert rc == 0, out
        # The 503, then the retry that landed, before the worker exited.
        assert hook.answers == [503, 200], (hook.answers, out)
        assert json.loads(hook.bodies[1])["ip"] == "127.0.0.1"


def test_a_dead_mailers_error_reaches_gunicorns_stderr(tmp_path: Path):
    box = _box(tmp_path)
    with receiver() as hook:
        env = _env(box, hook.url)
        # Nothing listens there: the code email fails, and says so on the log.
        env["BREAKGLASS_MAILER"] = "smtp://127.0.0.1:9?tls=opportunistic"
        env["BREAKGLASS_DELIVERY_TIMEOUT_MS"] = "500"
        server = Gunicorn(env, workers=1, log=tmp_path / "gunicorn.log")
        try:
            server.wait_ready()
            assert post(server.port, "/begin", {"password": PASSWORD})[0] == 303
            assert server.terminate() == 0
        finally:
            server.kill()
    errors = [line for line in server.output().splitlines() if "[ERROR] breakglass" in line]
    assert errors and "127.0.0.1:9" in errors[0], server.output()
    assert PASSWORD not in server.output()


def test_several_workers_without_shared_state_are_refused_at_start(tmp_path: Path):
    box = _box(tmp_path)
    server = Gunicorn(_env(box, "http://127.0.0.1:9/hook"), workers=2, log=tmp_path / "gunicorn.log")
    try:
        rc = server.proc.wait(30)
    finally:
        server.kill()
    assert rc != 0
    assert "2 workers need shared login state: set BREAKGLASS_STATE_DIR" in server.output()


@needs_state_dir
@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-load", "preload"])
def test_four_workers_with_state_dir_and_sigterm_after_the_last_login(tmp_path: Path, preload: bool):
    box = _box(tmp_path)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with receiver() as hook:
        env = _env(box, hook.url, state_dir=str(state))
        server = Gunicorn(env, workers=4, log=tmp_path / "gunicorn.log",
                          extra=("--preload",) if preload else ())
        try:
            server.wait_ready()
            logins = 20
            for n in range(logins):  # connections land on different workers
                if n == logins - 1:
                    assert hook.wait_for(logins - 1, 15), hook.answers
                    hook.fail_next()  # the last login's alarm fails once
                cookie = _login(server.port, box)
                for _ in range(4):  # its session holds in every worker
                    assert get(server.port, "/protected", cookie)[0] == 200
                if n % 5 == 4:  # ended through one worker, gone for every other
                    assert post(server.port, "/logout", {}, cookie)[0] == 303
                    for _ in range(4):
                        assert get(server.port, "/protected", cookie)[0] != 200
            rc = server.terminate()
        finally:
            server.kill()
        out = server.output()
        assert rc == 0, out
        assert hook.answers == [200] * (logins - 1) + [503, 200], (hook.answers, out)


def test_the_single_process_server_flushes_on_sigterm_too(tmp_path: Path):
    # `python examples/flask_login.py`: Python's default SIGTERM would skip atexit (and the
    # flush); the example turns it into a normal exit.
    import os
    import signal
    import subprocess
    import sys

    from conftest import free_port
    from examplekit import EXAMPLES

    box = _box(tmp_path)
    port = free_port()
    with receiver(fail=1) as hook:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
        env.update(_env(box, hook.url), PORT=str(port),
                   BREAKGLASS_LIBRARY=os.environ.get("BREAKGLASS_LIBRARY", ""),
                   PYTHONPATH=str(Path(__import__("breakglass").__file__).resolve().parents[1]))
        log = open(tmp_path / "server.log", "wb")
        proc = subprocess.Popen([sys.executable, str(EXAMPLES / "flask_login.py")], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if get(port, "/")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
            _login(port, box)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        out = (tmp_path / "server.log").read_text(errors="replace")
        assert rc == 0, out
        assert hook.answers == [503, 200], (hook.answers, out)
