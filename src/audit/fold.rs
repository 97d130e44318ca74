//! Folding what outsiders can trigger at will into a bounded number of records.
//!
//! Refusals before the password is checked (not allowed, malformed address, locked out, busy)
//! cost an attacker nothing, so they are counted, not written one by one: at most one
//! `login_refused` record per reason per [`REFUSAL_WINDOW`], carrying how many were refused
//! and from how many distinct addresses since the previous record of that reason. Reasons are
//! the library's fixed texts, at most [`MAX_REASONS`] of them kept (more fold into one).
//!
//! Configuration changes of one burst (calls within [`CONFIG_BURST`] of the first) become one
//! `config_changed` record listing the keys.
//!
//! Pure logic with an injected clock (milliseconds): the caller owns the lock and the writing.

use std::collections::{HashMap, HashSet};

/// At most one refusal record per reason within this window, in milliseconds.
pub const REFUSAL_WINDOW: u64 = 60_000;
/// Configuration changes within this long of the first of a burst are one record, in ms.
pub const CONFIG_BURST: u64 = 1_000;
/// Distinct addresses counted exactly per record; more are reported as "at least".
pub const MAX_DISTINCT: usize = 10_000;
/// Reasons tracked; a reason beyond them folds into [`OTHER_REASON`].
pub const MAX_REASONS: usize = 64;
/// The reason that further reasons fold into.
pub const OTHER_REASON: &str = "other refusals";

/// What a refusal record says beyond its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    /// Refusals since the previous record of this reason, this one included.
    pub count: u64,
    /// Distinct addresses among them (capped at [`MAX_DISTINCT`]).
    pub distinct: usize,
}

impl Folded {
    /// The text appended to the reason in the record's `detail`.
    pub fn suffix(&self) -> String {
        let more = if self.distinct >= MAX_DISTINCT {
            "at least "
        } else {
            ""
        };
        format!(
            " [{} refused since the last such record, from {more}{} address(es)]",
            self.count, self.distinct
        )
    }
}

#[derive(Debug, Default)]
struct Reason {
    /// When the last record of this reason was written; `None`: never.
    written_ms: Option<u64>,
    count: u64,
    addrs: HashSet<u64>,
}

/// The refusals of one process, by reason.
#[derive(Debug, Default)]
pub struct Refusals {
    reasons: Option<HashMap<String, Reason>>,
}

impl Refusals {
    /// No refusal yet.
    pub const fn new() -> Self {
        Refusals { reasons: None }
    }

    /// Counts a refusal for `reason` from the address whose hash is `addr` at `now_ms`; says
    /// whether a record is due now, and what it carries (the counts start over).
    pub fn refuse(&mut self, reason: &str, addr: u64, now_ms: u64) -> (String, Option<Folded>) {
        let reasons = self.reasons.get_or_insert_with(HashMap::new);
        let reason = if reasons.contains_key(reason) || reasons.len() < MAX_REASONS {
            reason.to_owned()
        } else {
            OTHER_REASON.to_owned()
        };
        let r = reasons.entry(reason.clone()).or_default();
        r.count += 1;
        if r.addrs.len() < MAX_DISTINCT {
            r.addrs.insert(addr);
        }
        let due = r
            .written_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= REFUSAL_WINDOW);
        if !due {
            return (reason, None);
        }
        (reason, Some(take(r, now_ms)))
    }

    /// The counts of reasons whose window has passed (with `all`: of every reason) and that
    /// have refusals not yet written.
    pub fn due(&mut self, now_ms: u64, all: bool) -> Vec<(String, Folded)> {
        self.reasons
            .iter_mut()
            .flatten()
            .filter(|(_, r)| {
                r.count > 0
                    && (all
                        || r.written_ms
                            .is_none_or(|t| now_ms.saturating_sub(t) >= REFUSAL_WINDOW))
            })
            .map(|(k, r)| (k.clone(), take(r, now_ms)))
            .collect()
    }
}

fn take(r: &mut Reason, now_ms: u64) -> Folded {
    let f = Folded {
        count: r.count,
        distinct: r.addrs.len(),
    };
    r.count = 0;
    r.addrs.clear();
    r.written_ms = Some(now_ms);
    f
}

/// Configuration keys changed and not yet recorded.
#[derive(Debug, Default)]
pub struct ConfigBurst {
    first_ms: Option<u64>,
    keys: Vec<String>,
}

impl ConfigBurst {
    /// No change yet.
    pub const fn new() -> Self {
        ConfigBurst {
            first_ms: None,
            keys: Vec::new(),
        }
    }

    /// Adds `keys` changed at `now_ms`.
    pub fn add<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>, now_ms: u64) {
        for k in keys {
            if !self.keys.iter().any(|have| have == k) {
                self.keys.push(k.to_owned());
            }
        }
        if !self.keys.is_empty() {
            self.first_ms.get_or_insert(now_ms);
        }
    }

    /// Whether the burst is over at `now_ms` (its record is due).
    pub fn over(&self, now_ms: u64) -> bool {
        self.first_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= CONFIG_BURST)
    }

    /// The keys of the burst, emptied; "" when there are none.
    pub fn take(&mut self) -> String {
        self.first_ms = None;
        std::mem::take(&mut self.keys).join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_reason_per_window_with_the_counts() {
        let mut r = Refusals::default();
        let (_, first) = r.refuse("not allowed", 1, 0);
        assert_eq!(
            first,
            Some(Folded {
                count: 1,
                distinct: 1
            })
        );
        for i in 0..1000u64 {
            assert_eq!(r.refuse("not allowed", i % 7, 10 + i).1, None);
        }
        // Another reason has its own window.
        assert!(r.refuse("locked out", 1, 20).1.is_some());
        assert!(r.due(59_999, false).is_empty());
        let due = r.due(60_000, false);
        assert_eq!(
            due,
            vec![(
                "not allowed".to_owned(),
                Folded {
                    count: 1000,
                    distinct: 7
                }
            )]
        );
        assert!(r.due(60_001, false).is_empty());
        assert_eq!(r.refuse("not allowed", 3, 61_000).1, None);
        assert_eq!(
            r.due(61_001, true),
            vec![(
                "not allowed".to_owned(),
                Folded {
                    count: 1,
                    distinct: 1
                }
            )]
        );
        assert_eq!(
            r.refuse("not allowed", 4, 125_000).1,
            Some(Folded {
                count: 1,
                distinct: 1
            })
        );
        assert!(Folded {
            count: 5,
            distinct: MAX_DISTINCT
        }
        .suffix()
        .contains("at least"));
    }

    #[test]
    fn reasons_are_bounded() {
        let mut r = Refusals::default();
        for i in 0..(MAX_REASONS + 10) {
            r.refuse(&format!("reason {i}"), 0, 0);
        }
        assert_eq!(r.reasons.as_ref().unwrap().len(), MAX_REASONS + 1);
        assert_eq!(r.refuse("yet another", 0, 0).0, OTHER_REASON);
    }

    #[test]
    fn a_burst_of_changes_is_one_list() {
        let mut b = ConfigBurst::default();
        assert!(!b.over(5_000));
        b.add(["audit_log"], 100);
        b.add(["audit_key", "audit_log"], 900);
        assert!(!b.over(1_099) && b.over(1_100));
        assert_eq!(b.take(), "audit_log, audit_key");
        assert!(!b.over(10_000));
        assert_eq!(b.take(), "");
    }
}
