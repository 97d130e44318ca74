//! The settings themselves: one consistent set of every key's parsed value, its defaults, and
//! how a key's value is applied to it.
//!
//! Plain data: it holds no lock and reaches no global; `global` publishes a set, `keys` says
//! what each key means. It must never print a secret: passwords, the webhook secret and URLs
//! with credentials are only shown redacted.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

use super::keys;
use super::MAX_ALERT_RECIPIENTS;
use super::{AllowList, Mailer, Receiver, Secret, SecretUrl, StoredHash, WebhookFormat};
use crate::error::{Error, Result};

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
    /// The body `alert_webhook_url` gets.
    pub alert_webhook_format: WebhookFormat,
    /// More receivers, each with its own format.
    pub alert_webhooks: Vec<Receiver>,
    /// The Events API v2 routing (integration) key for `pagerduty` receivers.
    pub pagerduty_routing_key: Option<Secret>,
    /// Log codes at warn level (development only).
    pub dev_otp_log: bool,
    /// Bound on each SMTP session and each webhook request.
    pub delivery_timeout: Duration,
    /// The slot backend.
    pub slot: SlotSettings,
    /// The host-wide login state's directory (`state_dir`), checked when it was set.
    pub state_dir: Option<PathBuf>,
    /// The process that last changed these settings (0: never changed). A process forked
    /// from it inherits them, which is how in-process login state notices a split.
    pub configured_in: u32,
    /// The login flow.
    pub login: LoginSettings,
    /// The audit trail.
    pub audit: AuditSettings,
    /// `recovery_codes_file`: the hashes of the recovery codes; `None`: no recovery codes.
    pub recovery_codes_file: Option<PathBuf>,
}

/// The login settings, part of [`Settings`].
#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// The break-glass password's hash; `None`: the login flow is not configured.
    pub password_hash: Option<StoredHash>,
    /// Who may try; `None`: this host only (127.0.0.1 and ::1), with a warning.
    pub allowed_ips: Option<AllowList>,
    /// Failures from one address, within one window, that lock it out.
    pub max_attempts: u32,
    /// Length of a lockout and of the sliding window.
    pub lockout: Duration,
    /// Lifetime of a session.
    pub session_ttl: Duration,
    /// Wrong codes from all addresses, within one window, that lock every login out.
    pub max_global_failures: u32,
}

/// The audit settings, part of [`Settings`].
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The audit file; `None`: no audit file is kept.
    pub log: Option<PathBuf>,
    /// The chain's HMAC key; `None`: plain SHA-256.
    pub key: Option<Secret>,
    /// Refuse a login whose success cannot be recorded.
    pub required: bool,
    /// Also send every event to the local syslog.
    pub syslog: bool,
    /// The syslog socket.
    pub syslog_socket: PathBuf,
    /// Rotate the file before it grows past this many bytes.
    pub max_bytes: u64,
}

impl Default for Settings {
    /// Every key at its default, from the key table.
    fn default() -> Self {
        keys::defaults()
    }
}

impl Settings {
    /// The shape the key table's defaults are applied to.
    pub(super) fn empty() -> Self {
        Settings {
            otp_ttl: Duration::ZERO,
            mailer: None,
            from_email: None,
            otp_email: None,
            alert_emails: None,
            alert_webhook_url: None,
            alert_webhook_secret: None,
            alert_webhook_format: WebhookFormat::Json,
            alert_webhooks: Vec::new(),
            pagerduty_routing_key: None,
            dev_otp_log: false,
            delivery_timeout: Duration::ZERO,
            state_dir: None,
            configured_in: 0,
            recovery_codes_file: None,
            slot: SlotSettings {
                url: None,
                key: String::new(),
                timeout: Duration::ZERO,
                wait_replicas: 0,
            },
            login: LoginSettings {
                password_hash: None,
                allowed_ips: None,
                max_attempts: 0,
                lockout: Duration::ZERO,
                session_ttl: Duration::ZERO,
                max_global_failures: 0,
            },
            audit: AuditSettings {
                log: None,
                key: None,
                required: false,
                syslog: false,
                syslog_socket: std::path::PathBuf::new(),
                max_bytes: 0,
            },
        }
    }
}

impl Settings {
    /// Every webhook receiver an alert goes to: `alert_webhook_url` (in
    /// `alert_webhook_format`) first, then `alert_webhooks` in order; the same format and URL
    /// twice is one receiver.
    pub fn receivers(&self) -> Vec<Receiver> {
        let mut out: Vec<Receiver> = Vec::new();
        let single = self.alert_webhook_url.as_ref().map(|url| Receiver {
            format: self.alert_webhook_format,
            url: url.clone(),
        });
        for r in single
            .into_iter()
            .chain(self.alert_webhooks.iter().cloned())
        {
            if !out
                .iter()
                .any(|o| o.format == r.format && o.url.as_str() == r.url.as_str())
            {
                out.push(r);
            }
        }
        out
    }
}

pub(super) fn apply(s: &mut Settings, key: &str, value: Option<&str>) -> Result<()> {
    let k =
        keys::find(key).ok_or_else(|| Error::Argument("unknown configuration key".to_owned()))?;
    k.apply(s, value)
        .map_err(|why| Error::Argument(format!("{key}: {why}")))
}

pub(super) fn mailbox(text: &str) -> std::result::Result<Mailbox, String> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|_| "not an email address".to_owned())
}

pub(super) fn mailbox_list(text: &str) -> std::result::Result<Vec<Mailbox>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut list: Vec<Mailbox> = Vec::new();
    for entry in text.split(',') {
        let next = mailbox(entry)?;
        // One alert per person: the same address twice (the domain compared without regard to
        // case, as DNS does; the local part exactly, as RFC 5321 leaves it to the server) is
        // kept once, with its first spelling.
        if !list.iter().any(|m| same_address(m, &next)) {
            list.push(next);
        }
        if list.len() > MAX_ALERT_RECIPIENTS {
            return Err(format!("at most {MAX_ALERT_RECIPIENTS} recipients"));
        }
    }
    Ok(list)
}

fn same_address(a: &Mailbox, b: &Mailbox) -> bool {
    a.email.user() == b.email.user() && a.email.domain().eq_ignore_ascii_case(b.email.domain())
}

pub(super) fn valid_slot_key(key: &str) -> bool {
    (1..=512).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
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
        set(
            &mut s,
            "alert_emails",
            "Ops <ops@Example.COM>, ops@example.com, Ops@example.com, ops@example.org",
        )
        .unwrap();
        let kept: Vec<String> = s
            .alert_emails
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.email.to_string())
            .collect();
        assert_eq!(
            kept,
            ["ops@Example.COM", "Ops@example.com", "ops@example.org"]
        );
        set(&mut s, "alert_emails", "").unwrap();
        assert_eq!(s.alert_emails.as_deref(), Some(&[][..]));
        apply(&mut s, "alert_emails", None).unwrap();
        assert!(s.alert_emails.is_none());
    }

    #[test]
    fn an_empty_allow_list_allows_no_one() {
        let mut s = Settings::default();
        for empty in ["", " "] {
            set(&mut s, "allowed_ips", empty).unwrap();
            assert!(
                s.login.allowed_ips.as_ref().is_some_and(|l| l.is_empty()),
                "{empty:?}"
            );
        }
        apply(&mut s, "allowed_ips", None).unwrap();
        assert!(s.login.allowed_ips.is_none());
        // Other optional text keys still read "" as unset.
        set(&mut s, "from_email", "bg@example.com").unwrap();
        set(&mut s, "from_email", "").unwrap();
        assert!(s.from_email.is_none());
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
    fn audit_keys_are_checked() {
        let mut s = Settings::default();
        assert!(s.audit.required && !s.audit.syslog && s.audit.log.is_none());
        assert_eq!(s.audit.syslog_socket, std::path::Path::new("/dev/log"));
        assert!(set(&mut s, "audit_log", "relative/audit.log").is_err());
        let dir = std::env::temp_dir().join(format!("bg-settings-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let log = dir.join("audit.log");
        set(&mut s, "audit_log", log.to_str().unwrap()).unwrap();
        assert!(s.audit.log.is_some());
        set(&mut s, "audit_log", "").unwrap();
        assert!(s.audit.log.is_none());
        assert!(set(&mut s, "syslog_socket", "").is_err());
        assert!(set(&mut s, "audit_required", "no").is_err());
        set(&mut s, "audit_required", "false").unwrap();
        assert!(!s.audit.required);
        set(&mut s, "audit_key", "hunter4").unwrap();
        assert!(!format!("{s:?}").contains("hunter4"));
    }

    /// The bcrypt cost cap holds at the key: a cost above it is refused with the reason and the
    /// setting is unchanged; the cost at the cap is accepted without computing a hash.
    #[test]
    fn password_hash_bcrypt_cost_is_capped() {
        use crate::config::password_hash::BCRYPT_MAX_COST;
        let hash = |cost: u32| {
            format!("$2b${cost:02}$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123e")
        };
        let mut s = Settings::default();
        set(&mut s, "password_hash", &hash(BCRYPT_MAX_COST)).unwrap();
        let before = format!("{:?}", s.login.password_hash);
        let err = set(&mut s, "password_hash", &hash(BCRYPT_MAX_COST + 1)).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        assert_eq!(format!("{:?}", s.login.password_hash), before);
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
