//! The audit trail: one tamper-evident JSON line per break-glass event in `audit_log`, and a
//! copy in the local syslog when `syslog` is on.
//!
//! Owns which events exist, what each record says, which records are `fdatasync`ed before the
//! event's call returns, what is folded (refusals before the password check, bursts of
//! configuration changes: `fold`), and how failures are counted. The file format and chain rule
//! are in `record`, appending (with rotation, the reserve and key changes) under `flock` in
//! `file`, checking in `verify`, the head kept outside the file in `anchor`, syslog in `syslog`.
//! Its own locks (the folds and the last head) are only ever tried with a short wait, so a
//! child forked while one was held skips a fold instead of hanging.
//!
//! A record must never carry a one-time code, a password or a session token (no function here
//! takes one), nor a configuration value (only a key's name). A failure to write is logged at
//! error level and counted; it never blocks a login by itself: only `login::complete` decides,
//! from `audit_required`, whether a success it could not record is refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::sync::Mutex;

use crate::config::Settings;

mod anchor;
mod failures;
mod file;
mod fold;
mod record;
pub mod syslog;
mod verify;

pub use anchor::{read as read_anchors, Source as AnchorSource, FILE_NAME as ANCHOR_FILE};
pub use file::{
    append, append_with, check_path, open as open_log, rotated_files, AppendError, Entry, Options,
};
pub use fold::{CONFIG_BURST, REFUSAL_WINDOW};
pub use record::{
    mac_over, Head, Record, GENESIS, KEY_CHANGED, MAX_DETAIL_CHARS, MAX_IP_CHARS, ROTATED,
};
pub use verify::{
    chain_files, verify_bytes, verify_chain, verify_file, AnchorCheck, Broken, KeyUsed, Report,
    Verifier, VerifyError,
};

/// Space kept allocated past the end of the audit file: room for well over 100 granted logins
/// (about 2 KiB of records each) when the filesystem is otherwise full.
pub const RESERVE_BYTES: u64 = 512 * 1024;

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
    /// Security keys were set; `detail` names the keys, never a value.
    ConfigChanged,
    /// An operator lifted lockouts (`breakglass unlock`, `bg_reset_attempts`).
    AttemptsReset,
    /// Guessing below the limits was detected (the `break_glass_guessing` alarm).
    GuessingDetected,
    /// A recovery code was accepted (and consumed) in place of the emailed code; `detail` says
    /// how many are left, never the code.
    RecoveryCodeUsed,
    /// The code email was accepted by the mailer (or written to the outbox).
    CodeDelivered,
    /// The code email finally failed; `detail` says why.
    CodeFailed,
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
            Event::AttemptsReset => "attempts_reset",
            Event::GuessingDetected => "guessing_detected",
            Event::RecoveryCodeUsed => "recovery_code_used",
            Event::CodeDelivered => "code_delivered",
            Event::CodeFailed => "code_failed",
        }
    }

    fn severity(self) -> syslog::Severity {
        use syslog::Severity::*;
        match self {
            Event::LoginSucceeded | Event::RecoveryCodeUsed => Alert,
            Event::AlertFailed | Event::CodeFailed => Err,
            Event::LoginRefused
            | Event::LoginFailed
            | Event::LockoutStarted
            | Event::GlobalLimitReached
            | Event::GuessingDetected => Notice,
            _ => Info,
        }
    }

    /// Whether the record is on disk before the event's call returns. Every login outcome
    /// that grants, counts or ends something is; refusals are not (a wrong password, which
    /// counts, is synced by its caller through [`record_synced`]), so a flood of refused
    /// attempts cannot buy a disk flush each; nor are delivery outcomes (worker threads, no
    /// caller waiting) and configuration changes. `login_begun` is not either: it is written
    /// in the same append as the `code_sent` right after it, whose sync covers both (see
    /// `HELD`), so a right password costs one append and one sync, as a wrong one does (the
    /// time of a `bg_login_begin` must not tell them apart).
    fn synced(self) -> bool {
        matches!(
            self,
            Event::CodeSent
                | Event::LoginSucceeded
                | Event::RecoveryCodeUsed
                | Event::LoginFailed
                | Event::LockoutStarted
                | Event::GlobalLimitReached
                | Event::SessionEnded
                | Event::AttemptsReset
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
    /// Appends to the audit file that were written (one `write` each, of one or two records).
    pub appends: u64,
    /// Of those, the ones synced to disk (`fdatasync`) before the call went on.
    pub synced_appends: u64,
}

static WRITE_FAILED: failures::Failures = failures::Failures::new();
static APPENDS: AtomicU64 = AtomicU64::new(0);
static SYNCED_APPENDS: AtomicU64 = AtomicU64::new(0);

/// The audit counters since the library was loaded.
pub fn stats() -> AuditStats {
    AuditStats {
        write_failures: WRITE_FAILED.total(),
        syslog_failures: syslog::FAILED.total(),
        appends: APPENDS.load(Ordering::Relaxed),
        synced_appends: SYNCED_APPENDS.load(Ordering::Relaxed),
    }
}

/// Records `event` under the settings `s`: in `audit_log` when set, in syslog when on.
/// `ip` is the caller's untrusted text (see [`ip_text`]); `detail` is a fixed-form text.
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
    flush_pending(s);
    if event == Event::LoginBegun && !sync && s.audit.log.is_some() {
        // Held back to share the append (and the sync) of the record that follows it on this
        // thread: a right password then costs one append and one sync, as a wrong one does.
        let e = entry(event, id, ip_text(ip), detail);
        HELD.with(|h| *h.borrow_mut() = Some(e));
        return Outcome::Written;
    }
    let key = a_key(s);
    write(s, event, id, ip_text(ip), detail, sync, key, None)
}

thread_local! {
    /// A `login_begun` waiting for the next record of this thread (`code_sent`, or the refusal
    /// that ends the attempt), to be written in the same append.
    static HELD: std::cell::RefCell<Option<Entry>> = const { std::cell::RefCell::new(None) };
}

/// Writes a held `login_begun` on its own (the attempt ended in a folded refusal).
fn write_held(s: &Settings) {
    if let Some(e) = HELD.with(|h| h.borrow_mut().take()) {
        write_entry(s, Event::LoginBegun, e, false, a_key(s), None);
    }
}

/// The key of the chain under the settings `s`.
fn a_key(s: &Settings) -> Option<&[u8]> {
    s.audit.key.as_ref().map(|k| k.expose().as_bytes())
}

/// The `ip` a record carries: the canonical text of a parsed address (whatever the caller's
/// spelling), or a fixed short marker with the length of text that is not an address, so
/// that no caller's text reaches the trail and no record grows with it.
pub fn ip_text(ip: Option<&[u8]>) -> String {
    let Some(bytes) = ip else {
        return String::new();
    };
    std::str::from_utf8(bytes)
        .ok()
        .and_then(crate::config::address::ClientAddr::parse)
        .map_or_else(
            || format!("(not an address: {} bytes)", bytes.len()),
            |a| a.0.to_string(),
        )
}

fn now_ms() -> u64 {
    crate::sys::boottime().as_millis() as u64
}

/// Refusals folded per reason (see `fold`).
static REFUSALS: Mutex<fold::Refusals> = Mutex::new(fold::Refusals::new());
/// Configuration keys changed and not yet recorded.
static BURST: Mutex<fold::ConfigBurst> = Mutex::new(fold::ConfigBurst::new());
/// The last head this process anchored, with its file (for alarms).
static LAST_HEAD: Mutex<Option<(PathBuf, Head)>> = Mutex::new(None);
/// How long a fold lock is waited for. These locks are held only for a few map operations; a
/// child forked while another thread held one finds it held forever, and skips the fold
/// rather than hang (see `fork`).
const FOLD_LOCK_WAIT: Duration = Duration::from_millis(50);

/// Records a refusal that happened before the password (or code) was checked: not allowed,
/// malformed address, locked out, checks busy. Such refusals cost an outsider nothing, so they
/// are folded: at most one `login_refused` record per `reason` per minute, with the count and
/// the number of distinct addresses since the last one (see `fold`). Never synced.
pub(crate) fn refused(s: &Settings, reason: &str, ip: Option<&[u8]>) -> Outcome {
    let a = &s.audit;
    if a.log.is_none() && !a.syslog {
        return Outcome::NotKept;
    }
    let addr = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ip.hash(&mut h);
        h.finish()
    };
    let due = match REFUSALS.try_lock_for(FOLD_LOCK_WAIT) {
        Some(mut r) => r.refuse(reason, addr, now_ms()),
        None => return Outcome::Failed,
    };
    match due {
        (reason, Some(f)) => {
            flush_pending(s);
            let detail = format!("{reason}{}", f.suffix());
            write(
                s,
                Event::LoginRefused,
                None,
                ip_text(ip),
                &detail,
                false,
                a_key(s),
                None,
            )
        }
        (_, None) => {
            write_held(s);
            Outcome::Written
        }
    }
}

/// Writes every record still pending: the configuration keys of a burst and every refusal
/// count not yet written (`bg_flush`, before a process exits).
pub fn flush(s: &Settings) {
    flush_with(s, true);
}

/// Writes what is pending before another record: the configuration keys of a burst, and the
/// refusal counts whose minute has passed.
fn flush_pending(s: &Settings) {
    flush_with(s, false);
}

fn flush_with(s: &Settings, all: bool) {
    let a = &s.audit;
    if a.log.is_none() && !a.syslog {
        return;
    }
    let keys = BURST
        .try_lock_for(FOLD_LOCK_WAIT)
        .map(|mut b| b.take())
        .unwrap_or_default();
    if !keys.is_empty() {
        write(
            s,
            Event::ConfigChanged,
            None,
            String::new(),
            &keys,
            false,
            a_key(s),
            None,
        );
    }
    let due = REFUSALS
        .try_lock_for(FOLD_LOCK_WAIT)
        .map(|mut r| r.due(now_ms(), all))
        .unwrap_or_default();
    for (reason, f) in due {
        let detail = format!("{reason}{}", f.suffix());
        write(
            s,
            Event::LoginRefused,
            None,
            String::new(),
            &detail,
            false,
            a_key(s),
            None,
        );
    }
}

/// Records that the security keys among `keys` were set, going from `prev` to `next` (the
/// entry point that applied them calls this). The keys of one call, or of a burst of calls
/// within a second, are one `config_changed` record, written when the burst is over (at the
/// next change), before the next record of any other kind, or at once when the trail moves
/// (into the old file, so that switching the trail off is the last thing it says) or its key
/// changes (a bound `audit_key_changed` record under the old key names the new one, so the
/// chain verifies across the change whatever the order of the calls).
pub(crate) fn record_config_changes<'a>(
    prev: &Settings,
    next: &Settings,
    keys: impl IntoIterator<Item = &'a str>,
) {
    let audited: Vec<&str> = keys
        .into_iter()
        .filter(|k| crate::config::find_key(k).is_some_and(|k| k.audited))
        .collect();
    if audited.is_empty() {
        return;
    }
    let kept = |s: &Settings| s.audit.log.is_some() || s.audit.syslog;
    let now = now_ms();
    let Some(mut burst) = BURST.try_lock_for(FOLD_LOCK_WAIT) else {
        return;
    };
    if prev.audit.log != next.audit.log {
        // Refusal counts belong to the trail they were counted for.
        if let Some(mut r) = REFUSALS.try_lock_for(FOLD_LOCK_WAIT) {
            *r = fold::Refusals::new();
        }
    }
    if prev.audit.log.is_some() && prev.audit.log != next.audit.log {
        burst.add(audited.iter().copied(), now);
        let keys = burst.take();
        drop(burst);
        write(
            prev,
            Event::ConfigChanged,
            None,
            String::new(),
            &keys,
            false,
            a_key(prev),
            None,
        );
        if kept(next) {
            if let Some(mut b) = BURST.try_lock_for(FOLD_LOCK_WAIT) {
                b.add(audited.iter().copied(), now);
            }
        }
        return;
    }
    if !kept(next) {
        return;
    }
    // A key change of a trail that stays; a trail just switched on (a process starting) is
    // written under its key from the start (a writer that finds the file under another key
    // says so itself, see `file`).
    let rekeyed =
        a_key(prev) != a_key(next) && next.audit.log.is_some() && prev.audit.log == next.audit.log;
    let earlier = if burst.over(now) || rekeyed {
        burst.take()
    } else {
        String::new()
    };
    burst.add(audited.iter().copied(), now);
    let keys = if rekeyed { burst.take() } else { String::new() };
    drop(burst);
    if !earlier.is_empty() {
        write(
            prev,
            Event::ConfigChanged,
            None,
            String::new(),
            &earlier,
            false,
            a_key(prev),
            None,
        );
    }
    if rekeyed {
        write(
            next,
            Event::ConfigChanged,
            None,
            String::new(),
            &keys,
            true,
            a_key(prev),
            Some(a_key(next)),
        );
    }
}

/// Writes a bound key change from the key of `s` to `next` in the audit file of `s`, followed
/// by a `config_changed` record under `next` (`breakglass audit rotate-key`).
pub fn rotate_key(s: &Settings, next: &[u8]) -> Result<Record, AppendError> {
    let Some(path) = &s.audit.log else {
        return Err(AppendError::Open(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "audit_log is not set",
        )));
    };
    let entry = entry(
        Event::ConfigChanged,
        None,
        String::new(),
        "audit_key (rotate-key)",
    );
    let on_head = |h: &Head| anchored(s, path, h);
    file::append_with(
        path,
        &entry,
        &Options {
            key: a_key(s),
            sync: true,
            max_bytes: s.audit.max_bytes,
            reserve: RESERVE_BYTES,
            rekey: Some(Some(next)),
            on_head: Some(&on_head),
            held: None,
        },
    )
}

fn entry(event: Event, id: Option<&str>, ip: String, detail: &str) -> Entry {
    Entry {
        time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        event: event.name(),
        id: id.map(str::to_owned),
        ip: record::bounded(&ip, MAX_IP_CHARS),
        host: crate::sys::hostname(),
        pid: crate::sys::pid(),
        detail: record::bounded(detail, MAX_DETAIL_CHARS),
    }
}

/// A synced head: to every anchor store, and kept for the alarms.
fn anchored(s: &Settings, path: &Path, h: &Head) {
    anchor::write(s, path, h);
    if let Some(mut last) = LAST_HEAD.try_lock_for(FOLD_LOCK_WAIT) {
        *last = Some((path.to_owned(), h.clone()));
    }
}

/// The last head this process anchored for the audit file now configured, as alarms carry it
/// (`SEQ:MAC`); `None` without one.
pub fn last_head(s: &Settings) -> Option<Head> {
    let log = s.audit.log.as_ref()?;
    let last = LAST_HEAD.try_lock_for(FOLD_LOCK_WAIT)?;
    last.as_ref()
        .filter(|(p, _)| p == log)
        .map(|(_, h)| h.clone())
}

/// Anchors that could not be written since the library was loaded.
pub fn anchor_failures() -> u64 {
    anchor::FAILED.total()
}

#[allow(clippy::too_many_arguments)]
fn write(
    s: &Settings,
    event: Event,
    id: Option<&str>,
    ip: String,
    detail: &str,
    sync: bool,
    key: Option<&[u8]>,
    rekey: Option<Option<&[u8]>>,
) -> Outcome {
    let a = &s.audit;
    if a.log.is_none() && !a.syslog {
        return Outcome::NotKept;
    }
    write_entry(s, event, entry(event, id, ip, detail), sync, key, rekey)
}

/// Writes `entry` (of `event`), after a held `login_begun` of this thread if there is one.
fn write_entry(
    s: &Settings,
    event: Event,
    entry: Entry,
    sync: bool,
    key: Option<&[u8]>,
    rekey: Option<Option<&[u8]>>,
) -> Outcome {
    let a = &s.audit;
    let held = match &a.log {
        Some(_) => HELD.with(|h| h.borrow_mut().take()),
        None => None,
    };
    let (outcome, written, held_rec) = match &a.log {
        None => (Outcome::NotKept, None, None),
        Some(path) => {
            let on_head = |h: &Head| anchored(s, path, h);
            let opts = Options {
                key,
                sync,
                max_bytes: a.max_bytes,
                reserve: RESERVE_BYTES,
                rekey,
                on_head: Some(&on_head),
                held: held.as_ref(),
            };
            match file::append_both(path, &entry, &opts) {
                Ok((h, r)) => {
                    APPENDS.fetch_add(1, Ordering::Relaxed);
                    if sync {
                        SYNCED_APPENDS.fetch_add(1, Ordering::Relaxed);
                    }
                    (Outcome::Written, Some(r), h)
                }
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
                    (Outcome::Failed, None, None)
                }
            }
        }
    };
    if a.syslog {
        if let Some(h) = &held {
            let msg = match &held_rec {
                Some(r) => r.line().trim_end().to_owned(),
                None => unchained_json(h),
            };
            let sev = Event::LoginBegun.severity();
            syslog::send(
                &a.syslog_socket,
                &syslog::format(sev, &h.time, &h.host, h.pid, h.event, &msg),
            );
        }
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
    // A login's own failure is always logged; other records' failures at most once a second,
    // so a flood of refused attempts cannot become a flood of log lines.
    let due = WRITE_FAILED.note();
    if due.is_some() || event == Event::LoginSucceeded {
        log::error!(
            "audit: the {} record could not be written to {}: {e} ({} failed since the \
             library was loaded)",
            event.name(),
            path.display(),
            WRITE_FAILED.total()
        );
    }
}

/// Records `config_changed` (the key's name only) for each security key a configuration
/// change set, under the new settings; when the audit file itself moved or went away, in the
/// old one as well, so that switching the trail off is the last thing the old trail says.
/// Called by the entry points that change the configuration (the C ABI, the Rust API, the
/// CLI), never by `config` itself.
pub fn config_changed(change: &crate::config::Change) {
    record_config_changes(&change.prev, &change.next, change.keys.iter().copied());
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
    tail_matching(path, n, &|_| true)
}

/// The last `n` records of the file at `path` that `wanted` keeps, oldest first.
pub fn tail_matching(
    path: &std::path::Path,
    n: usize,
    wanted: &dyn Fn(&Record) -> bool,
) -> std::io::Result<Vec<Record>> {
    let data = std::fs::read(path)?;
    let mut out: Vec<Record> = data
        .split(|&b| b == b'\n')
        .rev()
        .filter_map(Record::parse)
        .filter(|r| wanted(r))
        .take(n)
        .collect();
    out.reverse();
    Ok(out)
}
