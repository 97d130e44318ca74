//! The in-process attempt limiter: failures per address (IPv4) or /64 (IPv6), and overall.
//!
//! Rules: `max_attempts` failures from one address within `lockout_seconds` of its first lock
//! it out for `lockout_seconds`, counted from the failure that locked it; attempts during a
//! lockout are refused without being counted, so the lockout never slides. A successful login
//! deletes the address's row. Overall, `max_global_failures` failures (from any addresses)
//! within a window of `lockout_seconds` lock every login out for `lockout_seconds`, so an
//! attacker rotating addresses gets no more guesses than that. The table holds at most
//! [`MAX_TRACKED`] rows; when it is full even after a sweep of expired rows, a new address is
//! not tracked on its own but its failures still count overall (fail closed). Pure logic: the
//! caller passes the time; it must never read a clock or take a lock itself.

use std::collections::HashMap;
use std::time::Duration;

use super::address::LimitKey;

/// Most addresses tracked at once.
pub const MAX_TRACKED: usize = 10_000;

/// The configured limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures from one address that lock it out.
    pub max_attempts: u32,
    /// Length of a lockout, and of the window failures are counted in.
    pub lockout: Duration,
    /// Failures from all addresses, within one window, that lock everyone out.
    pub max_global: u32,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    failures: u32,
    /// When the window of this count began.
    since: Duration,
    /// Locked out until then.
    locked_until: Option<Duration>,
}

impl Counter {
    /// Forgets an expired window or an ended lockout.
    fn expire(&mut self, now: Duration, lockout: Duration) {
        let ended = match self.locked_until {
            Some(until) => now >= until,
            None => now.saturating_sub(self.since) >= lockout,
        };
        if ended {
            *self = Counter::default();
        }
    }

    fn locked(&self, now: Duration) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Counts one failure; true when it is the one that locks.
    fn fail(&mut self, now: Duration, max: u32, lockout: Duration) -> bool {
        if self.failures == 0 {
            self.since = now;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= max && self.locked_until.is_none() {
            self.locked_until = Some(now + lockout);
            return true;
        }
        false
    }
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Allowed,
    /// This address is locked out.
    AddressLocked,
    /// Every login is locked out: the overall limit was reached.
    GlobalLocked,
}

/// What one failure changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failure {
    /// This failure locked the address out.
    pub address_locked: bool,
    /// This failure reached the overall limit (once per window).
    pub global_locked: bool,
}

/// Failure counts per address and overall.
#[derive(Debug, Default)]
pub struct Limiter {
    rows: HashMap<LimitKey, Counter>,
    global: Counter,
}

impl Limiter {
    /// Whether `key` may try now.
    pub fn admit(&mut self, key: LimitKey, now: Duration, l: &Limits) -> Admission {
        self.global.expire(now, l.lockout);
        if self.global.locked(now) {
            return Admission::GlobalLocked;
        }
        if let Some(row) = self.rows.get_mut(&key) {
            row.expire(now, l.lockout);
            if row.locked(now) {
                return Admission::AddressLocked;
            }
            if row.failures == 0 {
                self.rows.remove(&key);
            }
        }
        Admission::Allowed
    }

    /// Counts a failed attempt from `key`.
    pub fn fail(&mut self, key: LimitKey, now: Duration, l: &Limits) -> Failure {
        self.global.expire(now, l.lockout);
        let global_locked = self.global.fail(now, l.max_global, l.lockout);
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_TRACKED {
            self.sweep(now, l.lockout);
        }
        let address_locked = if self.rows.len() < MAX_TRACKED || self.rows.contains_key(&key) {
            let row = self.rows.entry(key).or_default();
            row.expire(now, l.lockout);
            row.fail(now, l.max_attempts, l.lockout)
        } else {
            false
        };
        Failure {
            address_locked,
            global_locked,
        }
    }

    /// A successful login from `key`: its row goes.
    pub fn succeed(&mut self, key: LimitKey) {
        self.rows.remove(&key);
    }

    /// An operator's reset of `key`'s failures and lockout.
    pub fn reset(&mut self, key: LimitKey) {
        self.rows.remove(&key);
    }

    /// Failures `key` may still make before it is locked out (0 while it or everyone is).
    pub fn attempts_left(&mut self, key: LimitKey, now: Duration, l: &Limits) -> u32 {
        if self.admit(key, now, l) != Admission::Allowed {
            return 0;
        }
        let used = self.rows.get(&key).map_or(0, |r| r.failures);
        l.max_attempts.saturating_sub(used)
    }

    /// Rows tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.rows.len()
    }

    fn sweep(&mut self, now: Duration, lockout: Duration) {
        self.rows.retain(|_, r| {
            r.expire(now, lockout);
            r.failures > 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_attempts: 5,
        lockout: Duration::from_secs(900),
        max_global: 20,
    };

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn v4(n: u32) -> LimitKey {
        LimitKey::V4(n)
    }

    #[test]
    fn the_fifth_failure_locks_and_the_lockout_does_not_slide() {
        let mut l = Limiter::default();
        for i in 0..4 {
            assert_eq!(l.admit(v4(1), s(i), &L), Admission::Allowed);
            assert!(!l.fail(v4(1), s(i), &L).address_locked);
        }
        assert_eq!(l.attempts_left(v4(1), s(4), &L), 1);
        assert!(l.fail(v4(1), s(10), &L).address_locked);
        assert_eq!(l.attempts_left(v4(1), s(10), &L), 0);
        // Attempts during the lockout are refused and do not extend it.
        for t in [11, 500, 909] {
            assert_eq!(l.admit(v4(1), s(t), &L), Admission::AddressLocked);
        }
        assert_eq!(l.admit(v4(1), s(910), &L), Admission::Allowed);
        assert_eq!(l.attempts_left(v4(1), s(910), &L), 5);
        // Another address was never affected.
        assert_eq!(l.admit(v4(2), s(11), &L), Admission::Allowed);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten_and_success_resets() {
        let mut l = Limiter::default();
        for i in 0..4 {
            l.fail(v4(1), s(i), &L);
        }
        // 900 s after the first failure the count starts again.
        assert!(!l.fail(v4(1), s(900), &L).address_locked);
        assert_eq!(l.attempts_left(v4(1), s(900), &L), 4);
        for i in 0..3 {
            l.fail(v4(1), s(901 + i), &L);
        }
        l.succeed(v4(1));
        assert_eq!(l.attempts_left(v4(1), s(905), &L), 5);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn rotating_addresses_hits_the_global_limit() {
        let mut l = Limiter::default();
        let mut guesses = 0;
        let mut alerts = 0;
        for n in 0..1000u32 {
            if l.admit(v4(n), s(u64::from(n) / 10), &L) != Admission::Allowed {
                continue;
            }
            guesses += 1;
            let f = l.fail(v4(n), s(u64::from(n) / 10), &L);
            alerts += usize::from(f.global_locked);
        }
        assert_eq!(guesses, 20);
        assert_eq!(alerts, 1, "the global limit is reported once per window");
        assert_eq!(l.admit(v4(5000), s(50), &L), Admission::GlobalLocked);
        // The lockout runs from the 20th failure (t=1 s) for 900 s.
        assert_eq!(l.admit(v4(5000), s(901), &L), Admission::Allowed);
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        use super::super::address::ClientAddr;
        let mut l = Limiter::default();
        for i in 0..5u32 {
            let a = ClientAddr::parse(&format!("2001:db8:0:1::{i:x}")).unwrap();
            l.fail(a.limit_key(), s(1), &L);
        }
        let other_host_same_64 = ClientAddr::parse("2001:db8:0:1:ffff::9").unwrap();
        assert_eq!(
            l.admit(other_host_same_64.limit_key(), s(2), &L),
            Admission::AddressLocked
        );
        let next_64 = ClientAddr::parse("2001:db8:0:2::1").unwrap();
        assert_eq!(l.admit(next_64.limit_key(), s(2), &L), Admission::Allowed);
    }

    #[test]
    fn the_table_is_bounded_and_a_full_table_still_counts_overall() {
        let lots = Limits {
            max_global: u32::MAX,
            ..L
        };
        let mut l = Limiter::default();
        for n in 0..(MAX_TRACKED as u32 + 5000) {
            l.fail(v4(n), s(1), &lots);
        }
        assert_eq!(l.tracked(), MAX_TRACKED);
        assert_eq!(l.global.failures, MAX_TRACKED as u32 + 5000);
        // Once the rows' windows have passed, a sweep makes room again.
        l.fail(v4(u32::MAX), s(1000), &lots);
        assert_eq!(l.tracked(), 1);
    }
}
