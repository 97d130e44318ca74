//! The webhook and shared-slot URLs: checked when set, printed only redacted.
//!
//! Must never show a path, query or credentials in [`SecretUrl::redacted`]: webhook paths
//! often carry tokens, and slot URLs carry passwords.

use super::slot_url::SlotTarget;
use super::InvalidValue;
use super::Secret;

/// A URL that may carry secrets: a token in a webhook's path or query, a password in a Redis
/// URL. Shown only as its redacted form.
#[derive(Clone)]
pub struct SecretUrl {
    url: Secret,
    redacted: String,
}

impl SecretUrl {
    /// The full URL, for the request or the connection.
    pub fn as_str(&self) -> &str {
        self.url.expose()
    }

    /// Scheme, host and port (and a Redis database) only.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({})", self.redacted)
    }
}

/// Checks an `http://` or `https://` alert webhook URL: scheme and host.
pub fn parse_webhook_url(text: &str) -> Result<SecretUrl, InvalidValue> {
    let bad = |why: &str| InvalidValue::new("alert_webhook_url", why);
    if text.len() > 4096 {
        return Err(bad("longer than 4096 bytes"));
    }
    let url = url::Url::parse(text).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let port = url.port_or_known_default().unwrap_or(0);
    Ok(SecretUrl {
        redacted: format!("{}://{host}:{port}", url.scheme()),
        url: Secret::new(url.to_string()),
    })
}

/// Checks a `redis://` or `rediss://` shared-slot URL's form (with [`SlotTarget::parse`], the
/// parser the client uses); whether the server answers is found out on first use.
pub fn parse_slot_url(text: &str) -> Result<SecretUrl, InvalidValue> {
    if !cfg!(feature = "redis") {
        return Err(InvalidValue::new(
            "slot_url",
            "this build has no Redis support",
        ));
    }
    let target = SlotTarget::parse(text)?;
    Ok(SecretUrl {
        redacted: target.redacted(),
        url: Secret::new(text.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        let u = parse_webhook_url("https://hooks.example.com/services/T0/SECRET").unwrap();
        assert_eq!(u.redacted(), "https://hooks.example.com:443");
        assert!(!format!("{u:?}").contains("SECRET"));
        for bad in ["ftp://x", "http://", "not a url", "/relative"] {
            assert!(parse_webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn slot_urls() {
        let u = parse_slot_url("redis://svc:pw123@127.0.0.1:6380/2").unwrap();
        assert_eq!(u.redacted(), "redis://127.0.0.1:6380/2");
        assert!(!format!("{u:?}").contains("pw123"));
        parse_slot_url("rediss://cache.internal").unwrap();
        for bad in [
            "http://x",
            "redis://",
            "redis://h/notanumber",
            "redis://h?x=1",
            "junk",
        ] {
            assert!(parse_slot_url(bad).is_err(), "{bad}");
        }
    }
}
