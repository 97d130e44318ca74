//! Where the login state lives: the one interface both stores keep.
//!
//! The in-process store (`memory`) serves a single process; the shared store (`shared`) keeps
//! the state next to the Redis/Valkey slot for a fleet. It must never let a caller evaluate an
//! attempt that the store has not counted first.

use std::time::Duration;

use super::address::LimitKey;
use super::limiter::{Limits, Reservation};
use super::session::{Session, TokenHash};
use crate::config::Settings;
use crate::error::Result;
use crate::otp::Otp;

/// The login state's operations; every one may fail with `Error::Backend` on a shared store.
pub trait LoginStore {
    /// Admits an attempt from `key` and counts it as a failure before it is evaluated (a
    /// locked-out key is `Error::LockedOut`); with `code`, also verifies it, consuming the
    /// pending code, and returns the verdict beside the reservation.
    fn reserve(
        &self,
        key: LimitKey,
        l: &Limits,
        code: Option<Option<&Otp>>,
    ) -> Result<(Reservation, Result<()>)>;

    /// Takes back what `r` counted (the attempt succeeded); with `forget_address`, the
    /// address's failures go too; with `session`, it becomes the one active session.
    fn refund(
        &self,
        r: &Reservation,
        forget_address: bool,
        session: Option<&Session>,
    ) -> Result<()>;

    /// Whether `token` is the active, unexpired session's.
    fn check_session(&self, token: &TokenHash, now: Duration) -> Result<bool>;

    /// Ends the session if `token` is its token; true when it was.
    fn end_session(&self, token: &TokenHash, now: Duration) -> Result<bool>;

    /// Failures `key` may still make (0 while it, or everyone, is locked out).
    fn attempts_left(&self, key: LimitKey, l: &Limits, now: Duration) -> Result<u32>;

    /// Forgets `key`'s failures and lockout.
    fn reset(&self, key: LimitKey) -> Result<()>;
}

/// The store the settings call for: next to the shared slot when `slot_url` is set.
pub fn of(s: &Settings) -> Box<dyn LoginStore + '_> {
    #[cfg(feature = "redis")]
    if let Some(shared) = super::shared::SharedStore::of(s) {
        return Box::new(shared);
    }
    Box::new(super::memory::MemoryStore(s))
}
