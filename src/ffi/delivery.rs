//! Exports for delivery: `bg_send_otp`, `bg_alert`, `bg_flush`, `bg_get_stats`,
//! `bg_set_logger`.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use super::cstr::{self, CInput};
use super::logger::{self, bg_log_fn};
use super::panic::guard;
use super::status::{bg_status, refuse, refuse_argument, status_of};
use super::BG_OTP_BUF_LEN;
use crate::error::Error;
use crate::notify;

/// Bytes of `ip` read: one more than the alert keeps, so that the alert knows it must cut
/// (and mark the cut) without this reading further.
const IP_READ_LIMIT: usize = notify::MAX_IP_BYTES + 1;

/// Delivery counters since the library was loaded. Fields only grow.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct bg_stats {
    /// Calls accepted into the delivery queue: one per `bg_send_otp` or `bg_alert` call of which
    /// at least one part (the code email; an alert's emails, its webhook) was queued.
    pub queued: u64,
    /// Email messages accepted by the server or written to the outbox (one per recipient).
    pub emails_sent: u64,
    /// Email messages that finally failed, after retries.
    pub emails_failed: u64,
    /// Webhook POSTs answered with 2xx.
    pub webhooks_sent: u64,
    /// Webhook POSTs that finally failed, after retries.
    pub webhooks_failed: u64,
    /// Parts dropped because their lane of the delivery queue was full: a code email, an
    /// alert's emails (all recipients together) or an alert's webhook each count one.
    pub dropped: u64,
}

/// Queues the email that carries `code` (six ASCII digits, such as the one `bg_generate`
/// wrote) from `from_email` to `otp_email`, and returns at once; delivery happens on a
/// background thread.
///
/// Returns `BG_OK` once queued, `BG_ERR_NULL` for NULL, `BG_ERR_ARGUMENT` when `code` is not
/// six ASCII digits, `BG_ERR_NOT_CONFIGURED` when `mailer`, `from_email` or `otp_email` is unset,
/// and `BG_ERR_QUEUE_FULL` when the code-email lane (256 waiting emails) is full: code emails
/// have a lane of their own, so they can never take the room kept for alerts. With
/// `dev_otp_log` on, the code is also logged at warn level (even when not configured);
/// otherwise it never reaches a log.
/// A delivery failure is logged at error level and counted in `emails_failed`. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `code` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_send_otp(code: *const c_char) -> bg_status {
    guard(|| match unsafe { cstr::read(code, BG_OTP_BUF_LEN) } {
        CInput::Null => refuse(Error::Null, "code is NULL"),
        CInput::TooLong(_) => refuse_argument("the code must be six ASCII digits"),
        CInput::Text(bytes) => status_of(notify::send_otp(bytes)),
    })
}

/// Raises the break-glass alarm after a successful break-glass login: queues one alert email
/// per `alert_emails` recipient and one POST per webhook receiver (`alert_webhook_url` and
/// each of `alert_webhooks`, each in its format), and returns at once.
///
/// `ip` is the client's address as text; it is untrusted: control characters are escaped in
/// emails and the JSON is escaped properly. NULL is reported as "unknown", bad UTF-8 lossily;
/// text over 1024 bytes or 256 characters is cut and then ends in "...(truncated)". Each alert
/// has an event id (32 hex digits, 128 bits from the OS random source), the same in every
/// email (`X-Breakglass-Event-Id` header and body), the webhook JSON (`"id"`), every retry of
/// them and the log records. The emails and each receiver's POST are queued independently: a
/// full lane drops only its own part. Always returns `BG_OK`: an alert is never lost to its argument,
/// and what cannot be delivered (or queued) is logged at error level and counted.
/// Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `ip` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_alert(ip: *const c_char) -> bg_status {
    guard(|| {
        let ip = match unsafe { cstr::read(ip, IP_READ_LIMIT) } {
            CInput::Null => None,
            CInput::Text(b) | CInput::TooLong(b) => Some(b),
        };
        notify::alert(ip);
        bg_status::BG_OK
    })
}

/// Waits until every email and webhook call queued before this call has been delivered or has
/// finally failed. First writes the audit records still pending (a burst of configuration
/// changes, refusal counts not yet written).
///
/// Returns `BG_OK`, or `BG_ERR_TIMEOUT` when `timeout_ms` milliseconds pass first. Daemons
/// should call it before exiting, with a timeout of a few times `delivery_timeout_ms`, so an
/// alert raised just before exit is not lost. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
#[no_mangle]
pub extern "C" fn bg_flush(timeout_ms: u32) -> bg_status {
    guard(|| {
        crate::audit::flush(&crate::config::current());
        status_of(notify::flush(Duration::from_millis(timeout_ms.into())))
    })
}

/// Copies the delivery counters into `*out` (caller-owned). `BG_ERR_NULL` for NULL.
/// Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `out` is NULL or points to a writable `bg_stats`.
#[no_mangle]
pub unsafe extern "C" fn bg_get_stats(out: *mut bg_stats) -> bg_status {
    guard(|| {
        if out.is_null() {
            return refuse(Error::Null, "out is NULL");
        }
        let s = notify::stats();
        let stats = bg_stats {
            queued: s.queued,
            emails_sent: s.emails_sent,
            emails_failed: s.emails_failed,
            webhooks_sent: s.webhooks_sent,
            webhooks_failed: s.webhooks_failed,
            dropped: s.dropped,
        };
        // SAFETY: `out` is non-NULL and, by contract, points to a writable bg_stats.
        unsafe { out.write(stats) };
        bg_status::BG_OK
    })
}

/// Sends the library's log records to `callback` (NULL: the default, which writes to stderr) for
/// records at `max_level` or more severe: 0 off, 1 error, 2 warn (the default), 3 info,
/// 4 debug, 5 trace.
///
/// `callback` is called with `user_data` from the calling thread and from the library's delivery
/// threads, possibly concurrently; the message is valid only during the call. It must not
/// call `bg_set_logger`. When this returns, the previous callback is not running and will not
/// be called again, so its `user_data` may be freed. A `fork()` does not wait for callbacks in
/// progress; the child keeps the callback, with a fresh lock. Records never contain a code
/// (unless `dev_otp_log` is on) or a password. Returns `BG_ERR_ARGUMENT` for a `max_level`
/// outside 0–5 or a call from inside the callback.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
#[no_mangle]
pub extern "C" fn bg_set_logger(
    callback: bg_log_fn,
    user_data: *mut c_void,
    max_level: i32,
) -> bg_status {
    guard(|| status_of(logger::set(callback, user_data, max_level)))
}
