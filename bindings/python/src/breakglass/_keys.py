"""The configuration keys and the kind of each, as the library's table names them (private).

Apart from ``_settings.py`` (the ``TypedDict`` of :func:`breakglass.configure`'s keyword
arguments, which needs :mod:`typing`), so that ``import breakglass`` need not import typing;
``_settings`` re-exports these names, and tests check that both hold the same keys.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Dict, Tuple

#: Every key and its kind as the library's table names it (``bg_config_key``: "integer",
#: "boolean", "string", "secret" or "email_list"), in the library's order, which is the order
#: ``configure_from_env`` applies them. Static, so that type checkers see the keys; a test
#: checks it against the loaded library's table, and :func:`breakglass.config_keys` reads that
#: table at run time (with defaults, bounds and docs).
KINDS: Dict[str, str] = {
    "otp_ttl_seconds": "integer",
    "mailer": "secret",
    "from_email": "string",
    "otp_email": "string",
    "alert_emails": "email_list",
    "alert_webhook_url": "secret",
    "alert_webhook_secret": "secret",
    "alert_webhook_format": "string",
    "alert_webhooks": "secret",
    "pagerduty_routing_key": "secret",
    "dev_otp_log": "boolean",
    "delivery_timeout_ms": "integer",
    "slot_url": "secret",
    "state_dir": "string",
    "slot_key": "string",
    "slot_timeout_ms": "integer",
    "slot_wait_replicas": "integer",
    "password_hash": "secret",
    "allowed_ips": "string",
    "max_attempts": "integer",
    "lockout_seconds": "integer",
    "max_global_failures": "integer",
    "session_ttl_seconds": "integer",
    "audit_log": "string",
    "audit_max_bytes": "integer",
    "audit_key": "secret",
    "audit_required": "boolean",
    "recovery_codes_file": "string",
    "syslog": "boolean",
    "syslog_socket": "string",
}
#: Every key :func:`breakglass.configure` accepts, in the order ``configure_from_env`` reads them.
CONFIG_KEYS: Tuple[str, ...] = tuple(KINDS)
INT_KEYS = frozenset(k for k, kind in KINDS.items() if kind == "integer")
BOOL_KEYS = frozenset(k for k, kind in KINDS.items() if kind == "boolean")
LIST_KEYS = frozenset(k for k, kind in KINDS.items() if kind == "email_list")
