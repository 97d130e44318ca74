//! A real HTTP server on 127.0.0.1 for the receiver and drill tests: records every request
//! and answers from a script. It stops by itself (a lifetime bound) or when dropped, and then
//! closes every connection it was holding, so a crashed test leaves nothing running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// What the server does with the n-th request (0-based).
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status with this body.
    Status(u16, &'static str),
    /// Read the request, never answer (until the server stops).
    Hang,
}

type Script = Box<dyn Fn(usize) -> Answer + Send + Sync>;

pub struct HookServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<(Mutex<Vec<Request>>, Condvar)>,
}

const LIFETIME: Duration = Duration::from_secs(120);

impl HookServer {
    /// A server answering every request with `answer`.
    pub fn always(answer: Answer) -> HookServer {
        Self::scripted(move |_| answer.clone())
    }

    /// A server answering the n-th request with `script(n)`.
    pub fn scripted(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<(Mutex<Vec<Request>>, Condvar)> = Arc::default();
        let script: Arc<Script> = Arc::new(Box::new(script));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let born = Instant::now();
            while !stop2.load(Ordering::SeqCst) && born.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (stop, seen, script) = (stop2.clone(), seen2.clone(), script.clone());
                        std::thread::spawn(move || serve(conn, &stop, &seen, &script));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            stop2.store(true, Ordering::SeqCst);
        });
        HookServer { port, stop, seen }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.0.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (true) or `timeout` passed (false).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.0.lock().unwrap();
        while seen.len() < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            seen = self.seen.1.wait_timeout(seen, left).unwrap().0;
        }
        true
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    conn: TcpStream,
    stop: &AtomicBool,
    seen: &(Mutex<Vec<Request>>, Condvar),
    script: &Script,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let n = {
        let mut list = seen.0.lock().unwrap();
        list.push(Request {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        seen.1.notify_all();
        list.len() - 1
    };
    let mut conn = conn;
    match script(n) {
        Answer::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Answer::Status(status, text) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{text}",
                text.len()
            );
        }
    }
}
