//! `bg_delivery_health`: the last outcome of each delivery path, for a login page that must
//! say "mail is failing: use a recovery code" instead of "a code was sent".
//!
//! Copies the safe API's rows into caller-owned fixed-size structs: nothing to free. It must
//! never write past `cap` rows, and never leave a row's strings without their NUL.

use std::ffi::c_char;
use std::time::{SystemTime, UNIX_EPOCH};

use super::panic::guard;
use super::status::bg_status;
use super::status::refuse;
use crate::error::Error;
use crate::notify::{self, PathHealth};

/// Bytes of `bg_delivery_path::path`, NUL included.
pub const BG_DELIVERY_PATH_LEN: usize = 128;
/// Bytes of `bg_delivery_path::last_failure_reason`, NUL included.
pub const BG_DELIVERY_REASON_LEN: usize = 256;

/// One delivery path's last outcomes, as `bg_delivery_health` reports them.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct bg_delivery_path {
    /// "code email" (the one-time code to `otp_email`), "alert email" (every `alert_emails`
    /// recipient), or a webhook receiver such as `"webhook json https://hooks.example.com:443"`
    /// (never a URL's path or a key). NUL-terminated UTF-8, cut to fit.
    pub path: [c_char; BG_DELIVERY_PATH_LEN],
    /// When it last delivered, in milliseconds since the Unix epoch; 0: not since the library
    /// was loaded.
    pub last_success_ms: u64,
    /// When it last finally failed (after retries), in milliseconds since the Unix epoch; 0:
    /// not since the library was loaded.
    pub last_failure_ms: u64,
    /// Why it last failed ("" when it never did). NUL-terminated UTF-8, cut to fit.
    pub last_failure_reason: [c_char; BG_DELIVERY_REASON_LEN],
    /// 1 when its last outcome was a failure (mail is failing on this path), else 0.
    pub failing: i32,
}

fn ms(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis().max(1) as u64)
}

fn fill<const N: usize>(text: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    let mut end = text.len().min(N - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    for (o, b) in out.iter_mut().zip(&text.as_bytes()[..end]) {
        *o = *b as c_char;
    }
    out
}

fn row(p: &PathHealth) -> bg_delivery_path {
    bg_delivery_path {
        path: fill(&p.path),
        last_success_ms: ms(p.last_success),
        last_failure_ms: ms(p.last_failure),
        last_failure_reason: fill(&p.last_failure_reason),
        failing: i32::from(p.failing()),
    }
}

/// Reports the last outcome of every delivery path: the code email first, the alert email
/// second, then each webhook receiver that has had an outcome. Real deliveries and drills
/// (`bg_drill`) both count; outcomes are final ones, after retries.
///
/// Writes up to `cap` rows into `out` (caller-owned; may be NULL when `cap` is 0) and the
/// number of paths into `*count` (call with `cap` 0 to size the array; at most 2 + the number
/// of receivers). A page can show "mail is failing: use a recovery code" when the code email's
/// row has `failing` set. `BG_ERR_NULL` when `count` is NULL, or `out` is NULL with `cap` above
/// 0. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `count` is NULL or points to a writable `size_t`; `out` is NULL or points to `cap`
/// writable `bg_delivery_path`.
#[no_mangle]
pub unsafe extern "C" fn bg_delivery_health(
    out: *mut bg_delivery_path,
    cap: usize,
    count: *mut usize,
) -> bg_status {
    guard(|| {
        if count.is_null() {
            return refuse(Error::Null, "bg_delivery_health: count is NULL");
        }
        if out.is_null() && cap > 0 {
            return refuse(
                Error::Null,
                "bg_delivery_health: out is NULL but cap is above 0",
            );
        }
        let rows = notify::health();
        for (i, p) in rows.iter().take(cap).enumerate() {
            // SAFETY: `out` is non-NULL here and, by contract, holds `cap` writable rows;
            // `i < cap`.
            unsafe { out.add(i).write(row(p)) };
        }
        // SAFETY: `count` is non-NULL and, by contract, writable.
        unsafe { count.write(rows.len()) };
        bg_status::BG_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_small_buffers() {
        let mut n = 0usize;
        // SAFETY: valid pointers or NULL as the contract allows.
        unsafe {
            assert_eq!(
                bg_delivery_health(std::ptr::null_mut(), 0, std::ptr::null_mut()),
                bg_status::BG_ERR_NULL
            );
            assert_eq!(
                bg_delivery_health(std::ptr::null_mut(), 1, &mut n),
                bg_status::BG_ERR_NULL
            );
            assert_eq!(
                bg_delivery_health(std::ptr::null_mut(), 0, &mut n),
                bg_status::BG_OK
            );
        }
        assert!(n >= 2);
        let mut one = [bg_delivery_path {
            path: [1; BG_DELIVERY_PATH_LEN],
            last_success_ms: 7,
            last_failure_ms: 7,
            last_failure_reason: [1; BG_DELIVERY_REASON_LEN],
            failing: 7,
        }];
        // SAFETY: one writable row.
        let st = unsafe { bg_delivery_health(one.as_mut_ptr(), 1, &mut n) };
        assert_eq!(st, bg_status::BG_OK);
        let name: Vec<u8> = one[0]
            .path
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        assert_eq!(name, b"code email");
        assert_eq!(fill::<4>("abcdef")[3], 0);
        assert_eq!(
            fill::<4>("aé")[..3],
            [b'a' as c_char, -61i8 as c_char, -87i8 as c_char]
        );
    }
}
