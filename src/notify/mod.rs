//! Delivery: the OTP email and the break-glass alarm (alert emails and the webhook).
//!
//! Owns what each call queues and how outcomes are counted and logged. Every call here returns
//! at once; the network is only touched on the queue's worker threads. It must never let a
//! delivery failure reach the caller of `alert`, never drop a part of a job without counting
//! and logging it, and never log a code unless `dev_otp_log` is on. Every record about an alert
//! names its event id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::otp::Otp;

mod drill;
mod email;
mod event_id;
pub(crate) mod health;
mod message;
pub(crate) mod queue;
mod receivers;
mod retry;
mod sendmail;
mod smtp;
mod stats;
mod webhook;

pub use drill::{drill, ChannelReport, DrillOutcome};
pub use receivers::ALERTMANAGER_DURATION_SECS;

/// Kept here for the Rust API; it lives in [`crate::text`].
pub use crate::text::escape_controls;
pub use event_id::EVENT_ID_LEN;
pub use health::{code_email as code_email_health, snapshot as health, PathHealth};
pub use health::{ALERT_EMAIL, CODE_EMAIL};
pub use message::{
    Alert, EVENT_ID_HEADER, MAX_IP_BYTES, MAX_IP_CHARS, RECOVERY_LOW_WATER, TRUNCATED_MARK,
};
pub use queue::{Lane, LANE_CAPACITY, MAIL_WORKERS, WEBHOOK_WORKERS};
pub use stats::Stats;
pub use webhook::{signature, SIGNATURE_HEADER};

use queue::Work;
use stats::{Counters, COUNTERS};

/// Queues the email that carries `code` to `otp_email`.
///
/// `code` must be six ASCII digits. With `dev_otp_log` on, the code is also logged at warn
/// level, even when email is not configured.
pub fn send_otp(code: &[u8]) -> Result<()> {
    let code = Otp::parse(code)
        .ok_or_else(|| Error::Argument("the code must be six ASCII digits".into()))?;
    send_otp_with(&config::current(), code)
}

/// [`send_otp`] under the caller's snapshot of the settings.
pub(crate) fn send_otp_with(s: &Arc<Settings>, code: Otp) -> Result<()> {
    if s.dev_otp_log {
        log::warn!(
            "break-glass one-time code: {} (dev_otp_log is on: never in production)",
            code.as_str()
        );
    }
    if s.mailer.is_none() || s.from_email.is_none() || s.otp_email.is_none() {
        return Err(Error::NotConfigured(
            "sending a code needs mailer, from_email and otp_email",
        ));
    }
    let settings = s.clone();
    let work: Work = Box::new(move || send_otp_now(&settings, &code));
    let admission = queue::current().push(vec![(Lane::CodeMail, work)], 0);
    if admission.queued == 0 {
        log_drop(None, &admission.dropped, admission.dropped_total);
        return Err(Error::QueueFull);
    }
    Ok(())
}

fn send_otp_now(s: &Settings, code: &Otp) {
    let (Some(mailer), Some(from), Some(to)) = (&s.mailer, &s.from_email, &s.otp_email) else {
        return;
    };
    let mail = match message::otp_email(from, to, code, s.otp_ttl) {
        Ok(m) => m,
        Err(why) => {
            Counters::bump(&COUNTERS.emails_failed);
            log::error!("one-time code email to {}: {why}", to.email);
            code_outcome(s, &to.email, Some(&why));
            return;
        }
    };
    let result = email::deliver(mailer, s.delivery_timeout, std::slice::from_ref(&mail));
    let failure = result
        .first()
        .and_then(|r| r.as_ref().err())
        .map(|f| f.reason().to_owned());
    code_outcome(s, &to.email, failure.as_deref());
    count_mail("one-time code email", mailer, &[mail], result);
}

/// The code email's final outcome: its health row and its audit record (like an alert
/// channel's); the log line is `count_mail`'s.
fn code_outcome(s: &Settings, to: &lettre::Address, failure: Option<&str>) {
    health::note(health::CODE_EMAIL, failure);
    match failure {
        None => crate::audit::record(
            s,
            crate::audit::Event::CodeDelivered,
            None,
            None,
            &format!("code email to {to} accepted by the mailer"),
        ),
        Some(why) => crate::audit::record(
            s,
            crate::audit::Event::CodeFailed,
            None,
            None,
            &format!("code email to {to}: {why}"),
        ),
    };
}

/// Raises the break-glass alarm: one email per `alert_emails` recipient and one webhook POST
/// per receiver (`alert_webhook_url` and each of `alert_webhooks`).
///
/// `ip` is untrusted text; `None` stands for a missing argument and is reported as "unknown".
/// Text over [`MAX_IP_BYTES`] bytes or [`MAX_IP_CHARS`] characters is cut and marked.
/// Never fails: what cannot be delivered is logged at error level and counted. The alert's
/// email and webhook are queued independently: a full lane drops only its own part.
pub fn alert(ip: Option<&[u8]>) {
    alert_with_id(&config::current(), ip);
}

/// [`alert`] under the caller's snapshot of the settings, returning the alert's event id (for
/// the login's audit record).
pub(crate) fn alert_with_id(s: &Arc<Settings>, ip: Option<&[u8]>) -> String {
    let q = queue::current();
    let alert = Alert::new(ip, q.take_dropped_since_alert());
    log::warn!(
        "break-glass login from {} on {}: raising the alarm (event {})",
        alert.ip_escaped,
        alert.host,
        alert.id
    );
    let id = alert.id.clone();
    raise(s, &q, alert);
    id
}

/// Raises the alarm of a login with a recovery code (`"event":
/// "break_glass_recovery_code_used"`, critical, with the codes left); delivered like [`alert`].
pub(crate) fn alert_recovery_code_used(
    s: &Arc<Settings>,
    ip: Option<&[u8]>,
    left: u32,
    total: u32,
) -> String {
    let q = queue::current();
    let mut alert = Alert::recovery_code_used(ip, left, total);
    alert.dropped_before = q.take_dropped_since_alert();
    log::warn!(
        "break-glass login with a recovery code from {} on {}: {left} of {total} codes left; \
         raising the alarm (event {})",
        alert.ip_escaped,
        alert.host,
        alert.id
    );
    if left < message::RECOVERY_LOW_WATER {
        log::warn!(
            "fewer than 3 recovery codes left: make a new set (breakglass recovery-codes new)"
        );
    }
    let id = alert.id.clone();
    raise(s, &q, alert);
    id
}

/// Raises the alarm that every break-glass login is locked out after `failures` failures from
/// all addresses within `window`. Delivered like [`alert`], with `"event": "break_glass_lockout"`.
pub(crate) fn alert_global_lockout(s: &Arc<Settings>, failures: u32, window: Duration) -> String {
    let q = queue::current();
    let alert = Alert::lockout(failures, window.as_secs(), q.take_dropped_since_alert());
    log::error!(
        "{failures} failed break-glass logins within {} s: every login is locked out; raising \
         the alarm (event {})",
        window.as_secs(),
        alert.id
    );
    let id = alert.id.clone();
    raise(s, &q, alert);
    id
}

/// Raises the guessing alarm (`"event": "break_glass_guessing"`): `failures` wrong codes
/// (`code`) or passwords from `addresses` addresses within `window`, below the lockout limits.
pub(crate) fn alert_guessing(
    s: &Arc<Settings>,
    code: bool,
    failures: u32,
    addresses: u32,
    window: Duration,
) -> String {
    let q = queue::current();
    let alert = Alert::guessing(
        code,
        failures,
        addresses,
        window.as_secs(),
        q.take_dropped_since_alert(),
    );
    log::error!(
        "break-glass login: someone is guessing the {}: {failures} wrong within {} s from \
         {addresses} address(es); raising the alarm (event {})",
        if code { "one-time code" } else { "password" },
        window.as_secs(),
        alert.id
    );
    let id = alert.id.clone();
    raise(s, &q, alert);
    id
}

/// Queues `alert` on every configured channel.
fn raise(s: &Arc<Settings>, q: &Arc<queue::Queue>, mut alert: Alert) {
    alert.audit_head = crate::audit::last_head(s).map(|h| h.to_string());
    let alert = Arc::new(alert);
    let carried = alert.dropped_before;

    let mail = match (&s.alert_emails, &s.mailer, &s.from_email) {
        (None, _, _) => None,
        (Some(list), _, _) if list.is_empty() => {
            log::warn!("alert_emails is set but empty: no alert email is sent");
            None
        }
        (Some(_), Some(_), Some(_)) => {
            let (s, alert) = (s.clone(), alert.clone());
            Some(Box::new(move || send_alert_mail(&s, &alert)) as Work)
        }
        (Some(list), _, _) => {
            Counters::bump(&COUNTERS.emails_failed);
            log::error!(
                "cannot email the alert to {} recipient(s): mailer and from_email must be set",
                list.len()
            );
            None
        }
    };
    let webhooks: Vec<(Lane, Option<u64>, Work)> = s
        .receivers()
        .into_iter()
        .map(|r| {
            let key = receiver_key(&r);
            let (s, alert) = (s.clone(), alert.clone());
            let work = Box::new(move || send_alert_webhook(&s, &r, &alert)) as Work;
            (Lane::Webhook, Some(key), work)
        })
        .collect();
    if mail.is_none() && webhooks.is_empty() {
        log::error!(
            "break-glass alert from {} (event {}) reached no one: no alert channel is configured",
            alert.ip_escaped,
            alert.id
        );
        q.give_back_dropped(carried);
        return;
    }
    let parts: Vec<(Lane, Option<u64>, Work)> = mail
        .map(|work| (Lane::AlertMail, None, work))
        .into_iter()
        .chain(webhooks)
        .collect();
    let admission = q.push_keyed(parts, carried);
    if !admission.dropped.is_empty() {
        log_drop(Some(&alert.id), &admission.dropped, admission.dropped_total);
    }
}

fn send_alert_mail(s: &Settings, alert: &Alert) {
    let (Some(list), Some(mailer), Some(from)) = (&s.alert_emails, &s.mailer, &s.from_email) else {
        return;
    };
    let mut mails = Vec::with_capacity(list.len());
    for to in list {
        match message::alert_email(from, to, alert) {
            Ok(m) => mails.push(m),
            Err(why) => {
                Counters::bump(&COUNTERS.emails_failed);
                health::note(health::ALERT_EMAIL, Some(&why));
                log::error!("alert email (event {}) to {}: {why}", alert.id, to.email);
            }
        }
    }
    let result = email::deliver(mailer, s.delivery_timeout, &mails);
    for (m, r) in mails.iter().zip(&result) {
        health::note(health::ALERT_EMAIL, r.as_ref().err().map(|f| f.reason()));
        let channel = format!("email to {}", m.to.email);
        crate::audit::alert_outcome(s, &alert.id, &channel, r.as_ref().err().map(|f| f.reason()));
    }
    count_mail(
        &format!("alert email (event {})", alert.id),
        mailer,
        &mails,
        result,
    );
}

fn count_mail(
    what: &str,
    mailer: &config::Mailer,
    mails: &[message::Outgoing],
    results: Vec<std::result::Result<(), retry::Failure>>,
) {
    for (mail, result) in mails.iter().zip(results) {
        match result {
            Ok(()) => {
                Counters::bump(&COUNTERS.emails_sent);
                log::info!(
                    "{what} to {} accepted by {}",
                    mail.to.email,
                    mailer.redacted()
                );
            }
            Err(f) => {
                Counters::bump(&COUNTERS.emails_failed);
                log::error!(
                    "{what} to {} via {} failed: {}",
                    mail.to.email,
                    mailer.redacted(),
                    f.reason()
                );
            }
        }
    }
}

/// The queue key of a receiver: parts for one receiver never run at once. A hash of its
/// format and full URL (never logged); a collision only serialises two receivers.
fn receiver_key(r: &config::Receiver) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.format.name().hash(&mut h);
    r.url.as_str().hash(&mut h);
    h.finish()
}

/// Renders and POSTs `alert` to one receiver, with retries; the outcome for the drill.
fn post_to_receiver(
    s: &Settings,
    r: &config::Receiver,
    alert: &Alert,
) -> std::result::Result<(), retry::Failure> {
    let body = receivers::body(r, s, alert)
        .map_err(|e| retry::Failure::Permanent(retry::Cause::Unreachable, e.to_string()))?;
    webhook::deliver(
        &receivers::target(r),
        &r.url,
        s.alert_webhook_secret.as_ref(),
        &body,
        &alert.id,
        s.delivery_timeout,
    )
}

fn send_alert_webhook(s: &Settings, r: &config::Receiver, alert: &Alert) {
    match post_to_receiver(s, r, alert) {
        Ok(()) => {
            health::note(&r.name(), None);
            crate::audit::alert_outcome(s, &alert.id, &r.name(), None);
            Counters::bump(&COUNTERS.webhooks_sent);
            log::info!("alert {} (event {}) accepted", r.name(), alert.id);
        }
        Err(f) => {
            health::note(&r.name(), Some(f.reason()));
            crate::audit::alert_outcome(s, &alert.id, &r.name(), Some(f.reason()));
            Counters::bump(&COUNTERS.webhooks_failed);
            log::error!(
                "alert {} (event {}) failed: {}",
                r.name(),
                alert.id,
                f.reason()
            );
        }
    }
}

/// Milliseconds (boot clock) of the last "queue full" log line: at most one a second, so a
/// flood cannot turn into a flood of log lines. Every drop is counted all the same.
static LAST_DROP_LOG_MS: AtomicU64 = AtomicU64::new(0);

fn log_drop(event: Option<&str>, lanes: &[Lane], total: u64) {
    let now = crate::sys::boottime().as_millis() as u64;
    let last = LAST_DROP_LOG_MS.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= 1000)
        && LAST_DROP_LOG_MS
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let what: Vec<&str> = lanes
            .iter()
            .map(|lane| match lane {
                Lane::AlertMail => "its emails",
                Lane::CodeMail => "a one-time code email",
                Lane::Webhook => "a webhook",
            })
            .collect();
        let whose = event.map_or(String::new(), |id| format!("alert (event {id}): "));
        log::error!(
            "delivery queue full: {whose}{} dropped ({total} dropped since the library was \
             loaded; the next alert reports the count)",
            what.join(" and ")
        );
    }
}

/// Waits until every part queued before the call has been delivered or has finally failed.
pub fn flush(timeout: Duration) -> Result<()> {
    if queue::current().flush(timeout) {
        Ok(())
    } else {
        Err(Error::Timeout)
    }
}

/// The delivery counters.
pub fn stats() -> Stats {
    COUNTERS.snapshot()
}
