//! The panic boundary every export goes through.
//!
//! A panic must never unwind into C (that aborts the host). [`guard`] catches it and returns
//! a per-type default, and the library stays usable: its locks (`sync`) are not poisoned, and
//! no lock is held across a call that can panic.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::status::bg_status;

/// What an export returns when its body panicked.
pub trait PanicDefault {
    /// The value for a caught panic.
    fn on_panic() -> Self;
}

impl PanicDefault for bg_status {
    fn on_panic() -> Self {
        bg_status::BG_ERR_INTERNAL
    }
}

impl PanicDefault for *const c_char {
    fn on_panic() -> Self {
        c"internal error".as_ptr()
    }
}

impl PanicDefault for usize {
    fn on_panic() -> Self {
        0
    }
}

/// Runs an export's body: forgets the previous call's error text, then as [`run`].
pub fn guard<R: PanicDefault>(body: impl FnOnce() -> R) -> R {
    super::last_error::clear();
    run(body)
}

/// Installs the library's logger once, then runs `body`, catching any panic. For the exports
/// that must leave the last error text alone (`bg_last_error` and the look-ups).
pub fn run<R: PanicDefault>(body: impl FnOnce() -> R) -> R {
    // Normally done when the library was loaded; a static link may have left that out.
    crate::fork::ensure_registered();
    super::logger::install();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(_) => {
            let why =
                "a panic was caught at the C boundary; the call failed, the library stays usable";
            super::last_error::record(&format!("internal error: {why}"));
            log::error!("{why}");
            R::on_panic()
        }
    }
}
