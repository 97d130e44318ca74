//! The shared slot's `redis://` / `rediss://` URL: the one parser, used when `slot_url` is set
//! (to refuse a bad URL at once) and by the Redis client on every connection.
//!
//! Owns the accepted form `redis[s]://[[user]:password@]host[:port][/db]` and what each part
//! means for the client (TLS, `AUTH [user] password`, `SELECT db`). It must never put the
//! credentials into an error, a `Debug` output or the redacted form.

use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

use super::InvalidValue;

/// The port a URL without one names.
const DEFAULT_PORT: u16 = 6379;

/// The longest URL accepted, as for the webhook.
const MAX_URL_LEN: usize = 4096;

/// Where a shared slot lives and how to log in to it.
pub struct SlotTarget {
    /// `rediss://`: TLS, with the certificate verified against the trusted roots.
    pub tls: bool,
    /// Host name or address literal (IPv6 without brackets), for the lookup and for TLS.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The ACL user, when the URL names one (always with a password).
    pub user: Option<Zeroizing<Vec<u8>>>,
    /// The password, percent-decoded: any bytes.
    pub password: Option<Zeroizing<Vec<u8>>>,
    /// The database to `SELECT` (0: no `SELECT`).
    pub db: u16,
}

impl std::fmt::Debug for SlotTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl SlotTarget {
    /// Parses `text`; the error says what is wrong, never what the URL holds.
    pub fn parse(text: &str) -> Result<SlotTarget, InvalidValue> {
        let bad = |why: &str| InvalidValue::new("slot_url", why);
        if text.len() > MAX_URL_LEN {
            return Err(bad("longer than 4096 bytes"));
        }
        let url = url::Url::parse(text).map_err(|_| bad("not a URL"))?;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            _ => return Err(bad("scheme must be redis or rediss")),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(bad("no host")),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("no query or fragment is accepted"));
        }
        let port = url.port().unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(bad("port 0"));
        }
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            n => match crate::text::decimal(n.as_bytes()) {
                Some(db) => u16::try_from(db).map_err(|_| bad("database number too large"))?,
                None => return Err(bad("the path must be a database number")),
            },
        };
        let decode = |s: &str| Zeroizing::new(percent_decode_str(s).collect::<Vec<u8>>());
        let user = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
        let password = url.password().map(decode);
        // A user name alone would be ignored by the server (AUTH needs a password): refuse it
        // rather than connect as someone else than the URL says.
        if user.is_some() && password.is_none() {
            return Err(bad("a user name needs a password"));
        }
        Ok(SlotTarget {
            tls,
            host,
            port,
            user,
            password,
            db,
        })
    }

    /// `scheme://host:port/db`: what errors and logs may show.
    pub fn redacted(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}/{}", self.port, self.db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_decoded() {
        let t = SlotTarget::parse("rediss://svc:p%40ss%20w%3Ard@cache.internal:6380/2").unwrap();
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port, t.db), ("cache.internal", 6380, 2));
        assert_eq!(t.user.as_deref().map(Vec::as_slice), Some(&b"svc"[..]));
        assert_eq!(
            t.password.as_deref().map(Vec::as_slice),
            Some(&b"p@ss w:rd"[..])
        );
        assert_eq!(t.redacted(), "rediss://cache.internal:6380/2");
        assert!(!format!("{t:?}").contains("p@ss"));

        let t = SlotTarget::parse("redis://:only@[::1]").unwrap();
        assert!(!t.tls && t.user.is_none());
        assert_eq!(t.password.as_deref().map(Vec::as_slice), Some(&b"only"[..]));
        assert_eq!((t.host.as_str(), t.port, t.db), ("::1", 6379, 0));
        assert_eq!(t.redacted(), "redis://[::1]:6379/0");
    }

    #[test]
    fn bad_urls_are_refused_without_their_secrets() {
        for bad in [
            "http://x",
            "redis://",
            "redis://h/notanumber",
            "redis://h/70000",
            "redis://h/-1",
            "redis://h?x=1",
            "redis://h#insecure",
            "redis://h:0",
            "redis://lonelyuser@h",
            "junk",
        ] {
            assert!(SlotTarget::parse(bad).is_err(), "{bad}");
        }
        let e = SlotTarget::parse("redis://u:hunter2@h/x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(SlotTarget::parse(&format!("redis://h/{}", "1".repeat(5000))).is_err());
    }
}
