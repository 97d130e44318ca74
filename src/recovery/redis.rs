//! Used recovery codes in Redis/Valkey, next to the slot: one set per set of codes under the
//! `slot_key` prefix (`<slot_key>:recovery:used:<file id in hex>`), so a code is used at most
//! once across every replica.
//!
//! A consume is one script (`SADD`, whose answer says whether the member was new), sent once
//! and never repeated (a repeat would read as "already used": a denial, never a grant), and
//! followed by `WAIT` when `slot_wait_replicas` is set. The set has no expiry: a new set of
//! codes has a new id. It must never send a code to the server, only the set's id and an index.

use super::{FileId, UsedCodes};
use crate::config::Settings;
use crate::error::Result;
use crate::otp::redis_conn::SessionError;
use crate::otp::redis_slot::{sha1_hex, Lua, RedisSlot};
use crate::otp::resp::Reply;

const CONSUME_SRC: &str = r"
return redis.call('SADD', KEYS[1], ARGV[1])
";

static CONSUME: Lua = Lua::new(CONSUME_SRC, || sha1_hex(CONSUME_SRC));

/// The configured server, for one call.
pub struct RedisUsed<'a> {
    slot: RedisSlot<'a>,
    prefix: &'a str,
    wait_replicas: bool,
}

impl<'a> RedisUsed<'a> {
    /// The store next to the configured slot; `None` when the slot is in-process.
    pub fn of(s: &'a Settings) -> Option<RedisUsed<'a>> {
        let url = s.slot.url.as_ref()?;
        Some(RedisUsed {
            slot: RedisSlot::new(url, &s.slot),
            prefix: &s.slot.key,
            wait_replicas: s.slot.wait_replicas > 0,
        })
    }

    fn key(&self, file: &FileId) -> String {
        let hex: String = file.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:recovery:used:{hex}", self.prefix)
    }
}

impl UsedCodes for RedisUsed<'_> {
    fn consume(&self, file: &FileId, index: u32) -> Result<bool> {
        let key = self.key(file);
        let member = index.to_string();
        self.slot
            .session("consuming a recovery code", false, |conn, deadline| {
                let added = match self.slot.script_with_keys(
                    conn,
                    &CONSUME,
                    &[key.as_bytes()],
                    &[member.as_bytes()],
                )? {
                    Reply::Int(n @ (0 | 1)) => n == 1,
                    _ => {
                        return Err(SessionError::Unexpected(
                            "unexpected reply to the recovery script",
                        ))
                    }
                };
                if added && self.wait_replicas {
                    self.slot.replicate(conn, deadline)?;
                }
                Ok(added)
            })
    }

    fn used(&self, file: &FileId) -> Result<u32> {
        let key = self.key(file);
        self.slot
            .session("counting used recovery codes", true, |conn, _| {
                match conn.call(&[b"SCARD", key.as_bytes()])? {
                    Reply::Int(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(n as u32),
                    Reply::Error(e) => Err(SessionError::refused("SCARD", &e)),
                    _ => Err(SessionError::Unexpected("unexpected reply to SCARD")),
                }
            })
    }
}
