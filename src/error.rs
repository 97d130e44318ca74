//! The library's one error type.
//!
//! Every fallible operation in the safe API returns [`Error`]; the C boundary turns it into a
//! `bg_status` in exactly one place (`ffi::status`). Messages here may reach logs, so they must
//! never carry a one-time code, a password or a URL with credentials.

/// What went wrong, or which verification outcome denied access.
///
/// The three verification outcomes are errors on purpose: `verify(..).is_ok()` is the only
/// way to read success, so a caller cannot mistake a denial for a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The submitted code does not match the pending one (or is not six ASCII digits).
    #[error("invalid code")]
    Invalid,
    /// The pending code is older than its time to live.
    #[error("code expired")]
    Expired,
    /// No code is pending.
    #[error("no pending code")]
    NoPendingOtp,
    /// A required argument was missing.
    #[error("a required argument was missing")]
    Null,
    /// The caller's output buffer cannot hold the result.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// An argument was malformed: bad UTF-8, an unknown key, a value out of range.
    #[error("invalid argument: {0}")]
    Argument(String),
    /// A delivery was requested that the configuration does not allow.
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
    /// A wait ran out of time.
    #[error("timed out")]
    Timeout,
    /// Something that should not happen did (a caught panic, a failing OS random source).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The delivery queue was full; the job was dropped and counted.
    #[error("the delivery queue is full")]
    QueueFull,
    /// The shared slot could not be reached, timed out, refused a command or held a bad record.
    /// For `verify` this is a denial.
    #[error("slot backend: {0}")]
    Backend(String),
    /// Login: the client's address is malformed or not in `allowed_ips`.
    #[error("not allowed: {0}")]
    IpNotAllowed(&'static str),
    /// Login: the address, or every login, is locked out after too many failures (or too many
    /// password checks are running at once).
    #[error("locked out: {0}")]
    LockedOut(&'static str),
    /// Login: the password does not match `password_hash`.
    #[error("wrong password")]
    WrongPassword,
    /// Login: the token is not the active session's; says why (ended, expired, replaced by a
    /// newer login, unknown).
    #[error("{0}")]
    NoSession(&'static str),
    /// Login: the code was right, but the success could not be written to `audit_log` and
    /// `audit_required` is on: no session was started (the code is used up; the alarm went
    /// out).
    #[error("audit: {0}")]
    Audit(&'static str),
    /// The fire drill: some channels did not deliver.
    #[error("drill: {failed} of {channels} channel(s) did not deliver: {names}")]
    DrillFailed {
        /// Channels that were refused, timed out or failed.
        failed: usize,
        /// Channels tried.
        channels: usize,
        /// The channels that did not deliver, comma-separated (such as "code email a@b").
        names: String,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;
