//! The shared slot: the pending code lives in Redis or Valkey, so a code verifies exactly once
//! across every replica.
//!
//! Owns the two Lua scripts and the record format. Each operation opens its own connection (so
//! nothing is ever shared across `fork()`), bounded by `slot_timeout_ms` overall, and holds no
//! library lock while it waits. It must never read-then-delete in two steps, never re-send a
//! verify that may have reached the server, never take time from this host's clock, and never
//! put the URL's credentials into an error or log line.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use redis::{Connection, IntoConnectionInfo, Script};

use super::{decide, Otp, Pending, SlotBackend};
use crate::config::{SecretUrl, SlotSettings};
use crate::error::{Error, Result};

/// How long a record outlives its TTL on the server, so that a late verify still reports
/// "expired" rather than "no pending code".
pub const GRACE: Duration = Duration::from_secs(600);

/// Record format version, first field of the stored value `v1:<code>:<issued_ms>:<ttl_ms>`.
const RECORD_TAG: &str = "v1";

/// Replaces the record; the issue time is the server's clock (`TIME`), in milliseconds.
const STORE_SRC: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%.0f', now) .. ':' .. ARGV[2],
           'PX', ttl + tonumber(ARGV[3]))
return 1
";

/// Takes the record out and reads the server clock in one atomic step.
const TAKE_SRC: &str = r"
local rec = redis.call('GETDEL', KEYS[1])
local t = redis.call('TIME')
return {rec or '', t[1], t[2]}
";

/// A script's source and its SHA1, computed once.
struct Lua {
    src: &'static str,
    sha: LazyLock<String>,
}

static STORE: Lua = Lua {
    src: STORE_SRC,
    sha: LazyLock::new(|| Script::new(STORE_SRC).get_hash().to_owned()),
};
static TAKE: Lua = Lua {
    src: TAKE_SRC,
    sha: LazyLock::new(|| Script::new(TAKE_SRC).get_hash().to_owned()),
};

/// One operation's view of the configured server.
pub struct RedisSlot<'a> {
    url: &'a SecretUrl,
    cfg: &'a SlotSettings,
}

impl<'a> RedisSlot<'a> {
    /// A backend for `url`, configured by `cfg`.
    pub fn new(url: &'a SecretUrl, cfg: &'a SlotSettings) -> Self {
        RedisSlot { url, cfg }
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> Error {
        let msg = format!("{what} on {} failed: {e}", self.url.redacted());
        log::error!("shared slot: {msg}");
        Error::Backend(msg)
    }

    /// A fresh connection, made within `deadline`.
    fn connect(&self, deadline: Instant) -> Result<Connection> {
        let info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| self.fail("connect", describe(&e)))?;
        // Without the library-name handshake, setup is at most AUTH and SELECT. The client waits
        // up to its timeout for the connect and for each of those replies, so a third of the
        // budget apiece keeps the whole setup within it.
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| self.fail("connect", describe(&e)))?;
        let left = remaining(deadline).ok_or_else(|| self.fail("connect", "timed out"))?;
        client
            .get_connection_with_timeout(left / 3)
            .map_err(|e| self.fail("connect", describe(&e)))
    }

    /// Runs a script by its SHA1, loading it first if the server's cache lost it. Every round
    /// trip is bounded by what is left until `deadline`. A NOSCRIPT answer means the script
    /// did not run, so sending it again after the load is no replay.
    fn script<T: redis::FromRedisValue>(
        &self,
        con: &mut Connection,
        deadline: Instant,
        lua: &Lua,
        args: &[&str],
    ) -> Result<T> {
        let mut call = redis::cmd("EVALSHA");
        call.arg(lua.sha.as_str())
            .arg(1)
            .arg(&self.cfg.key)
            .arg(args);
        self.bound(con, deadline)?;
        match call.query(con) {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.bound(con, deadline)?;
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(lua.src)
                    .query::<String>(con)
                    .map_err(|e| self.fail("loading a script", describe(&e)))?;
                self.bound(con, deadline)?;
                call.query(con)
                    .map_err(|e| self.fail("running a script", describe(&e)))
            }
            other => other.map_err(|e| self.fail("running a script", describe(&e))),
        }
    }

    fn bound(&self, con: &Connection, deadline: Instant) -> Result<()> {
        let left = remaining(deadline).ok_or_else(|| self.fail("operation", "timed out"))?;
        con.set_read_timeout(Some(left))
            .and_then(|()| con.set_write_timeout(Some(left)))
            .map_err(|e| self.fail("operation", describe(&e)))
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.cfg.timeout
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

// Server replies can quote commands but never the URL; keep the kind and the server's text.
fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else {
        e.to_string()
    }
}

impl SlotBackend for RedisSlot<'_> {
    fn store(&self, code: &Otp, ttl: Duration) -> Result<()> {
        let deadline = self.deadline();
        let mut con = self.connect(deadline)?;
        let value = zeroize::Zeroizing::new(format!("{RECORD_TAG}:{}", code.as_str()));
        let ttl_ms = ttl.as_millis().to_string();
        let grace_ms = GRACE.as_millis().to_string();
        self.script::<i64>(
            &mut con,
            deadline,
            &STORE,
            &[value.as_str(), &ttl_ms, &grace_ms],
        )?;
        Ok(())
    }

    fn verify(&self, submitted: Option<&Otp>) -> Result<()> {
        let deadline = self.deadline();
        let mut con = self.connect(deadline)?;
        // Sent once: a retry after a lost reply would turn a success into "no pending".
        let (record, secs, micros) =
            self.script::<(Vec<u8>, u64, u64)>(&mut con, deadline, &TAKE, &[])?;
        let record = zeroize::Zeroizing::new(record);
        let now_ms = secs * 1000 + micros / 1000;
        let pending = if record.is_empty() {
            None
        } else {
            Some(
                parse_record(&record, now_ms)
                    .ok_or_else(|| self.fail("reading the record", "malformed record"))?,
            )
        };
        decide(pending, submitted)?;
        if self.cfg.wait_replicas > 0 {
            self.bound(&con, deadline)?;
            // The server gives up a little before the socket does, so a shortfall is reported
            // as such rather than as a timeout.
            let left = remaining(deadline).unwrap_or_default();
            let server_wait = left.saturating_sub(left / 5).as_millis().max(1) as u64;
            let acked: u64 = redis::cmd("WAIT")
                .arg(self.cfg.wait_replicas)
                .arg(server_wait)
                .query(&mut con)
                .map_err(|e| self.fail("WAIT", describe(&e)))?;
            if acked < u64::from(self.cfg.wait_replicas) {
                return Err(self.fail(
                    "replicating the consumption",
                    format!(
                        "{acked} of {} replicas acknowledged",
                        self.cfg.wait_replicas
                    ),
                ));
            }
        }
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        let deadline = self.deadline();
        let mut con = self.connect(deadline)?;
        self.bound(&con, deadline)?;
        redis::cmd("DEL")
            .arg(&self.cfg.key)
            .query::<i64>(&mut con)
            .map_err(|e| self.fail("clearing the code", describe(&e)))?;
        Ok(())
    }
}

/// `v1:<code>:<issued_ms>:<ttl_ms>`, aged against the server's `now_ms`.
fn parse_record(record: &[u8], now_ms: u64) -> Option<Pending> {
    let text = std::str::from_utf8(record).ok()?;
    let mut fields = text.split(':');
    if fields.next()? != RECORD_TAG {
        return None;
    }
    let code = Otp::parse(fields.next()?.as_bytes())?;
    let issued: u64 = fields.next()?.parse().ok()?;
    let ttl: u64 = fields.next()?.parse().ok()?;
    if fields.next().is_some() {
        return None;
    }
    Some(Pending {
        code,
        age: Duration::from_millis(now_ms.saturating_sub(issued)),
        ttl: Duration::from_millis(ttl),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_age_on_the_server_clock() {
        let p = parse_record(b"v1:123456:1000:600000", 2500).unwrap();
        assert_eq!(p.code.as_str(), "123456");
        assert_eq!(p.age, Duration::from_millis(1500));
        assert_eq!(p.ttl, Duration::from_secs(600));
        for bad in [
            &b"v2:123456:1:1"[..],
            b"v1:12345:1:1",
            b"v1:123456:x:1",
            b"v1:123456:1",
            b"v1:123456:1:1:1",
            b"\xff",
        ] {
            assert!(parse_record(bad, 0).is_none());
        }
    }
}
