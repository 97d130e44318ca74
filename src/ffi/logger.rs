//! Routes the library's `log` records to a C callback, or to stderr by default.
//!
//! Owns the callback, its `user_data` and the level filter. Only the C ABI installs this
//! logger; the Rust API leaves logging to the host's own. The callback runs on whichever thread
//! logged, worker threads included. After `bg_set_logger` returns, the old callback is never
//! called again and no call to it is still running. Records logged from inside the callback are
//! dropped rather than fed back into it. The lock favours readers (so a callback that calls
//! back into the library cannot deadlock), so under a steady stream of records a
//! `bg_set_logger` may wait for a gap between callbacks. `fork()` never waits for a callback:
//! the child starts with a fresh lock.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::io::Write;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::RecursiveRwLock;

use crate::error::{Error, Result};

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

// SAFETY: the header tells callers that `user_data` is handed to the callback on any thread;
// the library never dereferences it.
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

type SinkLock = RecursiveRwLock<Option<Sink>>;

/// The sink (`None`: the default stderr logger) behind a reader-biased lock, so a callback that
/// logs again (whose record is then dropped) or calls other exports cannot deadlock behind a
/// waiting `bg_set_logger`.
static INITIAL: SinkLock = RecursiveRwLock::new(None);

/// Where the current lock lives: null means [`INITIAL`]. A forked child gets a fresh lock here
/// (see [`reset_in_child`]), so `fork()` never has to wait for callbacks in progress.
static CURRENT: AtomicPtr<SinkLock> = AtomicPtr::new(std::ptr::null_mut());

fn sink() -> &'static SinkLock {
    let p = CURRENT.load(Ordering::Acquire);
    if p.is_null() {
        &INITIAL
    } else {
        // SAFETY: non-null values come only from Box::leak in reset_in_child and are never freed.
        unsafe { &*p }
    }
}

thread_local! {
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

struct FfiLogger;

static LOGGER: FfiLogger = FfiLogger;
static INSTALL: Once = Once::new();

/// Makes this the `log` crate's logger, once, with the default level (warn).
pub fn install() {
    INSTALL.call_once(|| {
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(LevelFilter::Warn);
        }
    });
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
    *sink().write() = callback.map(|callback| Sink {
        callback,
        user_data,
    });
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
        let sink = sink().read();
        match &*sink {
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
                let _ = writeln!(std::io::stderr().lock(), "breakglass: {label}: {text}");
            }
        }
    }

    fn flush(&self) {}
}

/// In a forked child: a fresh lock holding the parent's sink. A thread of the parent may have
/// been inside a callback (holding a read lock) at the instant of the fork; that thread does
/// not exist here, and its lock would stay held for ever.
pub(crate) fn reset_in_child() {
    let old = sink();
    // Only a half-finished bg_set_logger could have left the value torn: then fall back to
    // the default logger.
    let value = if old.is_locked_exclusive() {
        None
    } else {
        // SAFETY: the child has one thread, and no writer held the lock at the fork.
        unsafe { *old.data_ptr() }
    };
    let fresh: &'static SinkLock = Box::leak(Box::new(RecursiveRwLock::new(value)));
    CURRENT.store(std::ptr::from_ref(fresh).cast_mut(), Ordering::Release);
}
