#!/usr/bin/env python3
"""Drives tests/c/fork_server.c (fork per connection, one login step per child, as sshd does)
and checks that the limits hold across all the children:

- state_dir: from one address, however many wrong passwords arrive at once, exactly
  max_attempts (5) are evaluated and the rest are BG_LOCKED_OUT;
- state_dir: several addresses, each with the right password first (so each holds the code),
  guessing codes sequentially and concurrently: exactly max_global_failures (20) wrong codes
  are evaluated in all, then every login is BG_LOCKED_OUT;
- state_dir: while 8 connections at a time flood wrong passwords from 64 other addresses, the
  admin's right password is accepted on the first try and the right code logs in;
- in-process state (no state_dir, no slot_url): a login step in a forked child is refused
  (not BG_OK), and bg_last_error names state_dir and slot_url.

Usage: fork_server_test.py BUILD/c/fork_server  (standard library only; loopback only)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

PASSWORD = "fork-server password"
# argon2id of PASSWORD with tiny costs (m=8 KiB, t=1): the test checks many passwords on a
# debug build; the cost parameters are not what is tested here.
PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$2TbCGknXy2ZTo5YWOQdN/g$c8Btp+nFvVQQyh5aUy4dAeR+wrfHjSfF7T74ZjKTp9Q"

OK, INVALID, NO_PENDING, NOT_CONFIGURED = 0, 1, 3, 7
LOCKED_OUT, WRONG_PASSWORD = 13, 14
CODE_MARK = "one-time code is: "


class Server:
    """One fork_server with its own temporary state_dir (or none) and file outbox."""

    def __init__(self, binary: str, state_dir: bool) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bg-fork-server-"))
        self.outbox = self.tmp / "outbox"
        self.outbox.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
        env.update(
            BREAKGLASS_PASSWORD_HASH=PASSWORD_HASH,
            BREAKGLASS_ALLOWED_IPS="10.0.0.0/8",
            BREAKGLASS_MAX_ATTEMPTS="5",
            BREAKGLASS_MAX_GLOBAL_FAILURES="20",
            BREAKGLASS_LOCKOUT_SECONDS="900",
            BREAKGLASS_MAILER=self.outbox.as_uri(),
            BREAKGLASS_FROM_EMAIL="bg@example.com",
            BREAKGLASS_OTP_EMAIL="admin@example.com",
        )
        if state_dir:
            env["BREAKGLASS_STATE_DIR"] = str(self.tmp / "state")
        self.proc = subprocess.Popen(
            [binary, "120"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.lock = threading.Lock()

    def step(self, verb: str, ip: str, arg: str) -> Tuple[int, str]:
        """One connection, one login step: (status, bg_last_error)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(f"{verb} {ip} {arg}\n".encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        number, _name, error = (reply.decode().rstrip("\n").split("\t", 2) + ["", ""])[:3]
        return int(number), error

    def current_code(self) -> str:
        """The code of the one code email in the outbox (which it empties)."""
        with self.lock:
            codes = []
            for p in self.outbox.iterdir():
                m = re.search(re.escape(CODE_MARK) + r"([0-9]{6})", p.read_text(errors="replace"))
                if m:
                    codes.append(m.group(1))
                p.unlink()
        assert len(codes) == 1, codes
        return codes[0]

    def wrong_code(self) -> str:
        """A six-digit code that is surely not the pending one (that one is in the outbox)."""
        return f"{(int(self.current_code()) + 1) % 1_000_000:06d}"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def counts(results: List[int]) -> Dict[int, int]:
    out: Dict[int, int] = {}
    for r in results:
        out[r] = out.get(r, 0) + 1
    return out


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def one_address_wrong_passwords(binary: str) -> None:
    srv = Server(binary, state_dir=True)
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda _: srv.step("BEGIN", "10.1.0.1", "wrong")[0], range(24)))
        c = counts(got)
        check(
            c.get(WRONG_PASSWORD) == 5 and c.get(LOCKED_OUT) == 19,
            f"24 concurrent wrong passwords from one address, 24 processes: 5 evaluated, "
            f"19 locked out ({c})",
        )
        # Locked: even the right password is not checked.
        check(
            srv.step("BEGIN", "10.1.0.1", PASSWORD)[0] == LOCKED_OUT,
            "the locked address's right password is refused too",
        )
        # Wrong passwords never lock every login.
        check(srv.step("BEGIN", "10.1.0.2", PASSWORD)[0] == OK, "another address still begins")
    finally:
        srv.close()


def many_addresses_wrong_codes_sequential(binary: str) -> None:
    srv = Server(binary, state_dir=True)
    try:
        invalid = 0
        after_limit: List[int] = []
        for rnd in range(4):
            for k in range(1, 11):
                ip = f"10.2.0.{k}"
                st, _ = srv.step("BEGIN", ip, PASSWORD)
                if st != OK:
                    after_limit.append(st)
                    continue
                st, _ = srv.step("COMPLETE", ip, srv.wrong_code())
                if st == INVALID:
                    invalid += 1
                else:
                    after_limit.append(st)
        check(invalid == 20, f"10 addresses x 4 rounds of password + wrong code: {invalid} == 20 wrong codes evaluated")
        check(
            len(after_limit) == 20 and set(after_limit) == {LOCKED_OUT},
            f"the other 20 begins are BG_LOCKED_OUT ({counts(after_limit)})",
        )
    finally:
        srv.close()


def many_addresses_wrong_codes_concurrent(binary: str) -> None:
    srv = Server(binary, state_dir=True)
    try:

        def guesser(t: int) -> List[int]:
            ip = f"10.3.0.{t}"
            out = []
            for _ in range(4):
                if srv.step("BEGIN", ip, PASSWORD)[0] != OK:
                    continue
                # Several addresses race for the one pending code: a code from an address
                # that no longer holds it is BG_NO_PENDING_OTP. Six letters never match.
                out.append(srv.step("COMPLETE", ip, "abcdef")[0])
            return out

        with ThreadPoolExecutor(8) as pool:
            got = [r for rs in pool.map(guesser, range(1, 9)) for r in rs]
        invalid = got.count(INVALID)
        check(invalid <= 20, f"8 addresses guessing at once, 8 at a time: {invalid} <= 20 wrong codes evaluated")
        for p in srv.outbox.iterdir():  # the racing begins' code emails
            p.unlink()
        # Top it up one by one from fresh addresses: the overall limit is reached at 20 exactly.
        k = 0
        while True:
            k += 1
            ip = f"10.4.{k // 250}.{k % 250 + 1}"
            st = srv.step("BEGIN", ip, PASSWORD)[0]
            if st == LOCKED_OUT:
                break
            assert st == OK and k < 40, f"a fresh address's begin before the limit: {st}"
            if srv.step("COMPLETE", ip, srv.wrong_code())[0] == INVALID:
                invalid += 1
        check(invalid == 20, f"then every login is locked after exactly {invalid} == 20 wrong codes")
    finally:
        srv.close()


def the_admin_gets_in_during_a_flood(binary: str) -> None:
    srv = Server(binary, state_dir=True)
    stop = threading.Event()
    started = threading.Semaphore(0)
    try:

        def flood(t: int) -> int:
            n = 0
            while not stop.is_set():
                srv.step("BEGIN", f"10.6.{t}.{n % 8 + 1}", "wrong")
                n += 1
                started.release()
            return n

        with ThreadPoolExecutor(8) as pool:
            floods = [pool.submit(flood, t) for t in range(8)]
            try:
                for _ in range(40):  # the flood is under way before the admin arrives
                    began = started.acquire(timeout=60)
                    assert began, "the flood did not start"
                st, error = srv.step("BEGIN", "10.7.0.1", PASSWORD)
                check(st == OK, f"the admin's right password during the flood: status {st} {error}")
                code = srv.current_code()
                st, error = srv.step("COMPLETE", "10.7.0.1", code)
                check(st == OK, f"and the right code logs in: status {st} {error}")
            finally:
                stop.set()  # only now: the flood ran throughout
            sent = sum(f.result() for f in floods)
        print(f"     ({sent} wrong passwords from 64 addresses)")
    finally:
        stop.set()
        srv.close()


def in_process_state_is_refused(binary: str) -> None:
    srv = Server(binary, state_dir=False)
    try:
        for verb, arg in (("BEGIN", PASSWORD), ("BEGIN", "wrong"), ("COMPLETE", "123456")):
            st, error = srv.step(verb, "10.5.0.1", arg)
            check(
                st == NOT_CONFIGURED and "state_dir" in error and "slot_url" in error,
                f"in-process state, {verb} in a forked child: status {st}, reason {error!r}",
            )
    finally:
        srv.close()


def main() -> int:
    binary = sys.argv[1]
    one_address_wrong_passwords(binary)
    many_addresses_wrong_codes_sequential(binary)
    many_addresses_wrong_codes_concurrent(binary)
    the_admin_gets_in_during_a_flood(binary)
    in_process_state_is_refused(binary)
    print("fork_server: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
