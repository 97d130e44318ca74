//! The in-process attempt limiter: failures per address (IPv4) or /64 (IPv6), and overall.
//!
//! Rules: `max_attempts` failures from one address within `lockout_seconds` of its first lock
//! it out for `lockout_seconds`, counted from the failure that locked it; attempts during a
//! lockout are refused without being counted, so the lockout never slides. A successful login
//! deletes the address's row. Every admitted attempt is counted as a failure *before* it is
//! evaluated ([`Limiter::reserve`]) and given back only if it succeeds
//! ([`Limiter::refund`]): however many attempts race, no more are evaluated than the limits
//! allow. Overall, `max_global_failures` failures (from any addresses)
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

impl Admission {
    /// The refusal as the caller sees it.
    pub fn into_error(self) -> crate::Error {
        match self {
            Admission::AddressLocked => crate::Error::LockedOut("this address is locked out"),
            _ => crate::Error::LockedOut(
                "every break-glass login is locked out: too many failures overall",
            ),
        }
    }
}

/// An admitted attempt, already counted as a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an attempt is settled by keeping it as a failure or by a refund"]
pub struct Reservation {
    pub(crate) key: LimitKey,
    /// The address has a row that counted this attempt.
    pub(crate) tracked: bool,
    /// Counting this attempt locked the address out.
    pub address_locked: bool,
    /// Counting this attempt reached the overall limit (once per window).
    pub global_locked: bool,
}

/// Failure counts per address and overall.
#[derive(Debug, Default)]
pub struct Limiter {
    rows: HashMap<LimitKey, Counter>,
    global: Counter,
}

impl Limiter {
    /// Admits an attempt from `key` and counts it as a failure at once, or says why not.
    pub fn reserve(
        &mut self,
        key: LimitKey,
        now: Duration,
        l: &Limits,
    ) -> Result<Reservation, Admission> {
        match self.admit(key, now, l) {
            Admission::Allowed => Ok(self.fail(key, now, l)),
            refused => Err(refused),
        }
    }

    /// Takes back what [`reserve`](Self::reserve) counted: the attempt succeeded. With
    /// `forget_address`, the address's row goes too (a successful login).
    pub fn refund(&mut self, r: &Reservation, forget_address: bool) {
        self.global.failures = self.global.failures.saturating_sub(1);
        if r.global_locked {
            self.global.locked_until = None;
        }
        if forget_address {
            self.rows.remove(&r.key);
        } else if let Some(row) = self.rows.get_mut(&r.key).filter(|_| r.tracked) {
            row.failures = row.failures.saturating_sub(1);
            if r.address_locked {
                row.locked_until = None;
            }
        }
    }

    /// Whether `key` may try now.
    fn admit(&mut self, key: LimitKey, now: Duration, l: &Limits) -> Admission {
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
    fn fail(&mut self, key: LimitKey, now: Duration, l: &Limits) -> Reservation {
        self.global.expire(now, l.lockout);
        let global_locked = self.global.fail(now, l.max_global, l.lockout);
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_TRACKED {
            self.sweep(now, l.lockout);
        }
        let tracked = self.rows.len() < MAX_TRACKED || self.rows.contains_key(&key);
        let address_locked = tracked && {
            let row = self.rows.entry(key).or_default();
            row.expire(now, l.lockout);
            row.fail(now, l.max_attempts, l.lockout)
        };
        Reservation {
            key,
            tracked,
            address_locked,
            global_locked,
        }
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
            assert!(!l.reserve(v4(1), s(i), &L).unwrap().address_locked);
        }
        assert_eq!(l.attempts_left(v4(1), s(4), &L), 1);
        assert!(l.reserve(v4(1), s(10), &L).unwrap().address_locked);
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
            let _ = l.reserve(v4(1), s(i), &L);
        }
        // 900 s after the first failure the count starts again.
        assert!(!l.reserve(v4(1), s(900), &L).unwrap().address_locked);
        assert_eq!(l.attempts_left(v4(1), s(900), &L), 4);
        for i in 0..3 {
            let _ = l.reserve(v4(1), s(901 + i), &L);
        }
        let ok = l.reserve(v4(1), s(904), &L).unwrap();
        assert!(
            ok.address_locked,
            "the fifth attempt is counted before it is evaluated"
        );
        l.refund(&ok, true);
        assert_eq!(l.attempts_left(v4(1), s(905), &L), 5);
        assert_eq!(l.tracked(), 0);
        // The overall window restarted at t=900 too: 1 + 3 real failures, the success refunded.
        assert_eq!(l.global.failures, 4);
    }

    #[test]
    fn rotating_addresses_hits_the_global_limit() {
        let mut l = Limiter::default();
        let mut guesses = 0;
        let mut alerts = 0;
        for n in 0..1000u32 {
            let Ok(r) = l.reserve(v4(n), s(u64::from(n) / 10), &L) else {
                continue;
            };
            guesses += 1;
            alerts += usize::from(r.global_locked);
        }
        assert_eq!(guesses, 20);
        assert_eq!(alerts, 1, "the global limit is reported once per window");
        assert_eq!(l.admit(v4(5000), s(50), &L), Admission::GlobalLocked);
        // The lockout runs from the 20th failure (t=1 s) for 900 s.
        assert_eq!(l.admit(v4(5000), s(901), &L), Admission::Allowed);
    }

    #[test]
    fn a_refund_takes_back_exactly_what_the_reservation_counted() {
        let mut l = Limiter::default();
        for i in 0..4 {
            let _ = l.reserve(v4(1), s(i), &L);
        }
        // The fifth attempt locked the address when it was reserved; it was a right password,
        // so the refund lifts the lock it set and keeps the four real failures.
        let fifth = l.reserve(v4(1), s(5), &L).unwrap();
        assert!(fifth.address_locked);
        assert_eq!(l.attempts_left(v4(1), s(5), &L), 0);
        l.refund(&fifth, false);
        assert_eq!(l.attempts_left(v4(1), s(5), &L), 1);
        assert_eq!(l.global.failures, 4);
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        use super::super::address::ClientAddr;
        let mut l = Limiter::default();
        for i in 0..5u32 {
            let a = ClientAddr::parse(&format!("2001:db8:0:1::{i:x}")).unwrap();
            let _ = l.reserve(a.limit_key(), s(1), &L);
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
            let _ = l.reserve(v4(n), s(1), &lots);
        }
        assert_eq!(l.tracked(), MAX_TRACKED);
        assert_eq!(l.global.failures, MAX_TRACKED as u32 + 5000);
        // Once the rows' windows have passed, a sweep makes room again.
        let _ = l.reserve(v4(u32::MAX), s(1000), &lots);
        assert_eq!(l.tracked(), 1);
    }
}
