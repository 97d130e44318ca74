//! One connection to the shared slot's server: connect, TLS, `AUTH`/`SELECT`, then one command
//! and its reply at a time.
//!
//! Owns the session set-up and the rule that everything on a connection (name lookup, connect,
//! handshake, every write and every read) ends by the deadline of the operation using it. It
//! must never send the password anywhere but in `AUTH`, never put it or a reply's content into
//! an error, and never write on a connection opened by another process (see `pool`).

use std::fmt;
use std::io::{self, Write};
use std::time::Instant;

use super::pool as redis_pool;
use super::resp::{self, Reply, ReplyReader, WireError};
use crate::config::SlotTarget;
use crate::net::{self, tls, DeadlineStream, Stream};

/// Which server (and login and database) a connection was opened for: the SHA-256 of the URL,
/// so that the pool never holds another copy of a password.
pub type TargetId = [u8; 32];

/// Why an exchange with the server failed. Shows neither credentials nor a code.
#[derive(Debug)]
pub enum SessionError {
    /// Name lookup, connect or TLS failed (a timeout included).
    Connect(io::Error),
    /// Writing a command or reading its reply failed.
    Wire(WireError),
    /// The server answered a command with an error.
    Refused {
        /// The command, as a name.
        command: &'static str,
        /// The server's text, cleaned for a log line.
        text: String,
    },
    /// A reply of the wrong shape, or a number out of its plausible range.
    Unexpected(&'static str),
    /// `WAIT` reported fewer replicas than required.
    Shortfall {
        /// Replicas that acknowledged.
        acked: i64,
        /// Replicas required.
        wanted: u32,
    },
}

impl SessionError {
    /// The server refused `command` with `text`.
    pub fn refused(command: &'static str, text: &str) -> Self {
        SessionError::Refused {
            command,
            text: clean(text),
        }
    }

    /// Whether the peer had closed or reset the connection (an idle pooled one, typically).
    /// Only then may an operation that is safe to repeat try a new connection.
    pub fn is_dead_connection(&self) -> bool {
        match self {
            SessionError::Wire(WireError::Closed) => true,
            SessionError::Wire(WireError::Io(e)) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Connect(e) if e.kind() == io::ErrorKind::TimedOut => {
                f.write_str("timed out")
            }
            SessionError::Connect(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                f.write_str("connection refused")
            }
            SessionError::Connect(e) => write!(f, "{e}"),
            SessionError::Wire(e) => write!(f, "{e}"),
            SessionError::Refused { command, text } => write!(f, "{command} refused: {text}"),
            SessionError::Unexpected(what) => f.write_str(what),
            SessionError::Shortfall { acked, wanted } => {
                write!(f, "{acked} of {wanted} replicas acknowledged")
            }
        }
    }
}

impl From<WireError> for SessionError {
    fn from(e: WireError) -> Self {
        SessionError::Wire(e)
    }
}

/// A server's error text as a log line may carry it: printable ASCII, 160 characters at most,
/// and no run of six or more digits (so that not even a server quoting an argument can put a
/// code into a log).
fn clean(text: &str) -> String {
    let mut out = String::new();
    let mut digits = 0;
    for c in text.chars().take(160) {
        let c = if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        };
        digits = if c.is_ascii_digit() { digits + 1 } else { 0 };
        out.push(c);
        if digits == 6 {
            out.truncate(out.len() - 6);
            out.push_str("******");
        } else if digits > 6 {
            out.pop();
            out.push('*');
        }
    }
    out
}

/// A logged-in connection.
pub struct RedisConn {
    wire: ReplyReader<Stream>,
    /// The process that opened it: a forked child must not touch its parent's connections.
    pub owner: redis_pool::Owner,
    /// What it was opened for.
    pub target: TargetId,
    /// When it last went idle (set by the pool).
    pub idle_since: Instant,
}

impl RedisConn {
    /// Connects to `target` and logs in, all within `deadline`.
    pub fn open(
        target: &SlotTarget,
        id: TargetId,
        deadline: Instant,
    ) -> Result<RedisConn, SessionError> {
        let addrs =
            net::resolve(&target.host, target.port, deadline).map_err(SessionError::Connect)?;
        let tcp = DeadlineStream::connect(&addrs, deadline).map_err(SessionError::Connect)?;
        let stream = if target.tls {
            tls::handshake(tcp, &target.host, tls::Verify::Full).map_err(SessionError::Connect)?
        } else {
            Stream::Plain(tcp)
        };
        let mut conn = RedisConn {
            wire: ReplyReader::new(stream),
            owner: redis_pool::Owner::this_process(),
            target: id,
            idle_since: Instant::now(),
        };
        if let Some(password) = &target.password {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            auth.extend(target.user.as_deref().map(Vec::as_slice));
            auth.push(password);
            conn.expect_ok("AUTH", &auth)?;
        }
        if target.db != 0 {
            let db = target.db.to_string();
            conn.expect_ok("SELECT", &[b"SELECT", db.as_bytes()])?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply (an error reply is a reply, not an `Err`).
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Reply, SessionError> {
        self.call_within(args, resp::MAX_REPLY_BYTES)
    }

    /// [`call`](Self::call), allowing a reply of up to `limit` bytes.
    pub fn call_within(&mut self, args: &[&[u8]], limit: usize) -> Result<Reply, SessionError> {
        let command = resp::encode(args);
        let stream = self.wire.get_mut();
        stream
            .write_all(&command)
            .and_then(|()| stream.flush())
            .map_err(|e| SessionError::Wire(WireError::Io(e)))?;
        Ok(self.wire.read_reply_within(limit)?)
    }

    fn expect_ok(&mut self, command: &'static str, args: &[&[u8]]) -> Result<(), SessionError> {
        match self.call(args)? {
            Reply::Status(s) if s == "OK" => Ok(()),
            Reply::Error(text) => Err(SessionError::refused(command, &text)),
            _ => Err(SessionError::Unexpected(
                "unexpected reply to AUTH or SELECT",
            )),
        }
    }

    /// A connection over `stream`, logged in to nothing (the pool's tests).
    #[cfg(test)]
    pub fn over(stream: Stream, target: TargetId) -> RedisConn {
        RedisConn {
            wire: ReplyReader::new(stream),
            owner: redis_pool::Owner::this_process(),
            target,
            idle_since: Instant::now(),
        }
    }

    /// Gives everything from now on until `deadline`.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.wire.get_mut().set_deadline(deadline);
    }

    /// Whether the connection is in step and the server has sent nothing unasked since: only
    /// then may it carry another command.
    pub fn is_reusable(&self) -> bool {
        !self.wire.has_unread() && self.wire.get_ref().tcp().is_quiet()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_cleaned_for_logs() {
        assert_eq!(
            clean("NOPERM no permissions to run 'evalsha'"),
            "NOPERM no permissions to run 'evalsha'"
        );
        assert_eq!(clean("ERR bad 123456 here"), "ERR bad ****** here");
        assert_eq!(clean("x 12345678 y 12345"), "x ******** y 12345");
        assert_eq!(clean("a\r\nb\u{7}"), "a??b?");
        assert_eq!(clean(&"e".repeat(500)).len(), 160);
    }
}
