"""The binding's records: warnings and errors reach stderr when the host set up no logging
(Python's last-resort handler: a failed delivery must never vanish), the host's handlers and
level when it did; records name the thread that logged."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from pathlib import Path

import breakglass


def _deliver_one_alert(outbox: Path) -> None:
    """One alert email through the file mailer: its success is an INFO record logged by a
    delivery thread."""
    breakglass.configure(mailer=f"file://{outbox}", from_email="bg@example.com", alert_emails=["ops@example.com"])
    breakglass.alert("192.0.2.80")
    breakglass.flush(30)


def _closed_port() -> int:
    """A loopback port nothing listens on: a mailer there is dead (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_DEAD_MAILER_SCRIPT = """
import sys
sys.path.insert(0, {src!r})
{setup}
import breakglass
breakglass.configure(mailer="smtp://127.0.0.1:{port}?tls=opportunistic", from_email="bg@example.com",
                     otp_email="oncall@example.com", delivery_timeout_ms=500)
breakglass.send_otp(breakglass.generate())
breakglass.flush(60)
print("flushed")
"""


def _dead_mailer(setup: str) -> subprocess.CompletedProcess:
    script = _DEAD_MAILER_SCRIPT.format(src=str(Path(breakglass.__file__).parents[1]),
                                        setup=setup, port=_closed_port())
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_errors_reach_stderr_without_any_logging_setup():
    # What gunicorn and most scripts are: no logging.basicConfig. A failed code email is an
    # error record; it must show on stderr (logging's last resort), not vanish.
    proc = _dead_mailer("")
    assert proc.returncode == 0 and "flushed" in proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "127.0.0.1" in line or "fail" in line]
    assert lines, f"no error on stderr:\n{proc.stderr}"


def test_a_hosts_handler_gets_the_errors_instead_of_stderr():
    setup = ("import logging; logging.basicConfig(stream=sys.stdout, level=logging.WARNING, "
             "format='HOST %(levelname)s %(name)s %(message)s')")
    proc = _dead_mailer(setup)
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("HOST ERROR breakglass ") for line in proc.stdout.splitlines()), proc.stdout
    assert "HOST" not in proc.stderr and "fail" not in proc.stderr.lower(), proc.stderr


def test_the_logger_has_no_null_handler():
    handlers = logging.getLogger("breakglass").handlers
    assert not any(type(h) is logging.NullHandler for h in handlers), handlers


def test_the_hosts_level_takes_effect_without_set_log_level(records, tmp_path: Path):
    logger = logging.getLogger("breakglass")
    try:
        logger.setLevel(logging.INFO)  # what a host does; no breakglass call
        _deliver_one_alert(tmp_path)
        accepted = [r for r in records.items if r.levelno == logging.INFO and "accepted" in r.getMessage()]
        assert accepted, records.messages()

        logger.setLevel(logging.WARNING)
        records.items.clear()
        _deliver_one_alert(tmp_path)
        assert [r for r in records.items if r.levelno < logging.WARNING] == []
        # And the library itself filters again, before formatting anything.
        assert breakglass._attached_level == 2
    finally:
        logger.setLevel(logging.NOTSET)


def test_the_root_loggers_level_counts_too(records, tmp_path: Path):
    root = logging.getLogger()
    old = root.level
    try:
        root.setLevel(logging.INFO)  # e.g. logging.basicConfig(level=logging.INFO)
        _deliver_one_alert(tmp_path)
        assert any(r.levelno == logging.INFO for r in records.items), records.messages()
    finally:
        root.setLevel(old)


def test_records_from_delivery_threads_name_the_library_thread(records, tmp_path: Path):
    logging.getLogger("breakglass").setLevel(logging.INFO)
    try:
        _deliver_one_alert(tmp_path)
    finally:
        logging.getLogger("breakglass").setLevel(logging.NOTSET)
    accepted = [r for r in records.items if "accepted" in r.getMessage()]
    assert accepted, records.messages()
    for r in accepted:
        # The library's name for it (breakglass-mail-0; the OS keeps 15 bytes of a thread
        # name, so it shows as breakglass-mail), not Python's Dummy-N.
        assert r.threadName.startswith("breakglass-"), r.threadName
        assert r.thread != threading.main_thread().ident


def test_records_from_python_threads_keep_their_names(records):
    logging.getLogger("breakglass").setLevel(logging.INFO)

    def run() -> None:
        breakglass.alert("192.0.2.81")  # no channel: an error record, on this thread

    try:
        t = threading.Thread(target=run, name="host-worker")
        t.start()
        t.join()
    finally:
        logging.getLogger("breakglass").setLevel(logging.NOTSET)
    seen = [r.threadName for r in records.items if "reached no one" in r.getMessage()]
    assert seen == ["host-worker"], records.messages()
