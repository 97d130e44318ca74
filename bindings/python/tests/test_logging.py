"""The binding logs like a Python library: silent by default, the host's level on the
``breakglass`` logger takes effect by itself, and records name the thread that logged."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import breakglass


def _deliver_one_alert(outbox: Path) -> None:
    """One alert email through the file mailer: its success is an INFO record logged by a
    delivery thread."""
    breakglass.configure(mailer=f"file://{outbox}", from_email="bg@example.com", alert_emails=["ops@example.com"])
    breakglass.alert("192.0.2.80")
    breakglass.flush(30)


def test_the_logger_has_a_null_handler():
    handlers = logging.getLogger("breakglass").handlers
    assert any(type(h) is logging.NullHandler for h in handlers), handlers


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
