"""The configuration keys and the type of each value :func:`breakglass.configure` accepts.

One place for both, so that the tuple the runtime checks keys against and the ``TypedDict``
that type checkers check calls against are written side by side (tests check they hold the
same keys, and that names, order and kinds equal the library's own table, read through
``bg_config_key``).
"""

from __future__ import annotations

from typing import Dict, List, Tuple, TypedDict, Union

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
    "syslog": "boolean",
    "syslog_socket": "string",
    "state_dir": "string",
}
#: Every key :func:`breakglass.configure` accepts, in the order ``configure_from_env`` reads them.
CONFIG_KEYS: Tuple[str, ...] = tuple(KINDS)
INT_KEYS = frozenset(k for k, kind in KINDS.items() if kind == "integer")
BOOL_KEYS = frozenset(k for k, kind in KINDS.items() if kind == "boolean")
LIST_KEYS = frozenset(k for k, kind in KINDS.items() if kind == "email_list")

# What the runtime accepts for each kind of key; None restores the key's default. Numbers
# and flags may also be given as the library's own text ("600", "true"), as in the
# environment; a list of addresses as one comma-separated str.
IntValue = Union[int, str, None]
BoolValue = Union[bool, str, None]
ListValue = Union[List[str], Tuple[str, ...], str, None]
TextValue = Union[str, None]


class ConfigureOptions(TypedDict, total=False):
    """The keyword arguments of :func:`breakglass.configure`: with ``Unpack``, a type checker
    rejects an unknown key or a value of the wrong type."""

    otp_ttl_seconds: IntValue
    mailer: TextValue
    from_email: TextValue
    otp_email: TextValue
    alert_emails: ListValue
    alert_webhook_url: TextValue
    alert_webhook_secret: TextValue
    alert_webhook_format: TextValue
    alert_webhooks: TextValue
    pagerduty_routing_key: TextValue
    dev_otp_log: BoolValue
    delivery_timeout_ms: IntValue
    slot_url: TextValue
    slot_key: TextValue
    slot_timeout_ms: IntValue
    slot_wait_replicas: IntValue
    password_hash: TextValue
    allowed_ips: TextValue
    max_attempts: IntValue
    lockout_seconds: IntValue
    max_global_failures: IntValue
    session_ttl_seconds: IntValue
    audit_log: TextValue
    audit_key: TextValue
    audit_required: BoolValue
    syslog: BoolValue
    syslog_socket: TextValue
