//! Running commands and Lua scripts on the configured Redis/Valkey server, within one deadline.
//!
//! Owns the session loop (a pooled or new connection, one overall deadline of
//! `slot_timeout_ms`, a dead pooled connection replaced once for operations that are safe to
//! repeat), `EVALSHA` with its `SCRIPT LOAD` fallback, and `WAIT` for replicas. Used by the
//! shared slot (`otp::redis_slot`) and the shared login store (`login::shared`). It must never
//! re-send an operation that may have reached the server unless told it is safe, never wait
//! past the deadline, and never put the URL's credentials into an error or log line.

use std::time::Instant;

use super::conn::{RedisConn, SessionError, TargetId};
use super::pool as redis_pool;
use super::resp::Reply;
use crate::config::{SecretUrl, SlotSettings, SlotTarget};
use crate::error::{Error, Result};
use crate::fork::Lazy;
use crate::net::remaining;

/// `WAIT` cannot report more replicas than any real deployment has.
const MAX_REPLICAS_ACKED: i64 = 10_000;

/// A script's source and its SHA1 (how `EVALSHA` names it), computed once.
pub(crate) struct Lua {
    pub(crate) src: &'static str,
    pub(crate) sha: Lazy<String>,
}

impl Lua {
    /// A script; its SHA1 is computed on first use.
    pub(crate) const fn new(src: &'static str, sha: fn() -> String) -> Lua {
        Lua {
            src,
            sha: Lazy::new(sha),
        }
    }
}

pub(crate) fn sha1_hex(text: &str) -> String {
    let digest = crate::digest::sha1_for_names(text.as_bytes());
    crate::text::hex(digest)
}

/// One operation's runner on the configured server.
pub(crate) struct Runner<'a> {
    url: &'a SecretUrl,
    timeout: std::time::Duration,
    wait_replicas: u32,
}

impl<'a> Runner<'a> {
    /// A runner for `url`, bounded by `cfg`'s timeout, waiting for `cfg`'s replicas.
    pub(crate) fn new(url: &'a SecretUrl, cfg: &SlotSettings) -> Self {
        Runner {
            url,
            timeout: cfg.timeout,
            wait_replicas: cfg.wait_replicas,
        }
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> Error {
        let msg = format!("{what} on {} failed: {e}", self.url.redacted());
        log::error!("shared slot: {msg}");
        Error::Backend(msg)
    }

    /// Runs `exchange` on a connection, all within `slot_timeout_ms` from now. The connection
    /// goes back to the pool only when the exchange finished cleanly. A pooled connection that
    /// turns out dead is replaced once, but only for an operation that is `safe_to_repeat`.
    pub(crate) fn session<T>(
        &self,
        what: &str,
        safe_to_repeat: bool,
        mut exchange: impl FnMut(&mut RedisConn, Instant) -> std::result::Result<T, SessionError>,
    ) -> Result<T> {
        let deadline = Instant::now() + self.timeout;
        let id: TargetId = crate::digest::sha256(&[self.url.as_str().as_bytes()]);
        let mut pooled = redis_pool::take(&id);
        loop {
            let reused = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(mut conn) => {
                    conn.set_deadline(deadline);
                    conn
                }
                None => {
                    let target = SlotTarget::parse(self.url.as_str())
                        .map_err(|_| self.fail(what, "the slot URL does not parse"))?;
                    RedisConn::open(&target, id, deadline).map_err(|e| self.fail(what, e))?
                }
            };
            match exchange(&mut conn, deadline) {
                Ok(value) => {
                    redis_pool::put(conn);
                    return Ok(value);
                }
                Err(e)
                    if reused
                        && safe_to_repeat
                        && e.is_dead_connection()
                        && remaining(deadline).is_some() =>
                {
                    continue
                }
                Err(e) => return Err(self.fail(what, e)),
            }
        }
    }

    /// Runs a script by its SHA1 with its keys and arguments, loading it first if the
    /// server's cache lost it. A NOSCRIPT answer means the script did not run, so sending it
    /// again after the load is no replay.
    pub(crate) fn script_with_keys(
        &self,
        conn: &mut RedisConn,
        lua: &Lua,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> std::result::Result<Reply, SessionError> {
        self.script_within(conn, lua, keys, args, super::resp::MAX_REPLY_BYTES)
    }

    /// [`script_with_keys`](Self::script_with_keys), allowing a reply of up to `limit` bytes
    /// (the login state's lease script returns the whole state).
    pub(crate) fn script_within(
        &self,
        conn: &mut RedisConn,
        lua: &Lua,
        keys: &[&[u8]],
        args: &[&[u8]],
        limit: usize,
    ) -> std::result::Result<Reply, SessionError> {
        let count = keys.len().to_string();
        let mut call: Vec<&[u8]> = vec![b"EVALSHA", lua.sha.as_bytes(), count.as_bytes()];
        call.extend_from_slice(keys);
        call.extend_from_slice(args);
        let reply = match conn.call_within(&call, limit)? {
            Reply::Error(e) if e.starts_with("NOSCRIPT") => {
                match conn.call(&[b"SCRIPT", b"LOAD", lua.src.as_bytes()])? {
                    Reply::Bulk(Some(sha)) if sha.as_slice() == lua.sha.as_bytes() => {}
                    Reply::Error(e) => return Err(SessionError::refused("SCRIPT LOAD", &e)),
                    _ => return Err(SessionError::Unexpected("SCRIPT LOAD named another script")),
                }
                conn.call_within(&call, limit)?
            }
            other => other,
        };
        match reply {
            Reply::Error(e) => Err(SessionError::refused("EVALSHA", &e)),
            other => Ok(other),
        }
    }

    /// `WAIT`s for the configured replicas; a shortfall is an error.
    pub(crate) fn replicate(
        &self,
        conn: &mut RedisConn,
        deadline: Instant,
    ) -> std::result::Result<(), SessionError> {
        // The server gives up a little before the socket does, so a shortfall is reported as
        // such rather than as a timeout.
        let left = remaining(deadline).unwrap_or_default();
        let server_wait = left.saturating_sub(left / 5).as_millis().max(1).to_string();
        let wanted = self.wait_replicas.to_string();
        match conn.call(&[b"WAIT", wanted.as_bytes(), server_wait.as_bytes()])? {
            Reply::Int(n) if (0..=MAX_REPLICAS_ACKED).contains(&n) => {
                if n < i64::from(self.wait_replicas) {
                    Err(SessionError::Shortfall {
                        acked: n,
                        wanted: self.wait_replicas,
                    })
                } else {
                    Ok(())
                }
            }
            Reply::Int(_) => Err(SessionError::Unexpected("WAIT count out of range")),
            Reply::Error(e) => Err(SessionError::refused("WAIT", &e)),
            _ => Err(SessionError::Unexpected("unexpected reply to WAIT")),
        }
    }
}
