"""The configuration keys and the type of each value :func:`breakglass.configure` accepts.

One place for both, so that the tuple the runtime checks keys against and the ``TypedDict``
that type checkers check calls against are written side by side (a test checks they hold the
same keys, and that they equal the library's own key table).
"""

from __future__ import annotations

from typing import List, Tuple, TypedDict, Union

#: Every key :func:`breakglass.configure` accepts, in the order ``configure_from_env`` reads them.
CONFIG_KEYS: Tuple[str, ...] = (
    "otp_ttl_seconds",
    "mailer",
    "from_email",
    "otp_email",
    "alert_emails",
    "alert_webhook_url",
    "alert_webhook_secret",
    "alert_webhook_format",
    "alert_webhooks",
    "pagerduty_routing_key",
    "dev_otp_log",
    "delivery_timeout_ms",
    "slot_url",
    "slot_key",
    "slot_timeout_ms",
    "slot_wait_replicas",
)
INT_KEYS = frozenset({"otp_ttl_seconds", "delivery_timeout_ms", "slot_timeout_ms", "slot_wait_replicas"})
BOOL_KEYS = frozenset({"dev_otp_log"})
LIST_KEYS = frozenset({"alert_emails"})

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
