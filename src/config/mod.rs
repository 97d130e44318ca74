//! Settings: every configuration key, its default, its validation, and the process-global copy.
//!
//! Owns the key table and the rule that a bad value changes nothing. Readers take an
//! `Arc<Settings>` snapshot, so a delivery or a slot operation sees one consistent set even when
//! another thread reconfigures. It must never log under its lock, and never print a secret:
//! passwords, the webhook secret and URLs with credentials are only shown redacted.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use lettre::message::Mailbox;
use parking_lot::RwLock;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

mod mailer;
mod slot_url;
mod urls;

pub use mailer::{Mailer, SmtpCredentials, SmtpTls};
pub use slot_url::SlotTarget;
pub use urls::{parse_slot_url, parse_webhook_url, SecretUrl};

/// Every key `configure` accepts, in the order `configure_from_env` reads them.
pub const KEYS: &[&str] = &[
    "otp_ttl_seconds",
    "mailer",
    "from_email",
    "otp_email",
    "alert_emails",
    "alert_webhook_url",
    "alert_webhook_secret",
    "dev_otp_log",
    "delivery_timeout_ms",
    "slot_url",
    "slot_key",
    "slot_timeout_ms",
    "slot_wait_replicas",
];

/// The range of `otp_ttl_seconds`. A shared-slot record whose TTL lies outside it was not
/// written by this library.
pub const OTP_TTL_SECONDS: std::ops::RangeInclusive<u64> = 1..=86_400;

/// The most recipients `alert_emails` may name.
pub const MAX_ALERT_RECIPIENTS: usize = 1000;

/// A secret string: wiped on drop, never shown by `Debug`.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the slot lives and how it is reached.
#[derive(Debug, Clone)]
pub struct SlotSettings {
    /// `None`: the in-process slot.
    pub url: Option<SecretUrl>,
    /// The key holding the pending code.
    pub key: String,
    /// Overall bound on one operation, connection included.
    pub timeout: Duration,
    /// Replicas that must acknowledge a successful verify.
    pub wait_replicas: u32,
}

/// One consistent set of settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lifetime of a new code.
    pub otp_ttl: Duration,
    /// Where mail goes; `None`: no email at all.
    pub mailer: Option<Mailer>,
    /// Sender of every email.
    pub from_email: Option<Mailbox>,
    /// Recipient of one-time codes.
    pub otp_email: Option<Mailbox>,
    /// Alert recipients; `Some(empty)` means set but empty (skipped with a warning).
    pub alert_emails: Option<Vec<Mailbox>>,
    /// Where the alert POST goes.
    pub alert_webhook_url: Option<SecretUrl>,
    /// Key for the `X-Breakglass-Signature` HMAC.
    pub alert_webhook_secret: Option<Secret>,
    /// Log codes at warn level (development only).
    pub dev_otp_log: bool,
    /// Bound on each SMTP session and each webhook request.
    pub delivery_timeout: Duration,
    /// The slot backend.
    pub slot: SlotSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            otp_ttl: Duration::from_secs(600),
            mailer: None,
            from_email: None,
            otp_email: None,
            alert_emails: None,
            alert_webhook_url: None,
            alert_webhook_secret: None,
            dev_otp_log: false,
            delivery_timeout: Duration::from_millis(10_000),
            slot: SlotSettings {
                url: None,
                key: "breakglass:otp".to_owned(),
                timeout: Duration::from_millis(1000),
                wait_replicas: 0,
            },
        }
    }
}

static SETTINGS: LazyLock<RwLock<Arc<Settings>>> = LazyLock::new(Default::default);

/// A snapshot of the current settings.
pub fn current() -> Arc<Settings> {
    SETTINGS.read().clone()
}

/// Sets `key` to `value`; `None` restores the default. A bad key or value changes nothing.
pub fn configure(key: &str, value: Option<&str>) -> Result<()> {
    crate::sys::ensure_fork_handlers();
    let mut guard = SETTINGS.write();
    let mut next = Settings::clone(&guard);
    apply(&mut next, key, value)?;
    *guard = Arc::new(next);
    Ok(())
}

/// Reads `BREAKGLASS_<KEY>` for every key and applies all of them, or none when any is bad.
pub fn configure_from_env() -> Result<()> {
    let found: Vec<(&str, Zeroizing<String>)> = KEYS
        .iter()
        .filter_map(|key| {
            let var = format!("BREAKGLASS_{}", key.to_ascii_uppercase());
            match std::env::var(&var) {
                Ok(v) => Some(Ok((*key, Zeroizing::new(v)))),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    Some(Err(Error::Argument(format!("{var} is not UTF-8"))))
                }
            }
        })
        .collect::<Result<_>>()?;
    crate::sys::ensure_fork_handlers();
    let mut guard = SETTINGS.write();
    let mut next = Settings::clone(&guard);
    for (key, value) in &found {
        apply(&mut next, key, Some(value.as_str()))?;
    }
    *guard = Arc::new(next);
    Ok(())
}

/// Restores every default (tests and the C test program use it between cases).
pub fn reset() {
    *SETTINGS.write() = Arc::default();
}

fn apply(s: &mut Settings, key: &str, value: Option<&str>) -> Result<()> {
    let d = Settings::default();
    let arg = |why: String| Error::Argument(format!("{key}: {why}"));
    // Empty text unsets the optional string keys, as an empty environment variable would.
    let text = value.filter(|v| !v.is_empty());
    match key {
        "otp_ttl_seconds" => {
            s.otp_ttl = value.map_or(Ok(d.otp_ttl), |v| {
                number(v, *OTP_TTL_SECONDS.start(), *OTP_TTL_SECONDS.end())
                    .map(Duration::from_secs)
                    .map_err(arg)
            })?
        }
        "mailer" => s.mailer = text.map(Mailer::parse).transpose()?,
        "from_email" => s.from_email = text.map(|v| mailbox(v).map_err(arg)).transpose()?,
        "otp_email" => s.otp_email = text.map(|v| mailbox(v).map_err(arg)).transpose()?,
        "alert_emails" => {
            s.alert_emails = value.map(|v| mailbox_list(v).map_err(arg)).transpose()?
        }
        "alert_webhook_url" => s.alert_webhook_url = text.map(parse_webhook_url).transpose()?,
        "alert_webhook_secret" => s.alert_webhook_secret = text.map(|v| Secret::new(v.to_owned())),
        "dev_otp_log" => {
            s.dev_otp_log = match value {
                None => d.dev_otp_log,
                Some("true") => true,
                Some("false") => false,
                Some(_) => return Err(arg("must be true or false".into())),
            }
        }
        "delivery_timeout_ms" => {
            s.delivery_timeout = value.map_or(Ok(d.delivery_timeout), |v| {
                number(v, 1, 600_000)
                    .map(Duration::from_millis)
                    .map_err(arg)
            })?
        }
        "slot_url" => s.slot.url = text.map(parse_slot_url).transpose()?,
        "slot_key" => {
            s.slot.key = match value {
                None => d.slot.key,
                Some(v) if valid_slot_key(v) => v.to_owned(),
                Some(_) => {
                    return Err(arg("1 to 512 printable ASCII characters, no spaces".into()))
                }
            }
        }
        "slot_timeout_ms" => {
            s.slot.timeout = value.map_or(Ok(d.slot.timeout), |v| {
                number(v, 1, 60_000).map(Duration::from_millis).map_err(arg)
            })?
        }
        "slot_wait_replicas" => {
            s.slot.wait_replicas = value.map_or(Ok(d.slot.wait_replicas as u64), |v| {
                number(v, 0, 64).map_err(arg)
            })? as u32
        }
        _ => return Err(Error::Argument("unknown configuration key".to_owned())),
    }
    Ok(())
}

fn number(text: &str, min: u64, max: u64) -> std::result::Result<u64, String> {
    let n: u64 = text
        .parse()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| "not a whole number".to_owned())?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be from {min} to {max}"))
    }
}

fn mailbox(text: &str) -> std::result::Result<Mailbox, String> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|_| "not an email address".to_owned())
}

fn mailbox_list(text: &str) -> std::result::Result<Vec<Mailbox>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let list = text
        .split(',')
        .map(mailbox)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if list.len() > MAX_ALERT_RECIPIENTS {
        return Err(format!("at most {MAX_ALERT_RECIPIENTS} recipients"));
    }
    Ok(list)
}

fn valid_slot_key(key: &str) -> bool {
    (1..=512).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) fn fork_hold() {
    crate::sys::fork_lock_rw(&SETTINGS);
}

pub(crate) fn fork_release() {
    crate::sys::fork_unlock_rw(&SETTINGS);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &mut Settings, key: &str, value: &str) -> Result<()> {
        apply(s, key, Some(value))
    }

    #[test]
    fn ttl_range_and_reset() {
        let mut s = Settings::default();
        set(&mut s, "otp_ttl_seconds", "1").unwrap();
        assert_eq!(s.otp_ttl, Duration::from_secs(1));
        for bad in ["0", "86401", "-1", "+5", " 5", "5s", "", "1e3"] {
            assert!(set(&mut s, "otp_ttl_seconds", bad).is_err(), "{bad}");
        }
        assert_eq!(s.otp_ttl, Duration::from_secs(1));
        apply(&mut s, "otp_ttl_seconds", None).unwrap();
        assert_eq!(s.otp_ttl, Duration::from_secs(600));
    }

    #[test]
    fn unknown_key_is_an_argument_error() {
        let mut s = Settings::default();
        assert!(matches!(
            set(&mut s, "otp_ttl", "5"),
            Err(Error::Argument(_))
        ));
    }

    #[test]
    fn addresses_are_validated() {
        let mut s = Settings::default();
        set(&mut s, "from_email", "Break Glass <bg@example.com>").unwrap();
        assert!(set(&mut s, "otp_email", "not-an-address").is_err());
        assert!(set(&mut s, "otp_email", "a@b\r\nBcc: x@y").is_err());
        assert!(s.otp_email.is_none());
        set(&mut s, "alert_emails", "a@example.com, b@example.com").unwrap();
        assert_eq!(s.alert_emails.as_ref().unwrap().len(), 2);
        assert!(set(&mut s, "alert_emails", "a@example.com,,b@example.com").is_err());
        assert_eq!(s.alert_emails.as_ref().unwrap().len(), 2);
        set(&mut s, "alert_emails", "").unwrap();
        assert_eq!(s.alert_emails.as_deref(), Some(&[][..]));
        apply(&mut s, "alert_emails", None).unwrap();
        assert!(s.alert_emails.is_none());
    }

    #[test]
    fn booleans_are_strict() {
        let mut s = Settings::default();
        set(&mut s, "dev_otp_log", "true").unwrap();
        assert!(s.dev_otp_log);
        assert!(set(&mut s, "dev_otp_log", "yes").is_err());
        assert!(s.dev_otp_log);
    }

    #[test]
    fn slot_keys() {
        let mut s = Settings::default();
        set(&mut s, "slot_key", "svc:a:otp").unwrap();
        assert!(set(&mut s, "slot_key", "has space").is_err());
        assert!(set(&mut s, "slot_key", "").is_err());
        set(&mut s, "slot_wait_replicas", "2").unwrap();
        assert_eq!(s.slot.wait_replicas, 2);
        assert!(set(&mut s, "slot_timeout_ms", "0").is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut s = Settings::default();
        set(&mut s, "alert_webhook_secret", "hunter2").unwrap();
        set(&mut s, "mailer", "smtp://u:hunter3@h").unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }
}
