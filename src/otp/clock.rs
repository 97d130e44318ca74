//! Where the in-process slot reads time, so tests can drive it.
//!
//! Must never read the wall clock: a code's age is measured on a monotonic clock only.

use std::time::Duration;

/// A monotonic time source.
pub trait Clock: Send + Sync {
    /// Time since an arbitrary, fixed origin. Never goes backwards.
    fn now(&self) -> Duration;
}

/// The production clock: `CLOCK_BOOTTIME`, which keeps counting through suspend.
#[derive(Debug, Default, Clone, Copy)]
pub struct BootClock;

impl Clock for BootClock {
    fn now(&self) -> Duration {
        crate::sys::boottime()
    }
}
