//! The in-process login state: the limiter's table and the active session, for a service that
//! runs as one process (with `slot_url` unset).
//!
//! Owns the two locks, held only for table updates (never across a password check, a slot
//! operation or a log line). It must never be used when a shared slot is configured: then the
//! state lives next to the slot, so that the limits hold across every replica.

use std::time::Duration;

use crate::fork::ForkSafe;

use super::address::LimitKey;
use super::limiter::{Admission, Limiter, Limits, Reservation};
use super::session::{Session, TokenHash};
use super::store::LoginStore;
use crate::config::Settings;
use crate::error::Result;
use crate::otp::Otp;

pub(crate) static LIMITER: ForkSafe<Option<Limiter>> = ForkSafe::new(None);
pub(crate) static SESSION: ForkSafe<Option<Session>> = ForkSafe::new(None);

fn with_limiter<R>(f: impl FnOnce(&mut Limiter) -> R) -> R {
    f(LIMITER.lock().get_or_insert_with(Limiter::default))
}

/// The state of this process, under one operation's settings (the slot it verifies against).
pub struct MemoryStore<'a>(pub &'a Settings);

impl LoginStore for MemoryStore<'_> {
    fn reserve(
        &self,
        key: LimitKey,
        l: &Limits,
        code: Option<Option<&Otp>>,
    ) -> Result<(Reservation, Result<()>)> {
        let r = with_limiter(|t| t.reserve(key, crate::sys::boottime(), l))
            .map_err(Admission::into_error)?;
        // The slot's own lock, not the limiter's, guards the code.
        let verdict = match code {
            Some(c) => crate::otp::verify_with(self.0, c),
            None => Ok(()),
        };
        Ok((r, verdict))
    }

    fn refund(
        &self,
        r: &Reservation,
        forget_address: bool,
        session: Option<&Session>,
    ) -> Result<()> {
        with_limiter(|t| t.refund(r, forget_address));
        if let Some(s) = session {
            *SESSION.lock() = Some(*s);
        }
        Ok(())
    }

    fn check_session(&self, token: &TokenHash, now: Duration) -> Result<bool> {
        Ok(SESSION
            .lock()
            .as_ref()
            .is_some_and(|s| s.admits(token, now)))
    }

    fn end_session(&self, token: &TokenHash, now: Duration) -> Result<bool> {
        let mut s = SESSION.lock();
        let mine = s.as_ref().is_some_and(|s| s.admits(token, now));
        if mine {
            *s = None;
        }
        Ok(mine)
    }

    fn attempts_left(&self, key: LimitKey, l: &Limits, now: Duration) -> Result<u32> {
        Ok(with_limiter(|t| t.attempts_left(key, now, l)))
    }

    fn reset(&self, key: LimitKey) -> Result<()> {
        with_limiter(|t| t.reset(key));
        Ok(())
    }
}

/// Forgets every count and the session (tests, and a child after fork keeps its parent's).
pub fn clear_all() {
    *LIMITER.lock() = None;
    *SESSION.lock() = None;
}
