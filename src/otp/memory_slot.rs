//! The in-process slot: at most one pending code, behind one mutex.
//!
//! Owns the process-global slot and its fork behaviour (a child starts empty). It must never
//! decide a verification while holding the lock beyond taking the record out, never log under
//! the lock, and never keep a code after a verify, whatever the outcome.

use std::time::Duration;

use crate::sync::{Mutex, MutexGuard};

use super::clock::{BootClock, Clock};
use super::{decide, Otp, Pending, SlotBackend};
use crate::error::Result;
use crate::fork::ForkSafe;

/// A pending code and when it was issued, on the slot's clock.
pub struct Entry {
    code: Otp,
    issued: Duration,
    ttl: Duration,
}

/// The lock around a slot's entry: a plain mutex for a private slot (tests), the fork-safe
/// static for the process-global one.
pub trait EntryLock: Send + Sync {
    /// Takes the lock.
    #[doc(hidden)]
    fn take_lock(&self) -> MutexGuard<'_, Option<Entry>>;
}

impl EntryLock for Mutex<Option<Entry>> {
    fn take_lock(&self) -> MutexGuard<'_, Option<Entry>> {
        self.lock()
    }
}

impl EntryLock for &'static ForkSafe<Option<Entry>> {
    fn take_lock(&self) -> MutexGuard<'_, Option<Entry>> {
        self.lock()
    }
}

/// A slot with an injectable clock; the process uses one global instance.
pub struct MemorySlot<C: Clock, L: EntryLock = Mutex<Option<Entry>>> {
    clock: C,
    entry: L,
}

/// The global slot's entry. A child starts with it empty: a code issued before the fork
/// verifies at most once, in the parent.
static GLOBAL_ENTRY: ForkSafe<Option<Entry>> =
    ForkSafe::with_child_reset(None, Some(reset_in_child));

/// The process-global slot.
pub static GLOBAL: MemorySlot<BootClock, &'static ForkSafe<Option<Entry>>> = MemorySlot {
    clock: BootClock,
    entry: &GLOBAL_ENTRY,
};

impl<C: Clock> MemorySlot<C> {
    /// An empty slot reading time from `clock`.
    pub const fn new(clock: C) -> Self {
        MemorySlot {
            clock,
            entry: Mutex::new(None),
        }
    }
}

impl<C: Clock, L: EntryLock> SlotBackend for MemorySlot<C, L> {
    fn store(&self, code: &Otp, ttl: Duration) -> Result<()> {
        let entry = Entry {
            code: code.clone(),
            issued: self.clock.now(),
            ttl,
        };
        // The replaced code is dropped (and wiped) after the lock is released.
        let _old = self.entry.take_lock().replace(entry);
        Ok(())
    }

    fn verify(&self, submitted: Option<&Otp>) -> Result<()> {
        // Take-and-empty in one critical section: of concurrent verifies only one sees the code.
        let taken = self.entry.take_lock().take();
        let pending = taken.map(|e| Pending {
            age: self.clock.now().saturating_sub(e.issued),
            ttl: e.ttl,
            code: e.code,
        });
        decide(pending, submitted)
    }

    fn clear(&self) -> Result<()> {
        let _old = self.entry.take_lock().take();
        Ok(())
    }
}

/// A child must not be able to use a code issued before the fork: the parent still can, once.
fn reset_in_child() {
    let _old = GLOBAL_ENTRY.lock().take();
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::error::Error;

    /// A clock the test moves by hand, in microseconds.
    #[derive(Clone, Default)]
    struct ManualClock(Arc<AtomicU64>);

    impl ManualClock {
        fn advance(&self, d: Duration) {
            self.0.fetch_add(d.as_micros() as u64, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            Duration::from_micros(self.0.load(Ordering::SeqCst))
        }
    }

    const TTL: Duration = Duration::from_secs(600);

    fn slot_with_code() -> (MemorySlot<ManualClock>, ManualClock, Otp) {
        let clock = ManualClock::default();
        let slot = MemorySlot::new(clock.clone());
        let code = Otp::generate().unwrap();
        slot.store(&code, TTL).unwrap();
        (slot, clock, code)
    }

    #[test]
    fn ttl_boundary_599_999_verifies_600_expires() {
        let (slot, clock, code) = slot_with_code();
        clock.advance(Duration::from_micros(599_999_000));
        assert_eq!(slot.verify(Some(&code)), Ok(()));

        let (slot, clock, code) = slot_with_code();
        clock.advance(TTL);
        assert_eq!(slot.verify(Some(&code)), Err(Error::Expired));
    }

    #[test]
    fn expired_is_reported_before_the_comparison() {
        let (slot, clock, _code) = slot_with_code();
        clock.advance(Duration::from_secs(601));
        assert_eq!(slot.verify(None), Err(Error::Expired));
    }

    #[test]
    fn every_outcome_consumes_the_code() {
        let (slot, _, code) = slot_with_code();
        assert_eq!(slot.verify(Some(&code)), Ok(()));
        assert_eq!(slot.verify(Some(&code)), Err(Error::NoPendingOtp));

        let (slot, _, code) = slot_with_code();
        let wrong = Otp::parse(if code.as_str() == "000000" {
            b"000001"
        } else {
            b"000000"
        });
        assert_eq!(slot.verify(wrong.as_ref()), Err(Error::Invalid));
        assert_eq!(slot.verify(Some(&code)), Err(Error::NoPendingOtp));

        let (slot, _, code) = slot_with_code();
        assert_eq!(slot.verify(None), Err(Error::Invalid));
        assert_eq!(slot.verify(Some(&code)), Err(Error::NoPendingOtp));

        let (slot, clock, code) = slot_with_code();
        clock.advance(TTL * 2);
        assert_eq!(slot.verify(Some(&code)), Err(Error::Expired));
        assert_eq!(slot.verify(Some(&code)), Err(Error::NoPendingOtp));
    }

    #[test]
    fn a_new_code_replaces_the_old() {
        let (slot, _, old) = slot_with_code();
        let mut new = Otp::generate().unwrap();
        while new.ct_eq(&old) {
            new = Otp::generate().unwrap();
        }
        slot.store(&new, TTL).unwrap();
        assert_eq!(slot.verify(Some(&old)), Err(Error::Invalid));
        slot.store(&new, TTL).unwrap();
        assert_eq!(slot.verify(Some(&new)), Ok(()));
    }

    #[test]
    fn clear_empties_the_slot() {
        let (slot, _, code) = slot_with_code();
        slot.clear().unwrap();
        assert_eq!(slot.verify(Some(&code)), Err(Error::NoPendingOtp));
        assert_eq!(slot.clear(), Ok(()));
    }

    #[test]
    fn the_lifetime_is_fixed_when_the_code_is_issued() {
        let clock = ManualClock::default();
        let slot = MemorySlot::new(clock.clone());
        let code = Otp::generate().unwrap();
        slot.store(&code, Duration::from_secs(1)).unwrap();
        clock.advance(Duration::from_secs(1));
        assert_eq!(slot.verify(Some(&code)), Err(Error::Expired));
    }

    #[test]
    fn concurrent_verifies_have_exactly_one_winner() {
        let slot = Arc::new(MemorySlot::new(BootClock));
        for _ in 0..200 {
            let code = Otp::generate().unwrap();
            slot.store(&code, TTL).unwrap();
            let barrier = Arc::new(std::sync::Barrier::new(16));
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let (slot, code, barrier) = (slot.clone(), code.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        slot.verify(Some(&code))
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
            assert!(results
                .iter()
                .all(|r| r.is_ok() || *r == Err(Error::NoPendingOtp)));
        }
    }
}
