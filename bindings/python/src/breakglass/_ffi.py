"""Loads libbreakglass and declares the C signature of every export (private).

Lookup order:

1. ``$BREAKGLASS_LIBRARY``: a path to the shared library. When it is set, it is the only place
   tried: a broken explicit setting must not quietly fall back to some other copy.
2. ``libbreakglass.so`` next to this file: the copy a platform wheel carries (``make wheel``).
3. The system: ``ctypes.util.find_library("breakglass")`` (the ``ldconfig`` cache and the
   linker's paths), then ``make install``'s default libdir (``/usr/local/lib``), which the
   ``ldconfig`` cache lacks until someone runs ``ldconfig``.

When nothing loads, the ``OSError`` names every place tried and why each failed.

``ctypes.CDLL`` is used on purpose: it releases the GIL for the duration of every call, so a
blocking ``bg_flush`` or a slot round trip does not stall other Python threads, and the log
callback can take the GIL from the library's own threads.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

# No pathlib and no ctypes.util at import: they cost more than the rest of the import together
# (ctypes.util pulls in subprocess, shutil and tempfile), and a program that sets
# $BREAKGLASS_LIBRARY or uses a wheel never needs them (BENCHMARKS.md, "import time").

LIBRARY_ENV = "BREAKGLASS_LIBRARY"
PACKAGE_LIBRARY = "libbreakglass.so"
#: The installed library's file name (its soname), as ``make install`` lays it out.
SONAME = "libbreakglass.so.0"
#: ``make install``'s libdir for its default ``PREFIX=/usr/local``.
INSTALL_LIBDIRS: Tuple[str, ...] = ("/usr/local/lib",)

# Values from include/breakglass.h.
OTP_LEN = 6
OTP_BUF_LEN = 7
#: ``BG_SESSION_TOKEN_BUF_LEN``: a session token (43 URL-safe base64 characters) and its NUL.
#: The header documents it but does not define it as a macro (yet), so the value is written
#: here; the library checks it (a shorter buffer is BG_ERR_BUFFER_TOO_SMALL).
SESSION_TOKEN_BUF_LEN = 44
#: ``BG_PASSWORD_HASH_BUF_LEN``: a PHC string from ``bg_hash_password`` and its NUL.
PASSWORD_HASH_BUF_LEN = 128
#: ``BG_LAST_ERROR_BUF_LEN``: ``bg_last_error`` never needs more than 1024 bytes and the NUL
#: (tests/test_api.py checks it against the header's macro).
LAST_ERROR_BUF_LEN = 1025

BG_OK = 0
BG_INVALID = 1
BG_EXPIRED = 2
BG_NO_PENDING_OTP = 3
BG_ERR_NULL = 4
BG_ERR_BUFFER_TOO_SMALL = 5
BG_ERR_ARGUMENT = 6
BG_ERR_NOT_CONFIGURED = 7
BG_ERR_TIMEOUT = 8
BG_ERR_INTERNAL = 9
BG_ERR_BACKEND = 10
BG_ERR_QUEUE_FULL = 11
BG_IP_NOT_ALLOWED = 12
BG_LOCKED_OUT = 13
BG_WRONG_PASSWORD = 14
BG_NO_SESSION = 15
BG_ERR_AUDIT = 16
BG_DRILL_FAILED = 17

#: Outcomes a drill reports per channel (``BG_DRILL_*`` in the header).
DRILL_OUTCOMES: Dict[int, str] = {0: "delivered", 1: "refused", 2: "timed out", 3: "unreachable"}

STATUSES: Dict[str, int] = {
    name: value for name, value in globals().items() if name.startswith("BG_") and isinstance(value, int)
}

STATS_FIELDS: Tuple[str, ...] = (
    "queued",
    "emails_sent",
    "emails_failed",
    "webhooks_sent",
    "webhooks_failed",
    "dropped",
)


class bg_stats(ctypes.Structure):
    """``struct bg_stats``."""

    _fields_ = [(name, ctypes.c_uint64) for name in STATS_FIELDS]


#: Sizes of the text fields of ``struct bg_delivery_path`` (``BG_DELIVERY_PATH_LEN``,
#: ``BG_DELIVERY_REASON_LEN`` in the header).
DELIVERY_PATH_LEN = 128
DELIVERY_REASON_LEN = 256


class bg_delivery_path(ctypes.Structure):
    """``struct bg_delivery_path``: one delivery path's last outcomes (caller-owned)."""

    _fields_ = [
        ("path", ctypes.c_char * DELIVERY_PATH_LEN),
        ("last_success_ms", ctypes.c_uint64),
        ("last_failure_ms", ctypes.c_uint64),
        ("last_failure_reason", ctypes.c_char * DELIVERY_REASON_LEN),
        ("failing", ctypes.c_int32),
    ]


class bg_config_key_info(ctypes.Structure):
    """``struct bg_config_key_info``: every string is static in the library (never freed)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("kind", ctypes.c_char_p),
        ("default_value", ctypes.c_char_p),
        ("min", ctypes.c_uint64),
        ("max", ctypes.c_uint64),
        ("doc", ctypes.c_char_p),
    ]


bg_status = ctypes.c_int32

#: ``typedef void (*bg_log_fn)(int32_t level, const char *message, void *user_data);``
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_char_p, ctypes.c_void_p)

#: A NULL ``bg_log_fn``: ``bg_set_logger(NO_LOGGER, None, level)`` selects the stderr logger.
NO_LOGGER = LOG_FN()

#: ``typedef void (*bg_drill_report_fn)(const char *channel, int32_t outcome,
#: const char *detail, void *user_data);``
DRILL_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_void_p)

#: name -> (restype, argtypes) for every function in include/breakglass.h.
SIGNATURES: Dict[str, Tuple[object, List[object]]] = {
    "bg_status_str": (ctypes.c_char_p, [ctypes.c_int32]),
    "bg_version": (ctypes.c_char_p, []),
    "bg_send_otp": (bg_status, [ctypes.c_char_p]),
    "bg_alert": (bg_status, [ctypes.c_char_p]),
    "bg_flush": (bg_status, [ctypes.c_uint32]),
    "bg_drill": (bg_status, [ctypes.c_uint32, DRILL_FN, ctypes.c_void_p]),
    "bg_get_stats": (bg_status, [ctypes.POINTER(bg_stats)]),
    "bg_delivery_health": (
        bg_status,
        [ctypes.POINTER(bg_delivery_path), ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)],
    ),
    "bg_set_logger": (bg_status, [LOG_FN, ctypes.c_void_p, ctypes.c_int32]),
    "bg_config_key_count": (ctypes.c_size_t, []),
    "bg_config_key": (bg_status, [ctypes.c_size_t, ctypes.POINTER(bg_config_key_info)]),
    "bg_last_error": (bg_status, [ctypes.POINTER(ctypes.c_char), ctypes.c_size_t]),
    "bg_login_begin": (bg_status, [ctypes.c_char_p, ctypes.c_char_p]),
    "bg_login_complete": (bg_status, [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t]),
    "bg_session_check": (bg_status, [ctypes.c_char_p]),
    "bg_session_end": (bg_status, [ctypes.c_char_p]),
    "bg_attempts_left": (bg_status, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32)]),
    "bg_reset_attempts": (bg_status, [ctypes.c_char_p]),
    "bg_hash_password": (bg_status, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t]),
    "bg_configure": (bg_status, [ctypes.c_char_p, ctypes.c_char_p]),
    "bg_configure_from_env": (bg_status, []),
    "bg_generate": (bg_status, [ctypes.POINTER(ctypes.c_char), ctypes.c_size_t]),
    "bg_verify": (bg_status, [ctypes.c_char_p]),
    "bg_clear": (bg_status, []),
}


def declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Sets ``restype``/``argtypes`` of every export on ``lib``; a missing one raises OSError."""
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise OSError(f"{lib._name} does not export {name}: not a compatible libbreakglass") from None
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def candidates(
    environ: Optional[Mapping[str, str]] = None,
    package_dir: Union[str, "Path", None] = None,
    find: Optional[Callable[[str], Optional[str]]] = None,
    libdirs: Optional[Sequence[Union[str, "Path"]]] = None,
) -> Sequence[Tuple[str, Optional[str]]]:
    """The places to try, in order, as (description, path or None when there is nothing)."""
    environ = os.environ if environ is None else environ
    package_dir = os.path.dirname(os.path.realpath(__file__)) if package_dir is None else package_dir
    libdirs = INSTALL_LIBDIRS if libdirs is None else libdirs

    explicit = environ.get(LIBRARY_ENV)
    if explicit:
        return [(f"${LIBRARY_ENV}={explicit}", explicit)]
    places: List[Tuple[str, Optional[str]]] = [(f"${LIBRARY_ENV}: not set", None)]
    copy = os.path.join(os.fspath(package_dir), PACKAGE_LIBRARY)
    if os.path.exists(copy):
        places.append((f"the package copy {copy}", str(copy)))
    else:
        places.append((f"the package copy {copy}: no such file", None))
    if find is None:
        import ctypes.util  # only here: see the imports

        find = ctypes.util.find_library
    found = find("breakglass")
    if found:
        places.append((f'ctypes.util.find_library("breakglass") (ldconfig) -> {found}', found))
    else:
        places.append(('ctypes.util.find_library("breakglass") (ldconfig): found nothing', None))
    for libdir in libdirs:
        installed = os.path.join(os.fspath(libdir), SONAME)
        if os.path.exists(installed):
            places.append((f"make install's {installed}", str(installed)))
        else:
            places.append((f"make install's {installed}: no such file", None))
    return places


def load(
    environ: Optional[Mapping[str, str]] = None,
    package_dir: Union[str, "Path", None] = None,
    find: Optional[Callable[[str], Optional[str]]] = None,
    libdirs: Optional[Sequence[Union[str, "Path"]]] = None,
) -> ctypes.CDLL:
    """Loads and declares the library; OSError names every place tried when none loads."""
    tried: List[str] = []
    for description, path in candidates(environ, package_dir, find, libdirs):
        if path is None:
            tried.append(description)
            continue
        try:
            return declare(ctypes.CDLL(path))
        except OSError as e:
            tried.append(f"{description}: {e}")
    raise OSError(
        "cannot load libbreakglass; tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nSet {LIBRARY_ENV} to the path of libbreakglass.so, install a platform wheel"
        + " (make wheel), or install the library (make install)."
    )


lib = load()
