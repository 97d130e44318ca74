//! The one table of configuration keys: name, type, bounds, default and what each sets.
//!
//! Everything else is derived from it: `configure` looks a key up here, the defaults of
//! [`Settings`] are this table's defaults, `configure_from_env` walks it, the C ABI exports it
//! (`bg_config_key`), and the bindings' and README's tables are checked against it by tests.
//! It must never hold a secret's value, and a setter must never log (it runs under the
//! settings lock).

use std::time::Duration;

use super::allowlist::AllowList;
use super::password_hash::StoredHash;
use super::{mailbox, mailbox_list, parse_slot_url, parse_webhook_url, valid_slot_key};
use super::{parse_receivers, WebhookFormat};
use super::{Mailer, Secret, Settings};

/// What a key's value is, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number from `min` to `max`.
    Integer {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// `true` or `false`.
    Boolean,
    /// Text; an empty value unsets it.
    Text,
    /// Text that is never shown (a password or key); an empty value unsets it.
    Secret,
    /// A comma-separated list of email addresses; empty means "set but empty".
    EmailList,
}

impl Kind {
    /// The type's name as the C API and the bindings report it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Integer { .. } => "integer",
            Kind::Boolean => "boolean",
            Kind::Text => "string",
            Kind::Secret => "secret",
            Kind::EmailList => "email_list",
        }
    }
}

/// A value after its kind's checks, handed to the key's setter.
pub enum Value<'a> {
    /// No value: the key is unset (only for keys without a default).
    Unset,
    /// An integer within the key's bounds.
    Integer(u64),
    /// A boolean.
    Boolean(bool),
    /// Non-empty text (or, for an email list, possibly empty).
    Text(&'a str),
}

type Setter = fn(&mut Settings, Value<'_>) -> Result<(), String>;

/// One configuration key.
pub struct Key {
    /// The name `configure` takes; `BREAKGLASS_<NAME>` in the environment.
    pub name: &'static str,
    /// Its type and bounds.
    pub kind: Kind,
    /// The default as text; `None`: unset by default.
    pub default: Option<&'static str>,
    /// Whether setting it is a security change, recorded as `config_changed` in the audit
    /// trail (the key's name only, never its value).
    pub audited: bool,
    /// One line for documentation.
    pub doc: &'static str,
    set: Setter,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("default", &self.default)
            .finish()
    }
}

fn int(v: Value<'_>) -> u64 {
    match v {
        Value::Integer(n) => n,
        _ => unreachable!("integer keys always have a default"),
    }
}

/// A parser's refusal as a setter's reason (`apply` names the key).
fn reason(e: super::InvalidValue) -> String {
    e.why
}

fn text(v: Value<'_>) -> Option<&str> {
    match v {
        Value::Text(t) => Some(t),
        _ => None,
    }
}

/// Every key, in the order `configure_from_env` applies them.
pub static KEYS: &[Key] = &[
    Key {
        name: "otp_ttl_seconds",
        kind: Kind::Integer {
            min: *super::OTP_TTL_SECONDS.start(),
            max: *super::OTP_TTL_SECONDS.end(),
        },
        default: Some("600"),
        audited: true,
        doc: "life of a new code in seconds; fixed when the code is issued",
        set: |s, v| {
            s.otp_ttl = Duration::from_secs(int(v));
            Ok(())
        },
    },
    Key {
        name: "mailer",
        kind: Kind::Secret,
        default: None,
        audited: true,
        doc: "where email goes: smtp://[user[:pass]@]host[:port][?tls=required|opportunistic], \
              smtps://..., file:///abs/dir, sendmail, sendmail:///path",
        set: |s, v| {
            s.mailer = text(v).map(Mailer::parse).transpose().map_err(reason)?;
            Ok(())
        },
    },
    Key {
        name: "from_email",
        kind: Kind::Text,
        default: None,
        audited: false,
        doc: "sender of every email",
        set: |s, v| {
            s.from_email = text(v).map(mailbox).transpose()?;
            Ok(())
        },
    },
    Key {
        name: "otp_email",
        kind: Kind::Text,
        default: None,
        audited: true,
        doc: "the break-glass address that receives codes",
        set: |s, v| {
            s.otp_email = text(v).map(mailbox).transpose()?;
            Ok(())
        },
    },
    Key {
        name: "alert_emails",
        kind: Kind::EmailList,
        default: None,
        audited: true,
        doc: "comma-separated alert recipients; empty: set but empty (skipped with a warning)",
        set: |s, v| {
            s.alert_emails = text(v).map(mailbox_list).transpose()?;
            Ok(())
        },
    },
    Key {
        name: "alert_webhook_url",
        kind: Kind::Secret,
        default: None,
        audited: true,
        doc: "http(s) URL for the alert POST",
        set: |s, v| {
            s.alert_webhook_url = text(v).map(parse_webhook_url).transpose().map_err(reason)?;
            Ok(())
        },
    },
    Key {
        name: "alert_webhook_secret",
        kind: Kind::Secret,
        default: None,
        audited: true,
        doc: "key of the X-Breakglass-Signature HMAC-SHA256 over each webhook body",
        set: |s, v| {
            s.alert_webhook_secret = text(v).map(|t| Secret::new(t.to_owned()));
            Ok(())
        },
    },
    Key {
        name: "alert_webhook_format",
        kind: Kind::Text,
        default: Some("json"),
        doc: "body of the alert_webhook_url POST: json, slack, pagerduty or alertmanager",
        audited: true,
        set: |s, v| {
            s.alert_webhook_format = WebhookFormat::parse(text(v).unwrap_or_default())?;
            Ok(())
        },
    },
    Key {
        name: "alert_webhooks",
        kind: Kind::Secret,
        default: None,
        doc: "more alert receivers: format=url entries separated by commas or spaces \
              (json, slack, pagerduty, alertmanager)",
        audited: true,
        set: |s, v| {
            s.alert_webhooks = text(v)
                .map(parse_receivers)
                .transpose()?
                .unwrap_or_default();
            Ok(())
        },
    },
    Key {
        name: "pagerduty_routing_key",
        kind: Kind::Secret,
        default: None,
        doc: "PagerDuty Events API v2 routing key, for pagerduty receivers",
        audited: true,
        set: |s, v| {
            s.pagerduty_routing_key = text(v).map(|t| Secret::new(t.to_owned()));
            Ok(())
        },
    },
    Key {
        name: "dev_otp_log",
        kind: Kind::Boolean,
        default: Some("false"),
        audited: true,
        doc: "also log codes at warn level (development only)",
        set: |s, v| {
            s.dev_otp_log = matches!(v, Value::Boolean(true));
            Ok(())
        },
    },
    Key {
        name: "delivery_timeout_ms",
        kind: Kind::Integer {
            min: 1,
            max: 600_000,
        },
        default: Some("10000"),
        audited: false,
        doc: "overall bound on each SMTP session, sendmail run and webhook request",
        set: |s, v| {
            s.delivery_timeout = Duration::from_millis(int(v));
            Ok(())
        },
    },
    Key {
        name: "slot_url",
        kind: Kind::Secret,
        default: None,
        audited: true,
        doc: "redis://[user[:pass]@]host[:port][/db] or rediss://...; unset: the in-process slot",
        set: |s, v| {
            s.slot.url = text(v).map(parse_slot_url).transpose().map_err(reason)?;
            if s.slot.url.is_some() && s.state_dir.is_some() {
                return Err("state_dir is set: use state_dir or slot_url, not both".into());
            }
            Ok(())
        },
    },
    Key {
        name: "state_dir",
        kind: Kind::Text,
        default: None,
        audited: true,
        doc: "absolute directory for the login state shared by every process of this host \
              (created 0700; must be owned by this user and not writable by others); unset: \
              in-process state, or slot_url's",
        set: |s, v| {
            s.state_dir = match text(v) {
                None => None,
                Some(_) if s.slot.url.is_some() => {
                    return Err("slot_url is set: use state_dir or slot_url, not both".into())
                }
                Some(t) => Some(super::state_dir::prepare(t)?),
            };
            Ok(())
        },
    },
    Key {
        name: "slot_key",
        kind: Kind::Text,
        default: Some("breakglass:otp"),
        audited: true,
        doc: "the Redis key that holds the pending code",
        set: |s, v| {
            let key = text(v).unwrap_or_default();
            if !valid_slot_key(key) {
                return Err("1 to 512 printable ASCII characters, no spaces".into());
            }
            s.slot.key = key.to_owned();
            Ok(())
        },
    },
    Key {
        name: "slot_timeout_ms",
        kind: Kind::Integer {
            min: 1,
            max: 60_000,
        },
        default: Some("1000"),
        audited: false,
        doc: "overall bound on one shared-slot operation, connection included",
        set: |s, v| {
            s.slot.timeout = Duration::from_millis(int(v));
            Ok(())
        },
    },
    Key {
        name: "slot_wait_replicas",
        kind: Kind::Integer { min: 0, max: 64 },
        default: Some("0"),
        audited: true,
        doc: "replicas that must acknowledge a successful verify (WAIT)",
        set: |s, v| {
            s.slot.wait_replicas = int(v) as u32;
            Ok(())
        },
    },
    Key {
        name: "password_hash",
        kind: Kind::Secret,
        default: None,
        audited: true,
        doc: "the break-glass password's hash: argon2id PHC ($argon2id$...) or bcrypt ($2b$/$2y$, \
              cost at most 14); `breakglass hash-password` makes one",
        set: |s, v| {
            s.login.password_hash = text(v).map(StoredHash::parse).transpose()?;
            Ok(())
        },
    },
    Key {
        name: "allowed_ips",
        kind: Kind::Text,
        default: None,
        audited: true,
        doc: "comma-separated addresses and CIDR ranges a login may come from; unset: 127.0.0.1 \
              and ::1 only (with a warning); empty: no one",
        set: |s, v| {
            s.login.allowed_ips = match v {
                Value::Text(t) => Some(AllowList::parse(t)?),
                _ => None,
            };
            Ok(())
        },
    },
    Key {
        name: "max_attempts",
        kind: Kind::Integer { min: 1, max: 1000 },
        default: Some("5"),
        audited: true,
        doc: "failed logins from one address (IPv6: one /64) that lock it out",
        set: |s, v| {
            s.login.max_attempts = int(v) as u32;
            Ok(())
        },
    },
    Key {
        name: "lockout_seconds",
        kind: Kind::Integer {
            min: 1,
            max: 604_800,
        },
        default: Some("900"),
        audited: true,
        doc: "length of a lockout, and of the window failures are counted in",
        set: |s, v| {
            s.login.lockout = Duration::from_secs(int(v));
            Ok(())
        },
    },
    Key {
        name: "max_global_failures",
        kind: Kind::Integer {
            min: 1,
            max: 1_000_000,
        },
        default: Some("20"),
        audited: true,
        doc: "wrong codes (each after a right password) from all addresses within lockout_seconds \
              that lock every login out",
        set: |s, v| {
            s.login.max_global_failures = int(v) as u32;
            Ok(())
        },
    },
    Key {
        name: "session_ttl_seconds",
        kind: Kind::Integer {
            min: 1,
            max: 604_800,
        },
        default: Some("3600"),
        audited: true,
        doc: "life of a break-glass session; fixed when it begins",
        set: |s, v| {
            s.login.session_ttl = Duration::from_secs(int(v));
            Ok(())
        },
    },
    Key {
        name: "audit_log",
        kind: Kind::Text,
        default: None,
        audited: true,
        doc: "absolute path of the audit file: one chained JSON line per break-glass event; \
              unset: no audit file",
        set: |s, v| {
            s.audit.log = match text(v) {
                Some(t) if !t.starts_with('/') => return Err("must be an absolute path".into()),
                Some(t) => {
                    let p = std::path::PathBuf::from(t);
                    super::audit_path::check_path(&p)?;
                    Some(p)
                }
                None => None,
            };
            Ok(())
        },
    },
    Key {
        name: "audit_max_bytes",
        kind: Kind::Integer {
            min: 4096,
            max: 1 << 40,
        },
        default: Some("16777216"),
        audited: true,
        doc: "size at which audit_log is rotated to audit_log.SEQ; the new file's first record \
              continues the chain",
        set: |s, v| {
            s.audit.max_bytes = int(v);
            Ok(())
        },
    },
    Key {
        name: "audit_key",
        kind: Kind::Secret,
        default: None,
        audited: true,
        doc: "HMAC-SHA256 key of the audit chain; unset: plain SHA-256 (evidence of accidents, \
              not of an attacker)",
        set: |s, v| {
            s.audit.key = text(v).map(|t| Secret::new(t.to_owned()));
            Ok(())
        },
    },
    Key {
        name: "audit_required",
        kind: Kind::Boolean,
        default: Some("true"),
        audited: true,
        doc: "refuse a login (BG_ERR_AUDIT) whose success cannot be written to audit_log",
        set: |s, v| {
            s.audit.required = matches!(v, Value::Boolean(true));
            Ok(())
        },
    },
    Key {
        name: "recovery_codes_file",
        kind: Kind::Text,
        default: None,
        audited: true,
        doc: "absolute path of the recovery codes' hashes (breakglass recovery-codes new); a \
              code is accepted in place of the emailed code, once; unset: no recovery codes",
        set: |s, v| {
            s.recovery_codes_file = match text(v) {
                Some(t) if !t.starts_with('/') => return Err("must be an absolute path".into()),
                t => t.map(std::path::PathBuf::from),
            };
            Ok(())
        },
    },
    Key {
        name: "syslog",
        kind: Kind::Boolean,
        default: Some("false"),
        audited: true,
        doc: "also send every audit event to the local syslog (RFC 5424, facility authpriv)",
        set: |s, v| {
            s.audit.syslog = matches!(v, Value::Boolean(true));
            Ok(())
        },
    },
    Key {
        name: "syslog_socket",
        kind: Kind::Text,
        default: Some("/dev/log"),
        audited: true,
        doc: "the unix datagram socket syslog listens on",
        set: |s, v| {
            match text(v) {
                Some(t) if !t.is_empty() => s.audit.syslog_socket = t.into(),
                _ => return Err("must be a socket path".into()),
            }
            Ok(())
        },
    },
];

/// The key called `name`.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

impl Key {
    /// Checks `value` against the key's kind and sets it; `None` restores the default.
    pub(super) fn apply(&self, s: &mut Settings, value: Option<&str>) -> Result<(), String> {
        let value = value.or(self.default);
        let checked = match (self.kind, value) {
            (_, None) => Value::Unset,
            (Kind::Integer { min, max }, Some(v)) => Value::Integer(number(v, min, max)?),
            (Kind::Boolean, Some("true")) => Value::Boolean(true),
            (Kind::Boolean, Some("false")) => Value::Boolean(false),
            (Kind::Boolean, Some(_)) => return Err("must be true or false".into()),
            (Kind::EmailList, Some(v)) => Value::Text(v),
            // Empty text unsets an optional key, as an empty environment variable would; except
            // `allowed_ips`, whose documented empty value is a list that allows no one (as " "
            // already was): reading "" as unset would open the default list instead.
            (Kind::Text | Kind::Secret, Some(""))
                if self.default.is_none() && self.name != "allowed_ips" =>
            {
                Value::Unset
            }
            (Kind::Text | Kind::Secret, Some(v)) => Value::Text(v),
        };
        (self.set)(s, checked)
    }
}

fn number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = crate::text::decimal(text.as_bytes()).ok_or_else(|| "not a whole number".to_owned())?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be from {min} to {max}"))
    }
}

/// Settings with every key at its default.
pub(super) fn defaults() -> Settings {
    let mut s = Settings::empty();
    for k in KEYS {
        k.apply(&mut s, None)
            .expect("every default in the key table is valid");
    }
    s
}
