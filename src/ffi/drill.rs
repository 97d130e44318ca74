//! `bg_drill`: the fire drill of the alarm, with its per-channel report.
//!
//! The report reaches C through a callback on the calling thread, with strings that live
//! during the call only: a C, ctypes or cgo caller has nothing to free.

use std::ffi::{c_char, c_void, CString};
use std::time::Duration;

use super::panic::guard;
use super::status::{bg_status, map_error};
use crate::notify::{self, DrillOutcome};

/// A drill channel's outcome: the peer took the test alert.
pub const BG_DRILL_DELIVERED: i32 = 0;
/// A drill channel's outcome: the peer answered and refused (the detail holds its answer).
pub const BG_DRILL_REFUSED: i32 = 1;
/// A drill channel's outcome: no answer in time.
pub const BG_DRILL_TIMED_OUT: i32 = 2;
/// A drill channel's outcome: no peer answered (connection refused, no such host, TLS, a
/// missing setting).
pub const BG_DRILL_UNREACHABLE: i32 = 3;

/// Receives one line of the drill report: `channel` (such as "email ops@example.com" or
/// `webhook slack https://hooks.slack.com:443`; never a URL's path or a key), `outcome` (one of
/// `BG_DRILL_DELIVERED`, `BG_DRILL_REFUSED`, `BG_DRILL_TIMED_OUT`, `BG_DRILL_UNREACHABLE`), `detail`
/// (the peer's answer or the reason, "" when delivered) and the `user_data` given to
/// `bg_drill`. The strings are NUL-terminated UTF-8, valid only during the call.
#[allow(non_camel_case_types)]
pub type bg_drill_report_fn = Option<
    unsafe extern "C" fn(
        channel: *const c_char,
        outcome: i32,
        detail: *const c_char,
        user_data: *mut c_void,
    ),
>;

fn outcome_code(o: DrillOutcome) -> i32 {
    match o {
        DrillOutcome::Delivered => BG_DRILL_DELIVERED,
        DrillOutcome::Refused => BG_DRILL_REFUSED,
        DrillOutcome::TimedOut => BG_DRILL_TIMED_OUT,
        DrillOutcome::Unreachable => BG_DRILL_UNREACHABLE,
    }
}

fn c_text(text: &str) -> CString {
    // The library's texts hold no NUL; a peer's answer could, and is cut there.
    let end = text.find('\0').unwrap_or(text.len());
    CString::new(&text[..end]).unwrap_or_default()
}

/// Fire drill: sends a clearly marked test alert (`"event": "break_glass_drill"`, email
/// subjects starting with `[DRILL]`, PagerDuty summary `[DRILL] …`, severity `info` for
/// PagerDuty, Alertmanager and the JSON) through every configured alert channel, one channel
/// per `alert_emails` recipient and per webhook receiver, through the same senders as a real
/// alert (with their retries), and waits for each outcome. With `otp_email` set it also sends
/// a `[DRILL]` code email (carrying no code) to `otp_email` through the code email's path,
/// reported as its own channel "code email <otp_email>": the path an emergency needs first.
///
/// `timeout_ms` bounds the wait (0: the library's own bound, 3 × `delivery_timeout_ms` plus
/// the pauses between retries plus 1 s); a channel with no outcome by then is reported as
/// timed out (its sender finishes in the background, within its own bound). Then, on the
/// calling thread, `callback` (may be NULL) is called once per channel, in order, with
/// `user_data`. The drill is not counted in `bg_get_stats` and
/// does not use the delivery queue: it neither waits behind real alerts nor delays them.
///
/// Returns `BG_OK` when every channel delivered, `BG_DRILL_FAILED` when any did not
/// (`bg_last_error` says how many and names them), `BG_ERR_NOT_CONFIGURED` when no channel is
/// configured (the callback is not called). Outcomes also update `bg_delivery_health`. Blocks for up to the wait; thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `callback` is NULL or a function that may be called as documented.
#[no_mangle]
pub unsafe extern "C" fn bg_drill(
    timeout_ms: u32,
    callback: bg_drill_report_fn,
    user_data: *mut c_void,
) -> bg_status {
    guard(|| {
        let wait = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms.into()));
        let reports = match notify::drill(wait) {
            Ok(r) => r,
            Err(e) => return map_error(&e),
        };
        if let Some(cb) = callback {
            for r in &reports {
                let (channel, detail) = (c_text(&r.channel), c_text(&r.detail));
                // SAFETY: the caller's function, called as its contract says; the strings
                // live until after it returns.
                unsafe {
                    cb(
                        channel.as_ptr(),
                        outcome_code(r.outcome),
                        detail.as_ptr(),
                        user_data,
                    )
                };
            }
        }
        let failed: Vec<&str> = reports
            .iter()
            .filter(|r| r.outcome != DrillOutcome::Delivered)
            .map(|r| r.channel.as_str())
            .collect();
        if failed.is_empty() {
            bg_status::BG_OK
        } else {
            map_error(&crate::Error::DrillFailed {
                failed: failed.len(),
                channels: reports.len(),
                names: failed.join(", "),
            })
        }
    })
}
