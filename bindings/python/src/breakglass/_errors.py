"""The exceptions, one per status, and the one place a status becomes an exception (private;
``breakglass`` re-exports the public names).

Every exception carries the library's reason (``bg_last_error``) when it has one. That text is
thread-local in the library and cleared by every call, ``bg_status_str`` included, so
:func:`check` reads it first, right after the failing call and on the same thread (ctypes makes
the call on the calling thread). The library promises the text never holds a configured value,
a code or a password; the binding adds only the operation's name, never an argument.
"""

from __future__ import annotations

import ctypes

from . import _ffi

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple, Type

    from ._records import DrillReport

_lib = _ffi.lib
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def status_name(status: int) -> str:
    """The library's fixed English name for a status (``bg_status_str``), e.g. "expired"."""
    status = int(status)
    if not _INT32_MIN <= status <= _INT32_MAX:
        return "unknown status"
    name: bytes = _lib.bg_status_str(status)
    return name.decode("utf-8", "replace")


def last_error() -> str:
    """Why the latest call on this thread failed ("" when it succeeded): ``bg_last_error``."""
    buf = ctypes.create_string_buffer(_ffi.LAST_ERROR_BUF_LEN)
    # BG_ERR_BUFFER_TOO_SMALL still leaves a NUL-terminated prefix, which is worth keeping.
    _lib.bg_last_error(buf, len(buf))
    return buf.value.decode("utf-8", "replace")


class BreakGlassError(Exception):
    """A non-OK status from the library.

    ``status`` is the number, ``name`` its fixed name, ``detail`` the operation that failed
    (e.g. ``"configure(otp_ttl_seconds=...)"``) and ``reason`` the library's explanation (e.g.
    ``"otp_ttl_seconds: must be from 1 to 86400"``, "" when it gave none). The message is
    ``"<detail>: <name> (status <n>): <reason>"``.
    """

    STATUS: Optional[int] = None

    def __init__(self, status: Optional[int] = None, detail: str = "", reason: str = "") -> None:
        if status is None:
            if self.STATUS is None:
                raise TypeError(f"{type(self).__name__} needs a status")
            status = self.STATUS
        self.status: int = int(status)
        self.name: str = status_name(self.status)
        self.detail = detail
        # The library's text may start with, or be, the status name ("invalid argument: ...",
        # "wrong password"), which the message shows already.
        if reason.startswith(self.name + ": "):
            reason = reason[len(self.name) + 2 :]
        elif reason == self.name:
            reason = ""
        self.reason = reason
        text = f"{self.name} (status {self.status})"
        if detail:
            text = f"{detail}: {text}"
        if reason:
            text = f"{text}: {reason}"
        super().__init__(text)

    def __reduce__(self) -> Tuple[Type[BreakGlassError], Tuple[int, str, str]]:
        return (type(self), (self.status, self.detail, self.reason))


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
    """A delivery or the login flow was asked for that the configuration does not allow
    (e.g. no mailer, or no ``password_hash``)."""

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


class AuditError(BreakGlassError):
    """:func:`login_complete`: the code was right, but the success could not be written to
    ``audit_log`` while ``audit_required`` is on: no session (the alarm still went out)."""

    STATUS = _ffi.BG_ERR_AUDIT


class DrillFailed(BreakGlassError):
    """:func:`drill`: at least one channel did not deliver; ``reports`` has every channel."""

    STATUS = _ffi.BG_DRILL_FAILED

    def __init__(self, status: Optional[int] = None, detail: str = "", reason: str = "",
                 reports: Optional[List[DrillReport]] = None) -> None:
        super().__init__(status, detail, reason)
        self.reports: List[DrillReport] = list(reports or [])


# ---------------------------------------------------------------------------------- login
class LoginDenied(BreakGlassError):
    """A step of the login flow refused the client: catch this one class to deny a login.

    Subclasses: :class:`IpNotAllowed`, :class:`LockedOut`, :class:`WrongPassword`,
    :class:`NoSession`, and, from :func:`login_complete`, :class:`LoginInvalid`,
    :class:`LoginExpired` and :class:`LoginNoPendingOtp` (which are also the
    :class:`VerifyError` classes :func:`verify` raises). Other errors (e.g.
    :class:`NotConfiguredError`, :class:`BackendError`) are not denials of the client but
    still mean "no access": grant only when a login function returns.
    """


class IpNotAllowed(LoginDenied):
    """The client's address is malformed or not in ``allowed_ips``. Not counted as a failure."""

    STATUS = _ffi.BG_IP_NOT_ALLOWED


class LockedOut(LoginDenied):
    """This address, or every login, is locked out after too many failures (or too many
    password checks are running at once: try again in a moment)."""

    STATUS = _ffi.BG_LOCKED_OUT


class WrongPassword(LoginDenied):
    """:func:`login_begin`: the password does not match ``password_hash`` (a bcrypt hash also
    refuses passwords over 72 bytes). Counted as a failure."""

    STATUS = _ffi.BG_WRONG_PASSWORD


class NoSession(LoginDenied):
    """:func:`session_check` / :func:`session_end`: not the active session, or it expired."""

    STATUS = _ffi.BG_NO_SESSION


class LoginInvalid(Invalid, LoginDenied):
    """:func:`login_complete`: a wrong or malformed code. Counted as a failure."""


class LoginExpired(Expired, LoginDenied):
    """:func:`login_complete`: the code outlived ``otp_ttl_seconds``. Counted as a failure."""


class LoginNoPendingOtp(NoPendingOtp, LoginDenied):
    """:func:`login_complete`: no code was pending (used, replaced or never sent). Counted."""


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
        IpNotAllowed,
        LockedOut,
        WrongPassword,
        NoSession,
        AuditError,
        DrillFailed,
    )
    if cls.STATUS is not None
}

#: What the login functions raise: the verify denials become login denials too.
_LOGIN_ERRORS: Dict[int, Type[BreakGlassError]] = {
    **_ERRORS,
    _ffi.BG_INVALID: LoginInvalid,
    _ffi.BG_EXPIRED: LoginExpired,
    _ffi.BG_NO_PENDING_OTP: LoginNoPendingOtp,
}


def error(status: int, detail: str = "", reason: str = "", login: bool = False) -> BreakGlassError:
    """The exception for a non-OK status (unknown statuses give a plain BreakGlassError)."""
    table = _LOGIN_ERRORS if login else _ERRORS
    return table.get(status, BreakGlassError)(status, detail, reason)


def check(status: int, detail: str, login: bool = False) -> None:
    """Raises the exception for ``status`` unless it is BG_OK, with the library's reason.

    Call it directly after the library call, on the same thread, with nothing in between."""
    if status != _ffi.BG_OK:
        raise error(status, detail, last_error(), login)
