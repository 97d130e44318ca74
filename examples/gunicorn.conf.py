"""gunicorn settings for examples/flask_login.py, as it is deployed:

    BREAKGLASS_STATE_DIR=/run/breakglass BREAKGLASS_...=... gunicorn -c examples/gunicorn.conf.py

- Several worker processes (``WEB_CONCURRENCY``, default 4). They share the login state only
  through ``state_dir``: with more than one worker and no ``BREAKGLASS_STATE_DIR`` (nor
  ``BREAKGLASS_SLOT_URL`` for several hosts), gunicorn refuses to start, with the reason,
  rather than serve a login that fails in every worker but the one that issued the code.
  The app is created in each worker (no ``preload_app``), after the fork.
- Every worker flushes the alarm queue when it stops (``worker_exit``: gunicorn's SIGTERM and
  SIGINT, a reload, a recycled worker), waiting at most ``flask_login.FLUSH_SECONDS`` (10 s):
  an alarm raised right before a shutdown, and its retries, still go out. ``graceful_timeout``
  leaves that time to the worker before gunicorn kills it.
- gunicorn's log, the access log and the library's records (logger ``breakglass``) go to
  stderr, where a service manager (systemd's journal, docker logs) collects them.
- Bind 127.0.0.1:8080 by default (``GUNICORN_BIND`` / ``-b`` to change it): put the TLS proxy
  in front, and tell the app it is behind one (see ``flask_login.py`` on ProxyFix).
"""

from __future__ import annotations

import os
import sys

# flask_login.py sits beside this file.
pythonpath = os.path.dirname(os.path.abspath(__file__))
wsgi_app = "flask_login:create_app()"

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Longer than the flush bound in worker_exit (10 s), so that the flush is never cut short.
graceful_timeout = 15
timeout = 30

errorlog = "-"
accesslog = "-"
loglevel = "info"
# One handler on stderr for gunicorn's loggers and for the library's (``breakglass``) and the
# example's: a failed delivery shows next to the access lines.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
}


def on_starting(server) -> None:
    """Refuses more than one worker without shared login state (see the module doc)."""
    shared = os.environ.get("BREAKGLASS_STATE_DIR") or os.environ.get("BREAKGLASS_SLOT_URL")
    if server.cfg.workers > 1 and not shared:
        sys.exit(
            f"gunicorn.conf.py: {server.cfg.workers} workers need shared login state: set "
            "BREAKGLASS_STATE_DIR to a directory only this service's user can write (one host), "
            "or BREAKGLASS_SLOT_URL (several hosts); or run one worker (-w 1)"
        )


def worker_exit(server, worker) -> None:
    """In the worker, as it stops: the alarms it queued go out before the process ends."""
    import flask_login

    flask_login.flush_before_exit()
