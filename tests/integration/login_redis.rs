//! The login flow with its state in a real redis-server that the test starts on a loopback
//! port: the same flow as in-process, limits shared by every caller, exactly one winner among
//! racing logins, one connection reused across attempts, and an outage is a denial.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};

use breakglass::ffi::bg_status::{self, *};
use breakglass::ffi::login::*;

use super::{begin, complete, configure, serial};

/// A redis-server of the test's own on a loopback port, stopped on drop, and after 300 s in
/// any case (a crashed test leaves nothing running for long).
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start() -> Option<Server> {
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
    pub(crate) fn command(&self, line: &str) -> Option<String> {
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

    fn connections_received(&self) -> u64 {
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

fn redis() -> Server {
    Server::start().expect("redis-server is required for these tests (.ci/deps.sh installs it)")
}

fn setup(server: &Server, outbox: &std::path::Path) {
    breakglass::login::reset_all();
    let hash = breakglass::login::hash_password(b"pw").unwrap();
    for (k, v) in [
        ("slot_url", format!("redis://127.0.0.1:{}", server.port)),
        ("slot_key", "bgtest:otp".into()),
        ("mailer", format!("file://{}", outbox.display())),
        ("from_email", "bg@example.com".into()),
        ("otp_email", "oncall@example.com".into()),
        ("password_hash", hash),
        ("allowed_ips", "0.0.0.0/0, ::/0".into()),
        ("max_global_failures", "1000".into()),
    ] {
        assert_eq!(configure(k, Some(&v)), BG_OK, "{k}");
    }
}

fn teardown() {
    for k in [
        "slot_url",
        "slot_key",
        "mailer",
        "from_email",
        "otp_email",
        "password_hash",
        "allowed_ips",
        "max_global_failures",
        "max_attempts",
    ] {
        assert_eq!(configure(k, None), BG_OK);
    }
}

fn left(ip: &str) -> (bg_status, u32) {
    let i = CString::new(ip).unwrap();
    let mut n = 0;
    let st = unsafe { bg_attempts_left(i.as_ptr(), &mut n) };
    (st, n)
}

fn session(token: &str) -> bg_status {
    let t = CString::new(token).unwrap();
    unsafe { bg_session_check(t.as_ptr()) }
}

fn newest_code(outbox: &std::path::Path) -> String {
    assert_eq!(breakglass::ffi::delivery::bg_flush(10_000), BG_OK);
    let mut newest: Option<(std::time::SystemTime, String)> = None;
    for e in std::fs::read_dir(outbox).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        let Some(at) = text.find("one-time code is: ") else {
            continue;
        };
        let t = e.metadata().unwrap().modified().unwrap();
        let code = text[at + 18..at + 24].to_owned();
        if newest.as_ref().is_none_or(|(n, _)| t > *n) {
            newest = Some((t, code));
        }
        std::fs::remove_file(e.path()).unwrap();
    }
    newest.expect("a code email").1
}

fn outbox(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("bg-login-redis-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_flow_on_redis_shares_limits_and_the_session() {
    let _g = serial();
    let server = redis();
    let out = outbox("flow");
    setup(&server, &out);
    assert_eq!(begin("192.0.2.1", "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(left("192.0.2.1"), (BG_OK, 4));
    // The failure lives in Redis: a process that forgets its own state still sees it.
    breakglass::login::reset_all();
    assert_eq!(left("192.0.2.1"), (BG_OK, 4));
    assert_eq!(begin("192.0.2.1", "pw"), BG_OK);
    let (st, token) = complete("192.0.2.1", &newest_code(&out));
    assert_eq!(st, BG_OK);
    assert_eq!(left("192.0.2.1"), (BG_OK, 5));
    breakglass::login::reset_all();
    assert_eq!(session(&token), BG_OK, "the session lives in Redis");
    assert_eq!(session("someone-elses"), BG_NO_SESSION);
    // Nothing stored in Redis is a token, a code or a password, and every key has a TTL.
    let keys = server.command("KEYS *").unwrap();
    assert!(keys.starts_with('*'), "{keys}");
    for key in ["bgtest:otp:login:session", "bgtest:otp:login:global"] {
        let ttl: i64 = server.command(&format!("PTTL {key}")).unwrap()[1..]
            .parse()
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    let stored = server.command("GET bgtest:otp:login:session").unwrap();
    assert_eq!(
        stored.len(),
        64,
        "the SHA-256 of the token, not the token: {stored}"
    );
    let t = CString::new(token.clone()).unwrap();
    assert_eq!(unsafe { bg_session_end(t.as_ptr()) }, BG_OK);
    assert_eq!(session(&token), BG_NO_SESSION);
    // Lockout after max_attempts, shared, and an operator's reset.
    assert_eq!(configure("max_attempts", Some("3")), BG_OK);
    for _ in 0..3 {
        assert_eq!(complete("2001:db8::1", "000000").0, BG_NO_PENDING_OTP);
    }
    assert_eq!(
        complete("2001:db8::ffff", "000000").0,
        BG_LOCKED_OUT,
        "same /64"
    );
    assert_eq!(left("2001:db8::2"), (BG_OK, 0));
    assert_eq!(unsafe { bg_reset_attempts(c"2001:db8::3".as_ptr()) }, BG_OK);
    assert_eq!(left("2001:db8::1"), (BG_OK, 3));
    teardown();
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn racing_logins_on_redis_have_one_winner_and_reuse_connections() {
    let _g = serial();
    let server = redis();
    let out = outbox("race");
    setup(&server, &out);
    assert_eq!(begin("192.0.2.9", "pw"), BG_OK);
    let code = newest_code(&out);
    let before = server.connections_received();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (b, code) = (barrier.clone(), code.clone());
            std::thread::spawn(move || {
                b.wait();
                complete(&format!("198.51.100.{i}"), &code).0
            })
        })
        .collect();
    let results: Vec<bg_status> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|&&s| s == BG_OK).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|s| matches!(s, BG_OK | BG_NO_PENDING_OTP)));
    // The 15 losers were counted, exactly; the winner was refunded.
    let counted = server.command("HGET bgtest:otp:login:global n").unwrap();
    assert_eq!(counted, "15");
    // Each probe of the test's own opens one connection too (two so far, this one included).
    let mid = server.connections_received() - 2;
    assert!(
        mid - before <= 16,
        "{} connections for 16 racing attempts",
        mid - before
    );
    // 100 sequential attempts reuse the pooled connections instead of opening one each.
    for i in 0..100 {
        let _ = complete(&format!("203.0.113.{}", i % 200), "000000");
    }
    let after = server.connections_received() - 3;
    assert!(
        after - mid <= 1,
        "{} connections for 100 attempts",
        after - mid
    );
    teardown();
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_global_limit_holds_on_redis_under_address_rotation() {
    let _g = serial();
    let server = redis();
    let out = outbox("global");
    setup(&server, &out);
    assert_eq!(configure("max_global_failures", Some("20")), BG_OK);
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8u32)
        .map(|t| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                let mut evaluated = 0;
                for n in 0..50u32 {
                    let ip = format!("2001:db8:{t:x}:{n:x}::1");
                    match complete(&ip, "123456").0 {
                        BG_NO_PENDING_OTP | BG_INVALID => evaluated += 1,
                        BG_LOCKED_OUT => {}
                        other => panic!("{other:?}"),
                    }
                }
                evaluated
            })
        })
        .collect();
    let evaluated: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(evaluated, 20, "guesses evaluated before the global lockout");
    teardown();
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_redis_outage_is_a_denial() {
    let _g = serial();
    let server = redis();
    let out = outbox("outage");
    setup(&server, &out);
    assert_eq!(begin("192.0.2.1", "pw"), BG_OK);
    let code = newest_code(&out);
    drop(server);
    assert_eq!(complete("192.0.2.1", &code).0, BG_ERR_BACKEND);
    assert_eq!(begin("192.0.2.1", "pw"), BG_ERR_BACKEND);
    assert_eq!(session("anything"), BG_ERR_BACKEND);
    assert_eq!(left("192.0.2.1").0, BG_ERR_BACKEND);
    teardown();
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn racing_logins_from_four_processes_have_one_winner() {
    let _g = serial();
    let server = redis();
    let out = outbox("procs");
    setup(&server, &out);
    assert_eq!(begin("192.0.2.9", "pw"), BG_OK);
    let code = newest_code(&out);
    // The children wait on a pipe that the parent closes once all of them exist.
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut children = Vec::new();
    for i in 0..4 {
        // SAFETY: the child only uses the library (whose fork handlers make that safe), reads
        // the pipe, and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: plain descriptor and signal calls in the child.
            unsafe {
                libc::alarm(30);
                libc::close(fds[1]);
                let mut b = 0u8;
                libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
            }
            let st = complete(&format!("198.51.100.{i}"), &code).0;
            let exit = match st {
                BG_OK => 0,
                BG_NO_PENDING_OTP => 1,
                _ => 2,
            };
            // SAFETY: ends the child without running the parent's test harness.
            unsafe { libc::_exit(exit) };
        }
        children.push(pid);
    }
    // SAFETY: closing our ends releases the children at once.
    unsafe {
        libc::close(fds[1]);
        libc::close(fds[0]);
    }
    let mut outcomes = Vec::new();
    for pid in children {
        let mut status = 0;
        // SAFETY: waits for a child this test forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "a child died: {status}");
        outcomes.push(libc::WEXITSTATUS(status));
    }
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        [0, 1, 1, 1],
        "one winner, three told nothing is pending"
    );
    assert_eq!(
        server.command("HGET bgtest:otp:login:global n").unwrap(),
        "3"
    );
    // The winner's session is the one active session, fleet-wide.
    assert!(server
        .command("GET bgtest:otp:login:session")
        .is_some_and(|s| s.len() == 64));
    teardown();
    let _ = std::fs::remove_dir_all(&out);
}
