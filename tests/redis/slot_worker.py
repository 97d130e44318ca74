"""A client process for the shared-slot tests (started by slotkit.Worker).

Reads one JSON request per line on stdin and writes one JSON reply per line on stdout; exits
when stdin closes. Outcomes are reported by name: "ok" or the binding's exception class name
("Invalid", "Expired", "NoPendingOtp", "BackendError", ...).

Requests:
  {"op": "configure", "settings": {...}}
  {"op": "generate"} / {"op": "verify", "code": "123456"} / {"op": "clear"}
  {"op": "race", "code": "123456", "threads": 8}   -> {"result": "ready"} once the threads wait;
  {"op": "go"}                                      -> {"results": [...]} (one per thread)
  {"op": "logs"}                                    -> every log record message so far
  {"op": "memory"}                                  -> {"VmRSS": kB, "VmHWM": kB} of this process
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback

import breakglass


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.items: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.items.append(record.getMessage())


records = _Records()
_logger = logging.getLogger("breakglass")
_logger.addHandler(records)
_logger.propagate = False
breakglass.set_log_level(logging.DEBUG)


def outcome(fn) -> dict:
    started = time.monotonic()
    try:
        value = fn()
        result = "ok"
    except breakglass.BreakGlassError as e:
        value, result = str(e), type(e).__name__
    return {"result": result, "value": value, "elapsed": time.monotonic() - started}


def memory() -> dict:
    """Resident and peak resident set size, in kB, from /proc/self/status."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def race(code: str, threads: int) -> None:
    go = threading.Event()
    results = [None] * threads
    waiting = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        waiting.wait()
        go.wait()
        results[i] = outcome(lambda: breakglass.verify(code))["result"]

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    waiting.wait()  # every thread is now parked on the event
    reply({"result": "ready"})
    line = sys.stdin.readline()
    assert json.loads(line)["op"] == "go", line
    go.set()
    for t in pool:
        t.join()
    reply({"results": results})


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            op = req["op"]
            if op == "configure":
                breakglass.configure(**req["settings"])
                reply({"result": "ok"})
            elif op == "generate":
                reply(outcome(breakglass.generate))
            elif op == "verify":
                reply(outcome(lambda: breakglass.verify(req["code"])))
            elif op == "clear":
                reply(outcome(breakglass.clear))
            elif op == "race":
                race(req["code"], int(req["threads"]))
            elif op == "memory":
                reply({"result": "ok", "value": memory()})
            elif op == "logs":
                reply({"result": "ok", "value": list(records.items)})
            else:
                reply({"exception": f"unknown op {op!r}"})
        except Exception:  # noqa: BLE001 - report it to the test
            reply({"exception": traceback.format_exc()})


if __name__ == "__main__":
    main()
