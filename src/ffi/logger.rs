//! Routes the library's `log` records to a C callback, or to stderr by default.
//!
//! Owns the callback, its `user_data` and the level filter. Only the C ABI installs this
//! logger; the Rust API leaves logging to the host's own. The callback runs on whichever thread
//! logged, worker threads included. After `bg_set_logger` returns, the old callback is never
//! called again and no call to it is still running. Records logged from inside the callback are
//! dropped rather than fed back into it. The lock favours readers (so a callback that calls
//! back into the library cannot deadlock), so under a steady stream of records a
//! `bg_set_logger` may wait for a gap between callbacks. `fork()` never waits for a callback:
//! the child starts with a fresh lock and the last callback set before the fork, even when
//! another thread was inside `bg_set_logger` at that instant.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::error::{Error, Result};
use crate::fork::ForkSafe;
use crate::sync::ReaderBiasedRwLock;

/// Log callback: `level` is 1 error, 2 warn, 3 info, 4 debug, 5 trace; `message` is a
/// NUL-terminated UTF-8 string valid only during the call; `user_data` is what was passed to
/// `bg_set_logger`. Called from the caller's thread and from the library's delivery threads,
/// possibly from several at once; it must not call `bg_set_logger`. A `fork()` in another
/// thread does not wait for callbacks in progress.
#[allow(non_camel_case_types)]
pub type bg_log_fn =
    Option<unsafe extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void)>;

#[derive(Clone, Copy)]
struct Sink {
    callback: unsafe extern "C" fn(i32, *const c_char, *mut c_void),
    user_data: *mut c_void,
}

/// One copy of the sink: a null callback means the default stderr logger.
struct Slot {
    callback: AtomicPtr<()>,
    user_data: AtomicPtr<c_void>,
}

/// The sink, in two slots. A writer (one at a time: it holds the write lock) fills the slot
/// that is not current and then makes it current with one atomic store, so the current slot is
/// always whole. That is what a forked child reads: a thread caught inside `bg_set_logger` at
/// the fork, waiting for the lock or halfway through a write, cannot cost the child the
/// callback.
struct Published {
    slots: [Slot; 2],
    current: AtomicUsize,
}

static PUBLISHED: Published = Published {
    slots: [
        Slot {
            callback: AtomicPtr::new(std::ptr::null_mut()),
            user_data: AtomicPtr::new(std::ptr::null_mut()),
        },
        Slot {
            callback: AtomicPtr::new(std::ptr::null_mut()),
            user_data: AtomicPtr::new(std::ptr::null_mut()),
        },
    ],
    current: AtomicUsize::new(0),
};

impl Published {
    /// The current sink (`None`: stderr).
    fn load(&self) -> Option<Sink> {
        let slot = &self.slots[self.current.load(Ordering::Acquire)];
        let callback = slot.callback.load(Ordering::Relaxed);
        if callback.is_null() {
            return None;
        }
        // SAFETY: a non-null value was stored by `store` from a
        // `unsafe extern "C" fn(i32, *const c_char, *mut c_void)`; function and data pointers
        // have the same size on every platform the crate supports.
        let callback = unsafe {
            std::mem::transmute::<*mut (), unsafe extern "C" fn(i32, *const c_char, *mut c_void)>(
                callback,
            )
        };
        Some(Sink {
            callback,
            user_data: slot.user_data.load(Ordering::Relaxed),
        })
    }

    /// Replaces the sink. Only called with the write lock held, so there is one writer at a
    /// time and no reader in this process looks at the slot being filled.
    fn store(&self, sink: Option<Sink>) {
        let next = 1 - self.current.load(Ordering::Relaxed);
        let slot = &self.slots[next];
        let (callback, user_data) = match sink {
            Some(s) => (s.callback as *mut (), s.user_data),
            None => (std::ptr::null_mut(), std::ptr::null_mut()),
        };
        slot.callback.store(callback, Ordering::Relaxed);
        slot.user_data.store(user_data, Ordering::Relaxed);
        self.current.store(next, Ordering::Release);
    }
}

/// Excludes `bg_set_logger` while callbacks run: reader-biased, so a callback that logs again
/// (whose record is then dropped) or calls other exports cannot deadlock behind a waiting
/// `bg_set_logger`. The sink itself is in [`PUBLISHED`].
type SinkLock = ReaderBiasedRwLock<()>;

/// Nested generations of `fork()` that get a lock of their own.
const GENERATIONS: usize = 64;

/// One sink lock per generation of forks: a child uses the next one (see [`reset_in_child`]),
/// which neither it nor any ancestor ever used, so `fork()` never has to wait for callbacks in
/// progress and the child's reset allocates nothing.
static SINK_LOCKS: [SinkLock; GENERATIONS] = [const { ReaderBiasedRwLock::new(()) }; GENERATIONS];

/// This process's generation: the index of its lock in [`SINK_LOCKS`].
static GENERATION: AtomicUsize = AtomicUsize::new(0);

fn sink_lock() -> &'static SinkLock {
    &SINK_LOCKS[GENERATION.load(Ordering::Acquire)]
}

/// Only a child reset: the fork handlers never take the sink lock (that would make `fork()`
/// wait for callbacks), they only give the child a fresh one.
static FORK: ForkSafe<()> = ForkSafe::with_child_reset((), Some(reset_in_child));

thread_local! {
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

struct FfiLogger;

static LOGGER: FfiLogger = FfiLogger;
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Makes this the `log` crate's logger, once, with the default level (warn). No `Once`: a fork
/// while another thread installs must not leave the child waiting for it for ever.
pub fn install() {
    // A load first: every export calls this, and a swap is a write to a shared line.
    if !INSTALLED.load(Ordering::Acquire) && !INSTALLED.swap(true, Ordering::AcqRel) {
        FORK.register();
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(LevelFilter::Warn);
        }
    }
}

fn filter(max_level: i32) -> Option<LevelFilter> {
    Some(match max_level {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        5 => LevelFilter::Trace,
        _ => return None,
    })
}

/// Replaces the callback (`None`: stderr) and the level filter (0 off … 5 trace).
pub fn set(callback: bg_log_fn, user_data: *mut c_void, max_level: i32) -> Result<()> {
    let level =
        filter(max_level).ok_or_else(|| Error::Argument("max_level must be 0 to 5".into()))?;
    if IN_CALLBACK.get() {
        return Err(Error::Argument(
            "bg_set_logger cannot be called from the log callback".into(),
        ));
    }
    install();
    // Taking the write lock waits for calls in progress on other threads to return.
    let _writer = sink_lock().write();
    PUBLISHED.store(callback.map(|callback| Sink {
        callback,
        user_data,
    }));
    log::set_max_level(level);
    Ok(())
}

impl Log for FfiLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Dependencies' debug and trace records print whole request lines (a webhook URL's
        // token included) and raw headers: only their warnings and errors pass.
        let ours = metadata.target().starts_with("breakglass");
        metadata.level() <= log::max_level() && (ours || metadata.level() <= Level::Warn)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) || IN_CALLBACK.get() {
            return;
        }
        let text = record.args().to_string();
        let _reader = sink_lock().read();
        match PUBLISHED.load() {
            Some(sink) => {
                let message = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
                IN_CALLBACK.set(true);
                // SAFETY: the callback and user_data were given by the caller for this purpose;
                // the message outlives the call.
                unsafe { (sink.callback)(record.level() as i32, message.as_ptr(), sink.user_data) };
                IN_CALLBACK.set(false);
            }
            None => {
                let label = match record.level() {
                    Level::Error => "error",
                    Level::Warn => "warn",
                    Level::Info => "info",
                    Level::Debug => "debug",
                    Level::Trace => "trace",
                };
                write_stderr(format!("breakglass: {label}: {text}\n").as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Writes `line` to file descriptor 2 with `write(2)` directly: std's `stderr()` takes a lock
/// that a thread of the parent may have held at a fork, which would hang the child's first log
/// line. One buffer per record, so concurrent lines do not interleave.
fn write_stderr(mut line: &[u8]) {
    while !line.is_empty() {
        // SAFETY: writes from a valid buffer of the given length to fd 2.
        let n = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        line = &line[n as usize..];
    }
}

/// In a forked child: a fresh lock. A thread of the parent may have been inside a callback
/// (holding a read lock) or inside `bg_set_logger` (holding or waiting for the write lock) at
/// the instant of the fork; that thread does not exist here, and its lock would stay held for
/// ever. The sink needs nothing: [`PUBLISHED`]'s current slot is always whole.
fn reset_in_child() {
    // Past the last generation (63 nested forks) a child keeps its parent's lock: it can then
    // hang only if a callback was running at that fork.
    let next = GENERATION.load(Ordering::Relaxed) + 1;
    if next < GENERATIONS {
        GENERATION.store(next, Ordering::Release);
    }
}
