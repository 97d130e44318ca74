//! The shared slot: the pending code lives in Redis or Valkey, so a code verifies exactly once
//! across every replica.
//!
//! Owns the two Lua scripts, the record format, and the range checks on every number the server
//! sends back. Each operation runs on a pooled or new connection (`crate::redis`),
//! bounded by `slot_timeout_ms` overall, and holds no library lock while it waits. It must
//! never read-then-delete in two steps, never re-send a verify that may have reached the
//! server, never take time from this host's clock, never let a number from the server
//! overflow or stretch a code's life (out of range is a denial), and never put the URL's
//! credentials or a code into an error or log line.

use std::time::Duration;

use zeroize::Zeroizing;

use super::{decide, Otp, Pending, SlotBackend};
use crate::config::{SecretUrl, SlotSettings, OTP_TTL_SECONDS};
use crate::error::Result;
use crate::fork::Lazy;
use crate::redis::conn::{RedisConn, SessionError};
use crate::redis::resp::Reply;
use crate::redis::script::{sha1_hex, Lua, Runner};
use crate::text::decimal;

/// How long a record outlives its TTL on the server, so that a late verify still reports
/// "expired" rather than "no pending code".
pub const GRACE: Duration = Duration::from_secs(600);

/// How far in the server's future a record's issue time may lie (the server's clock stepped
/// back, or a failover to a replica whose clock is a little behind). Beyond it the record is a
/// denial: a code issued "in the future" would otherwise live longer than its TTL.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// The server's `TIME` seconds must fall in this range (2001 to the year 5138): far inside what
/// milliseconds in a u64 can hold, so no arithmetic on them can wrap.
const SERVER_SECS: std::ops::RangeInclusive<u64> = 1_000_000_000..=100_000_000_000;

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

static STORE: Lua = Lua {
    src: STORE_SRC,
    sha: Lazy::new(|| sha1_hex(STORE_SRC)),
};
static TAKE: Lua = Lua {
    src: TAKE_SRC,
    sha: Lazy::new(|| sha1_hex(TAKE_SRC)),
};

/// One operation's view of the configured server.
pub struct RedisSlot<'a> {
    runner: Runner<'a>,
    cfg: &'a SlotSettings,
}

impl<'a> RedisSlot<'a> {
    /// A backend for `url`, configured by `cfg`.
    pub fn new(url: &'a SecretUrl, cfg: &'a SlotSettings) -> Self {
        RedisSlot {
            runner: Runner::new(url, cfg),
            cfg,
        }
    }

    /// Runs a script on the slot's own key.
    fn script(
        &self,
        conn: &mut RedisConn,
        lua: &Lua,
        args: &[&[u8]],
    ) -> std::result::Result<Reply, SessionError> {
        self.runner
            .script_with_keys(conn, lua, &[self.cfg.key.as_bytes()], args)
    }
}

impl SlotBackend for RedisSlot<'_> {
    fn store(&self, code: &Otp, ttl: Duration) -> Result<()> {
        let value = Zeroizing::new(format!("{RECORD_TAG}:{}", code.as_str()));
        let ttl_ms = ttl.as_millis().to_string();
        let grace_ms = GRACE.as_millis().to_string();
        let args: [&[u8]; 3] = [value.as_bytes(), ttl_ms.as_bytes(), grace_ms.as_bytes()];
        // Storing again replaces the same code: safe to repeat on a new connection.
        self.runner.session("storing the code", true, |conn, _| {
            match self.script(conn, &STORE, &args)? {
                Reply::Int(1) => Ok(()),
                _ => Err(SessionError::Unexpected(
                    "unexpected reply to the store script",
                )),
            }
        })
    }

    fn verify(&self, submitted: Option<&Otp>) -> Result<()> {
        // Sent once: a retry after a lost reply would turn a success into "no pending".
        self.runner
            .session("verifying the code", false, |conn, deadline| {
                let reply = self.script(conn, &TAKE, &[])?;
                let (record, now_ms) = take_reply(reply)?;
                let pending = match record.is_empty() {
                    true => None,
                    false => Some(parse_record(&record, now_ms)?),
                };
                let verdict = decide(pending, submitted);
                if verdict.is_ok() && self.cfg.wait_replicas > 0 {
                    self.runner.replicate(conn, deadline)?;
                }
                Ok(verdict)
            })?
    }

    fn clear(&self) -> Result<()> {
        let key = self.cfg.key.as_bytes();
        self.runner.session("clearing the code", true, |conn, _| {
            match conn.call(&[b"DEL", key])? {
                Reply::Int(0 | 1) => Ok(()),
                Reply::Error(e) => Err(SessionError::refused("DEL", &e)),
                _ => Err(SessionError::Unexpected("unexpected reply to DEL")),
            }
        })
    }
}

/// The take script's `{record, seconds, microseconds}`, as the record and the server's now in
/// milliseconds.
pub(crate) fn take_reply(
    reply: Reply,
) -> std::result::Result<(Zeroizing<Vec<u8>>, u64), SessionError> {
    let shape = SessionError::Unexpected("unexpected reply to the take script");
    let Reply::Array(Some(items)) = reply else {
        return Err(shape);
    };
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.next(), items.next()) {
        (
            Some(Reply::Bulk(Some(record))),
            Some(Reply::Bulk(Some(secs))),
            Some(Reply::Bulk(Some(micros))),
            None,
        ) => Ok((record, server_now_ms(&secs, &micros)?)),
        _ => Err(shape),
    }
}

/// `TIME`'s two fields as milliseconds, when both are in range.
pub(crate) fn server_now_ms(secs: &[u8], micros: &[u8]) -> std::result::Result<u64, SessionError> {
    let bad = SessionError::Unexpected("server clock out of range");
    let secs = decimal(secs).filter(|s| SERVER_SECS.contains(s));
    let micros = decimal(micros).filter(|&m| m < 1_000_000);
    let (Some(secs), Some(micros)) = (secs, micros) else {
        return Err(bad);
    };
    secs.checked_mul(1000)
        .and_then(|ms| ms.checked_add(micros / 1000))
        .ok_or(bad)
}

/// `v1:<code>:<issued_ms>:<ttl_ms>`, aged against the server's `now_ms`. The TTL must be one
/// `otp_ttl_seconds` allows, and the issue time no further ahead than [`MAX_CLOCK_SKEW`].
pub(crate) fn parse_record(
    record: &[u8],
    now_ms: u64,
) -> std::result::Result<Pending, SessionError> {
    let malformed = || SessionError::Unexpected("malformed record");
    let text = std::str::from_utf8(record).map_err(|_| malformed())?;
    let mut fields = text.split(':');
    if fields.next() != Some(RECORD_TAG) {
        return Err(malformed());
    }
    let code = fields
        .next()
        .and_then(|c| Otp::parse(c.as_bytes()))
        .ok_or_else(malformed)?;
    let issued = fields
        .next()
        .and_then(|f| decimal(f.as_bytes()))
        .ok_or_else(malformed)?;
    let ttl = fields
        .next()
        .and_then(|f| decimal(f.as_bytes()))
        .ok_or_else(malformed)?;
    if fields.next().is_some() {
        return Err(malformed());
    }
    let ttl_range = OTP_TTL_SECONDS.start() * 1000..=OTP_TTL_SECONDS.end() * 1000;
    if !ttl_range.contains(&ttl) {
        return Err(SessionError::Unexpected("record TTL out of range"));
    }
    let latest = now_ms.saturating_add(MAX_CLOCK_SKEW.as_millis() as u64);
    if issued > latest {
        return Err(SessionError::Unexpected(
            "record issued in the server's future",
        ));
    }
    Ok(Pending {
        code,
        age: Duration::from_millis(now_ms.saturating_sub(issued)),
        ttl: Duration::from_millis(ttl),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::time::Instant;

    const NOW: u64 = 1_800_000_000_000;

    fn record(issued: u64, ttl: u64) -> Vec<u8> {
        format!("v1:123456:{issued}:{ttl}").into_bytes()
    }

    #[test]
    fn records_parse_and_age_on_the_server_clock() {
        let p = parse_record(&record(NOW - 1500, 600_000), NOW).unwrap();
        assert_eq!(p.code.as_str(), "123456");
        assert_eq!(p.age, Duration::from_millis(1500));
        assert_eq!(p.ttl, Duration::from_secs(600));
        for bad in [
            &b"v2:123456:1:1000"[..],
            b"v1:12345:1:1000",
            b"v1:123456:x:1000",
            b"v1:123456:+1:1000",
            b"v1:123456:1: 1000",
            b"v1:123456:1",
            b"v1:123456:1:1000:1",
            b"v1:123456:99999999999999999999999:1000",
            b"\xff",
        ] {
            assert!(parse_record(bad, NOW).is_err());
        }
    }

    #[test]
    fn absurd_ttls_are_refused() {
        for ttl in [0, 999, 86_400_001, u64::MAX] {
            assert!(parse_record(&record(NOW, ttl), NOW).is_err(), "{ttl}");
        }
        assert!(parse_record(&record(NOW, 1000), NOW).is_ok());
        assert!(parse_record(&record(NOW, 86_400_000), NOW).is_ok());
    }

    #[test]
    fn records_issued_in_the_future_are_refused_beyond_the_skew() {
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        let p = parse_record(&record(NOW + skew, 600_000), NOW).unwrap();
        assert_eq!(p.age, Duration::ZERO);
        assert!(parse_record(&record(NOW + skew + 1, 600_000), NOW).is_err());
        assert!(parse_record(&record(u64::MAX, 600_000), NOW).is_err());
        // A 1970 record against a real clock is simply old: expired, not an error.
        let old = parse_record(&record(0, 600_000), NOW).unwrap();
        assert!(old.age >= old.ttl);
    }

    #[test]
    fn forged_server_clocks_are_refused() {
        assert_eq!(
            server_now_ms(b"1800000000", b"999999").unwrap(),
            1_800_000_000_999
        );
        // Near 2^64/1000 seconds, the milliseconds would wrap to 384: a 1970 record would be
        // young again.
        for (secs, micros) in [
            (&b"18446744073709552"[..], &b"0"[..]),
            (b"18446744073709551615", b"0"),
            (b"18446744073709551616", b"0"),
            (b"100000000001", b"0"),
            (b"999999999", b"0"),
            (b"1800000000", b"1000000"),
            (b"1800000000", b"18446744073709551615"),
            (b"-1", b"0"),
            (b"1800000000", b"-1"),
            (b"", b"0"),
            (b"1.8e9", b"0"),
        ] {
            assert!(
                server_now_ms(secs, micros).is_err(),
                "{:?} {:?}",
                String::from_utf8_lossy(secs),
                String::from_utf8_lossy(micros)
            );
        }
    }

    #[test]
    fn take_replies_must_have_the_scripts_shape() {
        let b = |v: &[u8]| Reply::Bulk(Some(Zeroizing::new(v.to_vec())));
        let ok = Reply::Array(Some(vec![b(b""), b(b"1800000000"), b(b"5000")]));
        let (rec, now) = take_reply(ok).unwrap();
        assert!(rec.is_empty());
        assert_eq!(now, 1_800_000_000_005);
        for bad in [
            Reply::Array(Some(vec![b(b""), b(b"1800000000")])),
            Reply::Array(Some(vec![b(b""), b(b"1800000000"), b(b"0"), b(b"0")])),
            Reply::Array(Some(vec![b(b""), Reply::Int(1_800_000_000), b(b"0")])),
            Reply::Array(Some(vec![Reply::Bulk(None), b(b"1800000000"), b(b"0")])),
            Reply::Array(None),
            Reply::Int(1),
            b(b"v1:123456:1:1000"),
        ] {
            assert!(take_reply(bad).is_err());
        }
    }

    /// A one-connection fake server on loopback: reads one command, sends `head`, then `tail`
    /// again and again, one `chunk` at a time with `pause` between chunks, until the client
    /// hangs up or 10 s have passed (an empty `tail`: it hangs up itself). Returns the URL and
    /// a handle yielding the bytes of `tail` sent. (No test here may succeed an operation: the
    /// connection would go to the process-wide pool that `crate::redis::pool`'s test counts.)
    fn fake_server(
        head: &'static [u8],
        tail: &'static [u8],
        chunk: usize,
        pause: Duration,
    ) -> (String, std::thread::JoinHandle<usize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let peer = std::thread::spawn(move || {
            let lifetime = Instant::now() + Duration::from_secs(10);
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.read(&mut [0u8; 4096]);
            let mut sent = 0;
            if s.write_all(head).is_err() || tail.is_empty() {
                return sent;
            }
            while Instant::now() < lifetime {
                for part in tail.chunks(chunk) {
                    if s.write_all(part).is_err() {
                        return sent;
                    }
                    sent += part.len();
                    std::thread::sleep(pause);
                }
            }
            sent
        });
        (url, peer)
    }

    fn slot_at(url: &str) -> (SecretUrl, SlotSettings) {
        let url = crate::config::parse_slot_url(url).unwrap();
        let cfg = SlotSettings {
            url: Some(url.clone()),
            key: "k".into(),
            timeout: Duration::from_millis(500),
            wait_replicas: 0,
        };
        (url, cfg)
    }

    #[test]
    fn a_trickling_or_flooding_server_cannot_hold_a_verify_past_the_timeout() {
        let code = Otp::parse(b"123456").unwrap();
        for (name, head, tail, chunk, pause) in [
            // A whole valid reply, one byte every 100 ms: 4 s to arrive.
            (
                "trickle",
                &b""[..],
                &b"*3\r\n$0\r\n\r\n$10\r\n1800000000\r\n$1\r\n0\r\n"[..],
                1,
                100,
            ),
            ("flood", b"$1000000000\r\n", &[b'x'; 8192][..], 8192, 0),
        ] {
            let (url, peer) = fake_server(head, tail, chunk, Duration::from_millis(pause));
            let (url, cfg) = slot_at(&url);
            let started = Instant::now();
            let result = RedisSlot::new(&url, &cfg).verify(Some(&code));
            let took = started.elapsed();
            assert!(
                matches!(result, Err(Error::Backend(_))),
                "{name}: {result:?}"
            );
            assert!(took < Duration::from_millis(1500), "{name}: {took:?}");
            let sent = peer.join().unwrap();
            if name == "trickle" {
                assert!(sent < 40, "the whole trickle arrived: {sent}");
            }
        }
    }

    #[test]
    fn a_forged_clock_is_a_backend_error_not_a_grant() {
        // TIME near 2^64/1000 s: unchecked, now_ms would wrap to 384 and make a 1970 record
        // 384 ms old.
        let reply = b"*3\r\n$18\r\nv1:123456:0:600000\r\n$17\r\n18446744073709552\r\n$1\r\n0\r\n";
        let (url, peer) = fake_server(reply, b"", 1, Duration::ZERO);
        let (url, cfg) = slot_at(&url);
        let code = Otp::parse(b"123456").unwrap();
        let result = RedisSlot::new(&url, &cfg).verify(Some(&code));
        assert!(matches!(result, Err(Error::Backend(_))), "{result:?}");
        peer.join().unwrap();
    }

    #[test]
    fn script_names_are_their_sha1() {
        // SHA1("abc"), FIPS 180 test vector.
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(TAKE.sha.len(), 40);
        assert_ne!(*STORE.sha, *TAKE.sha);
    }
}
