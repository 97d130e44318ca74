//! The break-glass login over a PAM conversation: address, password, `login::begin`, the
//! code, `login::complete`, and the PAM code that each outcome becomes.
//!
//! Fail closed: only a granted login is `PAM_SUCCESS`. A denial is `PAM_AUTH_ERR`; a
//! configuration, backend or audit error is `PAM_AUTHINFO_UNAVAIL`; a user other than the
//! configured one is `PAM_IGNORE`. The client sees one text for all of them; the reason goes to
//! syslog. It must never log or show a password or a code.

use std::ffi::c_int;
use std::time::Duration;

use breakglass::login::address::ClientAddr;
use breakglass::Error;

use crate::args::Args;
use crate::handle::{Handle, Held};
use crate::sys::*;

/// The one text a client sees when it is not let in.
pub const DENIED: &str = "Break-glass login denied.";
/// The password prompt.
pub const PASSWORD_PROMPT: &str = "Break-glass password: ";
/// Said after the password was accepted.
pub const CODE_SENT: &str = "A code was sent to the break-glass address.";
/// The code prompt.
pub const CODE_PROMPT: &str = "Break-glass code: ";

/// How long the module waits for queued deliveries (the code email, the alarm) before it
/// returns: the host (sshd's authenticating child, pamtester) may exit right after.
const FLUSH_BOUND: Duration = Duration::from_secs(20);

/// What OpenSSH hands PAM instead of the typed password when its own configuration refuses
/// the user: never a real attempt, so never counted against the address.
const OPENSSH_BAD_PASSWORD: &[u8] = b"\x08\n\r\x7fINCORRECT";

/// Where a login stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not the configured user: the rest of the stack decides.
    Ignored,
    /// Granted: a session was started and the alarm raised.
    Granted,
    /// Refused (wrong secret, address, lockout, no answer): the reason for the log.
    Denied(String),
    /// The module cannot run (configuration, store, audit): the reason for the log.
    Unavailable(String),
}

impl Outcome {
    /// The PAM return code.
    pub fn code(&self) -> c_int {
        match self {
            Outcome::Ignored => PAM_IGNORE,
            Outcome::Granted => PAM_SUCCESS,
            Outcome::Denied(_) => PAM_AUTH_ERR,
            Outcome::Unavailable(_) => PAM_AUTHINFO_UNAVAIL,
        }
    }
}

/// A library error from either step: a denial, or the module cannot run.
fn judge(step: &str, e: Error) -> Outcome {
    let why = format!("{step}: {e}");
    match e {
        Error::WrongPassword
        | Error::IpNotAllowed(_)
        | Error::LockedOut(_)
        | Error::Invalid
        | Error::Expired
        | Error::NoPendingOtp
        | Error::Null => Outcome::Denied(why),
        _ => Outcome::Unavailable(why),
    }
}

/// The client's address for the library: `PAM_RHOST` when it is an IP literal; unset or empty
/// (a local login: sudo, login on a console) is the loopback address. A host name is refused:
/// it is never resolved (whoever controls the reverse zone would choose the address).
fn client_address(rhost: Option<Vec<u8>>) -> Result<String, String> {
    let Some(raw) = rhost else {
        return Ok("127.0.0.1".to_owned());
    };
    let text = String::from_utf8(raw).map_err(|_| "PAM_RHOST is not UTF-8".to_owned())?;
    match ClientAddr::parse(&text) {
        Some(_) => Ok(text),
        None => Err(format!(
            "PAM_RHOST {:?} is not an IP address (host names are never resolved; set sshd's \
             UseDNS no)",
            text.chars().take(64).collect::<String>()
        )),
    }
}

/// The whole authentication, after the arguments were parsed. The user name is logged quoted
/// and escaped: it is whatever the client typed.
pub fn authenticate(h: &Handle, args: &Args, flags: c_int) -> Outcome {
    let Some(user) = h.user() else {
        return Outcome::Unavailable("no user name from PAM".into());
    };
    if args.user.as_deref().is_some_and(|u| u != user) {
        return Outcome::Ignored;
    }
    let outcome = run(h, args, &user, flags & PAM_SILENT != 0);
    match &outcome {
        Outcome::Granted => {
            log::warn!(target: "breakglass::pam", "break-glass login of {user:?} granted")
        }
        Outcome::Denied(why) => {
            log::warn!(target: "breakglass::pam", "break-glass login of {user:?} denied: {why}")
        }
        Outcome::Unavailable(why) => log::error!(
            target: "breakglass::pam",
            "break-glass login of {user:?} unavailable: {why}"
        ),
        Outcome::Ignored => {}
    }
    if matches!(outcome, Outcome::Denied(_) | Outcome::Unavailable(_)) && flags & PAM_SILENT == 0 {
        let _ = h.converse(PAM_ERROR_MSG, DENIED);
    }
    outcome
}

fn run(h: &Handle, args: &Args, user: &str, silent: bool) -> Outcome {
    if let Err(why) = crate::config_file::load(&args.config) {
        return Outcome::Unavailable(why);
    }
    let ip = match client_address(h.rhost()) {
        Ok(ip) => ip,
        Err(why) => return Outcome::Denied(why),
    };
    log::info!(target: "breakglass::pam", "break-glass login of {user:?} from {ip} started");
    let Some(password) = h.converse(PAM_PROMPT_ECHO_OFF, PASSWORD_PROMPT) else {
        return Outcome::Denied("no password (the conversation ended)".into());
    };
    if *password == OPENSSH_BAD_PASSWORD {
        return Outcome::Denied("sshd refused this user itself (its placeholder password)".into());
    }
    let begun = breakglass::login::begin(Some(ip.as_bytes()), &password);
    drop(password);
    if let Err(e) = begun {
        let out = judge("password step", e);
        flush();
        return out;
    }
    // A failed info message is not a reason to stop: the code prompt follows anyway.
    if !silent {
        let _ = h.converse(PAM_TEXT_INFO, CODE_SENT);
    }
    let code = h.converse(PAM_PROMPT_ECHO_OFF, CODE_PROMPT);
    // No answer still completes: it consumes the pending code and counts as a failure.
    let result = breakglass::login::complete(Some(ip.as_bytes()), code.as_deref().map(|c| &c[..]));
    drop(code);
    let out = match result {
        Ok(token) => {
            h.hold(Held {
                pid: std::process::id(),
                token,
            });
            Outcome::Granted
        }
        Err(e) => judge("code step", e),
    };
    flush();
    out
}

/// Waits (bounded) for the code email and the alarm to leave.
fn flush() {
    if breakglass::flush(FLUSH_BOUND).is_err() {
        log::error!(
            target: "breakglass::pam",
            "deliveries still queued after {} s; they end with this process",
            FLUSH_BOUND.as_secs()
        );
    }
}

/// `pam_sm_close_session`: ends the break-glass session this process was granted, if any.
pub fn close_session(h: &Handle) {
    if let Some((pid, token)) = h.held() {
        if pid != std::process::id() {
            return;
        }
        match breakglass::login::session_end(token.as_bytes()) {
            Ok(()) => log::info!(target: "breakglass::pam", "break-glass session closed"),
            Err(e) => log::info!(
                target: "breakglass::pam",
                "break-glass session already over at close: {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(client_address(None).unwrap(), "127.0.0.1");
        assert_eq!(
            client_address(Some(b"10.1.2.3".to_vec())).unwrap(),
            "10.1.2.3"
        );
        assert_eq!(
            client_address(Some(b"2001:db8::1".to_vec())).unwrap(),
            "2001:db8::1"
        );
        let e = client_address(Some(b"host.example.com".to_vec())).unwrap_err();
        assert!(e.contains("never resolved"));
        assert!(client_address(Some(b"localhost".to_vec())).is_err());
    }

    #[test]
    fn only_a_grant_is_success() {
        assert_eq!(Outcome::Granted.code(), PAM_SUCCESS);
        for e in [
            Error::WrongPassword,
            Error::Invalid,
            Error::Expired,
            Error::NoPendingOtp,
            Error::LockedOut("x"),
            Error::IpNotAllowed("x"),
        ] {
            assert_eq!(judge("s", e).code(), PAM_AUTH_ERR);
        }
        for e in [
            Error::Backend("down".into()),
            Error::Audit("x"),
            Error::NotConfigured("x"),
            Error::QueueFull,
            Error::Timeout,
            Error::Internal("x"),
        ] {
            assert_eq!(judge("s", e).code(), PAM_AUTHINFO_UNAVAIL);
        }
    }
}
