//! `bg_last_error`: why the latest call on this thread failed, in words.
//!
//! Owns the thread-local text. Every status other than `BG_OK` that an export returns records
//! its reason here (through `status::map_error` or `status::refuse`); every guarded export clears it
//! on entry, so the text always belongs to the latest call. It must never hold a secret: the
//! texts are the library's own error messages, which never carry a value that was set, a code,
//! a password or a URL's credentials.

use std::cell::RefCell;
use std::ffi::c_char;

use super::panic::run;
use super::status::{bg_status, status_for};
use super::BG_LAST_ERROR_BUF_LEN;
use crate::error::Error;

/// Longest text kept, in bytes (cut at a character boundary).
const MAX_TEXT: usize = BG_LAST_ERROR_BUF_LEN - 1;

thread_local! {
    static LAST: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `text` as the reason of the current call's failure.
pub fn record(text: &str) {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let _ = LAST.try_with(|l| {
        let mut l = l.borrow_mut();
        l.clear();
        l.push_str(&text[..end]);
    });
}

/// Forgets the previous call's reason.
pub fn clear() {
    let _ = LAST.try_with(|l| l.borrow_mut().clear());
}

/// Copies into `buf` why the latest call on this thread returned a status other than `BG_OK`
/// ("" when it succeeded, or when no call was made yet), as NUL-terminated UTF-8, such as
/// "invalid argument: otp_ttl_seconds: must be from 1 to 86400" or "locked out: this address
/// is locked out" (the status's meaning, then the detail).
///
/// Returns `BG_OK` when the whole text fit; `BG_ERR_BUFFER_TOO_SMALL` when `len` is too small
/// (with `len >= 1` the buffer then holds as much as fits, cut at a character boundary, and a
/// NUL; with `len == 0` nothing is written); `BG_ERR_NULL` when `buf` is NULL. The text never
/// contains a configured value, a code or a password. `buf` is caller-owned; a buffer of
/// `BG_LAST_ERROR_BUF_LEN` (1025) bytes always holds the whole text: at most 1024
/// bytes plus the NUL are ever needed.
///
/// Thread-local: call it on the thread that made the failing call, before that thread makes
/// another call into the library (Go callers: lock the goroutine to its thread around both).
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `buf` is NULL or points to at least `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn bg_last_error(buf: *mut c_char, len: usize) -> bg_status {
    run(|| {
        // The statuses come from the one map, but nothing is recorded: this call reports the
        // previous call's reason and must leave it in place.
        if buf.is_null() {
            return status_for(&Error::Null);
        }
        LAST.with(|l| {
            let text = l.borrow();
            let fits = text.len() < len;
            if len == 0 {
                return status_for(&Error::BufferTooSmall);
            }
            let mut n = text.len().min(len - 1);
            while !text.is_char_boundary(n) {
                n -= 1;
            }
            // SAFETY: `buf` is non-NULL and holds `len` bytes; n + 1 <= len.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
            if fits {
                bg_status::BG_OK
            } else {
                status_for(&Error::BufferTooSmall)
            }
        })
    })
}
