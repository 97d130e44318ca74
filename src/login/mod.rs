//! The whole break-glass login: password, then code, then one session, with attempt limits and
//! an IP allow-list in front of every step.
//!
//! Order of checks in both steps: the allow-list, then the lockouts (per address and overall),
//! then the expensive part. A password check first waits its turn at the fair gate
//! (`admission`: one check per address, the rest in arrival order, bounded), is counted as a
//! failure in the login state before it runs, and is given back only when it is right. The
//! code a right password earns belongs to that address (`state.rs` has the rules); the state
//! lives in the store the settings name (`store.rs`). It must never return or log the code,
//! the password or a session token, never carry the caller's raw address text into a log, an
//! alarm or the trail (only the parsed address's canonical text), and never grant anything on
//! an error.
//!
//! Every outcome is an audit record (`crate::audit`): `login_refused` (with the check that
//! refused), `login_begun`, `code_sent`, `login_failed`, `lockout_started`,
//! `global_limit_reached`, `guessing_detected`, `login_succeeded`, `session_ended`,
//! `attempts_reset`. A success that cannot be recorded while `audit_required` is on is
//! refused with `Error::Audit`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::audit::{self, Event, Outcome};
use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::fork::Lazy;

pub use crate::config::address;
pub(crate) mod admission;
mod dir_store;
pub(crate) mod memory;
pub mod password;
pub mod recovery;
mod session;
#[cfg(feature = "redis")]
mod shared;
pub mod state;
mod store;
mod turn;

pub use crate::config::allowlist::{self, AllowList};
pub use crate::config::LoginSettings;
pub use password::{hash_new as hash_password, StoredHash};
pub use session::TOKEN_CHARS;
pub use state::{Limits, StatusView, MAX_TRACKED};

use address::{ClientAddr, LimitKey};
use state::{Alarm, CodeVerdict, Counted, Refusal};
use store::LoginStore;

static DEFAULT_ALLOWED: Lazy<AllowList> =
    Lazy::new(|| AllowList::parse(allowlist::DEFAULT).expect("the default list is valid"));

/// The rules' view of the settings lives with the rules.
impl LoginSettings {
    /// The rules' view.
    pub fn limits(&self) -> Limits {
        Limits {
            max_attempts: self.max_attempts,
            lockout_ms: self.lockout.as_millis() as u64,
            max_global: self.max_global_failures,
        }
    }
}

/// The client's address, if it is well formed and on the allow-list.
fn allowed_client(ip: Option<&[u8]>, s: &Settings) -> Result<ClientAddr> {
    let list = match &s.login.allowed_ips {
        Some(l) => l,
        None => {
            // Not a `Once`: a fork during the warning must not leave the child waiting on it.
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "allowed_ips is unset: break-glass logins are allowed from 127.0.0.1 and ::1 \
                     only"
                );
            }
            &DEFAULT_ALLOWED
        }
    };
    let addr = ip
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(ClientAddr::parse)
        .ok_or(Error::IpNotAllowed("the address is missing or malformed"))?;
    if list.allows(addr.0) {
        Ok(addr)
    } else {
        log::info!(
            "break-glass login attempt from {} refused: not in allowed_ips",
            addr.canonical()
        );
        Err(Error::IpNotAllowed("the address is not in allowed_ips"))
    }
}

/// The text an audit record or alarm carries for the caller's address: the canonical text of
/// a parsed address, or a fixed marker for anything else (never the caller's raw bytes).
fn recorded_ip(ip: Option<&[u8]>) -> String {
    match ip {
        None => "(none)".into(),
        Some(b) => match std::str::from_utf8(b).ok().and_then(ClientAddr::parse) {
            Some(a) => a.canonical(),
            None => format!("(malformed, {} bytes)", b.len()),
        },
    }
}

fn refusal_error(r: Refusal) -> Error {
    match r {
        Refusal::KeyLocked { .. } => Error::LockedOut("this address is locked out"),
        Refusal::GlobalLocked { .. } => {
            Error::LockedOut("every break-glass login is locked out: too many wrong codes overall")
        }
    }
}

/// Logs, records and raises what counting a failure did.
fn settle(addr: &ClientAddr, s: &Arc<Settings>, c: &Counted, alarms: &[Alarm], what: &str) {
    let l = &s.login;
    let ip = addr.canonical();
    // Info, not warn: a flood of attempts must not become a flood of log lines. Lockouts and
    // alarms, which are rare, are errors.
    log::info!("break-glass login from {ip}: {what}");
    if c.key_locked {
        let text = format!(
            "{} locked out for {} s after {} failures",
            addr.limit_key().as_text(),
            l.lockout.as_secs(),
            l.max_attempts
        );
        audit::record(s, Event::LockoutStarted, None, Some(ip.as_bytes()), &text);
        log::error!("break-glass login: {text}");
    }
    for alarm in alarms {
        match *alarm {
            Alarm::GlobalLockout { failures } => {
                // Logged there, at error level, with the alarm's event id.
                let id = crate::notify::alert_global_lockout(s, failures, l.lockout);
                audit::record(
                    s,
                    Event::GlobalLimitReached,
                    Some(&id),
                    Some(ip.as_bytes()),
                    &format!(
                        "{failures} wrong codes within {} s: every login locked out",
                        l.lockout.as_secs()
                    ),
                );
            }
            Alarm::Guessing {
                kind,
                failures,
                addresses,
            } => {
                let id = crate::notify::alert_guessing(
                    s,
                    kind == state::GuessKind::Code,
                    failures,
                    addresses,
                    l.lockout,
                );
                audit::record(
                    s,
                    Event::GuessingDetected,
                    Some(&id),
                    Some(ip.as_bytes()),
                    &format!(
                        "{} guessing: {failures} wrong within {} s from {addresses} address(es)",
                        kind.as_str(),
                        l.lockout.as_secs()
                    ),
                );
            }
        }
    }
}

/// Step 1: checks the allow-list, the lockouts and the password; on success issues a code to
/// this address and queues its email (the code is never returned). A wrong password counts as
/// a failure of this address.
pub fn begin(ip: Option<&[u8]>, password: &[u8]) -> Result<()> {
    let s = config::current();
    let result = begin_checked(&s, ip, password);
    if let Err(e) = &result {
        // A wrong password counts as a failure: its record is synced like a wrong code's.
        let counted = matches!(e, Error::WrongPassword);
        let detail = format!("begin: {e}");
        if counted {
            let shown = recorded_ip(ip);
            audit::record_synced(
                &s,
                Event::LoginRefused,
                None,
                Some(shown.as_bytes()),
                &detail,
                true,
            );
        } else {
            // Folded: refusals before the password is checked cost an outsider nothing.
            audit::refused(&s, &detail, ip);
        }
    }
    result
}

fn begin_checked(s: &Arc<Settings>, ip: Option<&[u8]>, password: &[u8]) -> Result<()> {
    let stored = s
        .login
        .password_hash
        .as_ref()
        .ok_or(Error::NotConfigured("the login flow needs password_hash"))?;
    let addr = allowed_client(ip, s)?;
    let key = addr.limit_key();
    let l = s.login.limits();
    let st = store::of(s)?;
    // Cheap refusal first: a locked address or login never waits at the gate.
    store::with(&*st, "checking the lockouts", |state, now| {
        (state.admit(key, now, &l), false)
    })?
    .map_err(refusal_error)?;
    let place = admission::GATE
        .enter(key, admission::MAX_WAIT)
        .map_err(|busy| {
            Error::LockedOut(match busy {
                admission::Busy::KeyBusy => {
                    "a password check from this address is already running; try again"
                }
                admission::Busy::Full => {
                    "too many password checks are waiting; try again in a moment"
                }
            })
        })?;
    let counted = store::with(&*st, "counting a password attempt", |state, now| {
        (state.reserve_password(key, now, &l), true)
    })?
    .map_err(refusal_error)?;
    let right = stored.check(password).is_ok();
    drop(place);
    if !right {
        let alarm = store::with(&*st, "settling a password attempt", |state, now| {
            (state.password_alarm(now, &l), true)
        })?;
        settle(&addr, s, &counted, alarm.as_slice(), "wrong password");
        return Err(Error::WrongPassword);
    }
    let code = crate::otp::Otp::generate()?;
    let ttl = s.otp_ttl.as_millis() as u64;
    store::with(&*st, "issuing the code", |state, now| {
        state.refund_password(key, &counted);
        state.issue(code.clone(), key, now, ttl);
        ((), true)
    })?;
    let shown = addr.canonical();
    audit::record(
        s,
        Event::LoginBegun,
        None,
        Some(shown.as_bytes()),
        "password accepted",
    );
    if let Err(e) = crate::notify::send_otp_with(s, code) {
        // A code nobody will receive must not stay pending.
        let _ = store::with(&*st, "withdrawing the code", |state, _| {
            state.withdraw(key);
            ((), true)
        });
        return Err(e);
    }
    audit::record(
        s,
        Event::CodeSent,
        None,
        Some(shown.as_bytes()),
        "one-time code email queued",
    );
    log::warn!("break-glass login from {shown}: password accepted, one-time code email queued");
    let mail = crate::notify::code_email_health();
    if mail.failing() {
        log::error!(
            "the last code email failed ({}): this one may not arrive either; a recovery code \
             works in place of it",
            mail.last_failure_reason
        );
    }
    Ok(())
}

/// Step 2: checks the allow-list, the lockouts and the code. The code must be the one this
/// address's right password earned; from any other address the attempt is `NoPendingOtp`,
/// counted against that address only, and the pending code stays. On success the address's
/// failures are forgotten, a new session replaces any other, the alarm is raised, and the
/// session token is returned. `code == None` is `Error::Null`: nothing is checked or counted.
pub fn complete(ip: Option<&[u8]>, code: Option<&[u8]>) -> Result<Zeroizing<String>> {
    let s = config::current();
    let Some(code) = code else {
        return Err(Error::Null);
    };
    let shown = recorded_ip(ip);
    let refused = |e: Error| {
        // Folded like begin's refusals before the password.
        audit::refused(&s, &format!("complete: {e}"), ip);
        e
    };
    let addr = allowed_client(ip, &s).map_err(refused)?;
    let key = addr.limit_key();
    let l = s.login.limits();
    let st = store::of(&s).map_err(refused)?;
    // Input that is not six ASCII digits cannot match, but is still a (counted) attempt; with
    // recovery codes set up it is tried as one.
    let submitted = crate::otp::Otp::parse(code);
    if submitted.is_none() && s.recovery_codes_file.is_some() {
        return complete_with_recovery(&s, &*st, &addr, code).map_err(|e| match e {
            Refused::Before(e) => refused(e),
            Refused::After(e) => e,
        });
    }
    let verdict = store::with(&*st, "checking a code", |state, now| {
        match state.admit(key, now, &l) {
            Err(r) => (Err(r), false),
            Ok(()) => (
                Ok(state.attempt_code(key, submitted.as_ref(), now, &l)),
                true,
            ),
        }
    })
    .map_err(refused)?
    .map_err(|r| refused(refusal_error(r)))?;
    match verdict {
        (CodeVerdict::Granted, _) => grant(&s, &*st, &addr, None),
        (CodeVerdict::Denied { why, counted }, alarms) => {
            audit::record(
                &s,
                Event::LoginFailed,
                None,
                Some(shown.as_bytes()),
                &format!("code refused ({why})"),
            );
            settle(
                &addr,
                &s,
                &counted,
                &alarms,
                &format!("code refused ({why})"),
            );
            Err(why)
        }
    }
}

/// Where a recovery-code attempt stopped: before it was counted (a refusal) or after.
enum Refused {
    Before(Error),
    After(Error),
}

/// Step 2 with a recovery code in place of the emailed code. Counted as a wrong code first (it
/// needs this address's right password, proven by the code that password earned, which it
/// uses up), then checked at the fair gate outside every lock, then consumed in the login
/// state and the count given back in one transaction: a code works once, even for racing
/// processes, and a wrong one is one failure under the same limits as a wrong emailed code.
fn complete_with_recovery(
    s: &Arc<Settings>,
    st: &dyn LoginStore,
    addr: &ClientAddr,
    typed: &[u8],
) -> std::result::Result<Zeroizing<String>, Refused> {
    let key = addr.limit_key();
    let l = s.login.limits();
    let shown = addr.canonical();
    let reserved = store::with(st, "counting a recovery-code attempt", |state, now| {
        if let Err(r) = state.admit(key, now, &l) {
            return (Err(r), false);
        }
        if !state.take_code_for_recovery(key, now) {
            // No right password first (or its code expired): as an emailed code would be.
            return (Ok(Err(state.attempt_code(key, None, now, &l))), true);
        }
        (Ok(Ok(state.count_code_failure(key, now, &l, true))), true)
    })
    .map_err(Refused::Before)?
    .map_err(|r| Refused::Before(refusal_error(r)))?;
    let fail = |why: Error, counted: &Counted, alarms: &[Alarm]| {
        let what = format!("recovery code refused ({why})");
        audit::record(s, Event::LoginFailed, None, Some(shown.as_bytes()), &what);
        settle(addr, s, counted, alarms, &what);
        Refused::After(why)
    };
    let (counted, alarms) = match reserved {
        Ok(c) => c,
        Err((CodeVerdict::Denied { why, counted }, alarms)) => {
            return Err(fail(why, &counted, &alarms))
        }
        Err((CodeVerdict::Granted, _)) => {
            return Err(Refused::After(Error::Internal(
                "a code attempt without a code",
            )))
        }
    };
    let found = match recovery::check(s, key, typed) {
        Ok(found) => found,
        Err(e) => {
            // The gate or the file could not answer: not the typist's failure.
            let _ = store::with(st, "settling a recovery-code attempt", |state, _| {
                state.refund_code_failure(key, &counted);
                ((), true)
            });
            audit::record(
                s,
                Event::LoginFailed,
                None,
                Some(shown.as_bytes()),
                &format!("recovery code not checked: {e}"),
            );
            return Err(Refused::After(e));
        }
    };
    let Some(m) = found else {
        return Err(fail(Error::Invalid, &counted, &alarms));
    };
    let used = store::with(st, "consuming a recovery code", |state, _| {
        if !state.use_recovery(m.set, m.index) {
            return (None, false);
        }
        state.refund_code_failure(key, &counted);
        state.unlock(key);
        (Some(state.recovery_used(&m.set) as u32), true)
    })
    .map_err(Refused::After)?;
    match used {
        Some(n) => grant(
            s,
            st,
            addr,
            Some(recovery::Redeemed {
                left: m.total.saturating_sub(n),
                total: m.total,
            }),
        )
        .map_err(Refused::After),
        None => {
            log::warn!("recovery codes: a code that was already used was offered again");
            Err(fail(Error::Invalid, &counted, &alarms))
        }
    }
}

/// Marks recovery code `index` of `set` used in the login state (see [`crate::recovery`]).
pub(crate) fn consume_recovery(s: &Settings, set: &[u8; 32], index: u32) -> Result<bool> {
    let st = store::of(s)?;
    store::with(&*st, "consuming a recovery code", |state, _| {
        let fresh = state.use_recovery(*set, index);
        (fresh, fresh)
    })
}

/// Recovery codes of `set` used, per the login state.
pub(crate) fn recovery_used(s: &Settings, set: &[u8; 32]) -> Result<u32> {
    let st = store::of(s)?;
    store::with(&*st, "counting used recovery codes", |state, _| {
        (state.recovery_used(set) as u32, false)
    })
}

/// The code was right: the alarm, the record, then the session. With `recovered`, the login
/// used a recovery code and its own alarm goes out instead of the login alarm.
fn grant(
    s: &Arc<Settings>,
    st: &dyn LoginStore,
    addr: &ClientAddr,
    recovered: Option<recovery::Redeemed>,
) -> Result<Zeroizing<String>> {
    let shown = addr.canonical();
    let (token, hash) = match session::new_token() {
        Ok(t) => t,
        Err(e) => {
            audit::record(
                s,
                Event::LoginFailed,
                None,
                Some(shown.as_bytes()),
                &e.to_string(),
            );
            return Err(e);
        }
    };
    // The alarm goes out whatever happens next: the code was right.
    let id = match recovered {
        Some(used) => recovery::raise_alarm(s, Some(shown.as_bytes()), used),
        None => crate::notify::alert_with_id(s, Some(shown.as_bytes())),
    };
    // On disk before a session exists: a crash never loses a granted login's record.
    let recorded = audit::record(
        s,
        Event::LoginSucceeded,
        Some(&id),
        Some(shown.as_bytes()),
        "code accepted, session started",
    );
    if recorded == Outcome::Failed && s.audit.required {
        log::error!(
            "break-glass login from {shown} refused: its success could not be written to \
             audit_log and audit_required is on (alarm event {id})"
        );
        return Err(Error::Audit(
            "the login could not be recorded in audit_log (audit_required is on)",
        ));
    }
    let ttl = s.login.session_ttl.as_millis() as u64;
    if let Err(e) = store::with(st, "starting the session", |state, now| {
        state.start_session(hash, now, ttl);
        ((), true)
    }) {
        audit::record(
            s,
            Event::LoginFailed,
            Some(&id),
            Some(shown.as_bytes()),
            &format!("the session could not be started: {e}"),
        );
        return Err(e);
    }
    Ok(token)
}

/// `Ok` while `token` is the active session's and younger than `session_ttl_seconds`; the
/// error says why not (ended, expired, replaced by a newer login, unknown).
pub fn session_check(token: &[u8]) -> Result<()> {
    let s = config::current();
    let h = session::hash(token);
    let st = store::of(&s)?;
    store::with(&*st, "checking the session", |state, now| {
        (state.check_session(&h, now), false)
    })?
    .map_err(|r| Error::NoSession(r.reason()))
}

/// Ends the session whose token is `token`.
pub fn session_end(token: &[u8]) -> Result<()> {
    let s = config::current();
    let h = session::hash(token);
    let st = store::of(&s)?;
    store::with(&*st, "ending the session", |state, now| {
        let r = state.end_session(&h, now);
        let changed = r.is_ok();
        (r, changed)
    })?
    .map_err(|r| Error::NoSession(r.reason()))?;
    audit::record(&s, Event::SessionEnded, None, None, "ended by its holder");
    log::warn!("break-glass session ended");
    Ok(())
}

fn operator_addr(ip: &[u8]) -> Result<ClientAddr> {
    std::str::from_utf8(ip)
        .ok()
        .and_then(ClientAddr::parse)
        .ok_or_else(|| Error::Argument("not an IP address".into()))
}

/// Failures `ip` may still make before it is locked out (0 while it, or everyone, is).
pub fn attempts_left(ip: &[u8]) -> Result<u32> {
    let s = config::current();
    let key = operator_addr(ip)?.limit_key();
    let l = s.login.limits();
    let st = store::of(&s)?;
    store::with(&*st, "reading attempts", |state, now| {
        (state.attempts_left(key, now, &l), false)
    })
}

/// Forgets `ip`'s failures and ends its lockout (an operator's action; logged and recorded).
pub fn reset_attempts(ip: &[u8]) -> Result<()> {
    let s = config::current();
    let key = operator_addr(ip)?.limit_key();
    unlock_keys(&s, Some(key))
}

/// Lifts every lockout, the overall one included (an operator's action; logged and recorded).
pub fn unlock_all() -> Result<()> {
    unlock_keys(&config::current(), None)
}

fn unlock_keys(s: &Settings, key: Option<LimitKey>) -> Result<()> {
    let st = store::of(s)?;
    store::with(&*st, "lifting lockouts", |state, _| {
        match key {
            Some(k) => {
                state.unlock(k);
            }
            None => state.unlock_all(),
        }
        ((), true)
    })?;
    let what = key.map_or("every address and the overall limit".into(), |k| {
        k.as_text()
    });
    audit::record(
        s,
        Event::AttemptsReset,
        None,
        None,
        &format!("{what} unlocked by the operator"),
    );
    log::warn!("break-glass login: failures of {what} reset by the operator");
    Ok(())
}

/// Ends whatever session is active (an operator's action); false when there was none.
pub fn end_any_session() -> Result<bool> {
    let s = config::current();
    let st = store::of(&s)?;
    let ended = store::with(&*st, "ending the session", |state, now| {
        let e = state.end_any_session(now);
        (e, e)
    })?;
    if ended {
        audit::record(&s, Event::SessionEnded, None, None, "ended by the operator");
        log::warn!("break-glass session ended by the operator");
    }
    Ok(ended)
}

/// What `breakglass status` shows, with the store's description and the window's length.
pub fn status() -> Result<(String, StatusView)> {
    let s = config::current();
    let l = s.login.limits();
    let st = store::of(&s)?;
    let view = store::with(&*st, "reading the status", |state, now| {
        (state.status(now, &l, None), false)
    })?;
    Ok((st.describe(), view))
}

/// Whether the login state lives in this process only (neither `state_dir` nor `slot_url`).
pub fn state_is_in_process(s: &Settings) -> bool {
    s.state_dir.is_none() && s.slot.url.is_none()
}

/// Forgets all login state of this process (the C test program uses it between cases).
pub fn reset_all() {
    memory::clear_all();
}
