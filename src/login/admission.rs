//! Fair admission of the slow checks (password hashes, recovery codes): at most
//! [`MAX_CONCURRENT_CHECKS`] at once in this process, at most one in flight per limit key, and
//! the rest waiting their turn in arrival order for at most [`MAX_WAIT`].
//!
//! Refusing the overflow at once would let a few threads without the password keep every place
//! busy, so the admin's right password would be refused most of the time; queueing without a
//! bound would turn a flood into unbounded waiting threads. Here a key that floods competes
//! with itself: its second attempt waits behind its first, a third is refused at once, and
//! every other key's attempt is served in arrival order. It must never hold its lock during a
//! check, and never admit more than the bound.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::fork::ForkSafe;
use crate::sync::Condvar;

use super::address::LimitKey;

/// Checks allowed to run at the same time in one process.
pub const MAX_CONCURRENT_CHECKS: usize = 2;
/// Attempts waiting at most, overall.
pub(crate) const MAX_WAITING: usize = 64;
/// How long an attempt waits for its turn before it is refused.
pub const MAX_WAIT: Duration = Duration::from_millis(2000);

#[derive(Default)]
struct Queue {
    in_flight: Vec<LimitKey>,
    /// Waiting tickets in arrival order.
    waiting: VecDeque<(u64, LimitKey)>,
    next_ticket: u64,
}

impl Queue {
    /// The first waiter whose key has no check in flight, when a place is free.
    fn next_eligible(&self) -> Option<u64> {
        if self.in_flight.len() >= MAX_CONCURRENT_CHECKS {
            return None;
        }
        self.waiting
            .iter()
            .find(|(_, k)| !self.in_flight.contains(k))
            .map(|(t, _)| *t)
    }
}

/// The gate of one process.
pub struct Gate {
    queue: ForkSafe<Queue>,
    turn: Condvar,
}

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// This key already has one check running and one waiting.
    KeyBusy,
    /// Too many attempts are waiting, or the wait ran out.
    Full,
}

/// A place; given back on drop (also on a panic).
pub struct Place<'a> {
    gate: &'static Gate,
    key: LimitKey,
    _life: std::marker::PhantomData<&'a ()>,
}

pub(crate) static GATE: Gate = Gate::new(Some(reset_in_child));

impl Gate {
    /// An empty gate; a forked child runs `child_reset` (the checks running or waiting at the
    /// fork were the parent's threads').
    pub const fn new(child_reset: Option<fn()>) -> Gate {
        Gate {
            queue: ForkSafe::with_child_reset(
                Queue {
                    in_flight: Vec::new(),
                    waiting: VecDeque::new(),
                    next_ticket: 0,
                },
                child_reset,
            ),
            turn: Condvar::new(),
        }
    }

    /// Waits for a place for `key`, at most `max_wait`.
    pub fn enter(&'static self, key: LimitKey, max_wait: Duration) -> Result<Place<'static>, Busy> {
        let deadline = Instant::now() + max_wait;
        let mut q = self.queue.lock();
        if q.waiting.iter().any(|(_, k)| *k == key) {
            return Err(Busy::KeyBusy);
        }
        if q.waiting.len() >= MAX_WAITING {
            return Err(Busy::Full);
        }
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push_back((ticket, key));
        loop {
            if q.next_eligible() == Some(ticket) {
                q.waiting.retain(|(t, _)| *t != ticket);
                q.in_flight.push(key);
                // Another waiter may be eligible too (a second free place).
                self.turn.notify_all();
                return Ok(Place {
                    gate: self,
                    key,
                    _life: std::marker::PhantomData,
                });
            }
            if self.turn.wait_until(&mut q, deadline) {
                q.waiting.retain(|(t, _)| *t != ticket);
                self.turn.notify_all();
                return Err(Busy::Full);
            }
        }
    }

    /// Forgets every place and waiter: a forked child has none of its parent's threads.
    pub fn reset_in_child(&'static self) {
        // The fork handlers released every lock before running the resets.
        let mut q = self.queue.lock();
        q.in_flight.clear();
        q.waiting.clear();
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut q = self.gate.queue.lock();
        if let Some(i) = q.in_flight.iter().position(|k| *k == self.key) {
            q.in_flight.swap_remove(i);
        }
        self.gate.turn.notify_all();
    }
}

/// The process gate's child reset.
fn reset_in_child() {
    GATE.reset_in_child();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn k(n: u32) -> LimitKey {
        LimitKey::V4(n)
    }

    #[test]
    fn one_check_per_key_and_a_third_attempt_is_refused_at_once() {
        let gate: &'static Gate = Box::leak(Box::new(Gate::new(None)));
        let a = gate.enter(k(1), MAX_WAIT).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| gate.enter(k(1), Duration::from_secs(5)).map(|_| ()));
            // Wait until it is queued.
            while gate.queue.lock().waiting.is_empty() {
                std::thread::yield_now();
            }
            assert_eq!(gate.enter(k(1), MAX_WAIT).err(), Some(Busy::KeyBusy));
            // Another key gets the second place at once, though a waiter came first.
            let b = gate.enter(k(2), Duration::ZERO).unwrap();
            drop(b);
            drop(a);
            assert!(waiter.join().unwrap().is_ok());
        });
    }

    #[test]
    fn waiters_are_served_in_arrival_order_and_never_beyond_the_bound() {
        let gate: &'static Gate = Box::leak(Box::new(Gate::new(None)));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let held = gate.enter(k(0), MAX_WAIT).unwrap();
        let held2 = gate.enter(k(100), MAX_WAIT).unwrap();
        let order = Arc::new(crate::sync::Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for n in 1..=6u32 {
            let (g, order, running, peak) = (gate, order.clone(), running.clone(), peak.clone());
            threads.push(std::thread::spawn(move || {
                let _p = g.enter(k(n), Duration::from_secs(10)).unwrap();
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                order.lock().push(n);
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
            }));
            while gate.queue.lock().waiting.len() < n as usize {
                std::thread::yield_now();
            }
        }
        drop(held);
        drop(held2);
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= MAX_CONCURRENT_CHECKS);
        let order = order.lock().clone();
        // Two places: the first two arrivals start first, and so on in pairs.
        let mut sorted_pairs = order.chunks(2).map(|c| {
            let mut c = c.to_vec();
            c.sort();
            c
        });
        assert_eq!(sorted_pairs.next().unwrap(), vec![1, 2]);
        assert_eq!(sorted_pairs.next().unwrap(), vec![3, 4]);
    }

    #[test]
    fn a_wait_is_bounded() {
        let gate: &'static Gate = Box::leak(Box::new(Gate::new(None)));
        let _a = gate.enter(k(1), MAX_WAIT).unwrap();
        let _b = gate.enter(k(2), MAX_WAIT).unwrap();
        assert_eq!(
            gate.enter(k(3), Duration::from_millis(20)).err(),
            Some(Busy::Full)
        );
        assert!(gate.queue.lock().waiting.is_empty());
    }
}
