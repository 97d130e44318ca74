//! The library's locks: a mutex (that can give up at a deadline), a condition variable and a
//! reader-biased read-write lock, each one 32-bit word that waiters sleep on with Linux's
//! `futex` call.
//!
//! Why not parking_lot: its waiters queue in one process-wide hash table whose buckets have
//! locks of their own. A `fork()` while any other thread is inside that table (parking on or
//! waking any lock) leaves the bucket locked in the child for ever, and the child's first wait
//! or wake there hangs, even the fork handler's own release of a lock that had waiters (CI
//! lost a run to exactly that). A futex lock keeps all of its state in its own word, and
//! waking an address nobody waits on is a no-op, so nothing outside the lock can be left held
//! by a thread the child does not have. std's locks are built the same way but offer no raw
//! lock and unlock for the fork handlers, no deadline on a mutex and no reader bias.
//!
//! Must never keep state outside a lock's own word, allocate, log or panic; a lock held by a
//! thread that is gone is still held (the fork handlers in `fork` take care of that).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lock_api::GuardSend;

/// Sleeps while `word` still holds `expected`, until woken or `timeout` passes (spurious
/// returns are allowed: every caller re-checks).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the aligned word (alive for the call) and the timespec, if any.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

/// Wakes up to `count` threads sleeping on `word`.
fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: FUTEX_WAKE only uses the word's address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            count,
        );
    }
}

/// What is left of `deadline`, or `None` once it has passed.
fn left_until(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
}

const FREE: u32 = 0;
const HELD: u32 = 1;
/// Held, and some thread may be asleep waiting for it.
const CONTENDED: u32 = 2;

/// Spins before sleeping: most holds last well under a microsecond.
const SPINS: u32 = 64;

/// The raw mutex behind [`Mutex`] (the classic three-state futex lock).
pub struct RawLock {
    word: AtomicU32,
}

impl RawLock {
    fn try_acquire(&self) -> bool {
        self.word
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock; false when `deadline` passed first.
    fn acquire(&self, deadline: Option<Instant>) -> bool {
        if self.try_acquire() {
            return true;
        }
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.word.load(Ordering::Relaxed) == FREE && self.try_acquire() {
                return true;
            }
        }
        loop {
            // Whoever takes it this way marks it contended, so its release wakes the next.
            if self.word.swap(CONTENDED, Ordering::Acquire) == FREE {
                return true;
            }
            let timeout = match deadline {
                None => None,
                Some(d) => match left_until(d) {
                    Some(left) => Some(left),
                    None => return false,
                },
            };
            futex_wait(&self.word, CONTENDED, timeout);
        }
    }

    fn release(&self) {
        if self.word.swap(FREE, Ordering::Release) == CONTENDED {
            futex_wake(&self.word, 1);
        }
    }
}

// SAFETY: `acquire` returns true only for the one thread that moved the word from FREE, and
// `release` makes it FREE again; a guard exists only for a successful acquisition.
unsafe impl lock_api::RawMutex for RawLock {
    const INIT: Self = RawLock {
        word: AtomicU32::new(FREE),
    };
    type Guard = GuardSend;

    fn lock(&self) -> GuardSend {
        self.acquire(None);
        GuardSend::new()
    }

    fn try_lock(&self) -> Option<GuardSend> {
        self.try_acquire().then(GuardSend::new)
    }

    unsafe fn unlock(&self, _guard: GuardSend) {
        self.release();
    }

    fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != FREE
    }
}

// SAFETY: as for `RawMutex`; a timed-out acquisition returns no guard and holds nothing.
unsafe impl lock_api::RawMutexTimed for RawLock {
    type Duration = Duration;
    type Instant = Instant;

    fn try_lock_for(&self, timeout: Duration) -> Option<GuardSend> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.try_lock_until(deadline),
            None => Some(lock_api::RawMutex::lock(self)),
        }
    }

    fn try_lock_until(&self, deadline: Instant) -> Option<GuardSend> {
        self.acquire(Some(deadline)).then(GuardSend::new)
    }
}

/// A mutex: not poisoned by a panic, not fair (see `login::turn` where order matters).
pub(crate) type Mutex<T> = lock_api::Mutex<RawLock, T>;
/// The guard of a [`Mutex`].
pub(crate) type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawLock, T>;

/// A condition variable for a [`Mutex`]: a counter that every notification moves.
pub(crate) struct Condvar {
    seq: AtomicU32,
}

impl Condvar {
    pub(crate) const fn new() -> Condvar {
        Condvar {
            seq: AtomicU32::new(0),
        }
    }

    /// Releases `guard`'s lock until notified (or woken spuriously) or until `deadline`, then
    /// takes it again; true when the deadline has passed. A notification made after the
    /// caller last looked at the protected state, under the lock, is never missed: it moves
    /// the counter read here before the lock was released.
    pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Instant) -> bool {
        let seq = self.seq.load(Ordering::Relaxed);
        let Some(left) = left_until(deadline) else {
            return true;
        };
        MutexGuard::unlocked(guard, || futex_wait(&self.seq, seq, Some(left)));
        Instant::now() >= deadline
    }

    /// Wakes every waiter.
    pub(crate) fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::Release);
        futex_wake(&self.seq, i32::MAX);
    }
}

/// Set in [`RawReaderBiased`]'s word while a writer holds it; the rest counts readers.
const WRITER: u32 = 1 << 31;

/// The raw lock behind [`ReaderBiasedRwLock`]: readers enter whenever no writer holds it, even
/// while one waits, so a reader may take it again inside its own read (a log callback that
/// logs) without deadlocking behind a waiting writer. Writers wait until no one reads.
pub struct RawReaderBiased {
    word: AtomicU32,
}

impl RawReaderBiased {
    fn try_read(&self) -> bool {
        let s = self.word.load(Ordering::Relaxed);
        s & WRITER == 0
            && s + 1 < WRITER
            && self
                .word
                .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    fn try_write(&self) -> bool {
        self.word
            .compare_exchange(FREE, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

// SAFETY: a reader enters only by moving a writer-free word up by one and a writer only by
// moving a free word to WRITER; each unlock undoes exactly its own entry.
unsafe impl lock_api::RawRwLock for RawReaderBiased {
    const INIT: Self = RawReaderBiased {
        word: AtomicU32::new(FREE),
    };
    type SharedGuard = GuardSend;
    type ExclusiveGuard = GuardSend;

    fn lock_shared(&self) -> GuardSend {
        while !self.try_read() {
            let s = self.word.load(Ordering::Relaxed);
            if s & WRITER != 0 {
                futex_wait(&self.word, s, None);
            } else {
                std::hint::spin_loop();
            }
        }
        GuardSend::new()
    }

    fn try_lock_shared(&self) -> Option<GuardSend> {
        self.try_read().then(GuardSend::new)
    }

    unsafe fn unlock_shared(&self, _guard: GuardSend) {
        if self.word.fetch_sub(1, Ordering::Release) == 1 {
            futex_wake(&self.word, i32::MAX);
        }
    }

    fn lock_exclusive(&self) -> GuardSend {
        while !self.try_write() {
            let s = self.word.load(Ordering::Relaxed);
            if s != FREE {
                futex_wait(&self.word, s, None);
            }
        }
        GuardSend::new()
    }

    fn try_lock_exclusive(&self) -> Option<GuardSend> {
        self.try_write().then(GuardSend::new)
    }

    unsafe fn unlock_exclusive(&self, _guard: GuardSend) {
        self.word.store(FREE, Ordering::Release);
        futex_wake(&self.word, i32::MAX);
    }

    fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != FREE
    }

    fn is_locked_exclusive(&self) -> bool {
        self.word.load(Ordering::Relaxed) & WRITER != 0
    }
}

/// A read-write lock whose readers never wait for a writer that is only waiting.
pub(crate) type ReaderBiasedRwLock<T> = lock_api::RwLock<RawReaderBiased, T>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn the_mutex_excludes_and_a_deadline_gives_up() {
        let m = Arc::new(Mutex::new(0u64));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(*m.lock(), 80_000);

        let held = m.lock();
        let m2 = m.clone();
        let waited = std::thread::spawn(move || {
            m2.try_lock_until(Instant::now() + Duration::from_millis(30))
                .is_none()
        })
        .join()
        .unwrap();
        assert!(waited, "a deadline must end the wait");
        drop(held);
        assert!(m
            .try_lock_until(Instant::now() + Duration::from_millis(30))
            .is_some());
    }

    #[test]
    fn a_notification_wakes_the_waiter_and_a_deadline_ends_the_wait() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p = pair.clone();
        let waiter = std::thread::spawn(move || {
            let (m, cv) = &*p;
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut ready = m.lock();
            while !*ready {
                if cv.wait_until(&mut ready, deadline) {
                    return false;
                }
            }
            true
        });
        std::thread::sleep(Duration::from_millis(20));
        *pair.0.lock() = true;
        pair.1.notify_all();
        assert!(waiter.join().unwrap(), "the waiter was notified");

        let mut g = pair.0.lock();
        let start = Instant::now();
        assert!(pair.1.wait_until(&mut g, start + Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn readers_enter_past_a_waiting_writer_and_the_writer_gets_in_after_them() {
        let lock = Arc::new(ReaderBiasedRwLock::new(0u32));
        let outer = lock.read();
        let writing = Arc::new(AtomicBool::new(false));
        let writer = {
            let (lock, writing) = (lock.clone(), writing.clone());
            std::thread::spawn(move || {
                writing.store(true, Ordering::SeqCst);
                *lock.write() += 1;
            })
        };
        while !writing.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(10));
        // The writer now waits; a nested read must not wait behind it.
        let inner = lock.read();
        assert_eq!(*inner, 0);
        drop(inner);
        drop(outer);
        writer.join().unwrap();
        assert_eq!(*lock.read(), 1);
    }
}
