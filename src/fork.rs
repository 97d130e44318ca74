//! What `fork()` must not break: the registry of the library's fork-sensitive locks and the
//! resets a child runs.
//!
//! Each module declares its locks where they live, as [`ForkSafe`] statics (a `sync` mutex
//! that enters itself in a fixed array the first time it is locked, without a `Once`), with
//! the reset a child must run for it, if any. The `pthread_atfork` handlers (registered when the
//! library is loaded by an `.init_array` constructor, and again lazily on first use for hosts
//! that link the static library without that constructor) walk the fixed array: `prepare`
//! takes the registry's own lock and then every registered lock from first to last, so no other
//! thread holds one at the instant of the fork; `parent` and `child` release them from last to
//! first; `child` then runs each entry's reset. No code path holds two library locks at once and
//! none logs while holding one, so taking them all here cannot deadlock. The logger's lock is
//! not taken: that would make `fork()` wait for log callbacks, which may need something the
//! forking thread holds (Python's GIL); it only has a child reset.
//!
//! The audit trail adds no lock here: its only lock is a `flock` on the audit file, taken per
//! append on a descriptor of its own and released explicitly (`sys::FileLock`), so a fork
//! during an append cannot leave it held.
//!
//! Nothing here may allocate, log or panic inside a handler, and nothing here waits for a
//! lazily initialised value: a `Once` or `LazyLock` that another thread was running at the fork
//! stays "running" in the child for ever, so no global of the library is built that way.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use lock_api::RawMutex as _;

use crate::sync::{Mutex, MutexGuard, RawLock as RawMutex};

/// How many [`ForkSafe`] statics the library may have; a test checks there is room.
const CAPACITY: usize = 32;

/// What the handlers walk: the registered entries, in registration order, then nulls.
static ENTRIES: [AtomicPtr<Entry>; CAPACITY] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; CAPACITY];

/// Serialises registrations, and is held across the fork by `prepare`, so that a lock being
/// registered at that instant is either entered (and held by `prepare`) or not yet used.
static REGISTRY: Mutex<()> = Mutex::new(());

/// The non-generic part of a [`ForkSafe`]: what the handlers need.
struct Entry {
    /// The mutex's raw lock; null until registered.
    raw: AtomicPtr<RawMutex>,
    /// What a child runs after every lock is released.
    reset: Option<fn()>,
    /// Set (under [`REGISTRY`]) once the entry is in [`ENTRIES`].
    registered: AtomicBool,
}

/// A mutex that the fork handlers hold across `fork()`, with an optional reset for the child.
/// Only for statics: it enters itself in the handlers' fixed array on first use.
pub(crate) struct ForkSafe<T> {
    entry: Entry,
    mutex: Mutex<T>,
}

impl<T> ForkSafe<T> {
    /// A lock with no child reset.
    pub(crate) const fn new(value: T) -> Self {
        Self::with_child_reset(value, None)
    }

    /// A lock whose child runs `reset` after the fork (with every library lock free again).
    pub(crate) const fn with_child_reset(value: T, reset: Option<fn()>) -> Self {
        ForkSafe {
            entry: Entry {
                raw: AtomicPtr::new(std::ptr::null_mut()),
                reset,
                registered: AtomicBool::new(false),
            },
            mutex: Mutex::new(value),
        }
    }

    /// Takes the lock, entering it in the fork handlers' array first if it is not there yet.
    pub(crate) fn lock(&'static self) -> MutexGuard<'static, T> {
        self.register();
        self.mutex.lock()
    }

    /// Enters this lock (and its reset) in the handlers' array; idempotent.
    pub(crate) fn register(&'static self) {
        if self.entry.registered.load(Ordering::Acquire) {
            return;
        }
        ensure_registered();
        let _registry = REGISTRY.lock();
        if self.entry.registered.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the raw lock is only locked and unlocked as a pair, by the fork handlers,
        // while no guard of this mutex exists (prepare takes it like any other locker).
        let raw: *const RawMutex = unsafe { self.mutex.raw() };
        self.entry.raw.store(raw.cast_mut(), Ordering::Relaxed);
        match ENTRIES.iter().find(|e| e.load(Ordering::Relaxed).is_null()) {
            Some(free) => {
                free.store(
                    std::ptr::from_ref(&self.entry).cast_mut(),
                    Ordering::Release,
                );
                self.entry.registered.store(true, Ordering::Release);
            }
            // A build with more ForkSafe statics than CAPACITY fails its fork test; in release
            // the lock keeps working, only unprotected across fork().
            None => debug_assert!(false, "fork registry full: raise CAPACITY"),
        }
    }
}

/// A value built on first use that never makes a thread wait for another: threads that race
/// each build one and the first to publish wins (the others drop theirs). Unlike `LazyLock`, a
/// fork while another thread is building it cannot leave the child waiting for ever: the child
/// simply builds its own. For cheap, pure initialisers only.
pub(crate) struct Lazy<T> {
    value: AtomicPtr<T>,
    init: fn() -> T,
}

impl<T> Lazy<T> {
    /// A value `init` builds on first use.
    pub(crate) const fn new(init: fn() -> T) -> Self {
        Lazy {
            value: AtomicPtr::new(std::ptr::null_mut()),
            init,
        }
    }
}

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        let mut p = self.value.load(Ordering::Acquire);
        if p.is_null() {
            let mine = Box::into_raw(Box::new((self.init)()));
            p = match self.value.compare_exchange(
                std::ptr::null_mut(),
                mine,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => mine,
                Err(theirs) => {
                    // SAFETY: `mine` came from Box::into_raw above and was never published.
                    drop(unsafe { Box::from_raw(mine) });
                    theirs
                }
            };
        }
        // SAFETY: a published value is never freed or replaced while `self` lives (statics).
        unsafe { &*p }
    }
}

impl<T> Drop for Lazy<T> {
    fn drop(&mut self) {
        let p = *self.value.get_mut();
        if !p.is_null() {
            // SAFETY: the only owner of the published box is `self`.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

// SAFETY: `Lazy` hands out `&T` to any thread and may drop a `T` built on another.
unsafe impl<T: Send + Sync> Sync for Lazy<T> {}
unsafe impl<T: Send> Send for Lazy<T> {}

/// The registered entries, in order.
fn entries() -> impl DoubleEndedIterator<Item = &'static Entry> {
    let count = ENTRIES
        .iter()
        .take_while(|e| !e.load(Ordering::Acquire).is_null())
        .count();
    ENTRIES[..count].iter().map(|e| {
        // SAFETY: non-null values point at the `entry` of a `ForkSafe` static (registered only
        // through `&'static self`), which is never freed; entries are never removed.
        unsafe { &*e.load(Ordering::Acquire) }
    })
}

static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers the handlers, once per process. No `Once`: a thread that loses the race goes on
/// without waiting, so a fork at this instant cannot leave the child waiting for ever.
pub(crate) fn ensure_registered() {
    // A load first: every export calls this, and a swap is a write to a shared line.
    if REGISTERED.load(Ordering::Acquire) || REGISTERED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: the handlers are plain `extern "C" fn()`s that only lock, unlock and reset;
    // none of them can panic, so nothing unwinds through libc.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if rc != 0 {
        log::error!("pthread_atfork failed ({rc}); fork() while the library is busy is unsafe");
    }
}

extern "C" fn on_load() {
    ensure_registered();
}

// Runs when the shared library is loaded (or the program starts, when linked in whole).
#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

fn raw(entry: &Entry) -> &RawMutex {
    // SAFETY: `raw` was set before the entry was published, to the raw lock of a static mutex.
    unsafe { &*entry.raw.load(Ordering::Relaxed) }
}

extern "C" fn prepare() {
    std::mem::forget(REGISTRY.lock());
    for entry in entries() {
        raw(entry).lock();
    }
}

fn release_all() {
    for entry in entries().rev() {
        // SAFETY: `prepare` took every registered lock on this thread before the fork.
        unsafe { raw(entry).unlock(Default::default()) };
    }
    // SAFETY: `prepare` took the registry lock and forgot the guard.
    unsafe { REGISTRY.force_unlock(Default::default()) };
}

extern "C" fn parent() {
    release_all();
}

extern "C" fn child() {
    release_all();
    for entry in entries() {
        if let Some(reset) = entry.reset {
            reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Waits for child `pid` at most 30 s; on a hang, kills it and returns `None`, so a test
    /// that would hang fails instead (CI once lost its whole run to one that waited).
    fn wait_bounded(pid: libc::pid_t) -> Option<i32> {
        let born = std::time::Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: polls a child this test forked.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                return Some(status);
            }
            if born.elapsed() > std::time::Duration::from_secs(30) {
                // SAFETY: kills and reaps the stuck child this test forked.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Children forked while other threads take every library lock in turn can still take
    /// every one of them: none is inherited held.
    #[test]
    fn a_child_never_inherits_a_held_lock() {
        super::ensure_registered();
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..5)
            .map(|n| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match n {
                            0 => {
                                let _ = crate::config::configure("otp_ttl_seconds", Some("600"));
                                let _ = crate::otp::generate();
                            }
                            1 => {
                                let _ = crate::login::attempts_left(b"192.0.2.1");
                                let _ = crate::otp::verify(b"000000");
                            }
                            2 => {
                                let _ = crate::notify::flush(std::time::Duration::ZERO);
                                let _ = crate::net::tls::handshake_config_for_tests();
                            }
                            // Two threads that keep one lock contended, so that threads are
                            // forever going to sleep on it and being woken at the fork.
                            _ => {
                                crate::notify::health::note("fork test", None);
                                let _ = crate::notify::health::snapshot();
                            }
                        }
                    }
                })
            })
            .collect();
        for _ in 0..200 {
            // SAFETY: the child only takes library locks (with a watchdog) and exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: alarm only schedules SIGALRM, whose default action ends the child.
                unsafe { libc::alarm(10) };
                let ok = crate::config::configure("otp_ttl_seconds", None).is_ok()
                    && crate::otp::generate().is_ok()
                    && crate::login::attempts_left(b"192.0.2.1").is_ok()
                    && crate::notify::flush(std::time::Duration::ZERO).is_ok()
                    && crate::net::tls::handshake_config_for_tests()
                    && crate::notify::health::snapshot().len() >= 2;
                // SAFETY: _exit ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(i32::from(!ok)) };
            }
            assert!(pid > 0, "fork failed");
            // The child's fork handler runs before its alarm is set: bounded here too.
            let status = wait_bounded(pid).expect("a child hung in its fork handler");
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "a child hung or failed (status {status})"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for t in busy {
            t.join().unwrap();
        }
    }

    /// Children forked while another thread appends to an audit file (holding its `flock` at
    /// times) can append to it themselves, and the file stays one chain: the lock a child's
    /// copy of the descriptor shares is released by the parent's explicit unlock.
    #[test]
    fn a_child_forked_mid_append_can_append_and_the_chain_holds() {
        use crate::audit::{append, verify_file, Entry};
        let path = std::env::temp_dir().join(format!("bg-fork-audit-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let entry = |what: &str| Entry {
            time: "2026-12-03T08:00:00.000000Z".into(),
            event: "config_changed",
            id: None,
            ip: String::new(),
            host: "h".into(),
            pid: crate::sys::pid(),
            detail: what.into(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, path, e) = (stop.clone(), path.clone(), entry("parent"));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    append(&path, None, &e, false).unwrap();
                    n += 1;
                }
                n
            })
        };
        let children = 20;
        for _ in 0..children {
            // SAFETY: the child only appends and leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let ok = append(&path, None, &entry("child"), true).is_ok();
                // SAFETY: _exit ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(i32::from(!ok)) };
            }
            assert!(pid > 0, "fork failed");
            // A child stuck on an inherited lock would hang here; bounded so it fails instead.
            let status =
                wait_bounded(pid).expect("a child forked mid-append never got the audit lock");
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        stop.store(true, Ordering::Relaxed);
        let parent_records = writer.join().unwrap();
        let r = verify_file(&path, None).unwrap();
        assert!(r.is_clean());
        assert_eq!(r.records, parent_records + children);
        let _ = std::fs::remove_file(&path);
    }
}
