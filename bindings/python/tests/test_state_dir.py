"""state_dir through the binding, as a pre-fork server uses it: 8 worker processes forked after
configuring share one set of limits; a worker killed with SIGKILL in the middle of attempts
never leaves an empty or torn state, nor loses a counted failure; a damaged state file is a
denial naming the file for every login call; a lock holder that never lets go costs a bounded
wait, then BackendError.

Every child is forked by the test, ends with os._exit and is waited for (or killed by pid);
the lock holder is a subprocess stopped by pid. Password hashes are argon2-cffi's with tiny
costs: these tests check many passwords on a debug build, and the cost is not what they test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

import breakglass
from outbox import Outbox

argon2 = pytest.importorskip("argon2", reason="argon2-cffi is installed by make deps")

PASSWORD = "state dir password"
WORKERS = 8


@pytest.fixture(scope="module")
def cheap_hash() -> str:
    return str(argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD))


@pytest.fixture
def shared(tmp_path: Path, cheap_hash: str) -> Iterator[Outbox]:
    """The login flow on a state_dir and a file outbox (the state is in tmp_path / "state")."""
    box = Outbox(tmp_path / "outbox")
    box.path.mkdir()
    breakglass.configure(
        state_dir=str(tmp_path / "state"),
        mailer=box.mailer,
        from_email="bg@example.com",
        otp_email="oncall@example.com",
        password_hash=cheap_hash,
        allowed_ips="10.0.0.0/8",
        max_attempts=5,
        max_global_failures=20,
        lockout_seconds=900,
    )
    try:
        yield box
    finally:
        breakglass.flush(30)


def outcome(call: Callable[[], object]) -> str:
    """"ok" or the exception's class name."""
    try:
        call()
        return "ok"
    except breakglass.BreakGlassError as e:
        return type(e).__name__


def fork_workers(n: int, work: Callable[[int], Any]) -> List[Any]:
    """Forks n children that start together, each runs work(i) and reports its JSON result."""
    go_r, go_w = os.pipe()
    children = []
    for i in range(n):
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            code = 1
            try:
                os.close(go_w)
                os.read(go_r, 1)
                result = work(i)
                breakglass.flush(30)  # its code emails leave through its own queue
                os.write(out_w, json.dumps(result).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(out_w)
        children.append((pid, out_r))
    os.close(go_r)
    os.write(go_w, b"x" * n)
    os.close(go_w)
    results = []
    for pid, out_r in children:
        data = b""
        while chunk := os.read(out_r, 65536):
            data += chunk
        os.close(out_r)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, f"worker {pid} failed"
        results.append(json.loads(data))
    return results


def counts(items: List[str]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


# ------------------------------------------------------------------------ 8 forked workers
def test_eight_forked_workers_share_one_set_of_limits(shared: Outbox):
    # Wrong passwords from one address, 6 from each of the 8 workers at once: 5 are evaluated.
    def wrong_passwords(_: int) -> List[str]:
        return [outcome(lambda: breakglass.login_begin("10.1.0.1", "wrong")) for _ in range(6)]

    got = counts([r for rs in fork_workers(WORKERS, wrong_passwords) for r in rs])
    assert got == {"WrongPassword": 5, "LockedOut": 43}, got
    assert breakglass.attempts_left("10.1.0.1") == 0
    # Wrong passwords lock only their address.
    assert breakglass.attempts_left("10.1.0.2") == 5

    # Each worker, from its own address: the right password (so it holds the code), then a
    # wrong code, four times. The workers race for the one pending code (a code from an
    # address that no longer holds it is LoginNoPendingOtp, not counted overall).
    def guess_codes(i: int) -> List[str]:
        ip = f"10.2.0.{i + 1}"
        out = []
        for _ in range(4):
            if outcome(lambda: breakglass.login_begin(ip, PASSWORD)) == "ok":
                # Six letters never match.
                out.append(outcome(lambda: breakglass.login_complete(ip, "abcdef")))
        return out

    got_codes = [r for rs in fork_workers(WORKERS, guess_codes) for r in rs]
    invalid = got_codes.count("LoginInvalid")
    assert 0 < invalid <= 20, counts(got_codes)

    # Top up from fresh addresses, one at a time, with real wrong codes: every login is locked
    # after exactly 20 wrong codes, counted across all the processes.
    shared.seen.update(shared.path.iterdir())
    k = 0
    while True:
        k += 1
        ip = f"10.3.0.{k}"
        first = outcome(lambda: breakglass.login_begin(ip, PASSWORD))
        if first == "LockedOut":
            break
        assert first == "ok" and k <= 20, (first, k, invalid)
        wrong = f"{(int(shared.new_code()) + 1) % 1_000_000:06d}"
        with pytest.raises(breakglass.LoginInvalid):
            breakglass.login_complete(ip, wrong)
        invalid += 1
    assert invalid == 20
    with pytest.raises(breakglass.LockedOut) as e:
        breakglass.login_begin("10.3.0.200", PASSWORD)
    assert "every" in e.value.reason


# ------------------------------------------------------------------------ kill -9
def test_a_worker_killed_mid_attempt_leaves_a_whole_state_and_every_counted_failure(
    shared: Outbox, tmp_path: Path
):
    state = tmp_path / "state" / "state"
    breakglass.configure(max_attempts=1000, max_global_failures=1000)
    rounds, per_round = 30, 300  # at most 9,000 keys: below the 10,000 tracked, none evicted
    for rnd in range(rounds):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                # Codes from ever new addresses that hold none: each attempt is one counted
                # failure and one rewrite of a growing state, with no hash check in between,
                # so the kill mostly lands inside a transaction. An address is reported once
                # its attempt returned, i.e. was counted.
                for i in range(per_round):
                    ip = f"10.{10 + rnd}.{i // 250}.{i % 250 + 1}"
                    try:
                        breakglass.login_complete(ip, "abcdef")
                    except breakglass.LoginNoPendingOtp:
                        pass
                    os.write(w, f"{ip}\n".encode())
            finally:
                os._exit(1)
        os.close(w)
        time.sleep(0.02 + 0.005 * rnd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(r) as f:
            reported = f.read().split()
        assert reported, "the worker made no attempt before it was killed"
        # The state file is whole: never empty, and the next attempt reads it.
        assert state.stat().st_size > 0
        assert breakglass.attempts_left("10.9.0.1") == 1000
        # Every failure that was counted (its call returned) is still counted.
        for ip in reported[:: max(1, len(reported) // 25)] + reported[-3:]:
            assert breakglass.attempts_left(ip) == 999, (rnd, ip)
        # And earlier rounds' too: nothing was reset.
        if rnd:
            assert breakglass.attempts_left(f"10.{9 + rnd}.0.1") == 999


# ------------------------------------------------------------------------ damaged state
@pytest.mark.parametrize("garbage", [b"not a state\x00\xff", b"", b"bg-login-state 1\nkey 10.0.0.1 1 -\n"])
def test_a_damaged_state_file_denies_every_call_and_names_the_file(
    shared: Outbox, tmp_path: Path, garbage: bytes
):
    state = tmp_path / "state" / "state"
    with pytest.raises(breakglass.WrongPassword):
        breakglass.login_begin("10.0.0.1", "wrong")
    assert state.exists()
    state.write_bytes(garbage)
    calls = {
        "login_begin (right password)": lambda: breakglass.login_begin("10.0.0.2", PASSWORD),
        "login_begin (wrong password)": lambda: breakglass.login_begin("10.0.0.2", "wrong"),
        "login_complete": lambda: breakglass.login_complete("10.0.0.2", "123456"),
        "session_check": lambda: breakglass.session_check("x" * 43),
        "session_end": lambda: breakglass.session_end("x" * 43),
        "attempts_left": lambda: breakglass.attempts_left("10.0.0.1"),
        "reset_attempts": lambda: breakglass.reset_attempts("10.0.0.1"),
    }
    for name, call in calls.items():
        with pytest.raises(breakglass.BackendError) as e:
            call()
        assert str(state) in e.value.reason, (name, e.value.reason)
    # Nothing was written over it: the evidence stays, and no email went out.
    assert state.read_bytes() == garbage
    assert not [m for m in shared.mails() if "one-time code is: " in m]


# ------------------------------------------------------------------------ a lock that is never released
def test_a_lock_holder_that_never_lets_go_costs_a_bounded_wait_then_backend_error(
    shared: Outbox, tmp_path: Path
):
    breakglass.configure(slot_timeout_ms=400)
    lock = tmp_path / "state" / "lock"
    with pytest.raises(breakglass.WrongPassword):
        breakglass.login_begin("10.0.0.1", "wrong")  # the files exist
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(lock)!r}, 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        for call in (
            lambda: breakglass.login_begin("10.0.0.2", PASSWORD),
            lambda: breakglass.login_complete("10.0.0.2", "123456"),
            lambda: breakglass.attempts_left("10.0.0.1"),
        ):
            start = time.monotonic()
            with pytest.raises(breakglass.BackendError) as e:
                call()
            waited = time.monotonic() - start
            assert str(lock) in e.value.reason and "still held" in e.value.reason, e.value.reason
            # It waited for the lock (not refused at once), and it came back (no hang).
            assert 0.35 <= waited < 30, waited
    finally:
        holder.kill()
        holder.wait()
    # Released: the state is as it was (the one failure), and logins work again.
    assert breakglass.attempts_left("10.0.0.1") == 4
    breakglass.login_begin("10.0.0.2", PASSWORD)
    assert len(shared.new_code()) == 6
