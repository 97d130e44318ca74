//! The one-time-code slot: issue, verify once, expire.
//!
//! Owns the contract every backend keeps (see [`decide`]) and picks the backend from the
//! settings: the in-process slot by default, Redis when `slot_url` is set. It must never fall
//! back from a configured shared slot to the in-process one, and never log a code.

use std::time::Duration;

use crate::config;
use crate::error::{Error, Result};

mod clock;
mod code;
pub(crate) mod memory_slot;
#[cfg(feature = "redis")]
pub(crate) mod redis_slot;

pub use clock::{BootClock, Clock};
pub use code::{Otp, OTP_LEN};
pub use memory_slot::MemorySlot;

/// Where a pending code lives. Both backends keep the same contract:
/// `store` atomically replaces any pending code; `verify` takes the pending record out in the
/// same atomic step that reads it, then calls [`decide`]; `clear` empties the slot.
pub trait SlotBackend {
    /// Makes `code` the one pending code, valid for `ttl` from now.
    fn store(&self, code: &Otp, ttl: Duration) -> Result<()>;
    /// Consumes the pending code, whatever the outcome. `None` stands for input that is not six
    /// ASCII digits: it cannot match, but still consumes.
    fn verify(&self, submitted: Option<&Otp>) -> Result<()>;
    /// Empties the slot.
    fn clear(&self) -> Result<()>;
}

/// A record taken out of a slot, with its age on the slot's own clock.
pub struct Pending {
    /// The issued code.
    pub code: Otp,
    /// How long ago it was issued.
    pub age: Duration,
    /// Its lifetime, fixed when it was issued.
    pub ttl: Duration,
}

/// The contract's order: nothing pending, then expired (even when the code matches), then a
/// constant-time comparison.
pub fn decide(pending: Option<Pending>, submitted: Option<&Otp>) -> Result<()> {
    let pending = pending.ok_or(Error::NoPendingOtp)?;
    if pending.age >= pending.ttl {
        return Err(Error::Expired);
    }
    match submitted {
        Some(code) if pending.code.ct_eq(code) => Ok(()),
        _ => Err(Error::Invalid),
    }
}

fn with_backend<R>(settings: &config::Settings, f: impl FnOnce(&dyn SlotBackend) -> R) -> R {
    #[cfg(feature = "redis")]
    if let Some(url) = &settings.slot.url {
        return f(&redis_slot::RedisSlot::new(url, &settings.slot));
    }
    let _ = settings;
    f(&memory_slot::GLOBAL)
}

/// Issues a new code, replacing any pending one, and returns it.
pub fn generate() -> Result<Otp> {
    // The hot path: the in-process slot needs only the code's life, read in one atomic load.
    let facts = config::slot_facts();
    if !facts.shared {
        let code = Otp::generate()?;
        memory_slot::GLOBAL.store(&code, facts.otp_ttl)?;
        return Ok(code);
    }
    config::with_current(generate_with)
}

/// [`generate`] under the caller's snapshot of the settings.
pub(crate) fn generate_with(settings: &config::Settings) -> Result<Otp> {
    let code = Otp::generate()?;
    with_backend(settings, |slot| slot.store(&code, settings.otp_ttl))?;
    Ok(code)
}

/// Verifies `submitted` against the pending code and consumes it, whatever the outcome.
///
/// Returns `Ok(())` only for a match within the TTL; the denials are [`Error::Invalid`],
/// [`Error::Expired`], [`Error::NoPendingOtp`] and, with a shared slot, [`Error::Backend`].
pub fn verify(submitted: &[u8]) -> Result<()> {
    let code = Otp::parse(submitted);
    if !config::slot_facts().shared {
        return memory_slot::GLOBAL.verify(code.as_ref());
    }
    config::with_current(|settings| with_backend(settings, |slot| slot.verify(code.as_ref())))
}

/// Consumes the pending code without a candidate: what a verify with a missing argument does.
/// The outcome is of no use to anyone, so it is not returned.
pub fn consume() {
    let settings = config::current();
    let _ = with_backend(&settings, |slot| slot.verify(None));
}

/// Empties the slot.
pub fn clear() -> Result<()> {
    clear_with(&config::current())
}

/// [`clear`] under the caller's snapshot of the settings.
pub(crate) fn clear_with(settings: &config::Settings) -> Result<()> {
    with_backend(settings, |slot| slot.clear())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(code: &[u8], age_ms: u64) -> Option<Pending> {
        Some(Pending {
            code: Otp::parse(code).unwrap(),
            age: Duration::from_millis(age_ms),
            ttl: Duration::from_secs(600),
        })
    }

    #[test]
    fn decide_follows_the_contract_order() {
        let code = Otp::parse(b"123456").unwrap();
        assert_eq!(decide(None, Some(&code)), Err(Error::NoPendingOtp));
        assert_eq!(
            decide(pending(b"123456", 600_000), Some(&code)),
            Err(Error::Expired)
        );
        assert_eq!(decide(pending(b"123456", 599_999), Some(&code)), Ok(()));
        assert_eq!(
            decide(pending(b"123457", 0), Some(&code)),
            Err(Error::Invalid)
        );
        assert_eq!(decide(pending(b"123456", 0), None), Err(Error::Invalid));
    }
}
