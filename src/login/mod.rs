//! The whole break-glass login: password, then code, then one session, with attempt limits and
//! an IP allow-list in front of every step.
//!
//! Order of checks in both steps: the allow-list, then the lockouts (per address and overall),
//! then the expensive part (the password hash, or the code). The cheap checks come first so a
//! flood of attempts cannot buy hash computations, and at most `MAX_CONCURRENT_CHECKS` hash
//! checks run at once. A wrong password and a wrong, expired or missing code each count as one
//! failure. It must never return or log the code, the password or a session token, and never
//! grant anything on an error.
//!
//! Every outcome is an audit record (`crate::audit`): `login_refused` (with the check that
//! refused), `login_begun`, `code_sent`, `login_failed`, `lockout_started`,
//! `global_limit_reached`, `login_succeeded`, `session_ended`. A success that cannot be recorded
//! while `audit_required` is on is refused with `Error::Audit`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::audit::{self, Event, Outcome};
use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::fork::Lazy;

pub mod address;
mod limiter;
pub(crate) mod memory;
pub mod password;
mod session;
#[cfg(feature = "redis")]
mod shared;
mod store;

pub use crate::config::allowlist::{self, AllowList};
pub use limiter::{Limits, MAX_TRACKED};
pub use password::{hash_new as hash_password, StoredHash};
pub use session::TOKEN_CHARS;

use address::ClientAddr;
use limiter::Reservation;

static DEFAULT_ALLOWED: Lazy<AllowList> =
    Lazy::new(|| AllowList::parse(allowlist::DEFAULT).expect("the default list is valid"));

pub use crate::config::LoginSettings;

/// The limiter's view of the settings lives with the limiter.
impl LoginSettings {
    /// The limiter's view.
    pub fn limits(&self) -> Limits {
        Limits {
            max_attempts: self.max_attempts,
            lockout: self.lockout,
            max_global: self.max_global_failures,
        }
    }
}

fn now() -> Duration {
    crate::sys::boottime()
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
            addr.0
        );
        Err(Error::IpNotAllowed("the address is not in allowed_ips"))
    }
}

/// Admits an attempt and counts it as a failure before it is evaluated (see the limiter);
/// with `code`, also verifies it (consuming the pending code) and returns the verdict.
fn reserve(
    addr: &ClientAddr,
    s: &Settings,
    code: Option<Option<&crate::otp::Otp>>,
) -> Result<(Reservation, Result<()>)> {
    store::of(s).reserve(addr.limit_key(), &s.login.limits(), code)
}

/// Takes back a reservation: the attempt succeeded (or was never evaluated). With
/// `session`, that session replaces any other.
fn refund(
    s: &Settings,
    r: &Reservation,
    forget_address: bool,
    session: Option<session::Session>,
) -> Result<()> {
    store::of(s).refund(r, forget_address, session.as_ref())
}

/// The attempt failed: its reservation stands; says what it locked.
fn settle_failure(addr: &ClientAddr, s: &std::sync::Arc<Settings>, f: &Reservation, what: &str) {
    let l = s.login.limits();
    // Info, not warn: a flood of attempts must not become a flood of log lines. Lockouts,
    // which are rare, are errors.
    log::info!("break-glass login from {}: {what}", addr.0);
    let ip = addr.0.to_string();
    if f.address_locked {
        audit::record(
            s,
            Event::LockoutStarted,
            None,
            Some(ip.as_bytes()),
            &format!(
                "{} locked out for {} s after {} failures",
                addr.limit_key().as_text(),
                l.lockout.as_secs(),
                l.max_attempts
            ),
        );
        log::error!(
            "break-glass login: {} locked out for {} s after {} failures",
            addr.limit_key().as_text(),
            l.lockout.as_secs(),
            l.max_attempts
        );
    }
    if f.global_locked {
        // Logged there, at error level, with the alarm's event id.
        let id = crate::notify::alert_global_lockout(s, l.max_global, l.lockout);
        audit::record(
            s,
            Event::GlobalLimitReached,
            Some(&id),
            Some(ip.as_bytes()),
            &format!(
                "{} failures within {} s: every login locked out",
                l.max_global,
                l.lockout.as_secs()
            ),
        );
    }
}

/// Step 1: checks the allow-list, the lockouts and the password; on success issues a code and
/// queues its email (the code is never returned). A wrong password counts as a failure.
pub fn begin(ip: Option<&[u8]>, password: &[u8]) -> Result<()> {
    let s = config::current();
    let result = begin_checked(&s, ip, password);
    if let Err(e) = &result {
        // A wrong password counts as a failure: its record is synced like a wrong code's.
        let counted = matches!(e, Error::WrongPassword);
        let detail = format!("begin: {e}");
        audit::record_synced(&s, Event::LoginRefused, None, ip, &detail, counted);
    }
    result
}

fn begin_checked(s: &std::sync::Arc<Settings>, ip: Option<&[u8]>, password: &[u8]) -> Result<()> {
    let stored = s
        .login
        .password_hash
        .as_ref()
        .ok_or(Error::NotConfigured("the login flow needs password_hash"))?;
    let addr = allowed_client(ip, s)?;
    let (r, _) = reserve(&addr, s, None)?;
    match stored.check(password) {
        Ok(()) => refund(s, &r, false, None)?,
        Err(password::CheckError::Busy) => {
            refund(s, &r, false, None)?;
            return Err(Error::LockedOut(
                "too many password checks are running; try again in a moment",
            ));
        }
        Err(password::CheckError::Mismatch) => {
            settle_failure(&addr, s, &r, "wrong password");
            return Err(Error::WrongPassword);
        }
    }
    audit::record(s, Event::LoginBegun, None, ip, "password accepted");
    let code = crate::otp::generate_with(s)?;
    if let Err(e) = crate::notify::send_otp_with(s, code) {
        // A code nobody received must not stay pending.
        let _ = crate::otp::clear_with(s);
        return Err(e);
    }
    audit::record(s, Event::CodeSent, None, ip, "one-time code email queued");
    log::warn!(
        "break-glass login from {}: password accepted, one-time code sent",
        addr.0
    );
    Ok(())
}

/// Step 2: checks the allow-list, the lockouts and the code. On success the address's failures
/// are forgotten, a new session replaces any other, the alarm is raised, and the session token
/// is returned. A wrong, expired or missing code counts as a failure.
pub fn complete(ip: Option<&[u8]>, code: Option<&[u8]>) -> Result<Zeroizing<String>> {
    let s = config::current();
    let admitted = allowed_client(ip, &s).and_then(|addr| {
        // Input that is not six ASCII digits cannot match, but still consumes the pending code.
        let submitted = code.and_then(crate::otp::Otp::parse);
        Ok((addr, reserve(&addr, &s, Some(submitted.as_ref()))?))
    });
    let (addr, (r, outcome)) = match admitted {
        Ok(a) => a,
        Err(e) => {
            audit::record(&s, Event::LoginRefused, None, ip, &format!("complete: {e}"));
            return Err(e);
        }
    };
    match outcome {
        Ok(()) => {
            let (token, hash) = match session::new_token() {
                Ok(t) => t,
                Err(e) => {
                    refund(&s, &r, false, None)?;
                    audit::record(&s, Event::LoginFailed, None, ip, &e.to_string());
                    return Err(e);
                }
            };
            let sess = session::Session {
                token: hash,
                issued: now(),
                ttl: s.login.session_ttl,
            };
            // The alarm goes out whatever happens next: the code was right.
            let id = crate::notify::alert_with_id(&s, ip);
            // On disk before a session exists: a crash never loses a granted login's record.
            let recorded = audit::record(
                &s,
                Event::LoginSucceeded,
                Some(&id),
                ip,
                "code accepted, session started",
            );
            if recorded == Outcome::Failed && s.audit.required {
                // The code was right, so this attempt is not counted as a failure (the
                // address's earlier failures stand: it did not log in); no session starts.
                refund(&s, &r, false, None)?;
                log::error!(
                    "break-glass login from {} refused: its success could not be written to \
                     audit_log and audit_required is on (alarm event {id})",
                    addr.0
                );
                return Err(Error::Audit(
                    "the login could not be recorded in audit_log (audit_required is on)",
                ));
            }
            if let Err(e) = refund(&s, &r, true, Some(sess)) {
                audit::record(
                    &s,
                    Event::LoginFailed,
                    Some(&id),
                    ip,
                    &format!("the session could not be started: {e}"),
                );
                return Err(e);
            }
            Ok(token)
        }
        Err(e @ (Error::Invalid | Error::Expired | Error::NoPendingOtp)) => {
            audit::record(
                &s,
                Event::LoginFailed,
                None,
                ip,
                &format!("code refused ({e})"),
            );
            settle_failure(&addr, &s, &r, &format!("code refused ({e})"));
            Err(e)
        }
        // The slot could not answer after counting: the attempt stays counted (a denial).
        Err(e) => {
            audit::record(&s, Event::LoginFailed, None, ip, &e.to_string());
            Err(e)
        }
    }
}

/// `Ok` while `token` is the active session's and younger than `session_ttl_seconds`.
pub fn session_check(token: &[u8]) -> Result<()> {
    let s = config::current();
    let h = session::hash(token);
    if store::of(&s).check_session(&h, now())? {
        Ok(())
    } else {
        Err(Error::NoSession)
    }
}

/// Ends the session whose token is `token`.
pub fn session_end(token: &[u8]) -> Result<()> {
    let s = config::current();
    let h = session::hash(token);
    if store::of(&s).end_session(&h, now())? {
        audit::record(&s, Event::SessionEnded, None, None, "ended by its holder");
        log::warn!("break-glass session ended");
        Ok(())
    } else {
        Err(Error::NoSession)
    }
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
    let addr = operator_addr(ip)?;
    let left = store::of(&s).attempts_left(addr.limit_key(), &s.login.limits(), now());
    left
}

/// Forgets `ip`'s failures and ends its lockout (an operator's action; logged).
pub fn reset_attempts(ip: &[u8]) -> Result<()> {
    let s = config::current();
    let addr = operator_addr(ip)?;
    store::of(&s).reset(addr.limit_key())?;
    log::warn!(
        "break-glass login: failures of {} reset by the operator",
        addr.limit_key().as_text()
    );
    Ok(())
}

/// Forgets all login state of this process (the crate's own tests use it between cases).
pub fn reset_all() {
    memory::clear_all();
}
