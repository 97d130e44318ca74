//! Where the login state lives: the one interface the three stores keep, and the choice among
//! them.
//!
//! In-process (`memory`) for a single process, `state_dir` (`dir_store`) for every process of
//! one host, Redis/Valkey (`shared`) for a fleet. Each keeps one [`LoginState`] and runs every
//! read-check-write of an attempt as one transaction under its lock, on its own clock, so the
//! rules of `state.rs` hold the same everywhere. A store that cannot answer is an error (a
//! denial), never an empty state. It must never evaluate an attempt that it has not counted
//! in the same or an earlier transaction.

use std::time::Instant;

use super::state::LoginState;
use crate::config::Settings;
use crate::error::{Error, Result};

/// Takes this process's turn for a shared store (see `turn`), giving up at `deadline`.
pub(crate) fn shared_turn(deadline: Instant, what: &'static str) -> Result<super::turn::Turn> {
    super::turn::take(deadline).ok_or_else(|| {
        let msg = format!("the login state is busy: no turn before the deadline ({what})");
        log::error!("{msg}");
        Error::Backend(msg)
    })
}

/// One store of the login state.
pub trait LoginStore {
    /// Runs `f` on the state under the store's lock, with the store's clock in milliseconds;
    /// when `f` returns true the state is written back before the lock is released. An error
    /// means nothing was written (and the caller must deny).
    fn transact(
        &self,
        what: &'static str,
        f: &mut dyn FnMut(&mut LoginState, u64) -> bool,
    ) -> Result<()>;

    /// What `breakglass status` calls it.
    fn describe(&self) -> String;
}

/// Runs `f` in one transaction of `store` and returns what it returns.
pub fn with<R>(
    store: &dyn LoginStore,
    what: &'static str,
    f: impl FnOnce(&mut LoginState, u64) -> (R, bool),
) -> Result<R> {
    let mut f = Some(f);
    let mut out = None;
    store.transact(what, &mut |st, now| {
        let (r, changed) = (f.take().expect("a transaction runs its closure once"))(st, now);
        out = Some(r);
        changed
    })?;
    out.ok_or(Error::Internal("a login store did not run its transaction"))
}

/// The store the settings call for: Redis with `slot_url`, files with `state_dir`, else this
/// process (refused in a child forked from the process that configured it while that one
/// runs: the two would keep separate limits).
pub fn of(s: &Settings) -> Result<Box<dyn LoginStore + '_>> {
    #[cfg(feature = "redis")]
    if let Some(shared) = super::shared::SharedStore::of(s) {
        return Ok(Box::new(shared));
    }
    if let Some(dir) = &s.state_dir {
        return Ok(Box::new(super::dir_store::DirStore::new(
            dir,
            s.slot.timeout,
        )));
    }
    super::memory::check_not_split(s.configured_in)?;
    Ok(Box::new(super::memory::MemoryStore))
}
