//! The audit trail: one tamper-evident JSON line per break-glass event in `audit_log`, and a
//! copy in the local syslog when `syslog` is on.
//!
//! Owns which events exist, what each record says, which records are `fdatasync`ed before the
//! event's call returns, and how failures are counted. The file format and chain rule are in
//! `record`, appending under `flock` in `file`, checking in `verify`, syslog in `syslog`.
//!
//! A record must never carry a one-time code, a password or a session token (no function here
//! takes one), nor a configuration value (only a key's name). A failure to write is logged at
//! error level and counted; it never blocks a login by itself: only `login::complete` decides,
//! from `audit_required`, whether a success it could not record is refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::config::Settings;

mod file;
mod record;
pub mod syslog;
mod verify;

pub use file::{append, AppendError, Entry};
pub use record::{mac_over, Record, GENESIS, MAX_DETAIL_CHARS, MAX_IP_CHARS};
pub use verify::{verify_bytes, verify_file, Broken, Report, VerifyError};

pub use crate::config::AuditSettings;

/// Every kind of audit event; [`Event::name`] is the record's `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `bg_login_begin` passed every check (the password was right).
    LoginBegun,
    /// A login step was refused before or at its check; `detail` says which check.
    LoginRefused,
    /// The code email was queued.
    CodeSent,
    /// `bg_login_complete` granted a session.
    LoginSucceeded,
    /// A code was wrong, expired or missing, or the success could not be completed.
    LoginFailed,
    /// An address (IPv6: its /64) was locked out.
    LockoutStarted,
    /// The failures of all addresses reached `max_global_failures`: every login is locked out.
    GlobalLimitReached,
    /// A session was ended by `bg_session_end`.
    SessionEnded,
    /// One channel of an alert was delivered.
    AlertDelivered,
    /// One channel of an alert finally failed.
    AlertFailed,
    /// A security key was set; `detail` names the key, never its value.
    ConfigChanged,
}

impl Event {
    /// The record's `event` and the syslog MSGID.
    pub fn name(self) -> &'static str {
        match self {
            Event::LoginBegun => "login_begun",
            Event::LoginRefused => "login_refused",
            Event::CodeSent => "code_sent",
            Event::LoginSucceeded => "login_succeeded",
            Event::LoginFailed => "login_failed",
            Event::LockoutStarted => "lockout_started",
            Event::GlobalLimitReached => "global_limit_reached",
            Event::SessionEnded => "session_ended",
            Event::AlertDelivered => "alert_delivered",
            Event::AlertFailed => "alert_failed",
            Event::ConfigChanged => "config_changed",
        }
    }

    fn severity(self) -> syslog::Severity {
        use syslog::Severity::*;
        match self {
            Event::LoginSucceeded => Alert,
            Event::AlertFailed => Err,
            Event::LoginRefused
            | Event::LoginFailed
            | Event::LockoutStarted
            | Event::GlobalLimitReached => Notice,
            _ => Info,
        }
    }

    /// Whether the record is on disk before the event's call returns. Every login outcome
    /// that grants, counts or ends something is; refusals are not (a wrong password, which
    /// counts, is synced by its caller through [`record_synced`]), so a flood of refused
    /// attempts cannot buy a disk flush each; nor are delivery outcomes (worker threads, no
    /// caller waiting) and configuration changes.
    fn synced(self) -> bool {
        matches!(
            self,
            Event::LoginBegun
                | Event::CodeSent
                | Event::LoginSucceeded
                | Event::LoginFailed
                | Event::LockoutStarted
                | Event::GlobalLimitReached
                | Event::SessionEnded
        )
    }
}

/// What became of one event's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written (and synced, for the events that are).
    Written,
    /// No audit file is kept (`audit_log` unset).
    NotKept,
    /// It could not be written: logged at error level and counted.
    Failed,
}

/// The audit's own counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStats {
    /// Records that could not be written.
    pub write_failures: u64,
    /// Syslog datagrams that could not be sent.
    pub syslog_failures: u64,
}

static WRITE_FAILED: AtomicU64 = AtomicU64::new(0);
static LAST_FAILURE_LOG_MS: AtomicU64 = AtomicU64::new(0);

/// The audit counters since the library was loaded.
pub fn stats() -> AuditStats {
    AuditStats {
        write_failures: WRITE_FAILED.load(Ordering::Relaxed),
        syslog_failures: syslog::FAILED.load(Ordering::Relaxed),
    }
}

/// Records `event` under the settings `s`: in `audit_log` when set, in syslog when on.
/// `ip` is the caller's untrusted text (bounded here); `detail` is a fixed-form text.
pub(crate) fn record(
    s: &Settings,
    event: Event,
    id: Option<&str>,
    ip: Option<&[u8]>,
    detail: &str,
) -> Outcome {
    record_synced(s, event, id, ip, detail, event.synced())
}

/// [`record`], with the sync decided by the caller (a refusal that counts as a failure).
pub(crate) fn record_synced(
    s: &Settings,
    event: Event,
    id: Option<&str>,
    ip: Option<&[u8]>,
    detail: &str,
    sync: bool,
) -> Outcome {
    let a = &s.audit;
    if a.log.is_none() && !a.syslog {
        return Outcome::NotKept;
    }
    let entry = Entry {
        time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        event: event.name(),
        id: id.map(str::to_owned),
        ip: ip.map_or_else(String::new, |b| {
            record::bounded(&String::from_utf8_lossy(b), MAX_IP_CHARS)
        }),
        host: crate::sys::hostname(),
        pid: crate::sys::pid(),
        detail: record::bounded(detail, MAX_DETAIL_CHARS),
    };
    let key = a.key.as_ref().map(|k| k.expose().as_bytes());
    let (outcome, written) = match &a.log {
        None => (Outcome::NotKept, None),
        Some(path) => match file::append(path, key, &entry, sync) {
            Ok(r) => (Outcome::Written, Some(r)),
            Err(e) => {
                note_failure(event, path, &e);
                if a.syslog {
                    let msg = format!(
                        "{{\"event\":\"audit_write_failed\",\"detail\":{}}}",
                        serde_json::Value::from(format!("{}: {e}", event.name()))
                    );
                    syslog::send(
                        &a.syslog_socket,
                        &syslog::format(
                            syslog::Severity::Err,
                            &entry.time,
                            &entry.host,
                            entry.pid,
                            "audit_write_failed",
                            &msg,
                        ),
                    );
                }
                (Outcome::Failed, None)
            }
        },
    };
    if a.syslog {
        let msg = match &written {
            Some(r) => r.line().trim_end().to_owned(),
            None => unchained_json(&entry),
        };
        syslog::send(
            &a.syslog_socket,
            &syslog::format(
                event.severity(),
                &entry.time,
                &entry.host,
                entry.pid,
                event.name(),
                &msg,
            ),
        );
    }
    outcome
}

/// The record's fields without the chain (`seq`, `prev`, `mac`), for syslog when no file
/// record exists.
fn unchained_json(e: &Entry) -> String {
    serde_json::json!({
        "time": e.time, "event": e.event, "id": e.id, "ip": e.ip, "host": e.host, "pid": e.pid,
        "detail": e.detail,
    })
    .to_string()
}

fn note_failure(event: Event, path: &std::path::Path, e: &AppendError) {
    let total = WRITE_FAILED.fetch_add(1, Ordering::Relaxed) + 1;
    // A login's own failure is always logged; other records' failures at most once a second,
    // so a flood of refused attempts cannot become a flood of log lines.
    let now = crate::sys::boottime().as_millis() as u64;
    let last = LAST_FAILURE_LOG_MS.load(Ordering::Relaxed);
    let due = last == 0 || now.saturating_sub(last) >= 1000;
    if event == Event::LoginSucceeded
        || (due
            && LAST_FAILURE_LOG_MS
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok())
    {
        log::error!(
            "audit: the {} record could not be written to {}: {e} ({total} failed since the \
             library was loaded)",
            event.name(),
            path.display()
        );
    }
}

/// Records `config_changed` (the key's name only) for each security key a configuration
/// change set, under the new settings; when the audit file itself moved or went away, in the
/// old one as well, so that switching the trail off is the last thing the old trail says.
/// Called by the entry points that change the configuration (the C ABI, the Rust API, the
/// CLI), never by `config` itself.
pub fn config_changed(change: &crate::config::Change) {
    let (prev, next) = (&change.prev, &change.next);
    for key in &change.keys {
        if crate::config::find_key(key).is_some_and(|k| k.audited) {
            if prev.audit.log.is_some() && prev.audit.log != next.audit.log {
                record(prev, Event::ConfigChanged, None, None, key);
            }
            record(next, Event::ConfigChanged, None, None, key);
        }
    }
}

/// Records a channel's final outcome for the alert `id` (the notify workers' hook).
pub(crate) fn alert_outcome(s: &Settings, id: &str, channel: &str, failure: Option<&str>) {
    match failure {
        None => record(s, Event::AlertDelivered, Some(id), None, channel),
        Some(why) => record(
            s,
            Event::AlertFailed,
            Some(id),
            None,
            &format!("{channel}: {why}"),
        ),
    };
}

/// The last `n` records of the file at `path`, oldest first (lines that are not records are
/// skipped).
pub fn tail(path: &std::path::Path, n: usize) -> std::io::Result<Vec<Record>> {
    let data = std::fs::read(path)?;
    let mut out: Vec<Record> = data
        .split(|&b| b == b'\n')
        .rev()
        .filter_map(Record::parse)
        .take(n)
        .collect();
    out.reverse();
    Ok(out)
}
