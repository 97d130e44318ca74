//! Exports for the one-time-code slot: `bg_generate`, `bg_verify`, `bg_clear`.

use std::ffi::c_char;

use super::cstr::{self, CInput};
use super::panic::guard;
use super::status::{bg_status, map_error, refuse, status_of};
use super::BG_OTP_BUF_LEN;
use crate::error::Error;
use crate::otp;

/// Issues a new one-time code and writes it to `out` as six ASCII digits and a NUL.
///
/// The code is drawn from the operating system's CSPRNG, uniform over 000000–999999. It
/// replaces any pending code at once (the old one can never verify afterwards) and expires
/// `otp_ttl_seconds` after this call, measured on a monotonic clock.
///
/// `out` is caller-owned and must hold at least `BG_OTP_BUF_LEN` (7) bytes.
/// Returns `BG_ERR_NULL` when `out` is NULL and `BG_ERR_BUFFER_TOO_SMALL` when
/// `out_len < BG_OTP_BUF_LEN`; in both cases nothing is generated and a pending code is left
/// untouched. With a shared slot, `BG_ERR_BACKEND` when it cannot be reached (`out` is then
/// not written). Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `out` is NULL or points to at least `out_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn bg_generate(out: *mut c_char, out_len: usize) -> bg_status {
    guard(|| {
        if out.is_null() {
            return refuse(Error::Null, "bg_generate: out is NULL");
        }
        if out_len < BG_OTP_BUF_LEN {
            return refuse(
                Error::BufferTooSmall,
                "bg_generate: out_len is smaller than BG_OTP_BUF_LEN (7)",
            );
        }
        match otp::generate() {
            Ok(code) => {
                let digits = code.as_bytes();
                // SAFETY: `out` is non-NULL and holds at least BG_OTP_BUF_LEN bytes (checked).
                unsafe {
                    std::ptr::copy_nonoverlapping(digits.as_ptr(), out.cast::<u8>(), digits.len());
                    *out.add(digits.len()) = 0;
                }
                bg_status::BG_OK
            }
            Err(e) => map_error(&e),
        }
    })
}

/// Checks `code` against the pending code and consumes the pending code, whatever the result:
/// after any call, nothing is pending.
///
/// In order: `BG_NO_PENDING_OTP` when nothing is pending; `BG_EXPIRED` when the pending code is
/// older than its TTL (even if `code` matches); otherwise `BG_OK` for a match (compared in
/// constant time) and `BG_INVALID` for anything else. Input that is not exactly six ASCII
/// digits ("", "12345", "1234567", " 123456", "12345\n", bad UTF-8) is `BG_INVALID`.
/// `code == NULL` gives `BG_ERR_NULL` and also consumes the pending code.
///
/// Grant access on `BG_OK` only: every other value, `BG_ERR_BACKEND` and `BG_ERR_INTERNAL`
/// included, is a denial. Of any number of concurrent calls with the right code, exactly one
/// gets `BG_OK`. `code` is only read during the call. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `code` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_verify(code: *const c_char) -> bg_status {
    guard(|| {
        // One byte past a valid code is enough to tell it is too long.
        match unsafe { cstr::read(code, BG_OTP_BUF_LEN) } {
            CInput::Null => {
                otp::consume();
                refuse(
                    Error::Null,
                    "bg_verify: code is NULL (the pending code was consumed)",
                )
            }
            CInput::Text(bytes) | CInput::TooLong(bytes) => status_of(otp::verify(bytes)),
        }
    })
}

/// Empties the slot: a pending code can no longer verify. Returns `BG_OK` (with a shared
/// slot, `BG_ERR_BACKEND` when it cannot be reached). Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
#[no_mangle]
pub extern "C" fn bg_clear() -> bg_status {
    guard(|| status_of(otp::clear()))
}
