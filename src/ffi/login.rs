//! Exports for the whole login: `bg_login_begin`, `bg_login_complete`, the session and the
//! operators' calls. Converts and checks arguments only; the flow is in `crate::login`.

use std::ffi::c_char;

use super::cstr::{self, CInput};
use super::panic::guard;
use super::status::{bg_status, map_error, refuse, refuse_argument, status_of};
use crate::error::Error;
use crate::login;

/// Size of a buffer that holds a session token and its NUL: pass at least this to
/// `bg_login_complete`.
pub const BG_SESSION_TOKEN_BUF_LEN: usize = 44;

// A literal above, so that cbindgen can write it into the header.
const _: () = assert!(BG_SESSION_TOKEN_BUF_LEN == login::TOKEN_CHARS + 1);

/// Longest client address text read, in bytes.
const MAX_IP: usize = 256;
/// Longest typed code read, in bytes: a recovery code with generous separators fits.
const MAX_TYPED_CODE: usize = 64;
/// Longest password read, in bytes.
const MAX_PASSWORD: usize = 4096;

/// Reads a required string argument as bytes, bounded.
unsafe fn bytes<'a>(ptr: *const c_char, limit: usize, what: &str) -> Result<&'a [u8], bg_status> {
    match unsafe { cstr::read(ptr, limit) } {
        CInput::Null => Err(refuse(Error::Null, &format!("{what} is NULL"))),
        CInput::TooLong(_) => Err(refuse_argument(&format!(
            "{what} is longer than {limit} bytes"
        ))),
        CInput::Text(b) => Ok(b),
    }
}

/// Step 1 of a break-glass login: in order, checks that `ip` (the client's address as text,
/// IPv4 or IPv6) is in `allowed_ips` (`BG_IP_NOT_ALLOWED`), that neither it nor every login is
/// locked out (`BG_LOCKED_OUT`), and `password` against `password_hash` (`BG_WRONG_PASSWORD`,
/// which counts as a failure). Then issues a code and queues its email, as `bg_generate` +
/// `bg_send_otp` do, and returns `BG_OK`. The code is never returned. `BG_OK` means the email
/// is queued, not delivered: `bg_delivery_health` tells whether the code email's last delivery
/// failed, so a page can offer a recovery code instead.
///
/// Also `BG_ERR_NOT_CONFIGURED` without `password_hash` (or without a mailer), `BG_ERR_NULL`,
/// `BG_ERR_ARGUMENT` (password over 4096 bytes), `BG_ERR_QUEUE_FULL`, `BG_ERR_BACKEND`. The
/// password hash takes tens of milliseconds and at most two run at once: a third concurrent
/// call gets `BG_LOCKED_OUT` at once. `bg_last_error` says which check refused. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `ip` and `password` are each NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_login_begin(ip: *const c_char, password: *const c_char) -> bg_status {
    guard(|| {
        let ip = match unsafe { bytes(ip, MAX_IP, "ip") } {
            Ok(b) => b,
            Err(st) => return st,
        };
        let password = match unsafe { bytes(password, MAX_PASSWORD, "password") } {
            Ok(b) => zeroize::Zeroizing::new(b.to_vec()),
            Err(st) => return st,
        };
        status_of(login::begin(Some(ip), &password))
    })
}

/// Step 2 of a break-glass login: checks `ip` as `bg_login_begin` does, then verifies `code`
/// against the code that this address's right password earned (consuming it). From any other
/// address (IPv6: /64) the result is `BG_NO_PENDING_OTP`, counted against that address only,
/// and the pending code stays. On `BG_OK` the address's failures are reset,
/// a new session replaces any other, its token (43 URL-safe base64 characters and a NUL) is
/// written to `token_out`, and the alarm is raised (as `bg_alert(ip)`). A wrong, expired or
/// missing code (`BG_INVALID`, `BG_EXPIRED`, `BG_NO_PENDING_OTP`) counts as a failure.
///
/// Recovery codes: with `recovery_codes_file` set, a `code` that is not six digits (such as
/// `7KQ2-M9XD-4TFA-PW3H`; case, dashes and spaces do not matter) is tried as a recovery code
/// in place of the emailed one, after a right password (a code must be pending). A match is
/// consumed in the login state (in-process, or Redis with `slot_url`) before the login is
/// granted, so it works once only; the alarm's event is then
/// `break_glass_recovery_code_used` with the number of codes left. A wrong, used or malformed
/// recovery code is `BG_INVALID` and counts as one failure, and the pending emailed code is
/// used up either way. Its hash check shares the password checks' bound (`BG_LOCKED_OUT` when
/// busy, not counted). Input over 64 bytes is `BG_INVALID`.
///
/// `token_out` is caller-owned and must hold `BG_SESSION_TOKEN_BUF_LEN` (44) bytes; a shorter
/// one is `BG_ERR_BUFFER_TOO_SMALL` before anything is checked or consumed. `code == NULL` is
/// `BG_ERR_NULL`: nothing is checked, consumed or counted. Grant on `BG_OK` only.
/// Thread-safe.
///
/// With `audit_log` set, the success is written and synced to it before the session starts;
/// when that write fails and `audit_required` is on (the default), no session starts and the
/// result is `BG_ERR_AUDIT` (the code is used up, the alarm still goes out, and the attempt is
/// not counted as a failure). With `audit_required` off, the failure is logged and counted and
/// the login is granted.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `ip` and `code` are each NULL or a NUL-terminated string; `token_out` is NULL or points to
/// at least `token_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn bg_login_complete(
    ip: *const c_char,
    code: *const c_char,
    token_out: *mut c_char,
    token_len: usize,
) -> bg_status {
    guard(|| {
        if token_out.is_null() {
            return refuse(Error::Null, "token_out is NULL");
        }
        if token_len < BG_SESSION_TOKEN_BUF_LEN {
            return refuse(
                Error::BufferTooSmall,
                "token_len is smaller than BG_SESSION_TOKEN_BUF_LEN (44)",
            );
        }
        let ip = match unsafe { bytes(ip, MAX_IP, "ip") } {
            Ok(b) => b,
            Err(st) => return st,
        };
        // One byte past the longest typed recovery code is enough to tell it is too long.
        let code = match unsafe { cstr::read(code, MAX_TYPED_CODE + 1) } {
            CInput::Null => None,
            CInput::Text(b) | CInput::TooLong(b) => Some(b),
        };
        match login::complete(Some(ip), code) {
            Ok(token) => {
                let t = token.as_bytes();
                // SAFETY: token_out holds token_len >= t.len() + 1 bytes (checked above).
                unsafe {
                    std::ptr::copy_nonoverlapping(t.as_ptr(), token_out.cast::<u8>(), t.len());
                    *token_out.add(t.len()) = 0;
                }
                bg_status::BG_OK
            }
            Err(crate::Error::Null) => {
                refuse(Error::Null, "code is NULL (nothing was checked or counted)")
            }
            Err(e) => map_error(&e),
        }
    })
}

/// `BG_OK` while `token` is the active session's token and the session is younger than
/// `session_ttl_seconds`; `BG_NO_SESSION` otherwise, with the reason in `bg_last_error`:
/// ended (`bg_session_end`), expired, replaced by a newer login, or unknown. Compared in
/// constant time. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `token` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_session_check(token: *const c_char) -> bg_status {
    guard(|| match unsafe { bytes(token, 256, "token") } {
        Ok(t) => status_of(login::session_check(t)),
        Err(st) => st,
    })
}

/// Ends the session whose token is `token`: `BG_OK`, or `BG_NO_SESSION` when it is not the
/// active session. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `token` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_session_end(token: *const c_char) -> bg_status {
    guard(|| match unsafe { bytes(token, 256, "token") } {
        Ok(t) => status_of(login::session_end(t)),
        Err(st) => st,
    })
}

/// Writes to `*out` how many failures `ip` may still make before it is locked out (0 while it,
/// or every login, is locked out). `BG_ERR_ARGUMENT` when `ip` is not an address. For
/// operators; the allow-list is not applied. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `ip` is NULL or a NUL-terminated string; `out` is NULL or points to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn bg_attempts_left(ip: *const c_char, out: *mut u32) -> bg_status {
    guard(|| {
        if out.is_null() {
            return refuse(Error::Null, "out is NULL");
        }
        let ip = match unsafe { bytes(ip, MAX_IP, "ip") } {
            Ok(b) => b,
            Err(st) => return st,
        };
        match login::attempts_left(ip) {
            Ok(n) => {
                // SAFETY: `out` is non-NULL and, by contract, writable.
                unsafe { out.write(n) };
                bg_status::BG_OK
            }
            Err(e) => map_error(&e),
        }
    })
}

/// Forgets `ip`'s failures and ends its lockout (IPv6: its /64). Logged at warn level. Does
/// not lift a lockout of every login. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `ip` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_reset_attempts(ip: *const c_char) -> bg_status {
    guard(|| match unsafe { bytes(ip, MAX_IP, "ip") } {
        Ok(b) => status_of(login::reset_attempts(b)),
        Err(st) => st,
    })
}

/// Size of a buffer that holds a password hash from `bg_hash_password` and its NUL: pass at
/// least this. (The PHC string is about 100 bytes; the rest is room for the parameters.)
pub const BG_PASSWORD_HASH_BUF_LEN: usize = 128;

/// Hashes `password` for `password_hash`: writes a new argon2id PHC string (m=19456 t=2 p=1, a
/// random salt from the OS; what `breakglass hash-password` prints) and its NUL to `out`.
/// For tools and setup scripts: a login never needs it.
///
/// `out` is caller-owned and must hold `BG_PASSWORD_HASH_BUF_LEN` (128) bytes; a shorter one is
/// `BG_ERR_BUFFER_TOO_SMALL` before anything is hashed. `BG_ERR_NULL` for a NULL argument,
/// `BG_ERR_ARGUMENT` for an empty password or one over 4096 bytes. The password is never
/// logged or kept (its copy is wiped); it takes tens of milliseconds and 19 MiB. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `password` is NULL or a NUL-terminated string; `out` is NULL or points to at least
/// `out_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn bg_hash_password(
    password: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> bg_status {
    guard(|| {
        if out.is_null() {
            return refuse(Error::Null, "out is NULL");
        }
        if out_len < BG_PASSWORD_HASH_BUF_LEN {
            return refuse(
                Error::BufferTooSmall,
                "out_len is smaller than BG_PASSWORD_HASH_BUF_LEN (128)",
            );
        }
        let password = match unsafe { bytes(password, MAX_PASSWORD, "password") } {
            Ok([]) => return refuse_argument("password is empty"),
            Ok(b) => zeroize::Zeroizing::new(b.to_vec()),
            Err(st) => return st,
        };
        match login::hash_password(&password) {
            Ok(phc) if phc.len() < BG_PASSWORD_HASH_BUF_LEN => {
                // SAFETY: out holds out_len >= BG_PASSWORD_HASH_BUF_LEN > phc.len() bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(phc.as_ptr(), out.cast::<u8>(), phc.len());
                    *out.add(phc.len()) = 0;
                }
                bg_status::BG_OK
            }
            Ok(_) => refuse(
                Error::Internal("the hash is longer than BG_PASSWORD_HASH_BUF_LEN"),
                "",
            ),
            Err(why) => refuse(Error::Internal("hashing failed"), &why),
        }
    })
}
