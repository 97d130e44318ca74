//! The login state of a fleet: failure counts, lockouts, the overall limit and the one
//! session live in Redis/Valkey next to the slot, so the limits hold across every replica.
//!
//! Keys sit under the `slot_key` prefix (`<slot_key>:login:fail:<address or /64>`,
//! `<slot_key>:login:global`, `<slot_key>:login:session`), every one with a TTL no longer than
//! its window, lockout or session. Each attempt is one script that checks the lockouts, counts
//! the attempt and (for a code) takes the pending record, all on the server's clock; a success
//! is a second script on the same pooled connection. Every failure to reach the server is a
//! denial (`BG_ERR_BACKEND`), never an unlimited attempt. It must never evaluate an attempt
//! that was not counted first, and never send a token or a password to the server (only the
//! token's SHA-256).

use std::time::Duration;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::address::LimitKey;
use super::limiter::{Admission, Limits, Reservation};
use super::session::{Session, TokenHash};
use super::store::LoginStore;
use crate::config::Settings;
use crate::error::Result;
use crate::otp::redis_slot::{parse_record, server_now_ms};
use crate::otp::{decide, Otp};
use crate::redis::conn::SessionError;
use crate::redis::resp::Reply;
use crate::redis::script::{sha1_hex, Lua, Runner};

/// Admits, counts and (with ARGV[4] = "1") takes the pending record, in one step.
const RESERVE_SRC: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lockout = tonumber(ARGV[2])
local function locked(key)
  local u = redis.call('HGET', key, 'until')
  return u and tonumber(u) > now
end
if locked(KEYS[2]) then return {'global', '', t[1], t[2], 0, 0} end
if locked(KEYS[1]) then return {'address', '', t[1], t[2], 0, 0} end
local function count(key, max)
  local n = redis.call('HINCRBY', key, 'n', 1)
  if n == 1 then redis.call('PEXPIRE', key, lockout) end
  if n >= max and not redis.call('HGET', key, 'until') then
    redis.call('HSET', key, 'until', string.format('%.0f', now + lockout))
    redis.call('PEXPIRE', key, lockout)
    return 1
  end
  return 0
end
local a = count(KEYS[1], tonumber(ARGV[1]))
local g = count(KEYS[2], tonumber(ARGV[3]))
local rec = ''
if ARGV[4] == '1' then rec = redis.call('GETDEL', KEYS[3]) or '' end
return {'ok', rec, t[1], t[2], a, g}
";

/// Takes back a reservation (ARGV: address locked by it, global locked by it, forget the
/// address), and with ARGV[4] set starts the session whose token hash it is.
const REFUND_SRC: &str = r"
local function undo(key, unlock)
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'n', -1)
    if unlock == '1' then redis.call('HDEL', key, 'until') end
  end
end
undo(KEYS[2], ARGV[2])
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) else undo(KEYS[1], ARGV[1]) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'PX', tonumber(ARGV[5])) end
return 1
";

/// The address's failures and both lockouts, against the server's clock.
const STATE_SRC: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local a = redis.call('HMGET', KEYS[1], 'n', 'until')
local g = redis.call('HGET', KEYS[2], 'until')
local locked = 0
if (a[2] and tonumber(a[2]) > now) or (g and tonumber(g) > now) then locked = 1 end
return {tonumber(a[1] or '0'), locked}
";

/// Ends the session if ARGV[1] is its token hash.
const END_SRC: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

static RESERVE: Lua = Lua::new(RESERVE_SRC, || sha1_hex(RESERVE_SRC));
static REFUND: Lua = Lua::new(REFUND_SRC, || sha1_hex(REFUND_SRC));
static STATE: Lua = Lua::new(STATE_SRC, || sha1_hex(STATE_SRC));
static END: Lua = Lua::new(END_SRC, || sha1_hex(END_SRC));

/// The configured server, for one call.
pub struct SharedStore<'a> {
    slot: Runner<'a>,
    prefix: &'a str,
    wait_replicas: bool,
}

fn hex(bytes: &[u8]) -> String {
    crate::text::hex(bytes)
}

fn flag(b: bool) -> &'static [u8] {
    if b {
        b"1"
    } else {
        b"0"
    }
}

impl<'a> SharedStore<'a> {
    /// The store next to the configured slot; `None` when the slot is in-process.
    pub fn of(s: &'a Settings) -> Option<SharedStore<'a>> {
        let url = s.slot.url.as_ref()?;
        Some(SharedStore {
            slot: Runner::new(url, &s.slot),
            prefix: &s.slot.key,
            wait_replicas: s.slot.wait_replicas > 0,
        })
    }

    fn key(&self, what: &str) -> String {
        format!("{}:login:{what}", self.prefix)
    }

    fn fail_key(&self, k: LimitKey) -> String {
        self.key(&format!("fail:{}", k.as_text()))
    }
}

impl LoginStore for SharedStore<'_> {
    /// One script: both lockouts, the count and (for a code) the take, on the server's clock;
    /// the record is judged here by the verify contract (consumed whatever the outcome).
    fn reserve(
        &self,
        key: LimitKey,
        l: &Limits,
        code: Option<Option<&Otp>>,
    ) -> Result<(Reservation, Result<()>)> {
        let (fail, global, slot) = (self.fail_key(key), self.key("global"), self.prefix);
        let max_a = l.max_attempts.to_string();
        let lockout = l.lockout.as_millis().to_string();
        let max_g = l.max_global.to_string();
        let take = flag(code.is_some());
        let keys: [&[u8]; 3] = [fail.as_bytes(), global.as_bytes(), slot.as_bytes()];
        let args: [&[u8]; 4] = [max_a.as_bytes(), lockout.as_bytes(), max_g.as_bytes(), take];
        // Sent once: it counts an attempt and may consume the code.
        let outcome = self
            .slot
            .session("counting a login attempt", false, |conn, deadline| {
                let reply = self.slot.script_with_keys(conn, &RESERVE, &keys, &args)?;
                let r = reserve_reply(reply)?;
                let verdict = match (&r, code) {
                    (ReserveReply::Counted { record, now_ms, .. }, Some(submitted)) => {
                        let pending = match record.is_empty() {
                            true => None,
                            false => Some(parse_record(record, *now_ms)?),
                        };
                        let v = decide(pending, submitted);
                        if v.is_ok() && self.wait_replicas {
                            self.slot.replicate(conn, deadline)?;
                        }
                        v
                    }
                    _ => Ok(()),
                };
                Ok((r, verdict))
            })?;
        match outcome {
            (ReserveReply::Locked(why), _) => Err(why.into_error()),
            (
                ReserveReply::Counted {
                    address_locked,
                    global_locked,
                    ..
                },
                verdict,
            ) => Ok((
                Reservation {
                    key,
                    tracked: true,
                    address_locked,
                    global_locked,
                },
                verdict,
            )),
        }
    }

    fn refund(
        &self,
        r: &Reservation,
        forget_address: bool,
        session: Option<&Session>,
    ) -> Result<()> {
        let (fail, global, sess) = (
            self.fail_key(r.key),
            self.key("global"),
            self.key("session"),
        );
        // The key's own TTL is the session's: it is gone exactly when the session ends.
        let token = session.map(|x| hex(&x.token)).unwrap_or_default();
        let ttl = session
            .map(|x| x.ttl.as_millis().max(1))
            .unwrap_or(1)
            .to_string();
        let keys: [&[u8]; 3] = [fail.as_bytes(), global.as_bytes(), sess.as_bytes()];
        let args: [&[u8]; 5] = [
            flag(r.address_locked),
            flag(r.global_locked),
            flag(forget_address),
            token.as_bytes(),
            ttl.as_bytes(),
        ];
        self.slot
            .session("settling a login attempt", false, |conn, _| {
                match self.slot.script_with_keys(conn, &REFUND, &keys, &args)? {
                    Reply::Int(1) => Ok(()),
                    _ => Err(SessionError::Unexpected(
                        "unexpected reply to the refund script",
                    )),
                }
            })
    }

    fn check_session(&self, token: &TokenHash, _now: Duration) -> Result<bool> {
        let key = self.key("session");
        let stored = self.slot.session("checking the session", true, |conn, _| {
            match conn.call(&[b"GET", key.as_bytes()])? {
                Reply::Bulk(b) => Ok(b),
                Reply::Error(e) => Err(SessionError::refused("GET", &e)),
                _ => Err(SessionError::Unexpected("unexpected reply to GET")),
            }
        })?;
        let want = Zeroizing::new(hex(token));
        Ok(stored.is_some_and(|s| bool::from(s.as_slice().ct_eq(want.as_bytes()))))
    }

    fn end_session(&self, token: &TokenHash, _now: Duration) -> Result<bool> {
        let key = self.key("session");
        let want = hex(token);
        self.slot.session("ending the session", true, |conn, _| {
            match self
                .slot
                .script_with_keys(conn, &END, &[key.as_bytes()], &[want.as_bytes()])?
            {
                Reply::Int(n @ (0 | 1)) => Ok(n == 1),
                _ => Err(SessionError::Unexpected(
                    "unexpected reply to the end script",
                )),
            }
        })
    }

    fn attempts_left(&self, key: LimitKey, l: &Limits, _now: Duration) -> Result<u32> {
        let (fail, global) = (self.fail_key(key), self.key("global"));
        let keys: [&[u8]; 2] = [fail.as_bytes(), global.as_bytes()];
        let (used, locked) = self.slot.session("reading attempts", true, |conn, _| {
            match self.slot.script_with_keys(conn, &STATE, &keys, &[])? {
                Reply::Array(Some(items)) => match items.as_slice() {
                    [Reply::Int(n), Reply::Int(l @ (0 | 1))]
                        if (0..=i64::from(u32::MAX)).contains(n) =>
                    {
                        Ok((*n as u32, *l == 1))
                    }
                    _ => Err(SessionError::Unexpected(
                        "unexpected reply to the state script",
                    )),
                },
                _ => Err(SessionError::Unexpected(
                    "unexpected reply to the state script",
                )),
            }
        })?;
        Ok(if locked {
            0
        } else {
            l.max_attempts.saturating_sub(used)
        })
    }

    fn reset(&self, key: LimitKey) -> Result<()> {
        let fail = self.fail_key(key);
        self.slot.session("resetting attempts", true, |conn, _| {
            match conn.call(&[b"DEL", fail.as_bytes()])? {
                Reply::Int(0 | 1) => Ok(()),
                _ => Err(SessionError::Unexpected("unexpected reply to DEL")),
            }
        })
    }
}

enum ReserveReply {
    Locked(Admission),
    Counted {
        record: Zeroizing<Vec<u8>>,
        now_ms: u64,
        address_locked: bool,
        global_locked: bool,
    },
}

fn reserve_reply(reply: Reply) -> std::result::Result<ReserveReply, SessionError> {
    let shape = || SessionError::Unexpected("unexpected reply to the attempt script");
    let Reply::Array(Some(items)) = reply else {
        return Err(shape());
    };
    let [Reply::Bulk(Some(verdict)), Reply::Bulk(Some(record)), Reply::Bulk(Some(secs)), Reply::Bulk(Some(micros)), Reply::Int(a @ (0 | 1)), Reply::Int(g @ (0 | 1))] =
        <[Reply; 6]>::try_from(items).map_err(|_| shape())?
    else {
        return Err(shape());
    };
    let now_ms = server_now_ms(&secs, &micros)?;
    match verdict.as_slice() {
        b"global" => Ok(ReserveReply::Locked(Admission::GlobalLocked)),
        b"address" => Ok(ReserveReply::Locked(Admission::AddressLocked)),
        b"ok" => Ok(ReserveReply::Counted {
            record,
            now_ms,
            address_locked: a == 1,
            global_locked: g == 1,
        }),
        _ => Err(shape()),
    }
}
