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

The login flow does all of that in two steps and keeps a session:

    breakglass.login_begin(client_ip, password)          # the code goes to otp_email
    token = breakglass.login_complete(client_ip, code)   # raises the alarm; grant on return
    breakglass.session_check(token)                      # on each request; NoSession when over

Every denial of a login is a :class:`LoginDenied`; every error carries the library's reason.
Library log records go to the standard ``logging`` logger named ``breakglass``; without any
logging setup in the host, its warnings and errors reach stderr (logging's last resort).
"""

from __future__ import annotations

import atexit
import ctypes
import math
import os
import _thread

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)

from . import _errors, _ffi
from ._errors import (
    ArgumentError,
    AuditError,
    DrillFailed,
    BackendError,
    BreakGlassError,
    BufferTooSmallError,
    Expired,
    FlushTimeoutError,
    InternalError,
    Invalid,
    IpNotAllowed,
    LockedOut,
    LoginDenied,
    LoginExpired,
    LoginInvalid,
    LoginNoPendingOtp,
    NoPendingOtp,
    NoSession,
    NotConfiguredError,
    NullPointerError,
    QueueFullError,
    VerifyError,
    WrongPassword,
    status_name,
)
from ._keys import BOOL_KEYS as _BOOL_KEYS
from ._keys import CONFIG_KEYS
from ._keys import INT_KEYS as _INT_KEYS
from ._keys import LIST_KEYS as _LIST_KEYS

# `logging`, `ipaddress`, `threading` and `typing` are imported on first use, not here: `import breakglass` stays
# within its budget (BENCHMARKS.md, "import time"), and a program pays for them only once it
# calls into the library (every call starts the logging link, see _follow_log_level).
if TYPE_CHECKING:
    import ipaddress
    import logging
    from typing import Any, Callable, List, Optional, Tuple, Union

    from ._records import ConfigKey, DeliveryPath, DrillReport, Stats
    from ._settings import ConfigureOptions

    # Only for type checkers (the annotations are never evaluated at run time): Unpack is in
    # typing from 3.11 on, and the package supports 3.9 without dependencies.
    from typing_extensions import Unpack

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "BackendError",
    "BreakGlassError",
    "BufferTooSmallError",
    "CONFIG_KEYS",
    "ConfigKey",
    "ConfigureOptions",
    "Expired",
    "FlushTimeoutError",
    "InternalError",
    "Invalid",
    "IpAddress",
    "IpNotAllowed",
    "LockedOut",
    "LoginDenied",
    "LoginExpired",
    "LoginInvalid",
    "LoginNoPendingOtp",
    "NoPendingOtp",
    "NoSession",
    "NotConfiguredError",
    "NullPointerError",
    "OTP_LEN",
    "QueueFullError",
    "Stats",
    "DeliveryPath",
    "delivery_health",
    "code_email_failing",
    "VerifyError",
    "WrongPassword",
    "alert",
    "attempts_left",
    "clear",
    "config_keys",
    "configure",
    "configure_from_env",
    "flush",
    "drill",
    "AuditError",
    "DrillFailed",
    "DrillReport",
    "generate",
    "hash_password",
    "login_begin",
    "login_complete",
    "reset_attempts",
    "send_otp",
    "session_check",
    "session_end",
    "set_log_level",
    "stats",
    "status_name",
    "verify",
    "version",
]

_lib = _ffi.lib

#: Digits in a one-time code.
OTP_LEN = _ffi.OTP_LEN

_UINT32_MAX = 2**32 - 1

# The exceptions live in _errors; _error and _check are the names the module used before.
_error = _errors.error
_check = _errors.check


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


def configure(**settings: Unpack[ConfigureOptions]) -> None:
    """Sets configuration keys; ``None`` restores a key's default.

    Keys (see :data:`CONFIG_KEYS`, and :func:`config_keys` for the library's bounds, defaults
    and docs): ``otp_ttl_seconds``, ``delivery_timeout_ms``, ``slot_timeout_ms``,
    ``slot_wait_replicas``, ``max_attempts``, ``lockout_seconds``, ``max_global_failures``,
    ``session_ttl_seconds`` (int); ``dev_otp_log`` (bool); ``alert_emails`` (list or tuple of
    addresses, or one comma-separated str; ``[]`` means set but empty); ``mailer``,
    ``from_email``, ``otp_email``, ``alert_webhook_url``, ``alert_webhook_secret``,
    ``slot_url``, ``slot_key``, ``password_hash``, ``allowed_ips`` (str).

    The keys and value types are :class:`ConfigureOptions`, so ``mypy --strict`` and other type
    checkers reject an unknown key or a wrong type before the code runs.

    Every value is converted and checked for its Python type before any is applied; then the
    keys are applied in the order given, each atomically. A value the library refuses raises
    :class:`ArgumentError` (a :class:`ValueError`) and leaves that key unchanged; keys after it
    in the same call are not applied, keys before it stay applied. An unknown key raises
    :class:`ValueError` before anything is applied, a value of the wrong Python type
    :class:`TypeError`. Error messages carry the library's reason (e.g. "otp_ttl_seconds: must
    be from 1 to 86400") but never the values (they may hold passwords).
    """
    _follow_log_level()
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
    _follow_log_level()
    _check(_lib.bg_configure_from_env(), "configure_from_env()")


def generate() -> str:
    """Issues a new six-digit code (replacing any pending one) and returns it."""
    # No wipe of the buffer: the code lives on in the returned str, which cannot be wiped.
    _follow_log_level()
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
    _follow_log_level()
    _check(_lib.bg_verify(_encode(code, "code")), "verify()")


def clear() -> None:
    """Empties the slot: a pending code can no longer verify."""
    _follow_log_level()
    _check(_lib.bg_clear(), "clear()")


# ---------------------------------------------------------------------------------- delivery
def send_otp(code: str) -> None:
    """Queues the email carrying ``code`` to ``otp_email`` and returns at once.

    Raises :class:`NotConfiguredError` without ``mailer``, ``from_email`` and ``otp_email``,
    :class:`ArgumentError` unless ``code`` is six ASCII digits, :class:`QueueFullError` when the
    queue is full. Delivery failures are logged at error level and counted, never raised.
    """
    _follow_log_level()
    _check(_lib.bg_send_otp(_encode(code, "code")), "send_otp()")


def alert(ip: object = None) -> None:
    """Raises the break-glass alarm (alert emails and webhook) and returns at once.

    ``ip`` is the client's address as untrusted text. It never raises for its argument or for
    delivery problems: an alarm is never lost to its argument. The Go binding's ``Alert``
    treats the edge cases the same way:

    - ``None`` and an empty ``ip`` (``""``, ``b""``) are reported as "unknown";
    - C strings cannot hold NUL, so each NUL is sent as the text ``\\u{0}`` (the library's own
      escape for a control character in an email) instead of cutting the text there.

    Text that is not valid UTF-8 (lone surrogates) is backslash-escaped; other objects (e.g.
    ``ipaddress.IPv4Address``) are converted with ``str()``; ``bytes`` are passed as they are.
    """
    _follow_log_level()
    raw: Optional[bytes] = None
    if ip is not None:
        if isinstance(ip, (bytes, bytearray, memoryview)):
            raw = bytes(ip)
        else:
            raw = str(ip).encode("utf-8", "backslashreplace")
        raw = raw.replace(b"\0", _NUL_ESCAPE) or None
    status = _lib.bg_alert(raw)
    if status != _ffi.BG_OK:  # only a panic inside the library can get here
        _start_logging().error("bg_alert failed: %s (status %d); the alarm may not have been raised",
                      status_name(status), status)


#: What :func:`alert` sends for a NUL: the library's escape_controls text, as in Go's Alert.
_NUL_ESCAPE = b"\\u{0}"


def flush(timeout: float) -> None:
    """Waits up to ``timeout`` seconds until every job queued before the call has been delivered
    or has finally failed. Raises :class:`FlushTimeoutError` (a builtin :class:`TimeoutError`)
    when the time runs out first."""
    _follow_log_level()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    ms = _UINT32_MAX if math.isinf(timeout) else min(math.ceil(timeout * 1000), _UINT32_MAX)
    _check(_lib.bg_flush(ms), f"flush({timeout})")


def drill(timeout: float = 0) -> List[DrillReport]:
    """Fire drill: a ``[DRILL]`` alert through every alert channel, waited for (``bg_drill``).

    ``timeout`` bounds the wait in seconds (0: the library's own bound). Returns one
    :class:`DrillReport` per channel when every channel delivered; raises :class:`DrillFailed`
    (with ``reports``) when any did not, :class:`NotConfiguredError` when there is no channel.
    """
    _follow_log_level()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    ms = min(math.ceil(timeout * 1000), _UINT32_MAX)
    from ._records import DrillReport

    reports: List[DrillReport] = []

    def line(channel: Optional[bytes], outcome: int, detail: Optional[bytes], _: Optional[int]) -> None:
        # Called on this thread during bg_drill; nothing may escape into C.
        try:
            reports.append(DrillReport(
                (channel or b"").decode("utf-8", "replace"),
                _ffi.DRILL_OUTCOMES.get(outcome, f"unknown ({outcome})"),
                (detail or b"").decode("utf-8", "replace"),
            ))
        except BaseException:  # noqa: BLE001
            pass

    status = _lib.bg_drill(ms, _ffi.DRILL_FN(line), None)
    reason = _errors.last_error() if status != _ffi.BG_OK else ""
    if status == _ffi.BG_DRILL_FAILED:
        failed = sum(r.outcome != "delivered" for r in reports)
        raise DrillFailed(status, f"drill(): {failed} of {len(reports)} channel(s) did not deliver",
                          reason, reports)
    if status != _ffi.BG_OK:
        raise _errors.error(status, "drill()", reason)
    return reports


def stats() -> Stats:
    """A snapshot of the delivery counters."""
    _follow_log_level()
    from ._records import Stats

    out = _ffi.bg_stats()
    _check(_lib.bg_get_stats(ctypes.byref(out)), "stats()")
    return Stats(**{name: int(getattr(out, name)) for name in _ffi.STATS_FIELDS})


def _seconds(ms: int) -> Optional[float]:
    """Unix milliseconds from the library as seconds; 0 (never) as None."""
    return ms / 1000.0 if ms else None


def delivery_health() -> "List[DeliveryPath]":
    """The last outcome of every delivery path: the code email first, the alert email second,
    then each webhook receiver that has had an outcome. Real deliveries and drills both count.

    :func:`login_begin` returning means the code email is *queued*, not delivered; a login page
    can show "mail is failing: use a recovery code" when :func:`code_email_failing` is true.
    """
    from ._records import DeliveryPath

    _follow_log_level()
    count = ctypes.c_size_t(0)
    _check(_lib.bg_delivery_health(None, 0, ctypes.byref(count)), "delivery_health()")
    rows = (_ffi.bg_delivery_path * max(count.value, 1))()
    _check(_lib.bg_delivery_health(rows, len(rows), ctypes.byref(count)), "delivery_health()")
    return [
        DeliveryPath(
            path=r.path.decode("utf-8", "replace"),
            last_success=_seconds(r.last_success_ms),
            last_failure=_seconds(r.last_failure_ms),
            last_failure_reason=r.last_failure_reason.decode("utf-8", "replace"),
            failing=bool(r.failing),
        )
        for r in rows[: min(count.value, len(rows))]
    ]


def code_email_failing() -> bool:
    """True when the code email's last delivery failed: the code from :func:`login_begin` may
    not arrive, and a recovery code (see :func:`login_complete`) is the way in."""
    return delivery_health()[0].failing


def version() -> str:
    """The loaded library's version, e.g. "0.1.0"."""
    text: bytes = _lib.bg_version()
    return text.decode("ascii")


# ---------------------------------------------------------------------------------- key table
def config_keys() -> Tuple[ConfigKey, ...]:
    """The library's configuration key table, in its order (the order of :data:`CONFIG_KEYS`,
    which a test checks against this)."""
    from ._records import ConfigKey

    keys = []
    for i in range(_lib.bg_config_key_count()):
        info = _ffi.bg_config_key_info()
        _check(_lib.bg_config_key(i, ctypes.byref(info)), f"config_keys() [{i}]")
        keys.append(ConfigKey(
            name=_text(info.name) or "",
            kind=_text(info.kind) or "",
            default=_text(info.default_value),
            min=int(info.min),
            max=int(info.max),
            doc=_text(info.doc) or "",
        ))
    return tuple(keys)


def _text(raw: Optional[bytes]) -> Optional[str]:
    return None if raw is None else raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------- login
# The whole break-glass login: login_begin (allow-list, lockouts, password; then the code is
# emailed), login_complete (the code; then a session and the alarm), session_check and
# session_end. Denials of the client raise LoginDenied subclasses (see _errors.py).
#: What the login functions take as the client's address: text (as a web framework gives it)
#: or an :mod:`ipaddress` address.
if TYPE_CHECKING:
    IpAddress = Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address]


def __getattr__(name: str) -> Any:
    # Names whose definitions need a heavy module, made on first access (PEP 562) and cached:
    # the record classes (dataclasses imports inspect), ConfigureOptions (typing) and
    # IpAddress (ipaddress, typing).
    if name in ("ConfigKey", "DeliveryPath", "DrillReport", "Stats", "ConfigureOptions"):
        from . import _records, _settings

        value = getattr(_settings if name == "ConfigureOptions" else _records, name)
        globals()[name] = value
        return value
    if name == "IpAddress":
        import ipaddress
        from typing import Union

        alias = Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address]
        globals()["IpAddress"] = alias
        return alias
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ip(ip: IpAddress) -> bytes:
    if not isinstance(ip, str):
        import ipaddress  # cached after the first time; a str (the usual case) never gets here

        if not isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise TypeError(f"ip must be a str or an ipaddress address, not {type(ip).__name__}")
        ip = str(ip)
    return _encode(ip, "ip")


def login_begin(ip: IpAddress, password: str) -> None:
    """Step 1: checks, in order, that ``ip`` is in ``allowed_ips`` (:class:`IpNotAllowed`), that
    neither it nor every login is locked out (:class:`LockedOut`) and ``password`` against
    ``password_hash`` (:class:`WrongPassword`, counted as a failure); then issues a code and
    queues its email to ``otp_email``. The code is never returned. Returning means *queued*,
    not delivered: :func:`code_email_failing` tells whether the last code email failed.

    Also :class:`NotConfiguredError` without ``password_hash`` or a mailer. The hash check
    takes tens of milliseconds (the GIL is released meanwhile). A NUL in ``ip`` or
    ``password`` raises :class:`ValueError` before the library is called.
    """
    _follow_log_level()
    _check(_lib.bg_login_begin(_ip(ip), _encode(password, "password")), "login_begin()", login=True)


def login_complete(ip: IpAddress, code: str) -> str:
    """Step 2: checks ``ip`` as :func:`login_begin` does, then ``code`` (consuming the pending
    code). Returns the new session's token (43 URL-safe characters; any older session ends)
    and raises the alarm, as :func:`alert` does. Grant access only when it returns.

    A wrong, expired or missing code raises :class:`LoginInvalid`, :class:`LoginExpired` or
    :class:`LoginNoPendingOtp` (each both a :class:`VerifyError` and a :class:`LoginDenied`)
    and counts as a failure. A NUL in ``ip`` or ``code`` raises :class:`ValueError` before the
    library is called (nothing is consumed or counted).

    Recovery codes: with ``recovery_codes_file`` set (made by ``breakglass recovery-codes
    new``), a ``code`` that is not six digits, such as ``"7KQ2-M9XD-4TFA-PW3H"`` (case, dashes
    and spaces do not matter), is tried as a recovery code in place of the emailed code, after
    the right password. It is consumed before the login is granted and works once only (on
    this host, or the fleet with ``slot_url``); the alarm's event is then
    ``break_glass_recovery_code_used``. A wrong or used recovery code raises
    :class:`LoginInvalid` and counts as one failure.
    """
    _follow_log_level()
    ip_bytes, code_bytes = _ip(ip), _encode(code, "code")
    buf = ctypes.create_string_buffer(_ffi.SESSION_TOKEN_BUF_LEN)
    try:
        _check(_lib.bg_login_complete(ip_bytes, code_bytes, buf, len(buf)), "login_complete()", login=True)
        return buf.value.decode("ascii")
    finally:
        ctypes.memset(buf, 0, len(buf))  # the returned str is the only copy left


def session_check(token: str) -> None:
    """Returns while ``token`` is the active session's and younger than
    ``session_ttl_seconds``; raises :class:`NoSession` otherwise (also after
    :func:`session_end` or a newer login)."""
    _follow_log_level()
    _check(_lib.bg_session_check(_encode(token, "token")), "session_check()", login=True)


def session_end(token: str) -> None:
    """Ends the session whose token is ``token``; :class:`NoSession` when it is not active."""
    _follow_log_level()
    _check(_lib.bg_session_end(_encode(token, "token")), "session_end()", login=True)


def hash_password(password: str) -> str:
    """A new argon2id PHC string for ``password`` (m=19456 t=2 p=1, a random salt): the value
    of ``password_hash``, as ``breakglass hash-password`` prints it (``bg_hash_password``).

    Takes tens of milliseconds and 19 MiB (the GIL is released meanwhile). An empty password
    or one over 4096 bytes raises :class:`ArgumentError`, a NUL :class:`ValueError`, a
    non-str :class:`TypeError`. The password never reaches a log or an error message.
    """
    _follow_log_level()
    raw = _encode(password, "password")
    buf = ctypes.create_string_buffer(_ffi.PASSWORD_HASH_BUF_LEN)
    _check(_lib.bg_hash_password(raw, buf, len(buf)), "hash_password()")
    return buf.value.decode("ascii")


def attempts_left(ip: IpAddress) -> int:
    """How many failures ``ip`` may still make before it is locked out (0 while it, or every
    login, is locked out). For operators: the allow-list is not applied. :class:`ArgumentError`
    when ``ip`` is not an address."""
    _follow_log_level()
    out = ctypes.c_uint32(0)
    _check(_lib.bg_attempts_left(_ip(ip), ctypes.byref(out)), "attempts_left()", login=True)
    return int(out.value)


def reset_attempts(ip: IpAddress) -> None:
    """Forgets ``ip``'s failures and ends its lockout (IPv6: its /64); logged at warning level.
    It does not lift a lockout of every login."""
    _follow_log_level()
    _check(_lib.bg_reset_attempts(_ip(ip)), "reset_attempts()", login=True)


# ---------------------------------------------------------------------------------- logging
# No NullHandler on purpose: a security library's failed delivery must not vanish. A host that
# sets up no logging (a bare script, gunicorn's default) gets warnings and errors on stderr
# through logging's last-resort handler; a host that configures logging gets them through its
# own handlers, as usual.
# The logger exists from the first call into the binding on (see _start_logging).
_logger: Optional[logging.Logger] = None

# logging's level numbers, without importing logging.
_DEBUG, _INFO, _WARNING, _ERROR = 10, 20, 30, 40

# Library level -> logging level (5, trace, has no logging equivalent: DEBUG).
_PY_LEVELS = {1: _ERROR, 2: _WARNING, 3: _INFO, 4: _DEBUG, 5: _DEBUG}


def _library_level(pylevel: int) -> int:
    """The library's max_level that passes every record ``pylevel`` lets through."""
    if pylevel <= _DEBUG:
        return 5
    if pylevel <= _INFO:
        return 3
    if pylevel <= _WARNING:
        return 2
    if pylevel <= _ERROR:
        return 1
    return 0


def _native_thread_name_reader() -> Optional[Callable[[], Optional[str]]]:
    """``pthread_getname_np`` of the calling thread, or None where libc lacks it."""
    try:
        fn = ctypes.CDLL(None).pthread_getname_np
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]
    fn.restype = ctypes.c_int

    def read() -> Optional[str]:
        buf = ctypes.create_string_buffer(16)  # Linux thread names: 15 bytes and a NUL
        # On Linux get_ident() is pthread_self().
        if fn(_thread.get_ident(), buf, len(buf)) != 0:
            return None
        return buf.value.decode("utf-8", "replace") or None

    return read


_native_thread_name: Optional[Callable[[], Optional[str]]] = None  # set by _start_logging


def _name_library_thread() -> None:
    """Gives the library's own thread its native name (e.g. ``breakglass-mail``), so that
    ``record.threadName`` says which delivery thread logged, not ``Dummy-3``.

    A callback on a thread Python did not start runs under a placeholder ``_DummyThread``;
    its name is set from the OS thread name each time (a thread id can be reused by another
    library thread). Threads Python started keep their own names."""
    import threading  # imported by logging already: no cost here

    thread = threading.current_thread()
    dummy = getattr(threading, "_DummyThread", None)
    if _native_thread_name is None or dummy is None or not isinstance(thread, dummy):
        return
    name = _native_thread_name()
    if name and thread.name != name:
        thread.name = name


def _on_record(level: int, message: Optional[bytes], user_data: Optional[int]) -> None:
    # Called by the library from any thread, its delivery threads included. Nothing may
    # escape into C, and it must not call bg_set_logger. The library filters at the level
    # last synchronised (see _follow_log_level); isEnabledFor applies a level raised since.
    try:
        pylevel = _PY_LEVELS.get(level, _ERROR if level < 1 else _DEBUG)
        if _logger is not None and _logger.isEnabledFor(pylevel):
            _name_library_thread()
            text = message.decode("utf-8", "replace") if message else ""
            _in_callback.active = True
            try:
                _logger.log(pylevel, text, extra={"breakglass_level": level})
            finally:
                _in_callback.active = False
    except BaseException:  # noqa: BLE001 - a logging failure must never reach the library
        pass


#: The C function pointer the library calls; module-level, so it lives as long as the module.
_log_callback = _ffi.LOG_FN(_on_record)

_logger_lock = _thread.allocate_lock()
_attached = False
_attached_level = -1
_attached_effective = -1  # the logger's effective level when the library's level was set
_in_callback = _thread._local()


def _start_logging() -> logging.Logger:
    """The ``breakglass`` logger, linked to the library on first use: from the first call into
    the binding on, the library's records reach it (before any call the library does nothing
    that logs)."""
    global _logger, _native_thread_name
    if _logger is not None:
        return _logger
    import logging

    with _logger_lock:
        if _logger is None:
            _native_thread_name = _native_thread_name_reader()
            logger = logging.getLogger("breakglass")
            _attach(logger)
            _logger = logger
    return _logger


def _attach(logger: Optional[logging.Logger] = None) -> None:
    global _attached, _attached_level, _attached_effective
    logger = logger or _logger
    if logger is None:
        return  # logging not started yet: the first call will attach
    effective = logger.getEffectiveLevel()
    level = _library_level(effective)
    _check(_lib.bg_set_logger(_log_callback, None, level), "bg_set_logger")
    _attached, _attached_level, _attached_effective = True, level, effective


def _detach() -> None:
    """Back to the library's stderr logger, errors only: the callback is never called again
    once this returns (bg_set_logger waits for calls in progress)."""
    global _attached, _attached_level
    if _logger is None:
        return
    level = min(_library_level(_logger.getEffectiveLevel()), 1)
    _lib.bg_set_logger(_ffi.NO_LOGGER, None, level)
    _attached, _attached_level = False, -1


def _follow_log_level() -> None:
    """Makes the library filter at the ``breakglass`` logger's effective level, so that a
    host's ``logging.getLogger("breakglass").setLevel(...)`` (or the root's) takes effect
    without a call to :func:`set_log_level`.

    Called on entry to every function of this module: one ``getEffectiveLevel`` (a walk up
    to the root logger) in the common case, ``bg_set_logger`` only when the level changed.
    The library keeps filtering before it formats a record, so records the host does not
    want cost nothing, rather than a trip into Python each."""
    # The hot path is one attribute check and one getEffectiveLevel: it runs on every call.
    if _logger is None:
        _start_logging()
        return
    effective = _logger.getEffectiveLevel()
    if effective == _attached_effective or not _attached:
        return  # unchanged; or detached at exit
    if getattr(_in_callback, "active", False):
        return  # inside a handler, where bg_set_logger would deadlock
    if _library_level(effective) == _attached_level:
        return
    with _logger_lock:
        if _attached:
            _attach()


def set_log_level(level: Union[int, str, None] = None) -> None:
    """Sets the ``breakglass`` logger's level (``None``: keep it) and makes the library pass
    exactly the records that level lets through, at once.

    Setting the logger's level directly works as well: every call into the library picks up
    the logger's effective level. This function makes a change reach deliveries that are
    already queued, before the next call.
    """
    if getattr(_in_callback, "active", False):
        # bg_set_logger waits for callbacks in progress: from inside one it would deadlock.
        raise RuntimeError("set_log_level() cannot be called from a handler of the breakglass logger")
    logger = _start_logging()
    with _logger_lock:
        if level is not None:
            logger.setLevel(level)
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


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)
