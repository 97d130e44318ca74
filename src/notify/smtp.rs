//! The SMTP client: one session to a relay, every step of it inside one deadline.
//!
//! Owns the protocol (greeting, EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA, RSET, QUIT), the TLS
//! policy of each `tls=` level, and the bounds on what a server may send back. A session never
//! outlives its deadline however slowly the server trickles bytes (see `net::DeadlineStream`),
//! and never buffers more than [`MAX_REPLY_BYTES`] of one reply. It must never send AUTH over a
//! connection that is not encrypted and verified, never fall back to plaintext under
//! `tls=required` or `smtps://`, never read plaintext that a server pipelined after its
//! STARTTLS answer, and never log a password or a message body (an OTP email carries the code).

use std::io::{self, Read, Write};
use std::time::Instant;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::message::Outgoing;
use super::retry::{Cause, Failure};
use crate::config::{SmtpCredentials, SmtpTls};
use crate::net::{self, tls, DeadlineStream, Stream};
use crate::text::escape_controls;

/// The most bytes one server reply may take, all its lines together.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// The most bytes one reply line may take (RFC 5321 §4.5.3.1.5 allows 512).
const MAX_LINE_BYTES: usize = 4096;

/// Where a session goes and how it is secured.
pub struct Server<'a> {
    /// Host name or address literal.
    pub host: &'a str,
    /// TCP port.
    pub port: u16,
    /// The `tls=` level.
    pub tls: SmtpTls,
    /// Optional login.
    pub credentials: Option<&'a SmtpCredentials>,
}

/// A server's reply: its code and its first line, escaped for a log line.
#[derive(Debug)]
struct Reply {
    code: u16,
    text: String,
}

/// Why a step failed.
#[derive(Debug)]
enum SmtpError {
    /// The server answered with a 4xx or 5xx (or an unexpected) code; the connection is usable.
    Refused(&'static str, Reply),
    /// The connection failed, timed out or is out of step: it cannot be used again.
    Broken(Cause, String),
    /// Retrying cannot help: configuration or capability mismatch.
    Fatal(Cause, String),
    /// The TLS handshake itself failed (kept apart so opportunistic TLS can fall back).
    Handshake(String),
}

impl From<io::Error> for SmtpError {
    fn from(e: io::Error) -> Self {
        let cause = match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Cause::TimedOut,
            _ => Cause::Unreachable,
        };
        SmtpError::Broken(cause, e.to_string())
    }
}

impl SmtpError {
    fn failure(&self) -> Failure {
        match self {
            SmtpError::Refused(step, r) => {
                let why = format!("{step}: SMTP {} {}", r.code, r.text);
                if (400..500).contains(&r.code) {
                    Failure::Transient(Cause::Refused, why)
                } else {
                    Failure::Permanent(Cause::Refused, why)
                }
            }
            SmtpError::Broken(cause, why) => Failure::Transient(*cause, why.clone()),
            SmtpError::Fatal(cause, why) => Failure::Permanent(*cause, why.clone()),
            SmtpError::Handshake(why) => Failure::Permanent(Cause::Unreachable, why.clone()),
        }
    }
}

#[derive(Default)]
struct Extensions {
    starttls: bool,
    auth_plain: bool,
    auth_login: bool,
    eight_bit: bool,
    smtputf8: bool,
}

/// An open SMTP connection, greeted and past EHLO (and STARTTLS and AUTH where they apply).
pub struct Session {
    stream: Stream,
    /// Bytes read but not yet consumed by a reply.
    pending: Vec<u8>,
    ext: Extensions,
    /// The server's certificate chained to a trusted root and named the host.
    verified: bool,
}

impl Session {
    /// Opens a session to `server` within `deadline`. Under `tls=opportunistic` a failed
    /// STARTTLS handshake is retried once over a fresh connection in plaintext.
    pub fn open(server: &Server<'_>, deadline: Instant) -> Result<Session, Failure> {
        match Session::open_once(server, deadline, true) {
            Err(SmtpError::Handshake(why)) if server.tls == SmtpTls::Opportunistic => {
                log::warn!(
                    "SMTP {}:{}: STARTTLS handshake failed ({why}); sending in plaintext \
                     (tls=opportunistic)",
                    server.host,
                    server.port
                );
                Session::open_once(server, deadline, false).map_err(|e| e.failure())
            }
            other => other.map_err(|e| e.failure()),
        }
    }

    fn open_once(
        server: &Server<'_>,
        deadline: Instant,
        try_starttls: bool,
    ) -> Result<Session, SmtpError> {
        let addrs = net::resolve(server.host, server.port, deadline)?;
        let tcp = DeadlineStream::connect(&addrs, deadline)?;
        let (stream, verified) = if server.tls == SmtpTls::Implicit {
            let tls = tls::handshake(tcp, server.host, tls::Verify::Full)
                .map_err(|e| SmtpError::Fatal(Cause::Unreachable, e.to_string()))?;
            (tls, true)
        } else {
            (Stream::Plain(tcp), false)
        };
        let mut s = Session {
            stream,
            pending: Vec::new(),
            ext: Extensions::default(),
            verified,
        };
        s.expect("greeting", &[220])?;
        s.ehlo()?;
        match server.tls {
            SmtpTls::Implicit => {}
            SmtpTls::Required => {
                if !s.ext.starttls {
                    return Err(SmtpError::Fatal(
                        Cause::Unreachable,
                        "the server does not offer STARTTLS (tls=required)".into(),
                    ));
                }
                s = s
                    .starttls(server.host, tls::Verify::Full)
                    .map_err(|e| match e {
                        SmtpError::Handshake(why) => SmtpError::Fatal(Cause::Unreachable, why),
                        other => other,
                    })?;
            }
            SmtpTls::Opportunistic if try_starttls && s.ext.starttls => {
                s = s.starttls(server.host, tls::Verify::Nothing)?;
                log::info!(
                    "SMTP {}:{}: encrypted by STARTTLS, certificate not verified \
                     (tls=opportunistic protects against passive listeners only)",
                    server.host,
                    server.port
                );
            }
            SmtpTls::Opportunistic => {}
        }
        if let Some(c) = server.credentials {
            s.auth(c)?;
        }
        Ok(s)
    }

    /// Sends one message; on a refusal the session is reset and stays usable.
    pub fn send(&mut self, mail: &Outgoing) -> Result<(), (Failure, bool)> {
        match self.transaction(mail) {
            Ok(()) => Ok(()),
            Err(e @ (SmtpError::Refused(..) | SmtpError::Fatal(..))) => {
                let usable = self.command("RSET", &[250]).is_ok();
                Err((e.failure(), usable))
            }
            Err(e) => Err((e.failure(), false)),
        }
    }

    /// Says goodbye; the answer does not matter any more.
    pub fn quit(mut self) {
        let _ = self.command("QUIT", &[221]);
        self.stream.shutdown();
    }

    fn transaction(&mut self, mail: &Outgoing) -> Result<(), SmtpError> {
        let from = mail.envelope.from().map_or("", AsRef::<str>::as_ref);
        let to = mail.envelope.to();
        let utf8_addresses =
            !from.is_ascii() || to.iter().any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        let eight_bit = !mail.bytes.is_ascii();
        if utf8_addresses && !self.ext.smtputf8 {
            return Err(SmtpError::Fatal(
                Cause::Unreachable,
                "the address needs SMTPUTF8, which the server does not offer".into(),
            ));
        }
        if eight_bit && !(self.ext.eight_bit || self.ext.smtputf8) {
            return Err(SmtpError::Fatal(
                Cause::Unreachable,
                "the message needs 8BITMIME, which the server does not offer".into(),
            ));
        }
        let mut mail_from = format!("MAIL FROM:<{from}>");
        if eight_bit {
            mail_from.push_str(" BODY=8BITMIME");
        }
        if utf8_addresses {
            mail_from.push_str(" SMTPUTF8");
        }
        self.command(&mail_from, &[250])?;
        for rcpt in to {
            self.command(
                &format!("RCPT TO:<{}>", AsRef::<str>::as_ref(rcpt)),
                &[250, 251],
            )?;
        }
        self.command("DATA", &[354])?;
        // Body and end marker in one write: with the marker alone in a second segment the
        // server's reply would wait on its delayed ACK.
        self.stream.write_all(&dot_stuff(&mail.bytes))?;
        self.expect("end of data", &[250])
    }

    fn ehlo(&mut self) -> Result<(), SmtpError> {
        self.send_line(&format!("EHLO {}", hello_name()))?;
        let lines = self.read_reply()?;
        let code = lines.0;
        if code != 250 {
            return Err(SmtpError::Refused("EHLO", lines.reply()));
        }
        let mut ext = Extensions::default();
        // The first line is the server's name; the rest are keywords with parameters.
        for line in lines.1.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "STARTTLS" => ext.starttls = true,
                "8BITMIME" => ext.eight_bit = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "AUTH" => {
                    for m in words {
                        match m.to_ascii_uppercase().as_str() {
                            "PLAIN" => ext.auth_plain = true,
                            "LOGIN" => ext.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        self.ext = ext;
        Ok(())
    }

    fn starttls(mut self, host: &str, verify: tls::Verify) -> Result<Session, SmtpError> {
        self.command("STARTTLS", &[220])?;
        if !self.pending.is_empty() {
            // Bytes the server sent after its 220 would be read as if they had come over TLS.
            return Err(SmtpError::Broken(
                Cause::Refused,
                "the server sent data after its STARTTLS answer".into(),
            ));
        }
        let Stream::Plain(tcp) = self.stream else {
            return Err(SmtpError::Broken(
                Cause::Refused,
                "STARTTLS on an encrypted connection".into(),
            ));
        };
        let stream =
            tls::handshake(tcp, host, verify).map_err(|e| SmtpError::Handshake(e.to_string()))?;
        let mut s = Session {
            stream,
            pending: Vec::new(),
            ext: Extensions::default(),
            verified: verify == tls::Verify::Full,
        };
        // RFC 3207 §4.2: forget what the server said before TLS and ask again.
        s.ehlo()?;
        Ok(s)
    }

    fn auth(&mut self, c: &SmtpCredentials) -> Result<(), SmtpError> {
        if !(self.stream.is_tls() && self.verified) {
            return Err(SmtpError::Fatal(
                Cause::Unreachable,
                "refusing to send the SMTP password over a connection that is not encrypted \
                 with a verified certificate"
                    .into(),
            ));
        }
        let b64 =
            |bytes: &[u8]| Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes));
        let refused = |e: SmtpError| match e {
            // The server's text can echo what it was sent; keep only the code.
            SmtpError::Refused(_, r) => {
                SmtpError::Fatal(Cause::Refused, format!("SMTP login refused: {}", r.code))
            }
            other => other,
        };
        if self.ext.auth_plain {
            let mut token = Zeroizing::new(Vec::new());
            token.push(0);
            token.extend_from_slice(c.user.as_bytes());
            token.push(0);
            token.extend_from_slice(c.password.expose().as_bytes());
            let line = Zeroizing::new(format!("AUTH PLAIN {}", b64(&token).as_str()));
            self.command_secret(&line, &[235]).map_err(refused)
        } else if self.ext.auth_login {
            self.command("AUTH LOGIN", &[334]).map_err(refused)?;
            self.command_secret(&b64(c.user.as_bytes()), &[334])
                .map_err(refused)?;
            self.command_secret(&b64(c.password.expose().as_bytes()), &[235])
                .map_err(refused)
        } else {
            Err(SmtpError::Fatal(
                Cause::Unreachable,
                "the server offers no AUTH mechanism this library speaks (PLAIN, LOGIN)".into(),
            ))
        }
    }

    fn command(&mut self, line: &str, ok: &[u16]) -> Result<(), SmtpError> {
        self.send_line(line)?;
        let step = line.split(' ').next().unwrap_or("command");
        self.expect(step_name(step), ok)
    }

    /// A command whose text is a secret: the same, but the step is named "AUTH" in errors.
    fn command_secret(&mut self, line: &str, ok: &[u16]) -> Result<(), SmtpError> {
        self.send_line(line)?;
        self.expect("AUTH", ok)
    }

    fn send_line(&mut self, line: &str) -> Result<(), SmtpError> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(line.len() + 2));
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.stream.write_all(&bytes)?;
        Ok(())
    }

    fn expect(&mut self, step: &'static str, ok: &[u16]) -> Result<(), SmtpError> {
        let lines = self.read_reply()?;
        if ok.contains(&lines.0) {
            Ok(())
        } else {
            Err(SmtpError::Refused(step, lines.reply()))
        }
    }

    /// Reads one whole reply (all its lines), at most [`MAX_REPLY_BYTES`].
    fn read_reply(&mut self) -> Result<Lines, SmtpError> {
        let mut code = None;
        let mut lines = Vec::new();
        let mut taken = 0usize;
        loop {
            let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
                if self.pending.len() > MAX_LINE_BYTES {
                    return Err(SmtpError::Broken(
                        Cause::Refused,
                        "SMTP reply line too long".into(),
                    ));
                }
                let mut chunk = [0u8; 1024];
                let n = self.stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(SmtpError::Broken(
                        Cause::Unreachable,
                        "the server closed the connection".into(),
                    ));
                }
                self.pending.extend_from_slice(&chunk[..n]);
                continue;
            };
            let raw: Vec<u8> = self.pending.drain(..=end).collect();
            taken += raw.len();
            if taken > MAX_REPLY_BYTES || raw.len() > MAX_LINE_BYTES {
                return Err(SmtpError::Broken(
                    Cause::Refused,
                    "SMTP reply too large".into(),
                ));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let (this, more, text) = parse_line(line)
                .ok_or_else(|| SmtpError::Broken(Cause::Refused, "malformed SMTP reply".into()))?;
            if *code.get_or_insert(this) != this {
                return Err(SmtpError::Broken(
                    Cause::Refused,
                    "malformed SMTP reply".into(),
                ));
            }
            lines.push(text.to_owned());
            if !more {
                return Ok(Lines(this, lines));
            }
        }
    }
}

struct Lines(u16, Vec<String>);

impl Lines {
    fn reply(&self) -> Reply {
        let first = self.1.first().map_or("", String::as_str);
        let text: String = escape_controls(first).chars().take(200).collect();
        Reply { code: self.0, text }
    }
}

fn step_name(command: &str) -> &'static str {
    match command {
        "MAIL" => "MAIL FROM",
        "RCPT" => "RCPT TO",
        "DATA" => "DATA",
        "RSET" => "RSET",
        "QUIT" => "QUIT",
        "STARTTLS" => "STARTTLS",
        "AUTH" => "AUTH",
        _ => "command",
    }
}

/// `250-text` / `250 text` / `250`: the code, whether more lines follow, and the text.
fn parse_line(line: &str) -> Option<(u16, bool, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&code.as_bytes()[0]) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, false, "")),
        Some(b'-') => Some((code, true, &line[4..])),
        Some(b' ') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

/// The name this host gives in EHLO: its host name when that is a plausible domain, otherwise
/// a placeholder (a host name with odd characters would make a malformed command).
fn hello_name() -> String {
    let name = crate::sys::hostname();
    let plausible = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if plausible {
        name
    } else {
        "localhost".to_owned()
    }
}

/// The body with every line that starts with `.` doubled (RFC 5321 §4.5.2), followed by the
/// end-of-data marker. Wiped on drop: an OTP email carries the code.
fn dot_stuff(body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 8));
    let mut line_start = true;
    for &b in body {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(
            &dot_stuff(b"a\r\n.b\r\n..c\r\nd.e")[..],
            b"a\r\n..b\r\n...c\r\nd.e\r\n.\r\n"
        );
        assert_eq!(&dot_stuff(b".\r\n")[..], b"..\r\n.\r\n");
        assert_eq!(&dot_stuff(b"x\r\n")[..], b"x\r\n.\r\n");
    }

    #[test]
    fn reply_lines_parse() {
        assert_eq!(
            parse_line("250-mx.example"),
            Some((250, true, "mx.example"))
        );
        assert_eq!(parse_line("250 OK"), Some((250, false, "OK")));
        assert_eq!(parse_line("221"), Some((221, false, "")));
        for bad in ["", "25", "abc ok", "250x", "650 no", "099 no"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }
}
