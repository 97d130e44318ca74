"""The binding's record types: frozen dataclasses (private module; ``breakglass`` re-exports them).

Kept apart so that ``import breakglass`` need not import :mod:`dataclasses` (which imports
:mod:`inspect`): the package loads this module the first time one of these names is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Stats:
    """Delivery counters since the library was loaded; every field only grows."""

    queued: int = 0
    """Calls accepted into the queue: one per send_otp or alert of which at least one part (the
    code email; an alert's emails, its webhook) was queued."""
    emails_sent: int = 0
    """Email messages accepted by the server (one per recipient)."""
    emails_failed: int = 0
    """Email messages that finally failed, after retries."""
    webhooks_sent: int = 0
    """Webhook POSTs answered with 2xx."""
    webhooks_failed: int = 0
    """Webhook POSTs that finally failed, after retries."""
    dropped: int = 0
    """Parts dropped because their lane was full: a code email, an alert's emails (all
    recipients together) or an alert's webhook each count one."""


@dataclass(frozen=True)
class ConfigKey:
    """One configuration key as the loaded library describes it (``bg_config_key``)."""

    name: str
    """The name :func:`configure` takes; ``BREAKGLASS_`` + its upper case in the environment."""
    kind: str
    """"integer", "boolean", "string", "secret" (never logged) or "email_list"."""
    default: Optional[str]
    """The default as the library's text, or None when the key is unset by default."""
    min: int
    """For "integer" keys the smallest accepted value; 0 otherwise."""
    max: int
    """For "integer" keys the largest accepted value; 0 otherwise."""
    doc: str
    """One line of English describing the key."""


@dataclass(frozen=True)
class DrillReport:
    """One channel's line of a drill report."""

    channel: str
    """``email <address>`` or ``webhook <format> <scheme://host:port>``."""
    outcome: str
    """``delivered``, ``refused``, ``timed out`` or ``unreachable``."""
    detail: str
    """The peer's answer or the reason; "" when delivered."""


@dataclass(frozen=True)
class DeliveryPath:
    """The last outcomes of one delivery path (see :func:`delivery_health`)."""

    path: str
    """"code email" (the one-time code to otp_email), "alert email", or a webhook receiver such
    as "webhook json https://hooks.example.com:443" (never a URL's path or a key)."""
    last_success: Optional[float]
    """When it last delivered (Unix time in seconds), or None: not since the library loaded."""
    last_failure: Optional[float]
    """When it last finally failed, after retries (Unix time), or None."""
    last_failure_reason: str
    """Why it last failed ("" when it never did)."""
    failing: bool
    """Whether its last outcome was a failure."""
