//! The panic boundary every export goes through.
//!
//! A panic must never unwind into C (that aborts the host). [`guard`] catches it and returns
//! a per-type default, and the library stays usable: parking_lot locks are not poisoned, and
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

/// Runs an export's body: installs the library's logger once, then catches any panic.
pub fn guard<R: PanicDefault>(body: impl FnOnce() -> R) -> R {
    super::logger::install();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(_) => {
            log::error!(
                "a panic was caught at the C boundary; the call failed, the library stays usable"
            );
            R::on_panic()
        }
    }
}
