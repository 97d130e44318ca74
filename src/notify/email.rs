//! Email delivery over SMTP, to a file outbox, or through sendmail.
//!
//! Owns the SMTP session: name resolution with its own deadline, STARTTLS or implicit TLS
//! through rustls, one connection reused for all messages of a job, each recipient's result
//! taken separately, and retries of the transient failures. It must never log a password, a
//! message body (an OTP email carries the code), or retry a permanent (5xx) refusal.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::Error as SmtpError;
use lettre::{FileTransport, SendmailTransport, Transport};

use super::message::Outgoing;
use super::retry::{self, Failure};
use crate::config::{Mailer, SmtpCredentials, SmtpTls};

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
            deliver_smtp(&server, timeout, mails)
        }
        Mailer::File(dir) => {
            let outbox = FileTransport::new(dir);
            mails
                .iter()
                .map(|m| {
                    outbox
                        .send_raw(&m.envelope, &m.bytes)
                        .map(drop)
                        .map_err(|e| Failure::Permanent(format!("cannot write to the outbox: {e}")))
                })
                .collect()
        }
        Mailer::Sendmail(path) => {
            let sendmail = match path {
                Some(p) => SendmailTransport::new_with_command(p.as_os_str()),
                None => SendmailTransport::new(),
            };
            mails
                .iter()
                .map(|m| {
                    sendmail
                        .send_raw(&m.envelope, &m.bytes)
                        .map_err(|e| Failure::Transient(format!("sendmail failed: {e}")))
                })
                .collect()
        }
    }
}

struct Server<'a> {
    host: &'a str,
    port: u16,
    tls: SmtpTls,
    credentials: Option<&'a SmtpCredentials>,
}

fn deliver_smtp(
    server: &Server<'_>,
    timeout: Duration,
    mails: &[Outgoing],
) -> Vec<Result<(), Failure>> {
    let mut results: Vec<Option<Result<(), Failure>>> = mails.iter().map(|_| None).collect();
    for n in 0..retry::ATTEMPTS {
        let todo: Vec<usize> = (0..mails.len()).filter(|&i| results[i].is_none()).collect();
        if todo.is_empty() {
            break;
        }
        if n > 0 {
            std::thread::sleep(retry::backoff(n));
        }
        let last_attempt = n + 1 == retry::ATTEMPTS;
        let outcome = session(server, timeout, mails, &todo);
        for (i, r) in todo.into_iter().zip(outcome) {
            match r {
                Ok(()) => results[i] = Some(Ok(())),
                Err(f @ Failure::Permanent(_)) => results[i] = Some(Err(f)),
                Err(f) if last_attempt => results[i] = Some(Err(f)),
                Err(f) => log::warn!(
                    "mail to {} via {}:{}, attempt {} of {}: {}",
                    mails[i].to.email,
                    server.host,
                    server.port,
                    n + 1,
                    retry::ATTEMPTS,
                    f.reason()
                ),
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::Transient("not attempted".into()))))
        .collect()
}

/// One SMTP session, bounded by `timeout` overall: sends `todo` over one connection,
/// reconnecting only when the server dropped it after a refusal.
fn session(
    server: &Server<'_>,
    timeout: Duration,
    mails: &[Outgoing],
    todo: &[usize],
) -> Vec<Result<(), Failure>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(todo.len());
    let mut conn: Option<SmtpConnection> = None;
    for &i in todo {
        if conn.as_ref().is_none_or(SmtpConnection::has_broken) {
            match connect(server, deadline) {
                Ok(c) => conn = Some(c),
                Err(f) => {
                    out.resize(todo.len(), Err(f));
                    return out;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let Some(left) = remaining(deadline) else {
            out.resize(
                todo.len(),
                Err(Failure::Transient("SMTP session timed out".into())),
            );
            c.abort();
            return out;
        };
        let _ = c.set_timeout(Some(left));
        out.push(send_one(c, &mails[i]).map_err(classify));
    }
    if let Some(mut c) = conn {
        if !c.has_broken() {
            let _ = c.quit();
        }
    }
    out
}

/// One message over an open connection.
///
/// lettre's `SmtpConnection::send` writes the message and its final `.` in two writes; with
/// Nagle's algorithm on (lettre does not set TCP_NODELAY) the second waits for the server's
/// delayed ACK, about 40 ms a message, which made a 100-recipient alert take seconds. So an
/// ASCII message (what lettre's builder produces) goes out as one write: dot-stuffed body and
/// terminator together. Anything else (it needs SMTPUTF8 or 8BITMIME) takes lettre's own path.
fn send_one(conn: &mut SmtpConnection, mail: &Outgoing) -> Result<(), SmtpError> {
    let ascii_addresses = mail
        .envelope
        .to()
        .iter()
        .chain(mail.envelope.from())
        .all(|a| AsRef::<str>::as_ref(a).is_ascii());
    if !mail.bytes.is_ascii() || !ascii_addresses {
        return conn.send(&mail.envelope, &mail.bytes).map(drop);
    }
    let data = dot_stuff(&mail.bytes);
    let mut steps = || -> Result<(), SmtpError> {
        conn.command(Mail::new(mail.envelope.from().cloned(), vec![]))?;
        for to in mail.envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![]))?;
        }
        conn.command(Data)?;
        conn.command(data.as_str())?;
        Ok(())
    };
    let result = steps();
    if result.is_err() {
        // As lettre does: after a refusal the connection is closed; the next message reconnects.
        conn.abort();
    }
    result
}

/// The body with every line that starts with `.` doubled (RFC 5321 §4.5.2), followed by the
/// end-of-data marker. Wiped on drop: an OTP email carries the code. `body` is ASCII.
fn dot_stuff(body: &[u8]) -> zeroize::Zeroizing<String> {
    let mut out = String::with_capacity(body.len() + 8);
    let mut line_start = true;
    for &b in body {
        if line_start && b == b'.' {
            out.push('.');
        }
        out.push(char::from(b));
        line_start = b == b'\n';
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    zeroize::Zeroizing::new(out)
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn classify(e: SmtpError) -> Failure {
    if e.is_permanent() || e.is_client() {
        Failure::Permanent(e.to_string())
    } else {
        Failure::Transient(e.to_string())
    }
}

fn connect(server: &Server<'_>, deadline: Instant) -> Result<SmtpConnection, Failure> {
    let addrs = resolve(server.host, server.port, deadline)?;
    let tls = || {
        TlsParameters::new(server.host.to_owned())
            .map_err(|e| Failure::Permanent(format!("TLS setup: {e}")))
    };
    let hello = ClientId::default();
    let left =
        remaining(deadline).ok_or_else(|| Failure::Transient("SMTP connect timed out".into()))?;
    let implicit = if server.tls == SmtpTls::Implicit {
        Some(tls()?)
    } else {
        None
    };
    let mut conn = SmtpConnection::connect(&addrs[..], Some(left), &hello, implicit.as_ref(), None)
        .map_err(classify)?;
    match server.tls {
        SmtpTls::Implicit => {}
        SmtpTls::Required if !conn.can_starttls() => {
            conn.abort();
            return Err(Failure::Permanent(
                "the server does not offer STARTTLS (tls=required)".into(),
            ));
        }
        SmtpTls::Required | SmtpTls::Opportunistic => {
            if conn.can_starttls() {
                conn.starttls(&tls()?, &hello).map_err(classify)?;
            }
        }
    }
    if let Some(c) = server.credentials {
        let creds = Credentials::new(c.user.clone(), c.password.expose().to_owned());
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
            .map_err(|e| {
                Failure::Permanent(format!(
                    "SMTP login refused: {}",
                    e.status().map_or(0, u16::from)
                ))
            })?;
    }
    Ok(conn)
}

/// Resolves on a helper thread so that a hung resolver cannot outlast the deadline; an address
/// literal needs no lookup.
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let left =
        remaining(deadline).ok_or_else(|| Failure::Transient("name lookup timed out".into()))?;
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("breakglass-dns".into())
        .spawn(move || {
            let _ = tx.send(
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect::<Vec<_>>),
            );
        })
        .map_err(|e| Failure::Transient(format!("cannot start a lookup: {e}")))?;
    match rx.recv_timeout(left) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(Failure::Transient(format!("cannot resolve {host}"))),
        Err(_) => Err(Failure::Transient(format!(
            "name lookup for {host} timed out"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::dot_stuff;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(
            dot_stuff(b"a\r\n.b\r\n..c\r\nd.e").as_str(),
            "a\r\n..b\r\n...c\r\nd.e\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b".\r\n").as_str(), "..\r\n.\r\n");
        assert_eq!(dot_stuff(b"x\r\n").as_str(), "x\r\n.\r\n");
    }
}
