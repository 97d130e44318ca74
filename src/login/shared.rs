//! The login state of a fleet: the same [`LoginState`] as every other store, kept in
//! Redis/Valkey next to the slot, so the limits hold across every replica.
//!
//! Keys: `<slot_key>:login:state` (the state's text form) and `<slot_key>:login:lock` (a lease
//! with a random token and a TTL of `slot_timeout_ms`). A transaction is two scripts on one
//! pooled connection: the first takes the lease and returns the state with the server's clock
//! (`TIME`, so every replica judges one clock), the second writes the new state and drops the
//! lease only while the lease is still ours. A lease held by another caller is waited for until
//! the deadline. Every failure to reach the server, a lost lease and a malformed state are
//! denials (`BG_ERR_BACKEND`), never an unlimited attempt or an empty state. It must never
//! send a password or a session token (only the token's SHA-256 is in the state), and never
//! write a state after its lease ran out.

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::state::LoginState;
use super::store::LoginStore;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::otp::redis_slot::server_now_ms;
use crate::redis::conn::SessionError;
use crate::redis::resp::Reply;
use crate::redis::script::{sha1_hex, Lua, Runner};

/// Takes the lease (ARGV: token, lease ms) and returns {taken, seconds, microseconds, state}.
const TAKE_SRC: &str = r"
local t = redis.call('TIME')
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, t[1], t[2], redis.call('GET', KEYS[2]) or ''}
end
return {0, t[1], t[2], ''}
";

/// Writes the state (ARGV[2], when ARGV[3] is '1') and drops the lease, if it is still ours.
const PUT_SRC: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '1' then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
";

/// The lease script's reply carries the whole state: far more than a slot reply, bounded all
/// the same (10,000 tracked addresses take well under 2 MiB).
const MAX_STATE_REPLY: usize = 4 << 20;

static TAKE: Lua = Lua::new(TAKE_SRC, || sha1_hex(TAKE_SRC));
static PUT: Lua = Lua::new(PUT_SRC, || sha1_hex(PUT_SRC));

/// The configured server, for one call.
pub struct SharedStore<'a> {
    slot: Runner<'a>,
    prefix: &'a str,
    lease: Duration,
    wait_replicas: bool,
}

impl<'a> SharedStore<'a> {
    /// The store next to the configured slot; `None` when the slot is in-process.
    pub fn of(s: &'a Settings) -> Option<SharedStore<'a>> {
        let url = s.slot.url.as_ref()?;
        Some(SharedStore {
            slot: Runner::new(url, &s.slot),
            prefix: &s.slot.key,
            lease: s.slot.timeout,
            wait_replicas: s.slot.wait_replicas > 0,
        })
    }

    fn key(&self, what: &str) -> String {
        format!("{}:login:{what}", self.prefix)
    }
}

fn lease_token() -> Result<String> {
    use rand::TryRng as _;
    let mut b = [0u8; 16];
    rand::rngs::SysRng
        .try_fill_bytes(&mut b)
        .map_err(|_| Error::Internal("the OS random source failed"))?;
    Ok(crate::text::hex(b))
}

enum Taken {
    Busy,
    Ours {
        now_ms: u64,
        state: Zeroizing<Vec<u8>>,
    },
}

fn take_reply(reply: Reply) -> std::result::Result<Taken, SessionError> {
    let shape = || SessionError::Unexpected("unexpected reply to the lease script");
    let Reply::Array(Some(items)) = reply else {
        return Err(shape());
    };
    let [Reply::Int(taken @ (0 | 1)), Reply::Bulk(Some(secs)), Reply::Bulk(Some(micros)), Reply::Bulk(Some(state))] =
        <[Reply; 4]>::try_from(items).map_err(|_| shape())?
    else {
        return Err(shape());
    };
    let now_ms = server_now_ms(&secs, &micros)?;
    Ok(match taken {
        1 => Taken::Ours { now_ms, state },
        _ => Taken::Busy,
    })
}

impl LoginStore for SharedStore<'_> {
    fn transact(
        &self,
        what: &'static str,
        f: &mut dyn FnMut(&mut LoginState, u64) -> bool,
    ) -> Result<()> {
        let (lock, state_key) = (self.key("lock"), self.key("state"));
        let token = lease_token()?;
        let lease_ms = self.lease.as_millis().max(1).to_string();
        let keys: [&[u8]; 2] = [lock.as_bytes(), state_key.as_bytes()];
        let mut damaged = None;
        let _turn = super::store::shared_turn(std::time::Instant::now() + self.lease, what)?;
        // Sent once: the writes count attempts, so a lost reply must not be replayed.
        self.slot.session(what, false, |conn, deadline| {
            let mut pause = Duration::from_micros(200);
            let (now_ms, bytes) = loop {
                let reply = self.slot.script_within(
                    conn,
                    &TAKE,
                    &keys,
                    &[token.as_bytes(), lease_ms.as_bytes()],
                    MAX_STATE_REPLY,
                )?;
                match take_reply(reply)? {
                    Taken::Ours { now_ms, state } => break (now_ms, state),
                    Taken::Busy => {
                        let now = Instant::now();
                        if now + pause >= deadline {
                            return Err(SessionError::Unexpected(
                                "the login state's lease is held by another caller",
                            ));
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(5));
                    }
                }
            };
            let parsed = if bytes.is_empty() {
                Ok(LoginState::default())
            } else {
                LoginState::decode(&bytes)
            };
            let (write, text) = match parsed {
                Ok(mut st) => {
                    let changed = f(&mut st, now_ms);
                    let text = Zeroizing::new(st.encode());
                    (changed && text.as_bytes() != bytes.as_slice(), text)
                }
                Err(d) => {
                    // Drop the lease, write nothing, deny.
                    damaged = Some(d.0);
                    (false, Zeroizing::new(String::new()))
                }
            };
            let args: [&[u8]; 3] = [
                token.as_bytes(),
                text.as_bytes(),
                if write { b"1" } else { b"0" },
            ];
            match self.slot.script_with_keys(conn, &PUT, &keys, &args)? {
                Reply::Int(1) => {}
                Reply::Int(0) => {
                    return Err(SessionError::Unexpected(
                        "the login state's lease ran out before the write",
                    ))
                }
                _ => {
                    return Err(SessionError::Unexpected(
                        "unexpected reply to the write script",
                    ))
                }
            }
            if write && self.wait_replicas {
                self.slot.replicate(conn, deadline)?;
            }
            Ok(())
        })?;
        match damaged {
            Some(why) => {
                let msg = format!("the login state at {state_key} is damaged: {why}");
                log::error!("shared slot: {msg}");
                Err(Error::Backend(msg))
            }
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!("slot_url (key {})", self.key("state"))
    }
}
