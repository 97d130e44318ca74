//! Email delivery over SMTP, to a file outbox, or through sendmail.
//!
//! Owns the choice of transport, the retries of transient failures, and the overall bound of
//! each attempt: one SMTP session (lookup, connect, TLS, AUTH, every message) or one sendmail
//! run ends within `delivery_timeout_ms`, however slowly the peer answers. It must never log a
//! password or a message body (an OTP email carries the code), nor retry a permanent (5xx)
//! refusal.

use std::time::{Duration, Instant};

use super::message::Outgoing;
use super::retry::{self, Cause, Failure};
use super::sendmail;
use super::smtp::{Server, Session};
use crate::config::Mailer;

/// Delivers every message; the result for each is at the same index.
pub fn deliver(mailer: &Mailer, timeout: Duration, mails: &[Outgoing]) -> Vec<Result<(), Failure>> {
    match mailer {
        Mailer::Smtp {
            host,
            port,
            tls,
            credentials,
        } => {
            let server = Server {
                host,
                port: *port,
                tls: *tls,
                credentials: credentials.as_ref(),
            };
            with_retries(&format!("{host}:{port}"), mails, |todo| {
                session(&server, Instant::now() + timeout, mails, todo)
            })
        }
        Mailer::File(dir) => mails
            .iter()
            .map(|m| {
                write_to_outbox(dir, &m.bytes).map_err(|e| {
                    Failure::Permanent(
                        Cause::Unreachable,
                        format!("cannot write to the outbox: {e}"),
                    )
                })
            })
            .collect(),
        Mailer::Sendmail(path) => with_retries("sendmail", mails, |todo| {
            todo.iter()
                .map(|&i| sendmail::deliver(path.as_deref(), &mails[i], Instant::now() + timeout))
                .collect()
        }),
    }
}

/// Writes one message as `<random>.eml` in `dir`: created 0600 (a code email carries a live
/// code), never over an existing file or through a symlink.
fn write_to_outbox(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(format!("{}.eml", super::event_id::new()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    f.write_all(bytes)?;
    f.flush()
}

/// [`retry::with_retries`] over `mails`, logging each failure that will be tried again.
fn with_retries(
    peer: &str,
    mails: &[Outgoing],
    attempt: impl FnMut(&[usize]) -> Vec<Result<(), Failure>>,
) -> Vec<Result<(), Failure>> {
    retry::with_retries(mails.len(), attempt, |i, n, f| {
        log::warn!(
            "mail to {} via {peer}, attempt {n} of {}: {}",
            mails[i].to.email,
            retry::ATTEMPTS,
            f.reason()
        )
    })
}

/// One SMTP session by `deadline`: sends `todo` over one connection, reconnecting only when
/// the server dropped it after a refusal.
fn session(
    server: &Server<'_>,
    deadline: Instant,
    mails: &[Outgoing],
    todo: &[usize],
) -> Vec<Result<(), Failure>> {
    let mut out = Vec::with_capacity(todo.len());
    let mut conn: Option<Session> = None;
    for &i in todo {
        let mut s = match conn.take() {
            Some(s) => s,
            None => match Session::open(server, deadline) {
                Ok(s) => s,
                Err(f) => {
                    out.resize(todo.len(), Err(f));
                    return out;
                }
            },
        };
        match s.send(&mails[i]) {
            Ok(()) => {
                out.push(Ok(()));
                conn = Some(s);
            }
            Err((f, usable)) => {
                out.push(Err(f));
                if usable {
                    conn = Some(s);
                }
            }
        }
    }
    if let Some(s) = conn {
        s.quit();
    }
    out
}
