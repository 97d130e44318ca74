//! Operating-system glue: the boot-time clock, fork handlers, signal masks, the host name.
//!
//! This is the one module outside `ffi` that may use `unsafe`, and only for single libc calls
//! whose contracts are spelled out beside them. It must never hold a lock of its own or call
//! back into the logger: the fork handlers run at moments when nothing else may be touched.

use std::sync::Once;
use std::time::Duration;

/// Time since boot, suspend included, from `CLOCK_BOOTTIME`.
///
/// Monotonic, so wall-clock steps cannot stretch or shorten a code's life; unlike
/// `CLOCK_MONOTONIC` (what `Instant` reads) it keeps counting while the machine sleeps, so a
/// suspended host cannot keep a code alive past its TTL in real time.
pub fn boottime() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on every Linux the
    // crate supports, and clock_gettime writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        // Only EINVAL/EFAULT are possible, neither of which can happen with the above.
        return std::time::Instant::now().elapsed();
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// This process's id; after a fork it differs from the parent's.
pub fn pid() -> u32 {
    std::process::id()
}

/// The machine's host name, for alert texts; "unknown-host" when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `len` bytes; gethostname NUL-terminates when it fits,
    // and we only read up to the first NUL or the buffer's end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "unknown-host".to_owned()
    } else {
        name
    }
}

/// Blocks SIGPIPE in the calling thread.
///
/// Called first thing in every worker the library starts: a write to a pipe whose reader
/// died (the sendmail transport) then fails with EPIPE instead of killing a host that never
/// ignored the signal. Other threads of the host are left alone.
pub fn block_sigpipe_in_this_thread() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

static FORK_HANDLERS: Once = Once::new();

/// Registers the library's `pthread_atfork` handlers, once per process.
///
/// The prepare handler takes every library lock, so that no other thread holds one at the
/// instant of the fork; the parent handler releases them; the child handler releases them and
/// resets what a child must not inherit (the pending code, the parent's queue and workers).
pub fn ensure_fork_handlers() {
    FORK_HANDLERS.call_once(|| {
        // SAFETY: the handlers are plain `extern "C" fn()`s that only lock, unlock and store;
        // none of them can panic, so nothing unwinds through libc.
        let rc = unsafe {
            libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child))
        };
        if rc != 0 {
            log::error!("pthread_atfork failed ({rc}); fork() while the library is busy is unsafe");
        }
    });
}

// Lock order, the same in all three handlers: settings, slot, queue, Redis pool, TLS roots. No
// library code path holds two of these at once, and none logs while holding one, so taking them
// all here cannot deadlock against a running thread. The logger's lock is not taken: that would
// make fork() wait for log callbacks, which may need something the forking thread holds
// (Python's GIL); the child gets a fresh one instead.
extern "C" fn fork_prepare() {
    crate::config::fork_hold();
    crate::otp::memory_slot::fork_hold();
    crate::login::fork_hold();
    crate::notify::fork_hold();
    #[cfg(feature = "redis")]
    crate::otp::redis_pool::fork_hold();
    crate::net::tls::fork_hold();
}

extern "C" fn fork_parent() {
    crate::net::tls::fork_release();
    #[cfg(feature = "redis")]
    crate::otp::redis_pool::fork_release();
    crate::notify::fork_release();
    crate::login::fork_release();
    crate::otp::memory_slot::fork_release();
    crate::config::fork_release();
}

extern "C" fn fork_child() {
    // The pool's connections stay where they are: each is tagged with its opener's pid and
    // fork count, so the child never uses one (freeing them here would be no safer).
    crate::net::tls::fork_release();
    #[cfg(feature = "redis")]
    {
        crate::otp::redis_pool::note_fork_in_child();
        crate::otp::redis_pool::fork_release();
    }
    crate::notify::fork_release();
    crate::login::fork_release();
    crate::otp::memory_slot::fork_release();
    crate::config::fork_release();
    crate::ffi::logger::reset_in_child();
    crate::otp::memory_slot::reset_in_child();
}

/// Takes `lock` for the duration of a fork: the guard is forgotten, and [`fork_unlock`] releases
/// it in the parent and the child.
pub fn fork_lock<T>(lock: &parking_lot::Mutex<T>) {
    std::mem::forget(lock.lock());
}

/// Releases a lock taken by [`fork_lock`].
pub fn fork_unlock<T>(lock: &parking_lot::Mutex<T>) {
    // SAFETY: called only from the parent and child fork handlers, after fork_prepare took this
    // very lock with fork_lock and forgot the guard; this thread (or its copy) is its owner.
    unsafe { lock.force_unlock(Default::default()) }
}

/// [`fork_lock`] for a reader-writer lock: takes it for writing.
pub fn fork_lock_rw<T>(lock: &parking_lot::RwLock<T>) {
    std::mem::forget(lock.write());
}

/// Releases a lock taken by [`fork_lock_rw`].
pub fn fork_unlock_rw<T>(lock: &parking_lot::RwLock<T>) {
    // SAFETY: as for fork_unlock; fork_lock_rw took the write lock and forgot the guard, whose
    // acquisition state is the stateless marker that Default rebuilds.
    unsafe { lock.force_unlock_write(Default::default()) }
}
