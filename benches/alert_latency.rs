//! Time from `bg_login_complete` returning to the alert reaching a local webhook (p50/p99),
//! next to a bare ureq POST to the same server, made right after a password check as the
//! alarm is (and, for reference, in a tight loop): what the queue, the worker hand-off and the
//! body's rendering and signature add to the alarm's path.
//!
//! `cargo bench --bench alert_latency` (run by `make bench`, release); `-- --smoke` runs a
//! few rounds only, to show it builds and works. The server records when each request's body
//! has arrived; a login's code is read back from the file outbox, outside the timing.

use std::ffi::{c_char, CString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use breakglass::ffi::bg_status::BG_OK;
use breakglass::ffi::login::{bg_login_begin, bg_login_complete};

/// Starts an HTTP server that answers 200 and sends the arrival time of each request.
fn server() -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_ok() {
                    let _ = tx.send(Instant::now());
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    (port, rx)
}

fn configure(key: &str, value: &str) {
    let (k, v) = (CString::new(key).unwrap(), CString::new(value).unwrap());
    let st = unsafe { breakglass::ffi::settings::bg_configure(k.as_ptr(), v.as_ptr()) };
    assert_eq!(st, BG_OK, "{key}");
}

/// The code in the newest one-time-code email of `outbox`, then empties it.
fn read_code(outbox: &Path) -> String {
    for _ in 0..500 {
        for entry in std::fs::read_dir(outbox).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(at) = text.find("one-time code is: ") {
                let code = text[at + 18..at + 24].to_owned();
                std::fs::remove_file(&path).unwrap();
                return code;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no code email in {}", outbox.display());
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let rounds = if smoke { 3 } else { 200 };
    let (port, arrivals) = server();
    let url = format!("http://127.0.0.1:{port}/hook");
    let outbox = std::env::temp_dir().join(format!("bg-bench-outbox-{}", std::process::id()));
    std::fs::create_dir_all(&outbox).unwrap();

    let hash = breakglass::login::hash_password(b"bench password").unwrap();
    configure("password_hash", &hash);
    configure("allowed_ips", "127.0.0.1");
    configure("mailer", &format!("file://{}", outbox.display()));
    configure("from_email", "bg@example.com");
    configure("otp_email", "oncall@example.com");
    configure("alert_webhook_url", &url);
    configure("alert_webhook_secret", "bench-secret");

    let ip = c"127.0.0.1";
    let password = c"bench password";
    let mut via_library = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        assert_eq!(
            unsafe { bg_login_begin(ip.as_ptr(), password.as_ptr()) },
            BG_OK
        );
        let code = CString::new(read_code(&outbox)).unwrap();
        let mut token = [0 as c_char; 64];
        let st = unsafe {
            bg_login_complete(ip.as_ptr(), code.as_ptr(), token.as_mut_ptr(), token.len())
        };
        let returned = Instant::now();
        assert_eq!(st, BG_OK);
        let arrived = arrivals.recv_timeout(Duration::from_secs(30)).unwrap();
        via_library.push(arrived.saturating_duration_since(returned));
    }

    // What a caller would write instead: a POST on the calling thread (the caller waits).
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .max_redirects(0)
        .proxy(None)
        .build()
        .into();
    let body = r#"{"id":"00000000000000000000000000000000","event":"break_glass_login","ip":"127.0.0.1","timestamp":"2026-01-01T00:00:00Z","severity":"critical","message":"Break-glass login from 127.0.0.1"}"#;
    let post = || {
        let start = Instant::now();
        agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        let arrived = arrivals.recv_timeout(Duration::from_secs(30)).unwrap();
        arrived.saturating_duration_since(start)
    };
    // Like for like: each POST right after a password check of the configured cost, as the
    // library's alarm always comes right after one. A memory-hard hash (argon2id, 19 MiB)
    // evicts the CPU's caches, and what runs next runs cold: in a tight loop the same POST
    // takes about half as long, which is what an earlier version of this bench compared with.
    let mut after_check = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        breakglass::login::hash_password(b"bench password").unwrap();
        after_check.push(post());
    }
    let tight: Vec<Duration> = (0..rounds).map(|_| post()).collect();
    let _ = std::fs::remove_dir_all(&outbox);

    for (name, mut samples) in [
        ("alert_after_login", via_library),
        ("bare_post_after_check", after_check),
        ("bare_post_tight_loop", tight),
    ] {
        samples.sort_unstable();
        println!(
            "{name}_p50 {:.1} us",
            percentile(&samples, 0.50).as_secs_f64() * 1e6
        );
        println!(
            "{name}_p99 {:.1} us",
            percentile(&samples, 0.99).as_secs_f64() * 1e6
        );
    }
    println!("alert_latency_rounds {rounds} n");
}
