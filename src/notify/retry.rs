//! The retry policy shared by email and webhook delivery.
//!
//! Owns how many attempts a transient failure gets and how long to wait between them. It must
//! never retry a permanent failure: an SMTP 5xx, or an HTTP 3xx or 4xx other than 429, is
//! final; an SMTP 4xx, an HTTP 429 or 5xx, a refused connection or a timeout is retried.

use std::time::Duration;

/// Attempts per delivery, the first included.
pub const ATTEMPTS: u32 = 3;

/// How a failed attempt is classed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another attempt: refused connection, timeout, SMTP 4xx, HTTP 429 and 5xx.
    Transient(String),
    /// Final: SMTP 5xx, HTTP 3xx and 4xx (but 429), a malformed message.
    Permanent(String),
}

impl Failure {
    /// The reason, for the log line.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Transient(r) | Failure::Permanent(r) => r,
        }
    }
}

/// The pause before attempt `attempt` (1-based retries): 250 ms, then 1 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 4u64.pow(attempt.saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(1000));
    }
}
