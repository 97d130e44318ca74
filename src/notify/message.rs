//! The texts of every email and of the webhook payload.
//!
//! Owns what each message says and where the untrusted text (the `ip` argument) goes: escaped
//! for headers and bodies and JSON-escaped in the payload, with the shared helpers of
//! `crate::text`. It must never let a control character reach a header, never cut text without
//! saying so, and never include a code anywhere but the OTP email's body.

use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use zeroize::Zeroizing;

use crate::otp::Otp;
use crate::text::{bounded_input, escape_controls};
pub use crate::text::{MAX_IP_BYTES, MAX_IP_CHARS, TRUNCATED_MARK};

/// The alert email header that carries the event id.
pub const EVENT_ID_HEADER: &str = "X-Breakglass-Event-Id";
/// The alert email header carrying the audit trail's anchored head (`SEQ:MAC`).
pub const AUDIT_HEAD_HEADER: &str = "X-Breakglass-Audit-Head";

/// One email ready for any transport: its envelope and its formatted bytes.
pub struct Outgoing {
    /// The recipient, for log lines.
    pub to: Mailbox,
    /// SMTP envelope.
    pub envelope: Envelope,
    /// The whole message, wiped on drop because an OTP email carries the code. Best effort:
    /// the body also passes through lettre's builder, whose intermediate copies are plain
    /// `String`s that are freed without being wiped.
    pub bytes: Zeroizing<Vec<u8>>,
}

/// What an alert says, fixed when it is raised.
#[derive(Debug, Clone)]
pub struct Alert {
    /// 32 hex digits (128 bits from the OS random source), the same on every channel and every
    /// retry of this alert.
    pub id: String,
    /// The caller's text, lossily decoded, cut to [`MAX_IP_BYTES`] and [`MAX_IP_CHARS`] and
    /// then marked with [`TRUNCATED_MARK`]: for JSON.
    pub ip: String,
    /// The same with control characters escaped: for email headers and bodies.
    pub ip_escaped: String,
    /// RFC 3339 UTC time the alert was raised.
    pub timestamp: String,
    /// The same instant, for formats that compute with it (Alertmanager's `endsAt`).
    pub raised: SystemTime,
    /// This machine's host name.
    pub host: String,
    /// Jobs dropped for a full queue since the previous alert went out.
    pub dropped_before: u64,
    /// What happened.
    pub kind: AlertKind,
    /// The audit trail's last anchored head when the alert was raised (`SEQ:MAC`): a copy
    /// outside the host of a point the audit file must still reach (`audit verify --anchor`).
    pub audit_head: Option<String>,
}

/// Below this many recovery codes left, the alarm (and `check-config`) warns.
pub const RECOVERY_LOW_WATER: u32 = 3;

/// What an alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A break-glass login succeeded (`"event": "break_glass_login"`).
    Login,
    /// Too many failed logins from all addresses: every login is locked out
    /// (`"event": "break_glass_lockout"`).
    GlobalLockout {
        /// Failures that reached the limit.
        failures: u32,
        /// The window they fell in, and the lockout's length, in seconds.
        seconds: u64,
    },
    /// A fire drill (`"event": "break_glass_drill"`): a test of every channel, marked as
    /// such in every text, never a login.
    Drill,
    /// Guessing below the lockout limits (`"event": "break_glass_guessing"`): the first wrong
    /// code after a right password, or more wrong passwords from all addresses than one
    /// address may make, within one window. Raised once per window and kind.
    Guessing {
        /// The code (true) or the password (false) is being guessed.
        code: bool,
        /// Failures of that kind within the window.
        failures: u32,
        /// Distinct addresses (IPv6: /64s) they came from.
        addresses: u32,
        /// The window, in seconds.
        seconds: u64,
    },
    /// A break-glass login with a recovery code (`"event": "break_glass_recovery_code_used"`).
    RecoveryCodeUsed {
        /// Codes of the set still unused.
        left: u32,
        /// Codes in the set.
        total: u32,
    },
}

impl AlertKind {
    /// The JSON `event` value.
    pub fn event(self) -> &'static str {
        match self {
            AlertKind::Login => "break_glass_login",
            AlertKind::GlobalLockout { .. } => "break_glass_lockout",
            AlertKind::Drill => "break_glass_drill",
            AlertKind::Guessing { .. } => "break_glass_guessing",
            AlertKind::RecoveryCodeUsed { .. } => "break_glass_recovery_code_used",
        }
    }

    /// The severity receivers are given: a drill is `info`, so it pages no one by its
    /// severity alone; a login and a lockout are `critical`.
    pub fn severity(self) -> &'static str {
        match self {
            AlertKind::Drill => "info",
            AlertKind::Guessing { .. } => "warning",
            AlertKind::Login
            | AlertKind::GlobalLockout { .. }
            | AlertKind::RecoveryCodeUsed { .. } => "critical",
        }
    }

    /// A short title: Slack's header, Alertmanager's `alertname` (in CamelCase).
    pub fn title(self) -> (&'static str, &'static str) {
        match self {
            AlertKind::Login => ("Break-glass login", "BreakGlassLogin"),
            AlertKind::GlobalLockout { .. } => {
                ("Break-glass login locked out", "BreakGlassLockout")
            }
            AlertKind::Drill => ("[DRILL] Break-glass alarm test", "BreakGlassDrill"),
            AlertKind::Guessing { .. } => ("Break-glass login guessing", "BreakGlassGuessing"),
            AlertKind::RecoveryCodeUsed { .. } => (
                "Break-glass login with a recovery code",
                "BreakGlassRecoveryCodeUsed",
            ),
        }
    }
}

impl Alert {
    /// The alarm that every login is locked out, with a fresh event id; its `ip` says "all
    /// addresses".
    pub fn lockout(failures: u32, seconds: u64, dropped_before: u64) -> Alert {
        Alert {
            kind: AlertKind::GlobalLockout { failures, seconds },
            ..Alert::new(Some(b"(all addresses)"), dropped_before)
        }
    }

    /// The guessing alarm (see `AlertKind::Guessing`); its `ip` says "several addresses"
    /// when more than one took part.
    pub fn guessing(
        code: bool,
        failures: u32,
        addresses: u32,
        seconds: u64,
        dropped_before: u64,
    ) -> Alert {
        let ip: &[u8] = if addresses > 1 {
            b"(several addresses)"
        } else {
            b"(one address)"
        };
        Alert {
            kind: AlertKind::Guessing {
                code,
                failures,
                addresses,
                seconds,
            },
            ..Alert::new(Some(ip), dropped_before)
        }
    }

    /// A login with a recovery code from `ip`, with a fresh event id.
    pub fn recovery_code_used(ip: Option<&[u8]>, left: u32, total: u32) -> Alert {
        Alert {
            kind: AlertKind::RecoveryCodeUsed { left, total },
            ..Alert::new(ip, 0)
        }
    }

    /// A fire drill, with a fresh event id; its `ip` says that no one logged in.
    pub fn drill() -> Alert {
        Alert {
            kind: AlertKind::Drill,
            ..Alert::new(Some(b"(drill: no login)"), 0)
        }
    }

    /// An alert raised now, with a fresh event id. `ip` is untrusted bytes; `None` (a NULL
    /// pointer) becomes "unknown".
    pub fn new(ip: Option<&[u8]>, dropped_before: u64) -> Alert {
        let ip = match ip {
            None => "unknown".to_owned(),
            Some(bytes) => bounded_input(bytes),
        };
        let raised = SystemTime::now();
        Alert {
            id: super::event_id::new(),
            ip_escaped: escape_controls(&ip),
            ip,
            timestamp: humantime::format_rfc3339_seconds(raised).to_string(),
            raised,
            host: crate::sys::hostname(),
            dropped_before,
            kind: AlertKind::Login,
            // Filled in by the notifier, which has the caller's settings.
            audit_head: None,
        }
    }

    /// The one-line description used as the webhook `message` and in the email body.
    pub fn summary(&self, ip: &str) -> String {
        let mut text =
            match self.kind {
                AlertKind::Login => format!(
                    "Break-glass login from {ip} on host {} at {}",
                    escape_controls(&self.host),
                    self.timestamp
                ),
                AlertKind::GlobalLockout { failures, seconds } => format!(
                    "{failures} failed break-glass logins within {seconds} s on host {}: every \
                 break-glass login is locked out for {seconds} s from {}",
                    escape_controls(&self.host),
                    self.timestamp
                ),
                AlertKind::Drill => format!(
                    "DRILL: a test of the break-glass alarm from host {} at {}; no one logged in, \
                 nothing to do but confirm it arrived",
                    escape_controls(&self.host),
                    self.timestamp
                ),
                AlertKind::Guessing {
                    code,
                    failures,
                    addresses,
                    seconds,
                } => {
                    format!(
                "Someone is guessing the break-glass {} on host {}: {failures} wrong {} from \
                 {addresses} address(es) within {seconds} s, at {} (no lockout yet)",
                if code { "one-time code" } else { "password" },
                escape_controls(&self.host),
                if code { "code(s), each after a right password," } else { "password(s)" },
                self.timestamp
            )
                }
                AlertKind::RecoveryCodeUsed { left, total } => format!(
                "Break-glass login with a recovery code (not the emailed code) from {ip} on host \
                 {} at {}; {left} of {total} recovery codes left{}",
                escape_controls(&self.host),
                self.timestamp,
                if left < RECOVERY_LOW_WATER {
                    "; WARNING: fewer than 3 recovery codes left: make a new set"
                } else {
                    ""
                }
            ),
            };
        if self.dropped_before > 0 {
            text.push_str(&format!(
                "; {} earlier notification(s) (emails or webhook calls) were dropped because \
                 their delivery queue was full",
                self.dropped_before
            ));
        }
        text
    }

    /// The webhook body: the seven documented fields (`audit_head` the last), and for
    /// `break_glass_guessing` also `kind`, `failures` and `addresses`.
    pub fn json(&self) -> String {
        let mut v = serde_json::json!({
            "id": self.id,
            "event": self.kind.event(),
            "ip": self.ip,
            "timestamp": self.timestamp,
            "severity": self.kind.severity(),
            "message": self.summary(&self.ip),
            "audit_head": self.audit_head,
        });
        if let AlertKind::Guessing {
            code,
            failures,
            addresses,
            ..
        } = self.kind
        {
            v["kind"] = (if code { "code" } else { "password" }).into();
            v["failures"] = failures.into();
            v["addresses"] = addresses.into();
        }
        v.to_string()
    }
}

fn build(
    from: &Mailbox,
    to: &Mailbox,
    subject: &str,
    event_id: Option<&str>,
    audit_head: Option<&str>,
    body: String,
) -> Result<Outgoing, String> {
    // A Message-ID at the sender's domain and a Date on every message: strict receivers and
    // spam filters penalise mail without them.
    let message_id = format!("<{}@{}>", super::event_id::new(), from.email.domain());
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to.clone())
        .subject(subject)
        .message_id(Some(message_id))
        .date_now()
        .header(ContentType::TEXT_PLAIN);
    if let Some(id) = event_id {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(EVENT_ID_HEADER),
            id.to_owned(),
        ));
    }
    if let Some(head) = audit_head {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(AUDIT_HEAD_HEADER),
            head.to_owned(),
        ));
    }
    let message = builder
        .body(body)
        .map_err(|e| format!("cannot build the message: {e}"))?;
    Ok(Outgoing {
        to: to.clone(),
        envelope: message.envelope().clone(),
        bytes: Zeroizing::new(message.formatted()),
    })
}

/// The drill of the code email: to `otp_email`, marked `[DRILL]`, with no code in it.
pub fn drill_code_email(from: &Mailbox, to: &Mailbox, alert: &Alert) -> Result<Outgoing, String> {
    let subject = format!(
        "[DRILL] Break-glass one-time code email test from {} at {} (no code, no login)",
        escape_controls(&alert.host),
        alert.timestamp
    );
    let body = format!(
        "This is a fire drill of the break-glass code email: no one asked for a code and this \
         message carries none.\n\n\
         It shows that the path a real one-time code takes (mailer, from_email, otp_email) \
         still works.\nHost: {}\nTime (UTC): {}\nEvent id: {}\n",
        escape_controls(&alert.host),
        alert.timestamp,
        alert.id
    );
    build(from, to, &subject, Some(&alert.id), None, body)
}

/// The email that carries a one-time code.
pub fn otp_email(
    from: &Mailbox,
    to: &Mailbox,
    code: &Otp,
    ttl: Duration,
) -> Result<Outgoing, String> {
    let secs = ttl.as_secs();
    let validity = if secs % 60 == 0 {
        format!("{} minute(s)", secs / 60)
    } else {
        format!("{secs} second(s)")
    };
    // Wiped when this function returns; `build` hands lettre a plain copy (see `Outgoing`).
    let body = Zeroizing::new(format!(
        "Your break-glass one-time code is: {}\n\n\
         It is valid for {validity} from when it was issued and can be used once.\n\
         If you did not ask for it, someone is trying the emergency login: \
         treat this as an incident.\n",
        code.as_str()
    ));
    build(
        from,
        to,
        "Break-glass one-time code",
        None,
        None,
        body.to_string(),
    )
}

/// One alert email for one recipient.
pub fn alert_email(from: &Mailbox, to: &Mailbox, alert: &Alert) -> Result<Outgoing, String> {
    let subject = match alert.kind {
        AlertKind::Login => format!(
            "[BREAK-GLASS] Emergency login from {} on {} at {}",
            alert.ip_escaped,
            escape_controls(&alert.host),
            alert.timestamp
        ),
        AlertKind::GlobalLockout { failures, .. } => format!(
            "[BREAK-GLASS] Emergency login locked out on {} after {failures} failures at {}",
            escape_controls(&alert.host),
            alert.timestamp
        ),
        AlertKind::Drill => format!(
            "[DRILL] Break-glass alarm test from {} at {} (no login)",
            escape_controls(&alert.host),
            alert.timestamp
        ),
        AlertKind::Guessing { code, .. } => format!(
            "[BREAK-GLASS] Someone is guessing the emergency {} on {} at {}",
            if code { "code" } else { "password" },
            escape_controls(&alert.host),
            alert.timestamp
        ),
        AlertKind::RecoveryCodeUsed { left, .. } => format!(
            "[BREAK-GLASS] Emergency login with a recovery code from {} on {} at {} ({left} left)",
            alert.ip_escaped,
            escape_controls(&alert.host),
            alert.timestamp
        ),
    };
    let closing = match alert.kind {
        AlertKind::Drill => {
            "This is a fire drill of the break-glass alarm: no one used the emergency login. \
             Its only purpose is to show that this channel still works."
        }
        AlertKind::Guessing { .. } => {
            "Someone is trying to get into the emergency (break-glass) login without knowing \
             its secrets. Find out who before the limits lock it."
        }
        AlertKind::Login | AlertKind::GlobalLockout { .. } | AlertKind::RecoveryCodeUsed { .. } => {
            "The emergency (break-glass) login was used. If this was not a planned recovery, \
             treat it as an incident now."
        }
    };
    let body = format!(
        "{}.\n\n\
         IP address: {}\nHost: {}\nTime (UTC): {}\nEvent id: {}\n\n\
         {closing} Messages with the same event id are retries of one alert, not new \
         events.\n",
        alert.summary(&alert.ip_escaped),
        alert.ip_escaped,
        escape_controls(&alert.host),
        alert.timestamp,
        alert.id
    );
    build(
        from,
        to,
        &subject,
        Some(&alert.id),
        alert.audit_head.as_deref(),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            escape_controls("1.2.3.4\r\nBcc: x"),
            "1.2.3.4\\u{d}\\u{a}Bcc: x"
        );
        assert_eq!(escape_controls("a\u{0}b\u{7f}"), "a\\u{0}b\\u{7f}");
    }

    #[test]
    fn header_injection_through_ip_cannot_add_a_header() {
        let alert = Alert::new(Some(b"10.0.0.1\r\nBcc: evil@example.com\r\n"), 0);
        let from: Mailbox = "bg@example.com".parse().unwrap();
        let to: Mailbox = "ops@example.com".parse().unwrap();
        let mail = alert_email(&from, &to, &alert).unwrap();
        let text = String::from_utf8_lossy(&mail.bytes);
        let headers = text.split("\r\n\r\n").next().unwrap();
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        assert_eq!(mail.envelope.to().len(), 1);
    }

    #[test]
    fn json_has_exactly_the_documented_fields() {
        let alert = Alert::new(Some(b"\"quoted\"\n\xff"), 3);
        let v: serde_json::Value = serde_json::from_str(&alert.json()).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "audit_head",
                "event",
                "id",
                "ip",
                "message",
                "severity",
                "timestamp"
            ]
        );
        assert_eq!(obj["id"], alert.id.as_str());
        assert_eq!(obj["ip"], "\"quoted\"\n\u{fffd}");
        assert_eq!(obj["event"], "break_glass_login");
        assert_eq!(obj["severity"], "critical");
        assert!(obj["message"]
            .as_str()
            .unwrap()
            .contains("3 earlier notification"));
        assert!(obj["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn null_and_long_ips() {
        assert_eq!(Alert::new(None, 0).ip, "unknown");
        let long = vec![b'9'; 10_000];
        let alert = Alert::new(Some(&long), 0);
        assert!(alert.ip.len() < 300 && alert.ip.ends_with(TRUNCATED_MARK));
    }

    #[test]
    fn every_cut_is_marked_whatever_the_encoding() {
        // 300 four-byte characters: the byte bound cuts first, leaving exactly MAX_IP_CHARS.
        let emoji = "\u{1f600}".repeat(300);
        let alert = Alert::new(Some(emoji.as_bytes()), 0);
        assert_eq!(
            alert.ip,
            format!("{}{TRUNCATED_MARK}", "\u{1f600}".repeat(256))
        );
        // The byte bound splitting a character drops it whole rather than leaving U+FFFD.
        let kept = format!("{}\u{e9}", "\u{1f600}".repeat(255)); // 1022 bytes, 256 characters
        let split = format!("{kept}\u{1f600}");
        let alert = Alert::new(Some(split.as_bytes()), 0);
        assert_eq!(alert.ip, format!("{kept}{TRUNCATED_MARK}"));
        // Only the character bound.
        let wide = "\u{e9}".repeat(MAX_IP_CHARS + 1);
        assert!(Alert::new(Some(wide.as_bytes()), 0)
            .ip
            .ends_with(TRUNCATED_MARK));
        // Exactly at either bound: nothing cut, nothing marked.
        for exact in ["\u{1f600}".repeat(MAX_IP_CHARS), "a".repeat(MAX_IP_CHARS)] {
            assert_eq!(Alert::new(Some(exact.as_bytes()), 0).ip, exact);
        }
        // Invalid bytes past the character bound.
        let junk = vec![0xffu8; MAX_IP_BYTES];
        assert!(Alert::new(Some(&junk), 0).ip.ends_with(TRUNCATED_MARK));
    }

    #[test]
    fn the_alert_email_carries_the_event_id_in_a_header_and_the_body() {
        let alert = Alert::new(Some(b"192.0.2.1"), 0);
        assert_eq!(alert.id.len(), 32);
        let from: Mailbox = "bg@example.com".parse().unwrap();
        let to: Mailbox = "ops@example.com".parse().unwrap();
        let mail = alert_email(&from, &to, &alert).unwrap();
        let text = String::from_utf8_lossy(&mail.bytes);
        let (headers, body) = text.split_once("\r\n\r\n").unwrap();
        let header = format!("{EVENT_ID_HEADER}: {}", alert.id);
        assert!(headers.lines().any(|l| l == header), "{headers}");
        assert!(body.contains(&format!("Event id: {}", alert.id)), "{body}");
        assert_ne!(Alert::new(Some(b"192.0.2.1"), 0).id, alert.id);
    }

    #[test]
    fn otp_email_states_code_and_validity() {
        let from: Mailbox = "bg@example.com".parse().unwrap();
        let to: Mailbox = "admin@example.com".parse().unwrap();
        let code = Otp::parse(b"424242").unwrap();
        let mail = otp_email(&from, &to, &code, Duration::from_secs(600)).unwrap();
        let text = String::from_utf8_lossy(&mail.bytes);
        assert!(
            text.contains("424242") && text.contains("10 minute(s)"),
            "{text}"
        );
        assert!(text.contains("Subject: Break-glass one-time code"));
    }
}
