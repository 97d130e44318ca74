//! Recovery codes: the second way in when the code email cannot arrive.
//!
//! Owns the single-use codes an admin prints once and keeps offline (`code`), the file of
//! their hashes named by `recovery_codes_file` (`file`), and [`check`], which the login calls
//! after a right password. Which codes are used is kept in the login state (in-process,
//! `state_dir` or Redis, see `login::state`), consumed there in one transaction before the
//! login is granted, so a code works at most once on this host or fleet.
//! It must never store, log or return a code, and never grant on an error: a file or store that
//! cannot answer is a denial with a reason.

mod code;
mod file;

pub use code::{normalise, CODE_BITS, CODE_CHARS, GROUP};
pub use file::{mode_problem, write_new, CodesFile, FileId, DEFAULT_COUNT, MAX_COUNT};

use crate::config::address::LimitKey;
use crate::config::Settings;
use crate::error::{Error, Result};

/// Below this many codes left, the alarm and `check-config` warn.
pub const LOW_WATER: u32 = crate::notify::RECOVERY_LOW_WATER;

/// Whether `typed` is tried as a recovery code: anything that is not six ASCII digits (the
/// code form is one field; six digits are the emailed code).
pub fn is_candidate(typed: &[u8]) -> bool {
    crate::otp::Otp::parse(typed).is_none()
}

/// A recovery code accepted and consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemed {
    /// Codes of the current set still unused.
    pub left: u32,
    /// Codes in the set.
    pub total: u32,
}

/// Which code of which set `typed` is (not yet consumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The set's id.
    pub set: FileId,
    /// The code's place in the set.
    pub index: u32,
    /// Codes in the set.
    pub total: u32,
}

/// Checks `typed` against `recovery_codes_file` for the client `key`: `Ok(None)` when it is no
/// code of the set. The hash check waits its turn at the same fair gate as password checks (a
/// gate that stays busy is `Error::LockedOut`, nothing checked); an unreadable or unsafe file is
/// a denial (`Error::NotConfigured`). Consuming the match is the login state's job.
pub fn check(s: &Settings, key: LimitKey, typed: &[u8]) -> Result<Option<Match>> {
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
    let _place = crate::login::admission::GATE
        .enter(key, crate::login::admission::MAX_WAIT)
        .map_err(|_| Error::LockedOut("too many hash checks are waiting; try again in a moment"))?;
    Ok(set.find(typed).map(|index| Match {
        set: set.id(),
        index,
        total: set.len(),
    }))
}

/// Marks code `index` of `set` used in the login state the settings name (in-process,
/// `state_dir` or Redis): `true` when it was unused. Of racing consumes exactly one wins.
pub fn consume(s: &Settings, set: &FileId, index: u32) -> Result<bool> {
    crate::login::consume_recovery(s, set, index)
}

/// Codes of the configured set still unused (for `check-config` and operators).
pub fn left(s: &Settings, path: &std::path::Path) -> Result<(u32, u32)> {
    let set = CodesFile::load(path).map_err(Error::Argument)?;
    let used = crate::login::recovery_used(s, &set.id())?;
    Ok((set.len().saturating_sub(used), set.len()))
}

/// Raises the alarm and writes the audit record of a used recovery code; the alarm's event id.
pub(crate) fn raise_alarm(
    s: &std::sync::Arc<Settings>,
    ip: Option<&[u8]>,
    used: Redeemed,
) -> String {
    let id = crate::notify::alert_recovery_code_used(s, ip, used.left, used.total);
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
