//! A failure counter whose error line is logged at most once a second: a full disk or a dead
//! syslog must not turn a flood of attempts into a flood of log lines, and the count still
//! says how many were lost.
//!
//! Owns only two atomics per counter; it must never block or allocate.

use std::sync::atomic::{AtomicU64, Ordering};

/// Failures of one kind since the library was loaded, and when one was last logged.
pub(crate) struct Failures {
    count: AtomicU64,
    last_log_ms: AtomicU64,
}

impl Failures {
    /// A counter at zero.
    pub(crate) const fn new() -> Self {
        Failures {
            count: AtomicU64::new(0),
            last_log_ms: AtomicU64::new(0),
        }
    }

    /// Counts one failure; `Some(total)` when its log line is due (the first, then at most one
    /// a second).
    pub(crate) fn note(&self) -> Option<u64> {
        let total = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = crate::sys::boottime().as_millis() as u64;
        let last = self.last_log_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= 1000;
        (due && self
            .last_log_ms
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok())
        .then_some(total)
    }

    /// Failures counted so far.
    pub(crate) fn total(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_logged_and_the_next_ones_of_the_second_are_counted() {
        let f = Failures::new();
        assert_eq!(f.note(), Some(1));
        assert_eq!(f.note(), None);
        assert_eq!(f.note(), None);
        assert_eq!(f.total(), 3);
    }
}
