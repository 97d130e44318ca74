"""A slot server that misbehaves (issue 10, items 3 and 4): a reply trickled one byte at a
time, an endless flood, numbers out of range. Every shared-slot operation must end within
slot_timeout_ms (plus a small margin) with BG_ERR_BACKEND, buffer no more than a small bounded
reply, and never turn a forged number into BG_OK.

The server is fakeresp.FakeResp on 127.0.0.1, started by each test; no redis-server is needed.
"""

from __future__ import annotations

import ssl
from typing import Callable, List

import pytest

import breakglass
from fakeresp import FakeResp, Flood, Plan, Trickle, array, bulk, take_reply

TIMEOUT_MS = 1000
# The README's bound: an operation ends within slot_timeout_ms plus a small margin. Three times
# the timeout leaves room for a machine busy with other builds.
BOUND_S = 3 * TIMEOUT_MS / 1000
NOW_S = 1_800_000_000  # a plausible server clock (2027)
NOW_MS = NOW_S * 1000
GOOD_RECORD = f"v1:123456:{NOW_MS - 1000}:600000"


def outcome(fn: Callable[[], object]) -> str:
    try:
        fn()
        return "ok"
    except breakglass.BreakGlassError as e:
        return type(e).__name__


def slot_server(take: Plan = None, store: Plan = b":1\r\n", wait: Plan = b":1\r\n",
                login: Plan = b"+OK\r\n") -> Callable[[List[bytes]], Plan]:
    """Answers like a Redis holding the scripts: EVALSHA with the take script's args (no ARGV)
    gets ``take``, with the store script's args gets ``store``; WAIT ``wait``; AUTH and SELECT
    ``login``."""

    def respond(args: List[bytes]) -> Plan:
        name = args[0].upper()
        if name == b"EVALSHA":
            return take if len(args) == 4 else store
        if name == b"WAIT":
            return wait
        if name in (b"AUTH", b"SELECT"):
            return login
        return b"-ERR unknown command\r\n"

    return respond


# ---------------------------------------------------------------------------------- trickle
# A whole, valid reply (40 bytes): one byte every 0.3 s would take 12 s to arrive.
TRICKLED = take_reply(GOOD_RECORD, NOW_S, 0)


@pytest.mark.parametrize("stage", ["script", "AUTH", "SELECT", "WAIT"])
@pytest.mark.parametrize("op", ["verify", "generate"])
def test_a_trickled_reply_ends_within_the_timeout(workers, op, stage):
    if stage == "WAIT" and op == "generate":
        pytest.skip("generate sends no WAIT")
    slow = Trickle(TRICKLED, 0.3)
    good = take_reply(GOOD_RECORD, NOW_S, 0)
    # The stage named trickles; every step before it is answered at once.
    respond = {
        "script": slot_server(take=slow, store=slow),
        "AUTH": slot_server(login=slow),
        "SELECT": lambda args: slow if args[0].upper() == b"SELECT" else slot_server()(args),
        "WAIT": slot_server(take=good, wait=slow),
    }[stage]
    with FakeResp(respond) as fake:
        url = {
            "AUTH": f"redis://:pw@127.0.0.1:{fake.port}",
            "SELECT": f"redis://:pw@127.0.0.1:{fake.port}/2",
        }.get(stage, fake.url)
        w = workers("trickle", slot_url=url, slot_timeout_ms=TIMEOUT_MS,
                    slot_wait_replicas=1 if stage == "WAIT" else 0)
        request = dict(op="verify", code="123456") if op == "verify" else dict(op="generate")
        reply = w.request(timeout=10 * BOUND_S, **request)
        assert reply["result"] == "BackendError", reply
        assert reply["elapsed"] < BOUND_S, reply
        # It gave up while the server was still sending.
        assert not fake.trickle_done.is_set()
        assert 0 < fake.sent < len(TRICKLED)
        last = {"AUTH": "AUTH", "SELECT": "SELECT", "WAIT": "WAIT"}.get(stage, "EVALSHA")
        assert fake.names()[-1] == last, fake.names()


def test_a_trickled_reply_over_tls_ends_within_the_timeout(workers, tls_files):
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(tls_files.server_cert), str(tls_files.server_key))
    slow = Trickle(TRICKLED, 0.3)
    with FakeResp(slot_server(take=slow, store=slow), tls=server_ctx) as fake:
        trusted = {"SSL_CERT_FILE": str(tls_files.ca_cert), "SSL_CERT_DIR": None}
        w = workers("tls-trickle", env=trusted, slot_url=f"rediss://localhost:{fake.port}",
                    slot_timeout_ms=TIMEOUT_MS)
        for request in (dict(op="verify", code="123456"), dict(op="generate")):
            reply = w.request(timeout=10 * BOUND_S, **request)
            assert reply["result"] == "BackendError", reply
            assert reply["elapsed"] < BOUND_S, reply
        assert fake.names() == ["EVALSHA", "EVALSHA"]  # the handshake completed both times
        assert not fake.trickle_done.is_set()


# ---------------------------------------------------------------------------------- flood
FLOODS = {
    # A bulk string "of 1 GB" and then bytes without end.
    "bulk": Flood(b"$1000000000\r\n", b"x" * 65536),
    # A status line that never ends.
    "line": Flood(b"+", b"a" * 65536),
    # An array "of 2^31 elements", each a small integer.
    "array": Flood(b"*2147483647\r\n", b":1\r\n" * 16384),
    # Arrays nested without end.
    "nesting": Flood(b"", b"*1\r\n" * 16384),
    # Three bulk strings just under 64 KiB each, then more without end.
    "bulks": Flood(b"*3\r\n", (bulk(b"y" * 65000)) * 4),
}


@pytest.mark.parametrize("shape", sorted(FLOODS))
@pytest.mark.parametrize("op", ["verify", "generate"])
def test_a_flood_ends_within_the_timeout_and_small_memory(workers, op, shape):
    flooding = [False]

    def respond(args: List[bytes]) -> Plan:
        if flooding[0]:
            return slot_server(take=FLOODS[shape], store=FLOODS[shape])(args)
        return slot_server(take=take_reply("", NOW_S, 0))(args)

    with FakeResp(respond) as fake:
        w = workers("flood", slot_url=fake.url, slot_timeout_ms=TIMEOUT_MS)
        # Warm up: the library's code and the connection are in memory before measuring.
        assert w.verify("123456") == "NoPendingOtp"
        assert w.try_generate()["result"] == "ok"
        before = w.memory()
        flooding[0] = True
        request = dict(op="verify", code="123456") if op == "verify" else dict(op="generate")
        reply = w.request(timeout=10 * BOUND_S, **request)
        after = w.memory()
        assert reply["result"] == "BackendError", reply
        assert reply["elapsed"] < BOUND_S, reply
        grown_kb = after["VmHWM"] - before["VmHWM"]
        assert grown_kb < 4096, f"peak memory grew by {grown_kb} kB: {before} -> {after}"
        # The client hung up on the flood; the server was still sending.
        assert fake.client_gone.wait(5), "the client never closed the connection"
        assert fake.alive()


# ---------------------------------------------------------------------------------- numbers
U64 = 2**64
WRAP_S = -(-U64 // 1000)  # seconds whose milliseconds wrap to 384
FORGED_TAKES = {
    # The server's clock near 2^64/1000 s: now_ms would wrap to 384 and a 1970 record
    # (issued at 0) would be 384 ms old.
    "clock wraps": take_reply("v1:123456:0:600000", WRAP_S, 0),
    "clock at u64::MAX": take_reply("v1:123456:0:600000", U64 - 1, 0),
    "clock beyond u64": take_reply("v1:123456:0:600000", U64, 0),
    "micros of a second or more": take_reply(GOOD_RECORD, NOW_S, 1_000_000),
    "micros huge": take_reply(GOOD_RECORD, NOW_S, U64 - 1),
    "negative seconds": take_reply(GOOD_RECORD, -1, 0),
    "clock in 1970": take_reply("v1:123456:0:600000", 1, 0),
    # A record issued an hour in the server's future would live an hour longer.
    "issued in the future": take_reply(f"v1:123456:{NOW_MS + 3_600_000}:600000", NOW_S, 0),
    "issued at u64::MAX": take_reply(f"v1:123456:{U64 - 1}:600000", NOW_S, 0),
    # A 1970 record with a TTL of 584 million years.
    "absurd ttl": take_reply(f"v1:123456:0:{U64 - 1}", NOW_S, 0),
    "ttl beyond a day": take_reply(f"v1:123456:{NOW_MS}:86400001", NOW_S, 0),
    "ttl zero": take_reply(f"v1:123456:{NOW_MS}:0", NOW_S, 0),
    "signed issued": take_reply(f"v1:123456:+{NOW_MS}:600000", NOW_S, 0),
    "time as integers": array(bulk(GOOD_RECORD), b":%d\r\n" % NOW_S, b":0\r\n"),
    "four fields": array(bulk(GOOD_RECORD), bulk(NOW_S), bulk(0), bulk(0)),
    "an integer": b":1\r\n",
}


@pytest.mark.parametrize("case", sorted(FORGED_TAKES))
def test_out_of_range_numbers_from_verify_are_a_denial(case):
    with FakeResp(slot_server(take=FORGED_TAKES[case])) as fake:
        breakglass.configure(slot_url=fake.url, slot_timeout_ms=TIMEOUT_MS)
        assert outcome(lambda: breakglass.verify("123456")) == "BackendError"


def test_the_same_fake_grants_a_plausible_record():
    """The cases above fail on their numbers, not on the fake: in range, it verifies."""
    with FakeResp(slot_server(take=take_reply(GOOD_RECORD, NOW_S, 999_999))) as fake:
        breakglass.configure(slot_url=fake.url, slot_timeout_ms=TIMEOUT_MS)
        assert outcome(lambda: breakglass.verify("123456")) == "ok"
        assert outcome(lambda: breakglass.verify("654321")) == "Invalid"
        # Issued up to 5 s in the server's future (a small clock step) is still judged.
        fake.respond = slot_server(take=take_reply(f"v1:123456:{NOW_MS + 4000}:600000", NOW_S, 0))
        assert outcome(lambda: breakglass.verify("123456")) == "ok"


@pytest.mark.parametrize("wait", [b":-1\r\n", b":99999999999999999999\r\n", b":1000000\r\n",
                                  bulk(b"1"), b"-ERR no\r\n"])
def test_out_of_range_wait_counts_are_a_denial(wait):
    take = take_reply(GOOD_RECORD, NOW_S, 0)
    with FakeResp(slot_server(take=take, wait=wait)) as fake:
        breakglass.configure(slot_url=fake.url, slot_timeout_ms=TIMEOUT_MS, slot_wait_replicas=1)
        assert outcome(lambda: breakglass.verify("123456")) == "BackendError"
        fake.respond = slot_server(take=take, wait=b":1\r\n")
        assert outcome(lambda: breakglass.verify("123456")) == "ok"


@pytest.mark.parametrize("store", [b":2\r\n", b":0\r\n", b":-1\r\n", b"+OK\r\n", bulk(b"1"),
                                   b"*0\r\n", b":99999999999999999999\r\n"])
def test_unexpected_store_results_are_an_error(store):
    with FakeResp(slot_server(store=store)) as fake:
        breakglass.configure(slot_url=fake.url, slot_timeout_ms=TIMEOUT_MS)
        assert outcome(breakglass.generate) == "BackendError"
