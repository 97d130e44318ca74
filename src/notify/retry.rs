//! The retry policy shared by email and webhook delivery.
//!
//! Owns how many attempts a transient failure gets and how long to wait between them. It must
//! never retry a permanent failure: an SMTP 5xx, or an HTTP 3xx or 4xx other than 429, is
//! final; an SMTP 4xx, an HTTP 429 or 5xx, a refused connection or a timeout is retried.

use std::time::Duration;

/// Attempts per delivery, the first included.
pub const ATTEMPTS: u32 = 3;

/// Who ended a failed attempt, decided where the failure is made (the drill reports it; no
/// one reads it back out of the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The peer answered and said no (an HTTP or SMTP refusal, or an answer out of protocol).
    Refused,
    /// No answer in time.
    TimedOut,
    /// It never reached a peer that answered: connection refused, name not found, TLS, a
    /// missing capability or setting, a message that could not be built or written.
    Unreachable,
}

/// How a failed attempt is classed, why, and who ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another attempt: refused connection, timeout, SMTP 4xx, HTTP 429 and 5xx.
    Transient(Cause, String),
    /// Final: SMTP 5xx, HTTP 3xx and 4xx (but 429), a malformed message.
    Permanent(Cause, String),
}

impl Failure {
    /// The reason, for the log line.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Transient(_, r) | Failure::Permanent(_, r) => r,
        }
    }

    /// Who ended the attempt.
    pub fn cause(&self) -> Cause {
        match self {
            Failure::Transient(c, _) | Failure::Permanent(c, _) => *c,
        }
    }
}

/// The pause before attempt `attempt` (1-based retries): 250 ms, then 1 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 4u64.pow(attempt.saturating_sub(1)))
}

/// The one retry loop of email and webhook delivery: runs `attempt` on the items (indexes
/// `0..count`) still undelivered, up to [`ATTEMPTS`] times with [`backoff`] between rounds, as
/// long as each failure is transient. `attempt` returns one result per index it was given;
/// `retrying(index, attempt, failure)` hears of each failure that will be tried again (attempt
/// is 1-based). Returns one final result per item.
pub fn with_retries(
    count: usize,
    mut attempt: impl FnMut(&[usize]) -> Vec<Result<(), Failure>>,
    mut retrying: impl FnMut(usize, u32, &Failure),
) -> Vec<Result<(), Failure>> {
    let mut results: Vec<Option<Result<(), Failure>>> = (0..count).map(|_| None).collect();
    for n in 0..ATTEMPTS {
        let todo: Vec<usize> = (0..count).filter(|&i| results[i].is_none()).collect();
        if todo.is_empty() {
            break;
        }
        if n > 0 {
            std::thread::sleep(backoff(n));
        }
        let last_attempt = n + 1 == ATTEMPTS;
        let outcome = attempt(&todo);
        for (i, r) in todo.into_iter().zip(outcome) {
            match r {
                Ok(()) => results[i] = Some(Ok(())),
                Err(f @ Failure::Permanent(..)) => results[i] = Some(Err(f)),
                Err(f) if last_attempt => results[i] = Some(Err(f)),
                Err(f) => retrying(i, n + 1, &f),
            }
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Failure::Transient(
                    Cause::Unreachable,
                    "not attempted".into(),
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried_and_only_undelivered_items() {
        let mut rounds: Vec<Vec<usize>> = Vec::new();
        let mut heard = Vec::new();
        let results = with_retries(
            3,
            |todo| {
                rounds.push(todo.to_vec());
                todo.iter()
                    .map(|&i| match i {
                        0 => Ok(()),
                        1 => Err(Failure::Permanent(Cause::Refused, "550".into())),
                        _ => Err(Failure::Transient(Cause::Refused, "451".into())),
                    })
                    .collect()
            },
            |i, n, _| heard.push((i, n)),
        );
        assert_eq!(rounds, [vec![0, 1, 2], vec![2], vec![2]]);
        assert_eq!(heard, [(2, 1), (2, 2)]);
        assert_eq!(results[0], Ok(()));
        assert_eq!(
            results[1],
            Err(Failure::Permanent(Cause::Refused, "550".into()))
        );
        assert_eq!(
            results[2],
            Err(Failure::Transient(Cause::Refused, "451".into()))
        );
    }

    #[test]
    fn backoff_grows() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(1000));
    }
}
