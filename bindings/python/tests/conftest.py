"""Shared fixtures: the real test servers, a log collector, library resets, subprocess runs.

Run from anywhere:
    BREAKGLASS_LIBRARY=/path/to/libbreakglass.so python -m pytest -q bindings/python/tests
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE_SRC = HERE.parent / "src"
REPO = HERE.parents[2]
SERVERS_DIR = REPO / "tests" / "servers"
HEADER = REPO / "include" / "breakglass.h"

# Test the working tree's package, and find bgserve.py, wherever pytest is started from.
for path in (str(SERVERS_DIR), str(PACKAGE_SRC)):
    if path not in sys.path:
        sys.path.insert(0, path)
_default_lib = REPO / "target" / "debug" / "libbreakglass.so"
if not os.environ.get("BREAKGLASS_LIBRARY") and _default_lib.exists():
    os.environ["BREAKGLASS_LIBRARY"] = str(_default_lib)

import breakglass  # noqa: E402
from bgserve import Servers, free_port  # noqa: E402

__all__ = ["Servers", "free_port", "stats_delta", "run_script"]


def stats_delta(before: breakglass.Stats, after: Optional[breakglass.Stats] = None) -> Dict[str, int]:
    after = breakglass.stats() if after is None else after
    a, b = dataclasses.asdict(after), dataclasses.asdict(before)
    return {k: a[k] - b[k] for k in a}


def reset_library() -> None:
    breakglass.configure(**{key: None for key in breakglass.CONFIG_KEYS})
    breakglass.clear()
    breakglass.set_log_level(logging.NOTSET)


@pytest.fixture(autouse=True)
def _fresh_library() -> Iterator[None]:
    """Every test starts and ends with the defaults, no pending code and an empty queue."""
    reset_library()
    yield
    reset_library()
    breakglass.flush(60)


class Records(logging.Handler):
    """Collects the records of the ``breakglass`` logger (from any thread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.items: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.items.append(record)

    def at(self, levelno: int) -> List[str]:
        return [r.getMessage() for r in list(self.items) if r.levelno == levelno]

    def messages(self) -> List[str]:
        return [r.getMessage() for r in list(self.items)]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("breakglass")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def servers() -> Iterator[Callable[..., Servers]]:
    """``servers(smtp="ok", http="ok")`` starts real servers; the queue is flushed before they stop."""
    with contextlib.ExitStack() as stack:

        def start(smtp: str = "ok", http: str = "ok") -> Servers:
            return stack.enter_context(Servers(smtp=smtp, http=http, lifetime=120))

        try:
            yield start
        finally:
            breakglass.flush(60)


# ---------------------------------------------------------------------------------- subprocesses
_PRELUDE = f"""
import dataclasses, json, logging, os, sys, threading, time
sys.path[:0] = [{str(SERVERS_DIR)!r}, {str(PACKAGE_SRC)!r}]
import breakglass
from bgserve import Servers, free_port

class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.items = []
    def emit(self, record):
        self.items.append((record.levelno, record.getMessage()))
    def at(self, levelno):
        return [m for l, m in list(self.items) if l == levelno]

records = Records()
logging.getLogger("breakglass").addHandler(records)
logging.getLogger("breakglass").propagate = False

def stats():
    return dataclasses.asdict(breakglass.stats())

def delta(before):
    now = stats()
    return {{k: now[k] - before[k] for k in now}}

def emit(obj):
    sys.stdout.write("\\nRESULT " + json.dumps(obj) + "\\n")
    sys.stdout.flush()
"""


def run_script(body: str, env: Optional[Dict[str, str]] = None, timeout: float = 120) -> dict:
    """Runs ``body`` (after a prelude importing breakglass and bgserve) in a fresh interpreter
    and returns the object it passed to ``emit``."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    script = _PRELUDE + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=full_env,
        cwd=str(HERE),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"subprocess failed (rc={proc.returncode})\n--- stdout\n{proc.stdout[-4000:]}"
        f"\n--- stderr\n{proc.stderr[-4000:]}"
    )
    result = json.loads(lines[-1][len("RESULT "):])
    result["_stderr"] = proc.stderr
    return result


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def main_thread_ident() -> int:
    return threading.main_thread().ident or 0
