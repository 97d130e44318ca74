"""Python binding of libbreakglass: one-time codes and break-glass alarms.

The library's state (the pending code, the settings, the delivery queue and its counters) is
process-global: every import of this module in one process shares it.

    import breakglass

    breakglass.configure(mailer="smtp://mail.example.com:587?tls=required",
                         from_email="breakglass@example.com",
                         otp_email="oncall@example.com",
                         alert_emails=["security@example.com", "ops@example.com"])
    code = breakglass.generate()
    breakglass.send_otp(code)
    try:
        breakglass.verify(submitted)         # returns None: grant access
    except breakglass.VerifyError:
        ...                                  # deny
    breakglass.alert(client_ip)              # after a successful break-glass login
    breakglass.flush(30)                     # before the process exits

Library log records go to the standard ``logging`` logger named ``breakglass``.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Type, Union

from . import _ffi

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "BackendError",
    "BreakGlassError",
    "BufferTooSmallError",
    "CONFIG_KEYS",
    "Expired",
    "FlushTimeoutError",
    "InternalError",
    "Invalid",
    "NoPendingOtp",
    "NotConfiguredError",
    "NullPointerError",
    "OTP_LEN",
    "QueueFullError",
    "Stats",
    "VerifyError",
    "alert",
    "clear",
    "configure",
    "configure_from_env",
    "flush",
    "generate",
    "send_otp",
    "set_log_level",
    "stats",
    "status_name",
    "verify",
    "version",
]

_lib = _ffi.lib

#: Digits in a one-time code.
OTP_LEN = _ffi.OTP_LEN

#: Every key :func:`configure` accepts, in the order :func:`configure_from_env` reads them.
CONFIG_KEYS: Tuple[str, ...] = (
    "otp_ttl_seconds",
    "mailer",
    "from_email",
    "otp_email",
    "alert_emails",
    "alert_webhook_url",
    "alert_webhook_secret",
    "dev_otp_log",
    "delivery_timeout_ms",
    "slot_url",
    "slot_key",
    "slot_timeout_ms",
    "slot_wait_replicas",
)
_INT_KEYS = frozenset({"otp_ttl_seconds", "delivery_timeout_ms", "slot_timeout_ms", "slot_wait_replicas"})
_BOOL_KEYS = frozenset({"dev_otp_log"})
_LIST_KEYS = frozenset({"alert_emails"})

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_UINT32_MAX = 2**32 - 1


def status_name(status: int) -> str:
    """The library's fixed English name for a status (``bg_status_str``), e.g. "expired"."""
    status = int(status)
    if not _INT32_MIN <= status <= _INT32_MAX:
        return "unknown status"
    return _lib.bg_status_str(status).decode("utf-8", "replace")


# ---------------------------------------------------------------------------------- errors
class BreakGlassError(Exception):
    """A non-OK status from the library. ``status`` is the number, ``name`` its fixed name."""

    STATUS: Optional[int] = None

    def __init__(self, status: Optional[int] = None, detail: str = "") -> None:
        if status is None:
            if self.STATUS is None:
                raise TypeError(f"{type(self).__name__} needs a status")
            status = self.STATUS
        self.status: int = int(status)
        self.name: str = status_name(self.status)
        self.detail = detail
        text = f"{self.name} (status {self.status})"
        super().__init__(f"{detail}: {text}" if detail else text)

    def __reduce__(self):  # keeps status and detail through pickling
        return (type(self), (self.status, self.detail))


class VerifyError(BreakGlassError):
    """:func:`verify` denied access: the code was wrong, expired, or none was pending."""


class Invalid(VerifyError):
    """The code does not match the pending one, or is not exactly six ASCII digits."""

    STATUS = _ffi.BG_INVALID


class Expired(VerifyError):
    """The pending code was older than ``otp_ttl_seconds`` (even if it matched)."""

    STATUS = _ffi.BG_EXPIRED


class NoPendingOtp(VerifyError):
    """No code was pending: never issued, already used (by any verify), or cleared."""

    STATUS = _ffi.BG_NO_PENDING_OTP


class NullPointerError(BreakGlassError):
    """The library got a NULL pointer (the binding never passes one where it is required)."""

    STATUS = _ffi.BG_ERR_NULL


class BufferTooSmallError(BreakGlassError):
    """The output buffer was too small (the binding always passes one that fits)."""

    STATUS = _ffi.BG_ERR_BUFFER_TOO_SMALL


class ArgumentError(BreakGlassError, ValueError):
    """A bad argument: unknown configuration key, bad value, code not six digits, bad UTF-8."""

    STATUS = _ffi.BG_ERR_ARGUMENT


class NotConfiguredError(BreakGlassError):
    """A delivery was asked for that the configuration does not allow (e.g. no mailer)."""

    STATUS = _ffi.BG_ERR_NOT_CONFIGURED


class FlushTimeoutError(BreakGlassError, TimeoutError):
    """:func:`flush` ran out of time. Also the builtin :class:`TimeoutError`."""

    STATUS = _ffi.BG_ERR_TIMEOUT


class InternalError(BreakGlassError):
    """A panic was caught inside the library; it stays usable. From :func:`verify`: deny."""

    STATUS = _ffi.BG_ERR_INTERNAL


class BackendError(BreakGlassError):
    """The shared slot (Redis/Valkey) failed. From :func:`verify` this is a denial.

    Deliberately not a :class:`VerifyError`: it says nothing about the code, and the caller
    may want to report it differently. Grant access only when :func:`verify` returns.
    """

    STATUS = _ffi.BG_ERR_BACKEND


class QueueFullError(BreakGlassError):
    """:func:`send_otp`: the delivery queue was full; the email was dropped and counted."""

    STATUS = _ffi.BG_ERR_QUEUE_FULL


_ERRORS: Dict[int, Type[BreakGlassError]] = {
    cls.STATUS: cls
    for cls in (
        Invalid,
        Expired,
        NoPendingOtp,
        NullPointerError,
        BufferTooSmallError,
        ArgumentError,
        NotConfiguredError,
        FlushTimeoutError,
        InternalError,
        BackendError,
        QueueFullError,
    )
    if cls.STATUS is not None
}


def _error(status: int, detail: str = "") -> BreakGlassError:
    """The exception for a non-OK status (unknown statuses give a plain BreakGlassError)."""
    return _ERRORS.get(status, BreakGlassError)(status, detail)


def _check(status: int, detail: str) -> None:
    if status != _ffi.BG_OK:
        raise _error(status, detail)


def _encode(text: str, what: str) -> bytes:
    """UTF-8 for C; NUL cannot cross the boundary (C would silently cut the string there)."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    if "\0" in text:
        raise ValueError(f"{what} contains a NUL character")
    return text.encode("utf-8")


# ---------------------------------------------------------------------------------- configuration
_KNOWN_KEYS = frozenset(CONFIG_KEYS)


def _config_value(key: str, value: object) -> Optional[bytes]:
    if value is None:
        return None
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"{key} must be an int, not {type(value).__name__}")
        text = str(value)
    elif key in _BOOL_KEYS:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = value
        else:
            raise TypeError(f"{key} must be a bool, not {type(value).__name__}")
    elif key in _LIST_KEYS:
        if isinstance(value, str):
            text = value
        elif isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, str):
                    raise TypeError(f"{key} entries must be str, not {type(item).__name__}")
                if "," in item:
                    raise ValueError(f"a {key} entry cannot contain ','")
            text = ",".join(value)
        else:
            raise TypeError(f"{key} must be a list or tuple of str, or a str")
    else:
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a str, not {type(value).__name__}")
        text = value
    return _encode(text, key)


def configure(**settings: object) -> None:
    """Sets configuration keys; ``None`` restores a key's default.

    Keys (see :data:`CONFIG_KEYS`): ``otp_ttl_seconds``, ``delivery_timeout_ms``,
    ``slot_timeout_ms``, ``slot_wait_replicas`` (int); ``dev_otp_log`` (bool);
    ``alert_emails`` (list or tuple of addresses, or one comma-separated str; ``[]`` means set
    but empty); ``mailer``, ``from_email``, ``otp_email``, ``alert_webhook_url``,
    ``alert_webhook_secret``, ``slot_url``, ``slot_key`` (str).

    Every value is converted and checked for its Python type before any is applied; then the
    keys are applied in the order given, each atomically. A value the library refuses raises
    :class:`ArgumentError` (a :class:`ValueError`) and leaves that key unchanged; keys after it
    in the same call are not applied, keys before it stay applied. An unknown key raises
    :class:`ValueError` before anything is applied, a value of the wrong Python type
    :class:`TypeError`. Error messages never include the values (they may hold passwords).
    """
    unknown = sorted(key for key in settings if key not in _KNOWN_KEYS)
    if unknown:
        raise ValueError(
            f"unknown configuration key(s): {', '.join(unknown)}; known keys: {', '.join(CONFIG_KEYS)}"
        )
    values = [(key, _config_value(key, value)) for key, value in settings.items()]
    for key, value in values:
        _check(_lib.bg_configure(key.encode("ascii"), value), f"configure({key}=...)")


def configure_from_env() -> None:
    """Applies ``BREAKGLASS_<KEY>`` (e.g. ``BREAKGLASS_OTP_TTL_SECONDS``) for every key set in the
    environment: all of them, or none when any is bad (:class:`ArgumentError`)."""
    _check(_lib.bg_configure_from_env(), "configure_from_env()")


def generate() -> str:
    """Issues a new six-digit code (replacing any pending one) and returns it."""
    # No wipe of the buffer: the code lives on in the returned str, which cannot be wiped.
    buf = ctypes.create_string_buffer(_ffi.OTP_BUF_LEN)
    _check(_lib.bg_generate(buf, _ffi.OTP_BUF_LEN), "generate()")
    return buf.value.decode("ascii")


def verify(code: str) -> None:
    """Checks ``code`` against the pending code, consuming it whatever the outcome.

    Returns ``None`` for a match within the TTL: grant access then, and only then. Raises
    :class:`Invalid`, :class:`Expired` or :class:`NoPendingOtp` (all :class:`VerifyError`) for a
    denial; any other :class:`BreakGlassError` (e.g. :class:`BackendError`) is a denial too.
    A ``code`` containing NUL raises :class:`ValueError` without reaching the library (and then
    nothing is consumed).
    """
    _check(_lib.bg_verify(_encode(code, "code")), "verify()")


def clear() -> None:
    """Empties the slot: a pending code can no longer verify."""
    _check(_lib.bg_clear(), "clear()")


# ---------------------------------------------------------------------------------- delivery
def send_otp(code: str) -> None:
    """Queues the email carrying ``code`` to ``otp_email`` and returns at once.

    Raises :class:`NotConfiguredError` without ``mailer``, ``from_email`` and ``otp_email``,
    :class:`ArgumentError` unless ``code`` is six ASCII digits, :class:`QueueFullError` when the
    queue is full. Delivery failures are logged at error level and counted, never raised.
    """
    _check(_lib.bg_send_otp(_encode(code, "code")), "send_otp()")


def alert(ip: Optional[str] = None) -> None:
    """Raises the break-glass alarm (alert emails and webhook) and returns at once.

    ``ip`` is the client's address as untrusted text; ``None`` is reported as "unknown". It
    never raises for its argument or for delivery problems: an alarm is never lost to its
    argument. C strings cannot hold NUL, so a NUL in ``ip`` is sent as the text ``\\u{0}`` (the
    library's own escape) instead of cutting the text; text that is not valid UTF-8 (lone
    surrogates) is backslash-escaped; other objects (e.g. ``ipaddress.IPv4Address``) are
    converted with ``str()``; ``bytes`` are passed as they are.
    """
    if ip is None:
        raw: Optional[bytes] = None
    else:
        if isinstance(ip, (bytes, bytearray, memoryview)):
            raw = bytes(ip)
        else:
            raw = str(ip).encode("utf-8", "backslashreplace")
        raw = raw.replace(b"\0", b"\\u{0}")
    status = _lib.bg_alert(raw)
    if status != _ffi.BG_OK:  # only a panic inside the library can get here
        _logger.error("bg_alert failed: %s (status %d); the alarm may not have been raised",
                      status_name(status), status)


def flush(timeout: float) -> None:
    """Waits up to ``timeout`` seconds until every job queued before the call has been delivered
    or has finally failed. Raises :class:`FlushTimeoutError` (a builtin :class:`TimeoutError`)
    when the time runs out first."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    ms = _UINT32_MAX if math.isinf(timeout) else min(math.ceil(timeout * 1000), _UINT32_MAX)
    _check(_lib.bg_flush(ms), f"flush({timeout})")


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


def stats() -> Stats:
    """A snapshot of the delivery counters."""
    out = _ffi.bg_stats()
    _check(_lib.bg_get_stats(ctypes.byref(out)), "stats()")
    return Stats(**{name: int(getattr(out, name)) for name in _ffi.STATS_FIELDS})


def version() -> str:
    """The loaded library's version, e.g. "0.1.0"."""
    return _lib.bg_version().decode("ascii")


# ---------------------------------------------------------------------------------- logging
_logger = logging.getLogger("breakglass")

# Library level -> logging level (5, trace, has no logging equivalent: DEBUG).
_PY_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: logging.DEBUG}


def _library_level(pylevel: int) -> int:
    """The library's max_level that passes every record ``pylevel`` lets through."""
    if pylevel <= logging.DEBUG:
        return 5
    if pylevel <= logging.INFO:
        return 3
    if pylevel <= logging.WARNING:
        return 2
    if pylevel <= logging.ERROR:
        return 1
    return 0


@_ffi.LOG_FN
def _log_callback(level: int, message: Optional[bytes], user_data: Optional[int]) -> None:
    # Called by the library from any thread, its delivery threads included. Nothing may
    # escape into C, and it must not call bg_set_logger.
    try:
        pylevel = _PY_LEVELS.get(level, logging.ERROR if level < 1 else logging.DEBUG)
        if _logger.isEnabledFor(pylevel):
            text = message.decode("utf-8", "replace") if message else ""
            _in_callback.active = True
            try:
                _logger.log(pylevel, text, extra={"breakglass_level": level})
            finally:
                _in_callback.active = False
    except BaseException:  # noqa: BLE001 - a logging failure must never reach the library
        pass


_logger_lock = threading.Lock()
_attached = False
_in_callback = threading.local()


def _attach() -> None:
    global _attached
    level = _library_level(_logger.getEffectiveLevel())
    _check(_lib.bg_set_logger(_log_callback, None, level), "bg_set_logger")
    _attached = True


def _detach() -> None:
    """Back to the library's stderr logger, errors only: the callback is never called again
    once this returns (bg_set_logger waits for calls in progress)."""
    global _attached
    level = min(_library_level(_logger.getEffectiveLevel()), 1)
    _lib.bg_set_logger(_ffi.NO_LOGGER, None, level)
    _attached = False


def set_log_level(level: Union[int, str, None] = None) -> None:
    """Sets the ``breakglass`` logger's level (``None``: keep it) and makes the library pass
    exactly the records that level lets through.

    The library filters by the effective level of the ``breakglass`` logger when this module
    is imported; call this after changing logging levels later (e.g. ``logging.basicConfig``).
    """
    if getattr(_in_callback, "active", False):
        # bg_set_logger waits for callbacks in progress: from inside one it would deadlock.
        raise RuntimeError("set_log_level() cannot be called from a handler of the breakglass logger")
    with _logger_lock:
        if level is not None:
            _logger.setLevel(level)
        _attach()


_reattach_after_fork = False


def _before_fork() -> None:
    # Detached around fork: the child never starts with a library thread half way into a
    # Python callback, and reattaches once its interpreter state is consistent.
    global _reattach_after_fork
    _logger_lock.acquire()  # released by _after_fork, in the parent and in the child
    _reattach_after_fork = _attached
    try:
        if _attached:
            _detach()
    except BaseException:  # noqa: BLE001
        pass


def _after_fork() -> None:
    try:
        if _reattach_after_fork:
            _attach()
    except BaseException:  # noqa: BLE001
        pass
    finally:
        _logger_lock.release()


def _at_exit() -> None:
    # No library thread may call into an interpreter that is shutting down.
    with _logger_lock:
        _detach()


_attach()
atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)
