//! The in-process login state, for a service that runs as one process (neither `state_dir`
//! nor `slot_url` set).
//!
//! Owns one mutex, held only for a transaction on the state (never across a password check, a
//! delivery or a log line), and the rule that this state must not silently split: a process
//! forked from the one that configured the library, while that one still runs (a pre-fork
//! master and its workers, a server that forks per connection), is refused, because each
//! would keep limits of its own. A daemon that configures, forks once and lets its parent exit
//! keeps working. It must never be used when a host-wide or fleet store is configured.

use super::state::LoginState;
use super::store::LoginStore;
use crate::error::{Error, Result};
use crate::fork::ForkSafe;

pub(crate) static STATE: ForkSafe<Option<LoginState>> = ForkSafe::new(None);

/// The state of this process.
pub struct MemoryStore;

impl LoginStore for MemoryStore {
    fn transact(
        &self,
        _what: &'static str,
        f: &mut dyn FnMut(&mut LoginState, u64) -> bool,
    ) -> Result<()> {
        let now = crate::sys::boottime().as_millis() as u64;
        let mut guard = STATE.lock();
        f(guard.get_or_insert_with(LoginState::default), now);
        Ok(())
    }

    fn describe(&self) -> String {
        "in-process (this process only)".into()
    }
}

/// Refuses a login call in a process forked from `configured_in` while that process runs.
pub fn check_not_split(configured_in: u32) -> Result<()> {
    let me = crate::sys::pid();
    if configured_in == 0 || configured_in == me || !crate::sys::process_alive(configured_in) {
        return Ok(());
    }
    Err(Error::NotConfigured(
        "the login state is in-process, but this process was forked from the one that \
         configured the library, which still runs: each would keep its own limits and codes. \
         Set state_dir (processes of one host) or slot_url (several hosts)",
    ))
}

/// Forgets every count, the pending code and the session (tests).
pub fn clear_all() {
    *STATE.lock() = None;
}
