//! Recovery codes: the second way in when the code email cannot arrive.
//!
//! Owns the single-use codes an admin prints once and keeps offline (`code`), the file of
//! their hashes named by `recovery_codes_file` (`file`), the record of which codes are used
//! (`used`, behind the [`UsedCodes`] interface, in-process or in Redis next to the slot), and
//! [`redeem`], which the login calls after a right password. A code is consumed before the
//! login is granted, atomically in the store, so it works at most once on this host or fleet.
//! It must never store, log or return a code, and never grant on an error: a file or store that
//! cannot answer is a denial with a reason.

mod code;
mod file;
#[cfg(feature = "redis")]
mod redis;
mod used;

pub use code::{normalise, CODE_BITS, CODE_CHARS, GROUP};
pub use file::{mode_problem, write_new, CodesFile, FileId, DEFAULT_COUNT, MAX_COUNT};
pub(crate) use used::{clear_all, USED as USED_LOCK};
pub use used::{MemoryUsed, UsedCodes};

use crate::config::Settings;
use crate::error::{Error, Result};

/// Below this many codes left, the alarm and `check-config` warn.
pub const LOW_WATER: u32 = 3;

/// Whether `typed` is tried as a recovery code: anything that is not six ASCII digits (the
/// code form is one field; six digits are the emailed code).
pub fn is_candidate(typed: &[u8]) -> bool {
    crate::otp::Otp::parse(typed).is_none()
}

/// Where used codes are recorded for these settings: next to the shared slot when
/// `slot_url` is set, else in this process.
pub fn used_store(s: &Settings) -> Box<dyn UsedCodes + '_> {
    #[cfg(feature = "redis")]
    if let Some(r) = redis::RedisUsed::of(s) {
        return Box::new(r);
    }
    let _ = s;
    Box::new(MemoryUsed)
}

/// A recovery code accepted and consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemed {
    /// Codes of the current set still unused.
    pub left: u32,
    /// Codes in the set.
    pub total: u32,
}

/// Checks `typed` against `recovery_codes_file` and consumes the code it matches.
///
/// The hash check runs through the same bounded admission as password checks (a busy gate is
/// `Error::LockedOut`, nothing checked or consumed). No match, input that cannot be a code and
/// a code already used are all `Error::Invalid`; an unreadable file or a store that cannot
/// answer is a denial (`Error::NotConfigured`/`Error::Backend`).
pub fn redeem(s: &Settings, typed: &[u8]) -> Result<Redeemed> {
    let path = s
        .recovery_codes_file
        .as_deref()
        .ok_or(Error::NotConfigured(
            "recovery codes need recovery_codes_file",
        ))?;
    let set = CodesFile::load(path).map_err(|e| {
        log::error!("recovery codes: {e}");
        Error::NotConfigured("recovery_codes_file cannot be read (see the log)")
    })?;
    let matched = crate::login::password::admitted(|| set.find(typed))
        .map_err(|_| Error::LockedOut("too many hash checks are running; try again in a moment"))?;
    let index = matched.ok_or(Error::Invalid)?;
    let store = used_store(s);
    if !store.consume(&set.id(), index)? {
        log::warn!("recovery codes: a code that was already used was offered again");
        return Err(Error::Invalid);
    }
    let used = store.used(&set.id())?;
    let total = set.len();
    Ok(Redeemed {
        left: total.saturating_sub(used),
        total,
    })
}

/// Codes of the configured set still unused (for `check-config` and operators).
pub fn left(s: &Settings, path: &std::path::Path) -> Result<(u32, u32)> {
    let set = CodesFile::load(path).map_err(Error::Argument)?;
    let used = used_store(s).used(&set.id())?;
    Ok((set.len().saturating_sub(used), set.len()))
}

/// The login's hook, called by `login::complete` with the emailed-code verdict of `typed`.
///
/// When that verdict is `Invalid` (a code was pending, so the password was right, and the
/// reservation has consumed it), `typed` is not six digits and `recovery_codes_file` is set,
/// `typed` is redeemed as a recovery code: `Ok(Some(..))` grants. Otherwise the verdict stands
/// (`Ok(None)`: the emailed code was right).
pub(crate) fn in_place_of_code(
    s: &Settings,
    typed: Option<&[u8]>,
    verdict: Result<()>,
) -> Result<Option<Redeemed>> {
    match (verdict, typed) {
        (Err(Error::Invalid), Some(t)) if is_candidate(t) && s.recovery_codes_file.is_some() => {
            redeem(s, t).map(Some)
        }
        (v, _) => v.map(|()| None),
    }
}

/// Raises the alarm and writes the audit record of a used recovery code; the alarm's event id.
pub(crate) fn raise_alarm(s: &Settings, ip: Option<&[u8]>, used: Redeemed) -> String {
    let id = crate::notify::alert_recovery_code_used(ip, used.left, used.total);
    let low = if used.left < LOW_WATER {
        " (fewer than 3: make a new set with breakglass recovery-codes new)"
    } else {
        ""
    };
    crate::audit::record(
        s,
        crate::audit::Event::RecoveryCodeUsed,
        Some(&id),
        ip,
        &format!(
            "recovery code accepted; {} of {} left{low}",
            used.left, used.total
        ),
    );
    id
}
