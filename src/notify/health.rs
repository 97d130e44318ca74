//! The last outcome of each delivery path: the code email, the alert email, each webhook
//! receiver, so that a caller can tell "mail is failing" from "a code is on its way".
//!
//! Owns one small table, updated by the delivery workers and the drill after each final
//! outcome (success, or failure after retries) and read by `bg_delivery_health`. The lock is
//! held only to copy or update a row, never across a delivery or a log line. Rows name a path
//! as the logs do (a receiver by its redacted `scheme://host:port`), never a secret; a reason
//! is the transport's, which never carries a code or a password.

use std::time::SystemTime;

use crate::fork::ForkSafe;

/// The path of the one-time code email.
pub const CODE_EMAIL: &str = "code email";
/// The path of the alert emails (every recipient together).
pub const ALERT_EMAIL: &str = "alert email";
/// The longest reason kept, in bytes (cut on a character boundary).
pub(crate) const MAX_REASON: usize = 200;

/// What is known about one delivery path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathHealth {
    /// "code email", "alert email" or a receiver's name (`webhook json https://host:443`).
    pub path: String,
    /// When it last delivered (`None`: not since the library was loaded).
    pub last_success: Option<SystemTime>,
    /// When it last finally failed (`None`: not since the library was loaded).
    pub last_failure: Option<SystemTime>,
    /// Why it last failed ("" when it never did).
    pub last_failure_reason: String,
}

impl PathHealth {
    fn new(path: &str) -> PathHealth {
        PathHealth {
            path: path.to_owned(),
            last_success: None,
            last_failure: None,
            last_failure_reason: String::new(),
        }
    }

    /// Whether its last outcome was a failure.
    pub fn failing(&self) -> bool {
        match (self.last_failure, self.last_success) {
            (Some(f), Some(s)) => f >= s,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// Held across `fork()` by the fork handlers like every library lock: a child forked while a
/// delivery worker updated a row must not find it held for ever. A child keeps the rows.
pub(crate) static TABLE: ForkSafe<Vec<PathHealth>> = ForkSafe::new(Vec::new());

/// Records the final outcome of one delivery on `path`.
pub(crate) fn note(path: &str, failure: Option<&str>) {
    let now = SystemTime::now();
    let mut t = TABLE.lock();
    let i = match t.iter().position(|p| p.path == path) {
        Some(i) => i,
        None => {
            t.push(PathHealth::new(path));
            t.len() - 1
        }
    };
    let row = &mut t[i];
    match failure {
        None => row.last_success = Some(now),
        Some(why) => {
            row.last_failure = Some(now);
            let mut end = why.len().min(MAX_REASON);
            while !why.is_char_boundary(end) {
                end -= 1;
            }
            row.last_failure_reason = why[..end].to_owned();
        }
    }
}

/// Every path's row: the code email and the alert email first (always present), then each
/// receiver that has had an outcome, in the order they first had one.
pub fn snapshot() -> Vec<PathHealth> {
    let t = TABLE.lock();
    let mut out = vec![PathHealth::new(CODE_EMAIL), PathHealth::new(ALERT_EMAIL)];
    for row in t.iter() {
        match out.iter_mut().find(|p| p.path == row.path) {
            Some(p) => *p = row.clone(),
            None => out.push(row.clone()),
        }
    }
    out
}

/// The code email's row.
pub fn code_email() -> PathHealth {
    snapshot().swap_remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_outcome_wins_and_reasons_are_bounded() {
        let path = "webhook json http://127.0.0.1:1 (unit)";
        note(path, Some(&"é".repeat(300)));
        let row = snapshot().into_iter().find(|p| p.path == path).unwrap();
        assert!(row.failing());
        assert!(row.last_failure_reason.len() <= MAX_REASON);
        note(path, None);
        let row = snapshot().into_iter().find(|p| p.path == path).unwrap();
        assert!(!row.failing());
        assert!(row.last_success.is_some() && row.last_failure.is_some());
        let all = snapshot();
        assert_eq!(all[0].path, CODE_EMAIL);
        assert_eq!(all[1].path, ALERT_EMAIL);
    }
}
