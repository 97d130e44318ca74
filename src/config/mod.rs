//! Configuration, the bottom layer: every key (`keys`), the value parsers and the types they
//! produce (`allowlist`, `password_hash`, `mailer`, `urls`, `receivers`, `slot_url`), secrets
//! (`secret`), the settings they make (`settings`) and the process-global snapshot (`global`).
//!
//! Plain data: it imports nothing above it (the layering test checks). Readers take an
//! `Arc<Settings>` snapshot, so an operation sees one consistent set even when another thread
//! reconfigures. It must never print a secret: passwords, the webhook secret and URLs with
//! credentials are only shown redacted.

pub mod address;
pub mod allowlist;
pub(crate) mod audit_path;
mod global;
mod keys;
mod mailer;
pub mod password_hash;
mod receivers;
mod secret;
mod settings;
mod slot_url;
mod state_dir;
mod urls;

pub use allowlist::AllowList;
pub use global::{
    configure, configure_from_env, current, from_env, reset, slot_facts, with_current, Change,
    SlotFacts,
};
pub use keys::{find as find_key, Key, Kind, KEYS};
pub use password_hash::StoredHash;
pub use secret::Secret;
use settings::{mailbox, mailbox_list, valid_slot_key};
pub use settings::{AuditSettings, LoginSettings, Settings, SlotSettings};

pub use mailer::{Mailer, SmtpCredentials, SmtpTls};
pub use receivers::{parse_receivers, Receiver, WebhookFormat, MAX_RECEIVERS};
pub use slot_url::SlotTarget;
pub use urls::{parse_slot_url, parse_webhook_url, SecretUrl};

/// The range of `otp_ttl_seconds`. A shared-slot record whose TTL lies outside it was not
/// written by this library.
pub const OTP_TTL_SECONDS: std::ops::RangeInclusive<u64> = 1..=86_400;

/// The most recipients `alert_emails` may name.
pub const MAX_ALERT_RECIPIENTS: usize = 1000;

/// Why a value was refused, and for which key: what the value parsers return, so that the key
/// table takes the reason as it is (it used to cut a "key: " prefix off the error's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// The key the value was for.
    pub key: &'static str,
    /// What is wrong with it (never the value itself: it may be a credential).
    pub why: String,
}

impl InvalidValue {
    pub(crate) fn new(key: &'static str, why: impl Into<String>) -> Self {
        InvalidValue {
            key,
            why: why.into(),
        }
    }
}

impl std::fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.why)
    }
}

impl From<InvalidValue> for crate::error::Error {
    fn from(v: InvalidValue) -> Self {
        crate::error::Error::Argument(v.to_string())
    }
}
