//! The audit events' copy in the local syslog: RFC 5424 datagrams on a unix socket
//! (`syslog_socket`, `/dev/log` by default), facility authpriv as PAM modules use.
//!
//! One datagram per event:
//! `<PRI>1 TIMESTAMP HOSTNAME breakglass PROCID MSGID - MSG`, where PRI is authpriv (10) × 8 +
//! the severity, MSGID is the event name, the structured data is nil (`-`) and MSG is the
//! audit record's JSON line (without its newline), or the same fields without `seq`, `prev` and
//! `mac` when no audit file is kept or it could not be written. Severities: a granted login is
//! alert (1); library errors (a failed alert delivery, an audit write failure) are err (3);
//! refusals, failures, lockouts and the global limit are notice (5); the rest info (6).
//!
//! Sends are non-blocking on a fresh unbound socket each time (no lock, nothing for the fork
//! handlers): a full or absent receiver costs one failed system call, never a wait. It must
//! never block a login, and never log more than one line a second about its own failures
//! (each one is counted).

use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// authpriv, as a facility number.
pub const FACILITY_AUTHPRIV: u8 = 10;

/// RFC 5424 severities used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A granted break-glass login.
    Alert = 1,
    /// A library error.
    Err = 3,
    /// A refusal or failure.
    Notice = 5,
    /// Everything else.
    Info = 6,
}

/// Datagrams that could not be sent.
pub(super) static FAILED: super::failures::Failures = super::failures::Failures::new();

/// RFC 5424's PRINTUSASCII text of at most `max` characters; "-" when empty.
fn header_field(text: &str, max: usize) -> String {
    let t: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() {
        "-".to_owned()
    } else {
        t
    }
}

/// The whole datagram.
pub fn format(sev: Severity, time: &str, host: &str, pid: u32, event: &str, msg: &str) -> String {
    format!(
        "<{}>1 {} {} breakglass {} {} - {}",
        u16::from(FACILITY_AUTHPRIV) * 8 + sev as u16,
        header_field(time, 32),
        header_field(host, 255),
        pid,
        header_field(event, 32),
        msg
    )
}

/// Sends one datagram to `socket` without waiting; failures are counted and logged at most
/// once a second.
pub fn send(socket: &Path, datagram: &str) {
    let result = UnixDatagram::unbound().and_then(|s| {
        s.set_nonblocking(true)?;
        s.send_to(datagram.as_bytes(), socket)
    });
    if let Err(e) = result {
        if let Some(total) = FAILED.note() {
            log::error!(
                "audit: cannot send to syslog at {}: {e} ({total} failed since the library was \
                 loaded)",
                socket.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_rfc5424() {
        let d = format(
            Severity::Alert,
            "2026-12-03T08:00:00.000000Z",
            "web 1",
            42,
            "login_succeeded",
            "{}",
        );
        assert_eq!(
            d,
            "<81>1 2026-12-03T08:00:00.000000Z web1 breakglass 42 login_succeeded - {}"
        );
        assert!(format(Severity::Notice, "t", "", 1, "e", "m").starts_with("<85>1 t - "));
    }

    #[test]
    fn a_missing_receiver_is_counted_not_waited_for() {
        let before = FAILED.total();
        send(Path::new("/nonexistent/bg-syslog.sock"), "x");
        assert!(FAILED.total() > before);
    }
}
