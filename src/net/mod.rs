//! Network plumbing shared by the SMTP client and the shared slot's Redis client.
//!
//! Owns the one rule both peers need: a whole session (name lookup, connect, TLS handshake,
//! every read and every write) ends by one deadline, however slowly the peer trickles bytes.
//! It must never block past a deadline it was given, and never log what crosses the wire.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod deadline;
pub mod tls;

pub use deadline::DeadlineStream;

/// What is left until `deadline`; `None` once it has passed.
pub fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// The error every deadline overrun reports.
pub fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// Resolves `host` on a helper thread so that a hung resolver cannot outlast `deadline`; an
/// address literal needs no lookup.
pub fn resolve(host: &str, port: u16, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let left = remaining(deadline).ok_or_else(|| timed_out("name lookup"))?;
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
        })?;
    match rx.recv_timeout(left) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve {host}"),
        )),
        Err(_) => Err(timed_out(&format!("name lookup for {host}"))),
    }
}

/// A connection that is plain or TLS, with one deadline over everything it does.
pub enum Stream {
    /// Plain TCP.
    Plain(DeadlineStream),
    /// TLS over TCP (boxed: the TLS state is large).
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, DeadlineStream>>),
}

impl Stream {
    /// The TCP layer underneath.
    pub fn tcp(&self) -> &DeadlineStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    /// Moves the deadline of everything from now on.
    pub fn set_deadline(&mut self, deadline: Instant) {
        match self {
            Stream::Plain(s) => s.set_deadline(deadline),
            Stream::Tls(s) => s.get_mut().set_deadline(deadline),
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Closes both directions at once; what is buffered is lost.
    pub fn shutdown(&self) {
        let _ = self.tcp().shutdown();
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
