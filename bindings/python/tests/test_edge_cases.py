"""Edge cases the Go binding must treat the same way: both read one table,
bindings/go/testdata/alert_ip_cases.json."""

from __future__ import annotations

import json

import pytest

import breakglass
from conftest import REPO

CASES = json.loads((REPO / "bindings" / "go" / "testdata" / "alert_ip_cases.json").read_text())["cases"]


def test_the_shared_table_covers_empty_and_nul():
    ips = [c["ip"] for c in CASES]
    assert "" in ips and any("\0" in ip for ip in ips)


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c["ip"]))
def test_alert_ip_as_the_go_binding_sends_it(servers, case):
    s = servers()
    breakglass.configure(alert_webhook_url=s.http_url)
    assert breakglass.alert(case["ip"]) is None
    breakglass.alert(case["ip"].encode())  # bytes: the same
    breakglass.flush(30)
    assert s.wait_for(requests=2)
    assert [json.loads(r["body"])["ip"] for r in s.requests] == [case["sent"], case["sent"]]
