//! The alert webhook: one signed JSON POST, retried on transient failures.
//!
//! Owns the HTTP client's settings: an overall timeout per request, no redirects (a 3xx is a
//! failure: following it would turn the POST into a body-less GET), no proxy from the
//! environment, and TLS roots from the library's one trust store, in one agent per process
//! that every send reuses (so a receiver that keeps connections alive is reached without a new
//! TCP and TLS handshake). It must never log the URL's path or query (tokens live there) nor
//! the secret, and never use a pooled connection in a process forked after it was opened.

use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
// ureq marks these "unversioned" (outside its semver promise): Cargo.lock pins the version,
// and an upgrade must look at `LiteralsInPlace` again (its unit test covers the parsing).
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::retry::{self, Cause, Failure};
use crate::config::{Secret, SecretUrl};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

/// The header that carries the body's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Breakglass-Signature";

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let digest = crate::digest::hmac_sha256(secret.expose().as_bytes(), &[body]);
    format!("sha256={}", crate::text::hex(digest))
}

/// How long a pooled connection may sit idle before it is not reused: below the idle timeouts
/// receivers commonly use, so a send rarely meets a connection the peer has just closed.
const IDLE_REUSE: Duration = Duration::from_secs(10);

/// The process's agent: its pool of kept-alive connections is what makes an alarm as fast as a
/// bare POST. Rebuilt when `delivery_timeout_ms` changes, and in a process forked from the one
/// that built it.
struct Cached {
    pid: u32,
    timeout: Duration,
    agent: ureq::Agent,
}

/// Lock-free (not a mutex the fork handlers would hold): the delivery workers read it on every
/// send, and a contended lock whose waiters are parked at a fork is a hazard for the child.
static AGENT: ArcSwapOption<Cached> = ArcSwapOption::const_empty();

/// The agent to send with (a cheap clone of the shared one).
fn agent(timeout: Duration) -> ureq::Agent {
    let pid = crate::sys::pid();
    if let Some(c) = AGENT
        .load_full()
        .filter(|c| c.pid == pid && c.timeout == timeout)
    {
        return c.agent.clone();
    }
    // Built before it is published: it loads the trust roots (files that may be slow, even a
    // FIFO), and nothing else waits for that load.
    let fresh = build_agent(timeout);
    let old = AGENT.swap(Some(Arc::new(Cached {
        pid,
        timeout,
        agent: fresh.clone(),
    })));
    if let Some(old) = old.filter(|o| o.pid != pid) {
        // A parent's pooled connections: closing them here could end its TLS sessions (a
        // close_notify on a shared socket), so the child never touches them.
        std::mem::forget(old);
    }
    fresh
}

fn build_agent(timeout: Duration) -> ureq::Agent {
    // The library's one trust store (`net::tls`). None found: an https receiver then fails its
    // handshake with a TLS error, as any unverifiable peer does; plain http still works.
    let roots = crate::net::tls::trust_roots()
        .map(|r| r.for_http)
        .unwrap_or_default();
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(roots))
        .build();
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_age(IDLE_REUSE)
        .tls_config(tls)
        .user_agent(concat!("libbreakglass/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        LiteralsInPlace::default(),
    )
}

/// ureq's resolver, except that an address written in the URL (`http://127.0.0.1:9000/`,
/// `https://[2001:db8::1]/`) is used as it is. ureq's own resolver starts a thread for every
/// look-up under a timeout, so that a stalled DNS server cannot outlast the request's bound;
/// that is right for names and pure cost for an address (a thread per alert, in a system-call
/// trace of the alarm path). Names still go through ureq's resolver, bounded as before.
#[derive(Debug, Default)]
struct LiteralsInPlace(DefaultResolver);

impl LiteralsInPlace {
    /// The address and port the URL names, when its host is an IP address.
    fn literal(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
        let host = uri.host()?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip: std::net::IpAddr = host.parse().ok()?;
        let port = uri.port_u16().or(match uri.scheme_str()? {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })?;
        Some(std::net::SocketAddr::new(ip, port))
    }
}

impl Resolver for LiteralsInPlace {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match Self::literal(uri) {
            Some(addr) => {
                let mut one = self.empty();
                one.push(addr);
                Ok(one)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

fn attempt(agent: &ureq::Agent, url: &str, body: &str, sig: Option<&str>) -> Result<(), Failure> {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(sig) = sig {
        req = req.header(SIGNATURE_HEADER, sig);
    }
    match req.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if (200..=299).contains(&status) {
                return Ok(());
            }
            let why = format!("HTTP {status}{}", peer_answer(&mut resp));
            match status {
                // 429: the receiver is rate limiting (Slack, PagerDuty document it): try again.
                429 | 500..=599 => Err(Failure::Transient(Cause::Refused, why)),
                300..=399 => Err(Failure::Permanent(
                    Cause::Refused,
                    format!("{why} (redirects are not followed)"),
                )),
                _ => Err(Failure::Permanent(Cause::Refused, why)),
            }
        }
        Err(ureq::Error::Timeout(_)) => Err(Failure::Transient(Cause::TimedOut, TIMED_OUT.into())),
        Err(e) => Err(Failure::Transient(Cause::Unreachable, describe(&e))),
    }
}

/// The reason a webhook attempt failed when it ran out of time.
pub const TIMED_OUT: &str = "timed out";

/// Bytes of a refusal's body read, and characters of it kept, for the log and the drill.
const ANSWER_BYTES: u64 = 4096;
const ANSWER_CHARS: usize = 200;

/// `": <the peer's answer>"`, printable only and cut, or "" when it said nothing readable.
/// The peer is not trusted: its text is escaped and bounded like any other input.
fn peer_answer(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    use std::io::Read;
    // The start of the answer only: a long or endless body is not read past the bound (and
    // the request's overall timeout still holds while it is read).
    let mut raw = Vec::new();
    if resp
        .body_mut()
        .as_reader()
        .take(ANSWER_BYTES)
        .read_to_end(&mut raw)
        .is_err()
    {
        return String::new();
    }
    let text = String::from_utf8_lossy(&raw);
    let text = crate::text::escape_controls(text.trim());
    if text.is_empty() {
        return String::new();
    }
    let mut cut: String = text.chars().take(ANSWER_CHARS).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    format!(": {cut}")
}

// ureq's errors can quote the URL; keep only the kind.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("I/O error: {}", io.kind()),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Protocol(_) => "malformed HTTP response".into(),
        ureq::Error::Tls(t) => format!("TLS: {t}"),
        ureq::Error::Rustls(t) => format!("TLS: {t}"),
        _ => "request failed".into(),
    }
}

/// POSTs `body` to `target` with retries (the same body, so the same event id, every time);
/// returns the last failure when every attempt failed. `url` is the configured URL, for its
/// redacted form in log lines; `event_id` is for the log lines too.
pub fn deliver(
    target: &str,
    url: &SecretUrl,
    secret: Option<&Secret>,
    body: &str,
    event_id: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let sig = secret.map(|s| signature(s, body.as_bytes()));
    let agent = agent(timeout);
    let mut results = retry::with_retries(
        1,
        |_| vec![attempt(&agent, target, body, sig.as_deref())],
        |_, n, f| {
            log::warn!(
                "webhook (event {event_id}) to {} attempt {n} of {} failed: {}",
                url.redacted(),
                retry::ATTEMPTS,
                f.reason()
            )
        },
    );
    results.pop().expect("one result per item")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_the_url_are_used_as_written_and_names_are_left_to_the_resolver() {
        let lit = |u: &str| LiteralsInPlace::literal(&u.parse().unwrap());
        assert_eq!(
            lit("http://127.0.0.1:9000/h"),
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            lit("https://[2001:db8::1]/h"),
            Some("[2001:db8::1]:443".parse().unwrap())
        );
        assert_eq!(
            lit("http://10.0.0.1/h?t=x"),
            Some("10.0.0.1:80".parse().unwrap())
        );
        assert_eq!(lit("https://hooks.example.com/h"), None);
        assert_eq!(lit("https://127.0.0.1.example.com/h"), None);
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        let sig = signature(&Secret::new("Jefe".into()), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
