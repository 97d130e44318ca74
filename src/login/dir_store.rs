//! The login state of one host: a file in `state_dir`, shared by every process that uses it
//! (pre-fork workers, sshd's per-connection processes, a reloaded service).
//!
//! Layout: `<state_dir>/lock` (never deleted, never renamed: the lock lives on it) and
//! `<state_dir>/state` (the state's text form, replaced whole). A transaction takes an
//! exclusive `flock` on `lock` with a deadline (`slot_timeout_ms`), reads `state`, applies the
//! rules and, when they changed something, writes `state.tmp` and renames it over `state`, all
//! before the lock is released: a process killed at any point leaves the old or the new state,
//! never a torn or empty one. Files are created 0600 and opened with `O_NOFOLLOW`; the
//! directory itself is checked when `state_dir` is configured. A missing `state` is a fresh
//! host; a damaged or unreadable one is a denial naming the file, never an empty table. Time is
//! the wall clock (a boot clock would restart at zero after a reboot); the rules fail closed on
//! a clock stepped back. It must never follow a link, never read before locking, and never
//! delete the lock file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::state::LoginState;
use super::store::LoginStore;
use crate::error::{Error, Result};

/// The state file's size limit: far above what the library writes (10,000 keys).
const MAX_STATE_BYTES: u64 = 16 << 20;

/// The state in one directory.
pub struct DirStore<'a> {
    dir: &'a Path,
    timeout: Duration,
}

fn open_options(write: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if write {
        o.write(true).create(true);
    }
    o
}

impl<'a> DirStore<'a> {
    /// The store in `dir`; operations wait for the lock at most `timeout`.
    pub fn new(dir: &'a Path, timeout: Duration) -> Self {
        DirStore { dir, timeout }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn fail(&self, what: &str, file: &Path, e: impl std::fmt::Display) -> Error {
        let msg = format!("state_dir: {what} {}: {e}", file.display());
        log::error!("{msg}");
        Error::Backend(msg)
    }

    fn read(&self) -> Result<(LoginState, Option<Vec<u8>>)> {
        let path = self.path("state");
        let mut f = match open_options(false).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((LoginState::default(), None))
            }
            Err(e) => return Err(self.fail("cannot open", &path, e)),
        };
        let mut bytes = Vec::new();
        (&mut f)
            .take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.fail("cannot read", &path, e))?;
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(self.fail("refusing", &path, "the file is larger than any state"));
        }
        let st =
            LoginState::decode(&bytes).map_err(|d| self.fail("damaged state in", &path, d.0))?;
        Ok((st, Some(bytes)))
    }

    fn write(&self, text: &str) -> Result<()> {
        let tmp = self.path("state.tmp");
        let mut f = open_options(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| self.fail("cannot create", &tmp, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| self.fail("cannot write", &tmp, e))?;
        drop(f);
        let path = self.path("state");
        std::fs::rename(&tmp, &path).map_err(|e| self.fail("cannot replace", &path, e))
    }
}

impl LoginStore for DirStore<'_> {
    fn transact(
        &self,
        what: &'static str,
        f: &mut dyn FnMut(&mut LoginState, u64) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let _turn = super::store::shared_turn(deadline, what)?;
        let lock_path = self.path("lock");
        let lock: File = open_options(true)
            .open(&lock_path)
            .map_err(|e| self.fail("cannot open", &lock_path, e))?;
        let _held = crate::sys::flock_exclusive_until(&lock, deadline).map_err(|e| {
            let e = if e.kind() == std::io::ErrorKind::TimedOut {
                format!(
                    "still held by another process after {} ms ({what})",
                    self.timeout.as_millis()
                )
            } else {
                e.to_string()
            };
            self.fail("cannot lock", &lock_path, e)
        })?;
        let (mut st, old) = self.read()?;
        if f(&mut st, crate::sys::realtime_ms()) {
            let text = st.encode();
            if old.as_deref() != Some(text.as_bytes()) {
                self.write(&text)?;
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("state_dir {}", self.dir.display())
    }
}
