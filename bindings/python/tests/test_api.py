"""The binding's API without delivery: codes, configuration, errors, the loader, the header."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import pickle
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import breakglass
from breakglass import _ffi
from conftest import HEADER, free_port

LIB = _ffi.lib


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_functions() -> dict:
    """name -> parameter list text, for every function declared in include/breakglass.h."""
    code = _strip_comments(HEADER.read_text())
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#"))
    found = {}
    for stmt in code.split(";"):
        stmt = re.split(r"[{}]", stmt)[-1].strip()
        m = re.fullmatch(r"(?:[\w\s\*]*?[\s\*])?(bg_\w+)\s*\(([^()]*)\)", stmt, flags=re.S)
        if m:
            found[m.group(1)] = m.group(2).strip()
    # Any bg_ name directly followed by "(" (a function pointer typedef has ")" in between):
    # the statement parser above must not have missed one.
    named = set(re.findall(r"\b(bg_\w+)\s*\(", code))
    assert named == set(found), (named, found)
    return found


# ---------------------------------------------------------------------------------- header sync
def test_every_header_function_is_declared_in_ffi():
    functions = header_functions()
    assert len(functions) >= 12, functions  # the parser itself works
    missing = sorted(set(functions) - set(_ffi.SIGNATURES))
    assert not missing, f"include/breakglass.h declares {missing}, which _ffi.py does not"
    extra = sorted(set(_ffi.SIGNATURES) - set(functions))
    assert not extra, f"_ffi.py declares {extra}, which the header does not"
    for name, params in functions.items():
        count = 0 if params in ("", "void") else params.count(",") + 1
        restype, argtypes = _ffi.SIGNATURES[name]
        assert len(argtypes) == count, (name, params, argtypes)
        fn = getattr(LIB, name)
        assert fn.argtypes == argtypes and fn.restype is restype, name


#: C type text in the header -> the ctypes type the binding must declare for it.
C_TYPES = {
    "void": None,
    "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32,
    "size_t": ctypes.c_size_t,
    "bg_status": _ffi.bg_status,
    "const char *": ctypes.c_char_p,
    "char *": ctypes.POINTER(ctypes.c_char),
    "void *": ctypes.c_void_p,
    "uint32_t *": ctypes.POINTER(ctypes.c_uint32),
    "struct bg_stats *": ctypes.POINTER(_ffi.bg_stats),
    "struct bg_config_key_info *": ctypes.POINTER(_ffi.bg_config_key_info),
    "struct bg_delivery_path *": ctypes.POINTER(_ffi.bg_delivery_path),
    "size_t *": ctypes.POINTER(ctypes.c_size_t),
    "bg_log_fn": _ffi.LOG_FN,
    "bg_drill_report_fn": _ffi.DRILL_FN,
}


def _c_type(decl: str, has_name: bool = True) -> object:
    """The ctypes type for one declaration such as ``const char *code`` (its name dropped)."""
    decl = " ".join(decl.split())
    if has_name:
        decl = re.sub(r"\s*\b\w+$", "", decl)
    decl = re.sub(r"\s*\*\s*", " *", decl).strip()
    assert decl in C_TYPES, f"no ctypes mapping for C type {decl!r}"
    return C_TYPES[decl]


def test_signature_types_match_the_header():
    """Not only names and counts: every return and parameter type of every function, and the
    callbacks' types, are the ones the header declares."""
    code = _strip_comments(HEADER.read_text())
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#"))
    decls = re.findall(r"^([\w][\w \*]*?[\s\*])(bg_\w+)\s*\(([^()]*)\)\s*;", code, flags=re.M | re.S)
    assert len(decls) == len(_ffi.SIGNATURES), [d[1] for d in decls]
    for ret, name, params in decls:
        restype, argtypes = _ffi.SIGNATURES[name]
        assert _c_type(ret, has_name=False) is restype, (name, ret, restype)
        params = [] if params.strip() in ("", "void") else params.split(",")
        want = [_c_type(p) for p in params]
        assert want == list(argtypes), (name, params, argtypes)
    for fn_type, typedef in (("bg_log_fn", _ffi.LOG_FN), ("bg_drill_report_fn", _ffi.DRILL_FN)):
        m = re.search(r"typedef (\w+) \(\*" + fn_type + r"\)\(([^()]*)\)", code, flags=re.S)
        assert m is not None, fn_type
        assert _c_type(m.group(1), has_name=False) is typedef._restype_, fn_type
        assert [_c_type(p) for p in m.group(2).split(",")] == list(typedef._argtypes_), fn_type


def test_header_constants_struct_and_version_match_the_binding():
    code = _strip_comments(HEADER.read_text())
    statuses = {f"BG_{n}": int(v) for n, v in re.findall(r"\bBG_(\w+)\s*=\s*(\d+)", code)}
    assert statuses == _ffi.STATUSES
    struct = re.search(r"typedef struct bg_stats\s*\{(.*?)\}", code, flags=re.S)
    assert struct is not None
    fields = tuple(re.findall(r"uint64_t\s+(\w+)\s*;", struct.group(1)))
    assert fields == _ffi.STATS_FIELDS
    assert [f.name for f in dataclasses.fields(breakglass.Stats)] == list(fields)
    assert re.search(r"#define BG_OTP_LEN (\d+)", code).group(1) == str(_ffi.OTP_LEN)
    assert re.search(r"#define BG_OTP_BUF_LEN (\d+)", code).group(1) == str(_ffi.OTP_BUF_LEN)
    # The token buffer's size: a macro once the header defines one, its documented value until then.
    raw = HEADER.read_text()
    token_len = re.search(r"#define BG_SESSION_TOKEN_BUF_LEN (\d+)", raw) or re.search(
        r"`BG_SESSION_TOKEN_BUF_LEN` \((\d+)\)", raw
    )
    assert token_len is not None and int(token_len.group(1)) == _ffi.SESSION_TOKEN_BUF_LEN
    last_error = re.search(r"#define BG_LAST_ERROR_BUF_LEN (\d+)", code)
    assert last_error is not None and int(last_error.group(1)) == _ffi.LAST_ERROR_BUF_LEN
    version = re.search(r'#define BREAKGLASS_VERSION "([^"]+)"', code).group(1)
    assert breakglass.version() == version
    assert breakglass.__version__ == version


def test_all_exports_exist():
    for name in breakglass.__all__:
        assert hasattr(breakglass, name), name


# ---------------------------------------------------------------------------------- statuses, errors
EXPECTED_NAMES = {
    0: "ok",
    1: "invalid",
    2: "expired",
    3: "no pending otp",
    4: "null pointer",
    5: "buffer too small",
    6: "invalid argument",
    7: "not configured",
    8: "timeout",
    9: "internal error",
    10: "backend error",
    11: "queue full",
    12: "ip not allowed",
    13: "locked out",
    14: "wrong password",
    15: "no session",
    16: "audit failure",
    17: "drill failed",
}


def test_status_names():
    for status, name in EXPECTED_NAMES.items():
        assert breakglass.status_name(status) == name
    for status in (-1, 1000, 2**31 - 1, -(2**31), 2**40):
        assert breakglass.status_name(status) == "unknown status"


@pytest.mark.parametrize(
    "status, cls, bases",
    [
        (1, breakglass.Invalid, (breakglass.VerifyError,)),
        (2, breakglass.Expired, (breakglass.VerifyError,)),
        (3, breakglass.NoPendingOtp, (breakglass.VerifyError,)),
        (4, breakglass.NullPointerError, ()),
        (5, breakglass.BufferTooSmallError, ()),
        (6, breakglass.ArgumentError, (ValueError,)),
        (7, breakglass.NotConfiguredError, ()),
        (8, breakglass.FlushTimeoutError, (TimeoutError,)),
        (9, breakglass.InternalError, ()),
        (10, breakglass.BackendError, ()),
        (11, breakglass.QueueFullError, ()),
        (12, breakglass.IpNotAllowed, (breakglass.LoginDenied,)),
        (13, breakglass.LockedOut, (breakglass.LoginDenied,)),
        (14, breakglass.WrongPassword, (breakglass.LoginDenied,)),
        (15, breakglass.NoSession, (breakglass.LoginDenied,)),
        (16, breakglass.AuditError, ()),
        (17, breakglass.DrillFailed, ()),
    ],
)
def test_each_status_maps_to_its_exception(status, cls, bases):
    err = breakglass._error(status, "op()", "why it failed")
    assert type(err) is cls
    assert isinstance(err, breakglass.BreakGlassError)
    for base in bases:
        assert isinstance(err, base)
    assert err.status == status and err.name == EXPECTED_NAMES[status]
    assert str(err) == f"op(): {EXPECTED_NAMES[status]} (status {status}): why it failed"
    assert err.reason == "why it failed" and err.detail == "op()"
    if status not in (1, 2, 3):
        assert not isinstance(err, breakglass.VerifyError)
    if status < 12:
        assert not isinstance(err, breakglass.LoginDenied)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls and copy.status == status and str(copy) == str(err)
    assert copy.reason == err.reason
    assert cls().status == status  # constructible without arguments


@pytest.mark.parametrize(
    "status, cls, verify_cls",
    [
        (1, breakglass.LoginInvalid, breakglass.Invalid),
        (2, breakglass.LoginExpired, breakglass.Expired),
        (3, breakglass.LoginNoPendingOtp, breakglass.NoPendingOtp),
    ],
)
def test_login_code_denials_are_verify_errors_and_login_denials(status, cls, verify_cls):
    err = breakglass._error(status, "login_complete()", login=True)
    assert type(err) is cls
    assert isinstance(err, verify_cls) and isinstance(err, breakglass.VerifyError)
    assert isinstance(err, breakglass.LoginDenied) and err.status == status
    assert type(breakglass._error(status, "verify()")) is verify_cls  # verify() is unchanged
    for other in (12, 13, 14, 15, 6):
        assert type(breakglass._error(other, login=True)) is type(breakglass._error(other))


def test_a_reason_that_repeats_the_status_name_is_not_shown_twice():
    assert str(breakglass._error(14, "op()", "wrong password")) == "op(): wrong password (status 14)"
    err = breakglass._error(6, "op()", "invalid argument: key: bad")
    assert err.reason == "key: bad" and str(err) == "op(): invalid argument (status 6): key: bad"


def test_unknown_status_is_a_plain_breakglass_error():
    err = breakglass._error(42)
    assert type(err) is breakglass.BreakGlassError
    assert err.status == 42 and err.name == "unknown status"


def test_verify_error_is_a_breakglass_error_and_backend_error_is_not_a_verify_error():
    assert issubclass(breakglass.VerifyError, breakglass.BreakGlassError)
    assert not issubclass(breakglass.BackendError, breakglass.VerifyError)


# ---------------------------------------------------------------------------------- codes
def test_generate_then_verify_once():
    code = breakglass.generate()
    assert isinstance(code, str) and re.fullmatch(r"[0-9]{6}", code)
    assert breakglass.verify(code) is None
    with pytest.raises(breakglass.NoPendingOtp) as e:
        breakglass.verify(code)
    assert e.value.status == 3


def test_codes_vary():
    assert len({breakglass.generate() for _ in range(20)}) > 1


def test_invalid_code_consumes_the_pending_one():
    code = breakglass.generate()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(breakglass.Invalid) as e:
        breakglass.verify(wrong)
    assert e.value.status == 1 and isinstance(e.value, breakglass.VerifyError)
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify(code)


def test_expired_code():
    breakglass.configure(otp_ttl_seconds=1)
    code = breakglass.generate()
    time.sleep(1.2)
    with pytest.raises(breakglass.Expired) as e:
        breakglass.verify(code)  # expired even though it matches
    assert e.value.status == 2
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify(code)


def test_nothing_pending():
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify("123456")


@pytest.mark.parametrize("bad", ["", "12345", "1234567", " 123456", "12345\n", "١٢٣٤٥٦", "12345a"])
def test_malformed_codes_are_invalid_and_consume(bad):
    code = breakglass.generate()
    with pytest.raises(breakglass.Invalid):
        breakglass.verify(bad)
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify(code)


def test_a_code_with_its_own_prefix_is_invalid():
    code = breakglass.generate()
    with pytest.raises(breakglass.Invalid):
        breakglass.verify(code + "0")  # longer than six digits, first six right
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify(code)


def test_nul_never_reaches_c():
    code = breakglass.generate()
    for call in (breakglass.verify, breakglass.send_otp):
        with pytest.raises(ValueError):
            call(code + "\0")
        with pytest.raises(ValueError):
            call("\0" + code)
    # Refused before the library: the pending code is still there.
    breakglass.verify(code)


def test_non_str_codes_are_type_errors():
    breakglass.generate()
    for bad in (123456, b"123456", None):
        with pytest.raises(TypeError):
            breakglass.verify(bad)  # type: ignore[arg-type]


def test_regenerate_invalidates_the_old_code():
    old = breakglass.generate()
    new = breakglass.generate()
    while new == old:
        new = breakglass.generate()
    with pytest.raises(breakglass.Invalid):
        breakglass.verify(old)
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify(new)
    old = breakglass.generate()
    new = breakglass.generate()
    breakglass.verify(new)


def test_clear():
    code = breakglass.generate()
    assert breakglass.clear() is None
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify(code)
    breakglass.clear()  # clearing an empty slot is fine


def test_racing_verifies_exactly_one_wins():
    threads_n, rounds = 16, 60
    start = threading.Barrier(threads_n + 1)
    end = threading.Barrier(threads_n + 1)
    box = {"code": ""}
    results = [[""] * threads_n for _ in range(rounds)]

    def worker(i: int) -> None:
        for r in range(rounds):
            start.wait()
            try:
                breakglass.verify(box["code"])
                results[r][i] = "ok"
            except breakglass.NoPendingOtp:
                results[r][i] = "none"
            except Exception as e:  # noqa: BLE001 - recorded and asserted below
                results[r][i] = repr(e)
            end.wait()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for r in range(rounds):
        box["code"] = breakglass.generate()
        start.wait()
        end.wait()
    for t in threads:
        t.join()
    for r, row in enumerate(results):
        assert row.count("ok") == 1, (r, row)
        assert row.count("none") == threads_n - 1, (r, row)


# ---------------------------------------------------------------------------------- configuration
def test_configure_accepts_python_types():
    breakglass.configure(
        otp_ttl_seconds=30,
        delivery_timeout_ms="2500",
        dev_otp_log=False,
        alert_emails=("a@example.com", "b@example.com"),
        slot_key="svc:test:otp",
        slot_timeout_ms=500,
        slot_wait_replicas=0,
        alert_webhook_secret="s3cret",
    )
    breakglass.configure(alert_emails=[])  # set but empty
    breakglass.configure(alert_emails="a@example.com, b@example.com")
    breakglass.configure(**{key: None for key in breakglass.CONFIG_KEYS})


@pytest.mark.parametrize(
    "settings",
    [
        {"otp_ttl": 5},
        {"nonsense": "x"},
        {"OTP_TTL_SECONDS": 5},
    ],
)
def test_unknown_keys_raise_value_error(settings):
    with pytest.raises(ValueError) as e:
        breakglass.configure(**settings)
    assert "unknown configuration key" in str(e.value)
    assert LIB.bg_configure(b"otp_ttl", b"5") == _ffi.BG_ERR_ARGUMENT


@pytest.mark.parametrize(
    "settings",
    [
        {"otp_ttl_seconds": 0},
        {"otp_ttl_seconds": 86401},
        {"otp_ttl_seconds": -5},
        {"otp_ttl_seconds": "5s"},
        {"delivery_timeout_ms": 0},
        {"mailer": "ftp://mail.example.com"},
        {"mailer": "smtp://"},
        {"from_email": "not-an-address"},
        {"otp_email": "a@b\r\nBcc: x@y"},
        {"alert_emails": ["a@example.com", ""]},
        {"alert_webhook_url": "ftp://hooks.example.com/x"},
        {"dev_otp_log": "yes"},
        {"slot_url": "http://127.0.0.1:6379"},
        {"slot_key": "has space"},
        {"slot_wait_replicas": 65},
    ],
)
def test_bad_values_raise_argument_error(settings):
    with pytest.raises(ValueError) as e:
        breakglass.configure(**settings)
    assert isinstance(e.value, breakglass.ArgumentError)
    assert e.value.status == 6 and e.value.name == "invalid argument"


def test_error_messages_do_not_show_values():
    with pytest.raises(ValueError) as e:
        breakglass.configure(mailer="bogus://user:hunter2@example.com")
    assert "hunter2" not in str(e.value)


@pytest.mark.parametrize(
    "settings",
    [
        {"otp_ttl_seconds": 1.5},
        {"otp_ttl_seconds": True},
        {"dev_otp_log": 1},
        {"alert_emails": {"a@example.com"}},
        {"alert_emails": [1]},
        {"mailer": b"smtp://x"},
    ],
)
def test_wrong_python_types_raise_type_error(settings):
    with pytest.raises(TypeError):
        breakglass.configure(**settings)


def test_configure_rejects_nul_and_commas_in_list_entries():
    with pytest.raises(ValueError):
        breakglass.configure(from_email="a@example.com\0b")
    with pytest.raises(ValueError):
        breakglass.configure(alert_emails=['"Doe, J" <j@example.com>'])


def test_bad_configuration_changes_nothing():
    breakglass.configure(otp_ttl_seconds=1)
    for bad in ({"otp_ttl_seconds": 0}, {"otp_ttl_seconds": "x"}, {"otp_ttl": 600}):
        with pytest.raises(ValueError):
            breakglass.configure(**bad)
    # Several keys: types are checked before anything is applied, and keys after a refused one
    # are not applied.
    with pytest.raises(TypeError):
        breakglass.configure(otp_ttl_seconds=600, dev_otp_log=3)
    with pytest.raises(ValueError):
        breakglass.configure(mailer="bogus://x", otp_ttl_seconds=600)
    code = breakglass.generate()
    time.sleep(1.2)
    with pytest.raises(breakglass.Expired):  # still the 1 s TTL
        breakglass.verify(code)


# ---------------------------------------------------------------------------------- the shared slot
def test_unreachable_slot_is_a_backend_error_and_a_denial():
    port = free_port()  # nothing listens there
    breakglass.configure(slot_url=f"redis://127.0.0.1:{port}", slot_timeout_ms=500)
    with pytest.raises(breakglass.BackendError) as e:
        breakglass.generate()
    assert e.value.status == 10 and e.value.name == "backend error"
    with pytest.raises(breakglass.BreakGlassError) as e:
        breakglass.verify("123456")
    assert isinstance(e.value, breakglass.BackendError)
    assert not isinstance(e.value, breakglass.VerifyError)
    with pytest.raises(breakglass.BackendError):
        breakglass.clear()
    # Never a fallback to the in-process slot, and back to it once unset.
    breakglass.configure(slot_url=None)
    code = breakglass.generate()
    breakglass.verify(code)


# ---------------------------------------------------------------------------------- delivery API
def test_send_otp_without_a_mailer():
    code = breakglass.generate()
    with pytest.raises(breakglass.NotConfiguredError) as e:
        breakglass.send_otp(code)
    assert e.value.status == 7 and e.value.name == "not configured"
    with pytest.raises(ValueError) as e:
        breakglass.send_otp("12345")
    assert isinstance(e.value, breakglass.ArgumentError)
    breakglass.verify(code)  # sending never consumes


def test_alert_without_channels_returns_none_and_queues_nothing(records):
    before = breakglass.stats()
    assert breakglass.alert("203.0.113.1") is None
    assert breakglass.alert(None) is None
    assert breakglass.stats().queued == before.queued
    assert any("reached no one" in m for m in records.at(40))


def test_flush_arguments():
    breakglass.flush(0)
    breakglass.flush(0.5)
    breakglass.flush(float("inf"))
    with pytest.raises(ValueError):
        breakglass.flush(-1)
    with pytest.raises(ValueError):
        breakglass.flush(float("nan"))
    with pytest.raises(TypeError):
        breakglass.flush("1")  # type: ignore[arg-type]


def test_stats_is_a_frozen_dataclass_of_ints():
    s = breakglass.stats()
    assert isinstance(s, breakglass.Stats)
    assert [f.name for f in dataclasses.fields(s)] == [
        "queued",
        "emails_sent",
        "emails_failed",
        "webhooks_sent",
        "webhooks_failed",
        "dropped",
    ]
    assert all(isinstance(v, int) and v >= 0 for v in dataclasses.asdict(s).values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.queued = 1  # type: ignore[misc]


def test_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", breakglass.version())


# ---------------------------------------------------------------------------------- raw C ABI
def test_raw_null_and_buffer_statuses():
    code = breakglass.generate()
    assert LIB.bg_generate(None, 7) == _ffi.BG_ERR_NULL
    small = ctypes.create_string_buffer(6)
    assert LIB.bg_generate(small, len(small)) == _ffi.BG_ERR_BUFFER_TOO_SMALL
    assert small.raw == b"\0" * 6
    breakglass.verify(code)  # neither touched the pending code
    assert LIB.bg_get_stats(None) == _ffi.BG_ERR_NULL
    assert LIB.bg_send_otp(None) == _ffi.BG_ERR_NULL
    assert LIB.bg_configure(None, b"1") == _ffi.BG_ERR_NULL
    assert LIB.bg_alert(None) == _ffi.BG_OK
    code = breakglass.generate()
    assert LIB.bg_verify(None) == _ffi.BG_ERR_NULL  # and consumes
    with pytest.raises(breakglass.NoPendingOtp):
        breakglass.verify(code)


def test_raw_set_logger_rejects_bad_levels():
    for level in (-1, 6, 100):
        assert LIB.bg_set_logger(_ffi.NO_LOGGER, None, level) == _ffi.BG_ERR_ARGUMENT
    breakglass.set_log_level(None)  # re-attach


# ---------------------------------------------------------------------------------- the loader
def _library_path() -> str:
    import os

    return os.environ["BREAKGLASS_LIBRARY"]


def test_loader_names_every_place_it_tried(tmp_path: Path):
    libdir = tmp_path / "usr-local-lib"
    with pytest.raises(OSError) as e:
        _ffi.load(environ={}, package_dir=tmp_path, find=lambda name: None, libdirs=[libdir])
    text = str(e.value)
    places = [line for line in text.splitlines() if line.startswith("  - ")]
    assert len(places) == 4, text
    assert "BREAKGLASS_LIBRARY" in places[0]
    assert str(tmp_path / "libbreakglass.so") in places[1]
    assert 'find_library("breakglass")' in places[2] and "ldconfig" in places[2]
    assert str(libdir / "libbreakglass.so.0") in places[3]


def test_loader_default_libdir_is_make_installs():
    assert "/usr/local/lib" in _ffi.INSTALL_LIBDIRS
    assert _ffi.SONAME == "libbreakglass.so.0"  # what make install links


def test_loader_find_library_failure_is_named(tmp_path: Path):
    with pytest.raises(OSError) as e:
        _ffi.load(environ={}, package_dir=tmp_path, find=lambda name: "/nonexistent/libbreakglass.so.0", libdirs=[])
    assert "/nonexistent/libbreakglass.so.0" in str(e.value)


def test_loader_explicit_path_is_authoritative(tmp_path: Path):
    (tmp_path / "libbreakglass.so").symlink_to(_library_path())
    with pytest.raises(OSError) as e:
        _ffi.load(environ={"BREAKGLASS_LIBRARY": "/nonexistent/libbreakglass.so"}, package_dir=tmp_path)
    assert "/nonexistent/libbreakglass.so" in str(e.value)
    assert "package copy" not in str(e.value)


def _places(tmp_path: Path, package: bool, found: bool, installed: bool):
    """A package dir, a find_library result and a libdir, each holding a link to the library
    (when asked) under a path of its own, so the loaded path tells which place won."""
    pkg, other, libdir = tmp_path / "pkg", tmp_path / "ldconfig", tmp_path / "lib"
    for d in (pkg, other, libdir):
        d.mkdir()
    if package:
        (pkg / "libbreakglass.so").symlink_to(_library_path())
    if found:
        (other / "libbreakglass.so.0").symlink_to(_library_path())
    if installed:
        (libdir / "libbreakglass.so.0").symlink_to(_library_path())
    find = (lambda name: str(other / "libbreakglass.so.0")) if found else (lambda name: None)
    return dict(environ={}, package_dir=pkg, find=find, libdirs=[libdir])


@pytest.mark.parametrize(
    "package, found, installed, winner",
    [
        (True, True, True, "pkg/libbreakglass.so"),
        (False, True, True, "ldconfig/libbreakglass.so.0"),
        (False, False, True, "lib/libbreakglass.so.0"),
    ],
)
def test_loader_order_package_then_ldconfig_then_install_libdir(tmp_path: Path, package, found, installed, winner):
    lib = _ffi.load(**_places(tmp_path, package, found, installed))
    assert lib._name == str(tmp_path / winner)
    assert lib.bg_version() == breakglass.version().encode()


def test_loader_environment_beats_the_package_copy(tmp_path: Path):
    kwargs = _places(tmp_path, True, True, True)
    env_copy = tmp_path / "env" / "libbreakglass.so"
    env_copy.parent.mkdir()
    env_copy.symlink_to(_library_path())
    kwargs["environ"] = {"BREAKGLASS_LIBRARY": str(env_copy)}
    assert _ffi.load(**kwargs)._name == str(env_copy)


def test_loader_refuses_a_library_without_the_exports():
    import ctypes.util

    libc = ctypes.util.find_library("c") or "libc.so.6"
    with pytest.raises(OSError) as e:
        _ffi.load(environ={"BREAKGLASS_LIBRARY": libc})
    assert "does not export" in str(e.value)


def test_config_keys_match_the_librarys_table():
    """CONFIG_KEYS and each key's kind are the table the library exports (bg_config_key): same
    names, same order; config_keys() reads that table."""
    table = breakglass.config_keys()
    assert len(table) == LIB.bg_config_key_count() >= 19
    assert tuple(k.name for k in table) == breakglass.CONFIG_KEYS
    from breakglass import _settings

    assert {k.name: k.kind for k in table} == _settings.KINDS
    for k in table:
        assert k.kind in ("integer", "boolean", "string", "secret", "email_list"), k
        assert k.doc, k
        if k.kind == "integer":
            assert k.min <= k.max and k.default is not None and k.min <= int(k.default) <= k.max, k
        else:
            assert (k.min, k.max) == (0, 0), k
    # Every default is accepted back, through the binding's own conversion.
    breakglass.configure(**{k.name: k.default for k in table if k.default is not None})  # type: ignore[misc]
    # The six login keys, with their documented defaults.
    by_name = {k.name: k for k in table}
    assert by_name["max_attempts"].default == "5"
    assert by_name["session_ttl_seconds"].default == "3600"
    assert by_name["password_hash"].kind == "secret" and by_name["password_hash"].default is None


def test_config_key_out_of_range_is_an_argument_error_with_a_reason():
    info = _ffi.bg_config_key_info()
    status = LIB.bg_config_key(LIB.bg_config_key_count(), ctypes.byref(info))
    assert status == _ffi.BG_ERR_ARGUMENT
    assert "bg_config_key_count" in breakglass._errors.last_error()
    assert LIB.bg_config_key(0, None) == _ffi.BG_ERR_NULL


# ---------------------------------------------------------------------------------- reasons
def test_a_refused_configure_says_why():
    with pytest.raises(breakglass.ArgumentError) as e:
        breakglass.configure(otp_ttl_seconds=0)
    assert e.value.reason == "otp_ttl_seconds: must be from 1 to 86400"
    assert str(e.value) == (
        "configure(otp_ttl_seconds=...): invalid argument (status 6): otp_ttl_seconds: must be from 1 to 86400"
    )
    with pytest.raises(breakglass.ArgumentError) as e:
        breakglass.configure(max_attempts="many")
    assert e.value.reason.startswith("max_attempts:")


def test_reasons_never_show_secret_values():
    with pytest.raises(breakglass.ArgumentError) as e:
        breakglass.configure(mailer="bogus://user:hunter2@example.com")
    assert e.value.reason and "hunter2" not in str(e.value) and "hunter2" not in e.value.reason
    with pytest.raises(breakglass.ArgumentError) as e:
        breakglass.configure(slot_url="redis://:hunter2@[bad")
    assert "hunter2" not in str(e.value)


def test_the_reason_belongs_to_the_failing_call_on_its_own_thread():
    results = {}

    def refuse(key: str, value: int) -> None:
        for _ in range(200):
            try:
                breakglass.configure(**{key: value})  # type: ignore[misc]
            except breakglass.ArgumentError as e:
                if not e.reason.startswith(key + ":"):
                    results[key] = e.reason
                    return
        results[key] = "ok"

    threads = [
        threading.Thread(target=refuse, args=("otp_ttl_seconds", 0)),
        threading.Thread(target=refuse, args=("delivery_timeout_ms", 0)),
        threading.Thread(target=lambda: [breakglass.generate() for _ in range(200)]),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"otp_ttl_seconds": "ok", "delivery_timeout_ms": "ok"}


def test_success_leaves_no_reason():
    with pytest.raises(breakglass.ArgumentError):
        breakglass.configure(otp_ttl_seconds=0)
    breakglass.configure(otp_ttl_seconds=5)
    assert breakglass._errors.last_error() == ""


def test_import_leaves_the_heavy_modules_for_first_use():
    # The figure is in BENCHMARKS.md ("Import time"); this checks the cause stays away.
    heavy = ["logging", "typing", "threading", "dataclasses", "ipaddress", "pathlib", "ctypes.util",
             "subprocess", "inspect"]
    code = ("import sys; import breakglass; print(','.join(m for m in %r if m in sys.modules)); "
            "breakglass.clear(); print('logging' in sys.modules)") % (heavy,)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "BREAKGLASS_LIBRARY")}
    env["PYTHONPATH"] = str(Path(breakglass.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["", "True"], out  # nothing heavy at import; logging once the library is used
