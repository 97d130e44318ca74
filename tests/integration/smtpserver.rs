//! The project's aiosmtpd test server (`tests/servers/bgserve.py`) as a child process: its
//! SMTP port and the mails it took. Python comes from `BG_TEST_PYTHON` (set by the Makefile),
//! else the venv `make deps` builds; without either the caller skips and says so. The server
//! ends when its stdin closes (on drop) or after its lifetime.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    mails: Arc<(Mutex<Vec<Value>>, Condvar)>,
}

fn python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build/venv/bin/python");
    std::env::var_os("BG_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| venv.exists().then_some(venv))
}

impl SmtpServer {
    /// Starts `bgserve.py --smtp <mode>`, or `None` when no Python with aiosmtpd is known.
    pub fn start(mode: &str) -> Option<SmtpServer> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/servers/bgserve.py");
        let mut child = Command::new(python()?)
            .arg(script)
            .args(["--smtp", mode, "--http", "ok", "--lifetime", "90"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next()?.ok()?).ok()?;
        let port = first["smtp_port"].as_u64()? as u16;
        let mails: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let sink = mails.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["kind"] == "mail" {
                        sink.0.lock().unwrap().push(v);
                        sink.1.notify_all();
                    }
                }
            }
        });
        Some(SmtpServer { port, child, mails })
    }

    /// The `mailer` value for it (plaintext to loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=opportunistic", self.port)
    }

    /// Waits for `n` mails; returns them (fewer when `timeout` passed first).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut got = self.mails.0.lock().unwrap();
        while got.len() < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            got = self.mails.1.wait_timeout(got, left).unwrap().0;
        }
        got.clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // bgserve.py exits when its stdin closes
        let _ = self.child.wait();
    }
}
