"""The configuration keys and the type of each value :func:`breakglass.configure` accepts.

The keys themselves are in ``_keys.py`` (re-exported here), which ``import breakglass`` loads;
this module, which needs :mod:`typing`, is loaded when ``breakglass.ConfigureOptions`` is
first used (type checkers see it at once). Tests check that both hold the same keys, and that
names, order and kinds equal the library's own table, read through ``bg_config_key``.
"""

from __future__ import annotations

from typing import List, Tuple, TypedDict, Union

from ._keys import BOOL_KEYS, CONFIG_KEYS, INT_KEYS, KINDS, LIST_KEYS

__all__ = ["BOOL_KEYS", "CONFIG_KEYS", "INT_KEYS", "KINDS", "LIST_KEYS", "ConfigureOptions",
           "IntValue", "BoolValue", "ListValue", "TextValue"]

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
    state_dir: TextValue
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
    audit_max_bytes: IntValue
    audit_key: TextValue
    audit_required: BoolValue
    recovery_codes_file: TextValue
    syslog: BoolValue
    syslog_socket: TextValue
