//! What `fork()` must not break: the one ordered list of the library's locks, and what a child
//! resets.
//!
//! The `pthread_atfork` handlers are registered once, when the library is loaded (an
//! `.init_array` constructor), and again lazily on first use for hosts that link the static
//! library without pulling that constructor in. `prepare` takes every lock in [`LOCKS`] from
//! first to last, so no other thread holds one at the instant of the fork; `parent` and
//! `child` release them from last to first; `child` then runs [`CHILD_RESETS`]. The order is
//! the array's, for all three handlers: no code path holds two library locks at once and none
//! logs while holding one, so taking them all here cannot deadlock. The logger's lock is not on
//! the list: that would make `fork()` wait for log callbacks, which may need something the
//! forking thread holds (Python's GIL); the child gets a fresh one instead (a reset).
//! Nothing here may allocate, log or panic inside a handler. The audit trail adds no lock here:
//! its only lock is a `flock` on the audit file, taken per append on a descriptor of its own and
//! released explicitly (`sys::FileLock`), so a fork during an append cannot leave it held.

use std::sync::Once;

/// A lock the fork handlers hold across `fork()`.
pub(crate) trait ForkLock: Sync {
    /// Takes it and forgets the guard.
    fn hold(&self);
    /// Releases what [`hold`](Self::hold) took.
    ///
    /// # Safety
    /// Only after `hold` on this thread (or, in the child, on the thread it is a copy of).
    unsafe fn release(&self);
}

impl<T: Send> ForkLock for parking_lot::Mutex<T> {
    fn hold(&self) {
        std::mem::forget(self.lock());
    }

    unsafe fn release(&self) {
        // SAFETY: the caller took this lock with `hold` and forgot the guard.
        unsafe { self.force_unlock(Default::default()) }
    }
}

impl<T: Send + Sync> ForkLock for parking_lot::RwLock<T> {
    fn hold(&self) {
        std::mem::forget(self.write());
    }

    unsafe fn release(&self) {
        // SAFETY: the caller took the write lock with `hold` and forgot the guard.
        unsafe { self.force_unlock_write(Default::default()) }
    }
}

/// Every library lock, in the order the handlers take them.
fn locks() -> [&'static dyn ForkLock; LOCK_COUNT] {
    [
        crate::config::settings_lock(),
        &crate::otp::memory_slot::GLOBAL.entry,
        &crate::login::memory::STATE,
        crate::login::admission::fork_lock(),
        &crate::notify::HEALTH_LOCK,
        &crate::notify::queue::CURRENT,
        #[cfg(feature = "redis")]
        &crate::otp::redis_pool::IDLE,
        &crate::net::tls::VERIFIED,
    ]
}

#[cfg(feature = "redis")]
const LOCK_COUNT: usize = 8;
#[cfg(not(feature = "redis"))]
const LOCK_COUNT: usize = 7;

/// What a child resets once every lock is released, in this order.
const CHILD_RESETS: &[fn()] = &[
    // The child's pending code is empty: a code issued before the fork verifies at most once,
    // in the parent.
    crate::otp::memory_slot::reset_in_child,
    // The checks running or waiting at the fair gate were the parent's threads'.
    crate::login::admission::reset_in_child,
    // A fresh logger lock: the parent's may be held by a callback in another thread.
    crate::ffi::logger::reset_in_child,
    // Pooled Redis connections are the parent's: the child never uses them.
    #[cfg(feature = "redis")]
    crate::otp::redis_pool::note_fork_in_child,
];

static REGISTERED: Once = Once::new();

/// Registers the handlers, once per process.
pub(crate) fn ensure_registered() {
    REGISTERED.call_once(|| {
        // Build every lazily made lock now: a handler must not allocate.
        let _ = locks();
        // SAFETY: the handlers are plain `extern "C" fn()`s that only lock, unlock and reset;
        // none of them can panic, so nothing unwinds through libc.
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        if rc != 0 {
            log::error!("pthread_atfork failed ({rc}); fork() while the library is busy is unsafe");
        }
    });
}

extern "C" fn on_load() {
    ensure_registered();
}

// Runs when the shared library is loaded (or the program starts, when linked in whole).
#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

extern "C" fn prepare() {
    for lock in locks() {
        lock.hold();
    }
}

fn release_all() {
    for lock in locks().into_iter().rev() {
        // SAFETY: `prepare` took every lock on this thread before the fork.
        unsafe { lock.release() };
    }
}

extern "C" fn parent() {
    release_all();
}

extern "C" fn child() {
    release_all();
    for reset in CHILD_RESETS {
        reset();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Children forked while other threads take every library lock in turn can still take
    /// every one of them: none is inherited held.
    #[test]
    fn a_child_never_inherits_a_held_lock() {
        super::ensure_registered();
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..3)
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
                            _ => {
                                let _ = crate::notify::flush(std::time::Duration::ZERO);
                                let _ = crate::net::tls::handshake_config_for_tests();
                            }
                        }
                    }
                })
            })
            .collect();
        for _ in 0..50 {
            // SAFETY: the child only takes library locks (with a watchdog) and exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: alarm only schedules SIGALRM, whose default action ends the child.
                unsafe { libc::alarm(10) };
                let ok = crate::config::configure("otp_ttl_seconds", None).is_ok()
                    && crate::otp::generate().is_ok()
                    && crate::login::attempts_left(b"192.0.2.1").is_ok()
                    && crate::notify::flush(std::time::Duration::ZERO).is_ok()
                    && crate::net::tls::handshake_config_for_tests();
                // SAFETY: _exit ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(i32::from(!ok)) };
            }
            assert!(pid > 0, "fork failed");
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            unsafe { libc::waitpid(pid, &mut status, 0) };
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
            let mut status = 0;
            let mut waited = 0;
            loop {
                // SAFETY: polls the child just forked.
                let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                if r == pid {
                    break;
                }
                waited += 1;
                if waited > 3000 {
                    // SAFETY: kills the stuck child we forked.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    panic!("a child forked mid-append never got the audit lock");
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
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
