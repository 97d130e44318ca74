//! A TCP stream whose every read and write ends by one deadline.
//!
//! A socket timeout bounds each `read`, so a peer that sends one byte just inside it holds a
//! reader for ever; here each call is given only what is left of the whole session, and a call
//! after the deadline fails at once. It must never wait past the deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Instant;

use super::{remaining, timed_out};

/// TCP with a session deadline.
pub struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    /// Connects to the first of `addrs` that answers, within `deadline` overall.
    pub fn connect(addrs: &[SocketAddr], deadline: Instant) -> io::Result<DeadlineStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for addr in addrs {
            let left = remaining(deadline).ok_or_else(|| timed_out("connect"))?;
            match TcpStream::connect_timeout(addr, left) {
                Ok(tcp) => {
                    // Requests and replies are small and each is one write: Nagle's algorithm
                    // would only hold the last segment back for the peer's delayed ACK.
                    tcp.set_nodelay(true)?;
                    return Ok(DeadlineStream { tcp, deadline });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Moves the deadline for every call from now on.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Closes both directions.
    pub fn shutdown(&self) -> io::Result<()> {
        self.tcp.shutdown(Shutdown::Both)
    }

    /// Whether the peer has sent nothing since the last read: no data, no end of stream, no
    /// error. Looks without waiting, so an idle connection that the server has since closed is
    /// found out before a command is sent on it.
    pub fn is_quiet(&self) -> bool {
        if self.tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let quiet = matches!(self.tcp.peek(&mut [0u8; 1]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.tcp.set_nonblocking(false).is_ok() && quiet
    }
}

// A socket timeout that expires shows up as WouldBlock (EAGAIN); callers see TimedOut.
fn map_timeout(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        timed_out("network I/O")
    } else {
        e
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = remaining(self.deadline).ok_or_else(|| timed_out("read"))?;
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.read(buf).map_err(map_timeout)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = remaining(self.deadline).ok_or_else(|| timed_out("write"))?;
        self.tcp.set_write_timeout(Some(left))?;
        self.tcp.write(buf).map_err(map_timeout)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    #[test]
    fn a_trickling_peer_cannot_outlast_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // One byte every 50 ms for up to 3 s: each read is well inside any per-read timeout.
            for _ in 0..60 {
                if s.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let start = Instant::now();
        let mut s = DeadlineStream::connect(&[addr], start + Duration::from_millis(400)).unwrap();
        let mut got = 0;
        let mut byte = [0u8; 1];
        let err = loop {
            match s.read(&mut byte) {
                Ok(0) => panic!("peer closed before the deadline"),
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // The peer had 60 bytes to trickle; the read gave up while it was still sending.
        assert!((1..60).contains(&got), "read {got} bytes");
        drop(s);
        peer.join().unwrap();
    }
}
