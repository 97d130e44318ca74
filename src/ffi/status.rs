//! `bg_status`: the numbers C callers see, and the one mapping from [`Error`] to them.
//!
//! Numbers are forever: a retired one stays here as a comment and is never reused. Statuses
//! that come back in from C are taken as plain integers and never turned into this enum, so an
//! out-of-range value cannot be undefined behaviour.

use std::ffi::CStr;

use crate::error::Error;

/// Status returned by every `bg_*` function that can fail. In C it is an `int32_t`; the
/// `BG_*` names are its values.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum bg_status {
    /// Success. From `bg_verify`: the code matched and was within its TTL; grant access.
    BG_OK = 0,
    /// `bg_verify`: the code does not match, or is not exactly six ASCII digits. Deny.
    BG_INVALID = 1,
    /// `bg_verify`: the pending code was older than its TTL (even if it matched). Deny.
    BG_EXPIRED = 2,
    /// `bg_verify`: no code was pending (never issued, already used, or cleared). Deny.
    BG_NO_PENDING_OTP = 3,
    /// A required pointer was NULL.
    BG_ERR_NULL = 4,
    /// The output buffer is smaller than `BG_OTP_BUF_LEN`.
    BG_ERR_BUFFER_TOO_SMALL = 5,
    /// Bad UTF-8, an over-long string, an unknown configuration key or a bad value.
    BG_ERR_ARGUMENT = 6,
    /// A delivery was asked for that the configuration does not allow.
    BG_ERR_NOT_CONFIGURED = 7,
    /// `bg_flush` ran out of time.
    BG_ERR_TIMEOUT = 8,
    /// A panic was caught at the boundary; the library stays usable. From `bg_verify`: deny.
    BG_ERR_INTERNAL = 9,
    /// The shared slot (Redis/Valkey) could not be reached, timed out, refused the command or
    /// held a malformed record. From `bg_verify` this is a denial: never grant access on it.
    BG_ERR_BACKEND = 10,
    /// `bg_send_otp`: the code-email lane of the delivery queue was full; the email was dropped
    /// and counted.
    BG_ERR_QUEUE_FULL = 11,
    /// Login: the client's address is malformed or not in `allowed_ips`. Deny.
    BG_IP_NOT_ALLOWED = 12,
    /// Login: this address, or every login, is locked out after too many failures (or too
    /// many password checks are running at once). Deny.
    BG_LOCKED_OUT = 13,
    /// `bg_login_begin`: the password does not match `password_hash`. Deny.
    BG_WRONG_PASSWORD = 14,
    /// `bg_session_check` / `bg_session_end`: not the active session, or it has expired. Deny.
    BG_NO_SESSION = 15,
    /// `bg_login_complete`: the code was right, but the success could not be written to
    /// `audit_log` while `audit_required` is on (the default). No session was started: deny.
    /// The code is used up and the alarm still goes out; `bg_last_error` says why.
    BG_ERR_AUDIT = 16,
    /// `bg_drill`: at least one channel was refused, timed out or failed.
    BG_DRILL_FAILED = 17,
}

/// Records `e`'s text as the thread's last error and returns its status.
pub fn map_error(e: &Error) -> bg_status {
    super::last_error::record(&e.to_string());
    status_for(e)
}

/// Records `e`'s text and `detail` (which argument, what was wrong with it) as the thread's
/// last error and returns `e`'s status: for the refusals an export decides itself.
pub fn refuse(e: Error, detail: &str) -> bg_status {
    super::last_error::record(&format!("{e}: {detail}"));
    status_for(&e)
}

/// Records "invalid argument: `detail`" as the thread's last error and returns its status.
pub fn refuse_argument(detail: &str) -> bg_status {
    map_error(&Error::Argument(detail.to_owned()))
}

/// The one mapping from an error's kind to the status C callers see. Every non-OK status an
/// export returns comes from here.
pub fn status_for(e: &Error) -> bg_status {
    use bg_status::*;
    match e {
        Error::Invalid => BG_INVALID,
        Error::Expired => BG_EXPIRED,
        Error::NoPendingOtp => BG_NO_PENDING_OTP,
        Error::Null => BG_ERR_NULL,
        Error::BufferTooSmall => BG_ERR_BUFFER_TOO_SMALL,
        Error::Argument(_) => BG_ERR_ARGUMENT,
        Error::NotConfigured(_) => BG_ERR_NOT_CONFIGURED,
        Error::Timeout => BG_ERR_TIMEOUT,
        Error::Internal(_) => BG_ERR_INTERNAL,
        Error::Backend(_) => BG_ERR_BACKEND,
        Error::QueueFull => BG_ERR_QUEUE_FULL,
        Error::IpNotAllowed(_) => BG_IP_NOT_ALLOWED,
        Error::LockedOut(_) => BG_LOCKED_OUT,
        Error::WrongPassword => BG_WRONG_PASSWORD,
        Error::NoSession(_) => BG_NO_SESSION,
        Error::Audit(_) => BG_ERR_AUDIT,
        Error::DrillFailed { .. } => BG_DRILL_FAILED,
    }
}

/// `Ok` to `BG_OK`, an error through [`map_error`].
pub fn status_of(result: crate::error::Result<()>) -> bg_status {
    match result {
        Ok(()) => bg_status::BG_OK,
        Err(e) => map_error(&e),
    }
}

/// A fixed name for any integer; unknown values get "unknown status".
pub fn status_name(status: i32) -> &'static CStr {
    match status {
        0 => c"ok",
        1 => c"invalid",
        2 => c"expired",
        3 => c"no pending otp",
        4 => c"null pointer",
        5 => c"buffer too small",
        6 => c"invalid argument",
        7 => c"not configured",
        8 => c"timeout",
        9 => c"internal error",
        10 => c"backend error",
        11 => c"queue full",
        12 => c"ip not allowed",
        13 => c"locked out",
        14 => c"wrong password",
        15 => c"no session",
        16 => c"audit failure",
        17 => c"drill failed",
        _ => c"unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_name_and_unknown_values_are_tolerated() {
        let names: Vec<_> = (0..=17).map(status_name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(!names.contains(&c"unknown status"));
        for n in [-1, 18, i32::MIN, i32::MAX] {
            assert_eq!(status_name(n), c"unknown status");
        }
    }
}
