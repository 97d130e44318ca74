//! The in-process login state: the limiter's table and the active session, for a service that
//! runs as one process (with `slot_url` unset).
//!
//! Owns the two locks, held only for table updates (never across a password check, a slot
//! operation or a log line). It must never be used when a shared slot is configured: then the
//! state lives next to the slot, so that the limits hold across every replica.

use std::time::Duration;

use parking_lot::Mutex;

use super::address::LimitKey;
use super::limiter::{Admission, Limiter, Limits, Reservation};
use super::session::{Session, TokenHash};

pub(crate) static LIMITER: Mutex<Option<Limiter>> = Mutex::new(None);
pub(crate) static SESSION: Mutex<Option<Session>> = Mutex::new(None);

fn with_limiter<R>(f: impl FnOnce(&mut Limiter) -> R) -> R {
    f(LIMITER.lock().get_or_insert_with(Limiter::default))
}

/// See [`Limiter::reserve`].
pub fn reserve(key: LimitKey, now: Duration, l: &Limits) -> Result<Reservation, Admission> {
    with_limiter(|t| t.reserve(key, now, l))
}

/// See [`Limiter::refund`].
pub fn refund(r: &Reservation, forget_address: bool) {
    with_limiter(|t| t.refund(r, forget_address))
}

/// See [`Limiter::reset`].
pub fn reset(key: LimitKey) {
    with_limiter(|t| t.reset(key))
}

/// See [`Limiter::attempts_left`].
pub fn attempts_left(key: LimitKey, now: Duration, l: &Limits) -> u32 {
    with_limiter(|t| t.attempts_left(key, now, l))
}

/// Makes `session` the one active session.
pub fn start_session(session: Session) {
    *SESSION.lock() = Some(session);
}

/// Whether `token` is the active, unexpired session.
pub fn check_session(token: &TokenHash, now: Duration) -> bool {
    SESSION
        .lock()
        .as_ref()
        .is_some_and(|s| s.admits(token, now))
}

/// Ends the session if `token` is its token; true when it was.
pub fn end_session(token: &TokenHash, now: Duration) -> bool {
    let mut s = SESSION.lock();
    let mine = s.as_ref().is_some_and(|s| s.admits(token, now));
    if mine {
        *s = None;
    }
    mine
}

/// Forgets every count and the session (tests, and a child after fork keeps its parent's).
pub fn clear_all() {
    *LIMITER.lock() = None;
    *SESSION.lock() = None;
}
