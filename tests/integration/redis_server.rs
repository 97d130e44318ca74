//! A redis-server of the test's own on a loopback port (the shared-store tests).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A redis-server of the test's own on a loopback port, stopped on drop, and after 300 s in
/// any case (a crashed test leaves nothing running for long).
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    pub fn start() -> Option<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        // `timeout` bounds its life if the test itself dies without dropping it.
        let child = Command::new("timeout")
            .args(["300", "redis-server", "--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let s = Server { child, port };
        for _ in 0..200 {
            if s.command("PING").is_some_and(|r| r == "+PONG") {
                return Some(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// One inline command; the reply's first line, or a bulk string's text.
    pub fn command(&self, line: &str) -> Option<String> {
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        c.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut r = BufReader::new(c);
        let mut out = String::new();
        r.read_line(&mut out).ok()?;
        if out.starts_with('$') && !out.starts_with("$-1") {
            out.clear();
            r.read_line(&mut out).ok()?;
        }
        Some(out.trim_end().to_owned())
    }

    pub fn connections_received(&self) -> u64 {
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        c.write_all(b"INFO stats\r\n").unwrap();
        let mut r = BufReader::new(c);
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.strip_prefix("total_connections_received:") {
                return v.trim().parse().unwrap();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM, which `timeout` passes on to redis-server (a SIGKILL would orphan it).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

pub fn redis() -> Server {
    Server::start().expect("redis-server is required for these tests (.ci/deps.sh installs it)")
}
