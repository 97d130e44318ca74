//! The audit trail on real files, real processes and a real syslog socket: what a login
//! leaves in the file (and never: the code, the password, the token), `audit_required`, two
//! processes appending to one file at once, and the RFC 5424 datagrams a syslog receiver gets.

use std::ffi::CString;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

use breakglass::audit::{self, Record};
use breakglass::ffi::bg_status::*;
use breakglass::ffi::delivery;
use breakglass::ffi::login::*;

use super::{begin, complete, configure, left, serial};

/// A fresh temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("bg-audit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("outbox")).unwrap();
        Dir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn mails(&self) -> Vec<String> {
        assert_eq!(delivery::bg_flush(10_000), BG_OK);
        std::fs::read_dir(self.path("outbox"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .filter(|t| t.contains("Subject:"))
            .collect()
    }

    /// The code of the newest code email (every test reads one at a time).
    fn code(&self) -> String {
        let codes: Vec<String> = self
            .mails()
            .iter()
            .filter_map(|t| {
                let at = t.find("one-time code is: ")? + "one-time code is: ".len();
                Some(t[at..at + 6].to_owned())
            })
            .collect();
        assert!(!codes.is_empty(), "a code email");
        for p in std::fs::read_dir(self.path("outbox")).unwrap() {
            let p = p.unwrap().path();
            if std::fs::read_to_string(&p)
                .unwrap()
                .contains("one-time code is: ")
            {
                std::fs::remove_file(p).unwrap();
            }
        }
        assert_eq!(codes.len(), 1);
        codes[0].clone()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PASSWORD: &str = "correct horse battery staple";
const IP: &str = "192.0.2.10";

fn setup(dir: &Dir, extra: &[(&str, String)]) {
    breakglass::login::reset_all();
    assert_eq!(breakglass::ffi::slot::bg_clear(), BG_OK);
    let hash = breakglass::login::hash_password(PASSWORD.as_bytes()).unwrap();
    let base = [
        ("mailer", format!("file://{}", dir.path("outbox").display())),
        ("from_email", "bg@example.com".into()),
        ("otp_email", "oncall@example.com".into()),
        ("alert_emails", "ops@example.com".into()),
        ("password_hash", hash),
        ("allowed_ips", "192.0.2.0/24".into()),
    ];
    for (k, v) in base.iter().chain(extra) {
        assert_eq!(configure(k, Some(v)), BG_OK, "{k}");
    }
}

fn teardown() {
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    for k in [
        "audit_log",
        "audit_key",
        "audit_required",
        "syslog",
        "syslog_socket",
        "mailer",
        "from_email",
        "otp_email",
        "alert_emails",
        "password_hash",
        "allowed_ips",
    ] {
        assert_eq!(configure(k, None), BG_OK);
    }
    breakglass::login::reset_all();
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read(path)
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| Record::parse(l).expect("every line is a record"))
        .collect()
}

fn events(recs: &[Record]) -> Vec<&str> {
    recs.iter().map(|r| r.event.as_str()).collect()
}

#[test]
fn a_login_leaves_a_verified_chain_without_the_code_password_or_token() {
    let _g = serial();
    let dir = Dir::new("flow");
    let log = dir.path("audit.log");
    setup(
        &dir,
        &[
            ("audit_key", "audit key of the test".into()),
            ("audit_log", log.display().to_string()),
        ],
    );
    assert_eq!(begin("198.51.100.1", PASSWORD), BG_IP_NOT_ALLOWED);
    assert_eq!(begin(IP, "not the password"), BG_WRONG_PASSWORD);
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    let code = dir.code();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(complete(IP, wrong).0, BG_INVALID);
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    let code = dir.code();
    let (st, token) = complete(IP, &code);
    assert_eq!(st, BG_OK);
    let t = CString::new(token.clone()).unwrap();
    assert_eq!(unsafe { bg_session_end(t.as_ptr()) }, BG_OK);
    let alert_mail = dir
        .mails()
        .into_iter()
        .find(|m| m.contains("X-Breakglass-Event-Id") && m.contains("Emergency login from"))
        .expect("the alert email");
    teardown();

    let report = audit::verify_file(&log, Some(b"audit key of the test")).unwrap();
    assert!(report.is_clean());
    let recs = records(&log);
    assert_eq!(report.records as usize, recs.len());
    let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=recs.len() as u64).collect::<Vec<_>>());
    // The events in order; config_changed for audit_log itself and for each security key set
    // after it (the key's name only), and the alert email's delivery after the login.
    let ev = events(&recs);
    let from_login: Vec<&str> = ev
        .iter()
        .copied()
        .skip_while(|e| *e == "config_changed")
        // Delivery outcomes come from the workers, in their own time.
        .filter(|e| *e != "alert_delivered" && *e != "code_delivered")
        .take(11)
        .collect();
    assert_eq!(
        from_login,
        [
            "login_refused",
            "login_refused",
            "login_begun",
            "code_sent",
            "login_failed",
            // The first wrong code after a right password raises the guessing alarm.
            "guessing_detected",
            "login_begun",
            "code_sent",
            "login_succeeded",
            "session_ended",
            "config_changed",
        ]
    );
    // Each code email's outcome is audited like an alert channel's.
    assert_eq!(
        ev.iter().filter(|e| **e == "code_delivered").count(),
        2,
        "{ev:?}"
    );
    let refused: Vec<&str> = recs
        .iter()
        .filter(|r| r.event == "login_refused")
        .map(|r| r.detail.as_str())
        .collect();
    assert!(refused[0].contains("allowed_ips"), "{refused:?}");
    assert!(refused[1].contains("wrong password"), "{refused:?}");
    let ok = recs.iter().find(|r| r.event == "login_succeeded").unwrap();
    assert_eq!(ok.ip, IP);
    assert_eq!(ok.pid, std::process::id());
    let id = ok.id.clone().expect("the alert's event id");
    assert!(
        alert_mail.contains(&id),
        "the alert email carries the same event id"
    );
    assert!(recs.iter().any(|r| r.event == "alert_delivered"
        && r.id.as_deref() == Some(&id)
        && r.detail == "email to ops@example.com"));
    // Switching the trail on is its first record, switching it off its last.
    for r in [&recs[0], recs.last().unwrap()] {
        assert_eq!(
            (r.event.as_str(), r.detail.as_str()),
            ("config_changed", "audit_log")
        );
    }
    // Never in the audit: the code, the password, the token, or a configured value. Six
    // digits can turn up by chance inside a mac, an id or a time's microseconds, so the code
    // is looked for in the fields that carry text.
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [
        PASSWORD,
        token.as_str(),
        "audit key of the test",
        "$argon2id",
    ] {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }
    for r in &recs {
        for field in [&r.event, &r.ip, &r.host, &r.detail] {
            assert!(!field.contains(&code), "the code is in {r:?}");
        }
    }
}

#[test]
fn a_success_that_cannot_be_recorded_is_refused_unless_audit_required_is_off() {
    let _g = serial();
    let dir = Dir::new("required");
    // Accepted at configure, then replaced by a directory: no one, not even root, can append.
    let log = dir.path("audit.log");
    setup(&dir, &[("audit_log", log.display().to_string())]);
    std::fs::create_dir(&log).unwrap();
    let failures = audit::stats().write_failures;
    let sent = breakglass::stats().emails_sent;
    assert_eq!(
        begin(IP, PASSWORD),
        BG_OK,
        "begin is never blocked by the audit"
    );
    let code = dir.code();
    let (st, token) = complete(IP, &code);
    assert_eq!(st, BG_ERR_AUDIT);
    assert!(token.is_empty());
    assert_eq!(left(IP), 5, "a right code is not counted as a failure");
    assert!(audit::stats().write_failures > failures);
    // The code is used up, the attempt was not counted, and the alarm went out.
    assert_eq!(complete(IP, &code).0, BG_NO_PENDING_OTP);
    assert_eq!(left(IP), 4);
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    assert!(
        breakglass::stats().emails_sent >= sent + 2,
        "code and alert emails"
    );
    assert!(dir
        .mails()
        .iter()
        .any(|m| m.contains("X-Breakglass-Event-Id")));

    // With audit_required off the same failure is logged and counted, and the login granted.
    breakglass::login::reset_all();
    assert_eq!(configure("audit_required", Some("false")), BG_OK);
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    let code = dir.code();
    let (st, token) = complete(IP, &code);
    assert_eq!(st, BG_OK);
    let t = CString::new(token).unwrap();
    assert_eq!(unsafe { bg_session_check(t.as_ptr()) }, BG_OK);
    teardown();
}

/// Run only as a child of the test below: appends `BG_AUDIT_CHILD_N` config_changed records
/// to `BG_AUDIT_CHILD_LOG`.
#[test]
#[ignore]
fn audit_child_appender() {
    let Ok(log) = std::env::var("BG_AUDIT_CHILD_LOG") else {
        return;
    };
    let n: usize = std::env::var("BG_AUDIT_CHILD_N").unwrap().parse().unwrap();
    // Straight to the file: the library folds configuration bursts and refusals.
    let e = audit::Entry {
        time: "2026-12-03T08:00:00.000000Z".into(),
        event: "login_failed",
        id: None,
        ip: String::new(),
        host: "h".into(),
        pid: std::process::id(),
        detail: "child".into(),
    };
    for _ in 0..n {
        audit::append(Path::new(&log), Some(b"k"), &e, false).unwrap();
    }
}

#[test]
fn two_processes_appending_at_once_give_one_chain_with_unique_consecutive_seqs() {
    let dir = Dir::new("procs");
    let log = dir.path("audit.log");
    let spawn = || {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "audit::audit_child_appender",
                "--quiet",
            ])
            .env("BG_AUDIT_CHILD_LOG", &log)
            .env("BG_AUDIT_CHILD_N", "300")
            .spawn()
            .unwrap()
    };
    let children = [spawn(), spawn()];
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let report = audit::verify_file(&log, Some(b"k")).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.records, report.last_seq), (600, 600));
    let recs = records(&log);
    let pids: std::collections::BTreeSet<u32> = recs.iter().map(|r| r.pid).collect();
    assert_eq!(pids.len(), 2, "both processes wrote");
}

/// One RFC 5424 datagram, split into its parts.
struct Datagram {
    pri: u32,
    time: String,
    host: String,
    procid: u32,
    msgid: String,
    msg: String,
}

fn parse_datagram(d: &str) -> Datagram {
    let rest = d.strip_prefix('<').expect("PRI");
    let (pri, rest) = rest.split_once('>').unwrap();
    let rest = rest.strip_prefix("1 ").expect("VERSION 1");
    let parts: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!(parts.len(), 7, "{d}");
    assert_eq!(parts[2], "breakglass", "APP-NAME");
    assert_eq!(parts[5], "-", "no structured data");
    Datagram {
        pri: pri.parse().unwrap(),
        time: parts[0].into(),
        host: parts[1].into(),
        procid: parts[3].parse().unwrap(),
        msgid: parts[4].into(),
        msg: parts[6].into(),
    }
}

#[test]
fn every_audit_event_also_reaches_a_syslog_receiver_as_rfc5424() {
    let _g = serial();
    let dir = Dir::new("syslog");
    let sock_path = dir.path("log.sock");
    let receiver = UnixDatagram::bind(&sock_path).unwrap();
    // A bound on a test that would otherwise hang, not a timing assertion.
    receiver
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let log = dir.path("audit.log");
    setup(
        &dir,
        &[
            ("syslog_socket", sock_path.display().to_string()),
            ("syslog", "true".into()),
            ("audit_log", log.display().to_string()),
        ],
    );
    assert_eq!(begin(IP, "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    let code = dir.code();
    assert_eq!(complete(IP, &code).0, BG_OK);
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let file = records(&log);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    // The burst of settings (syslog, then audit_log) is one record, in the file and in syslog.
    while got.len() < file.len() {
        let n = receiver.recv(&mut buf).expect("a datagram per event");
        got.push(parse_datagram(std::str::from_utf8(&buf[..n]).unwrap()));
    }
    assert_eq!(got[0].msgid, "config_changed");
    assert_eq!(file[0].detail, "syslog, audit_log");
    // One datagram per record; a worker's delivery record may be sent to syslog before or
    // after the caller's own record that the file holds just before it, so each datagram is
    // matched to its record by the record's line.
    for d in &got {
        let r = file
            .iter()
            .find(|r| r.line().trim_end() == d.msg)
            .unwrap_or_else(|| panic!("MSG is a record's line: {}", d.msg));
        assert_eq!(d.msgid, r.event);
        assert_eq!(d.procid, std::process::id());
        assert_eq!(d.time, r.time);
        assert!(humantime::parse_rfc3339(&d.time).is_ok(), "{}", d.time);
        assert!(!d.host.is_empty() && d.host.bytes().all(|b| b.is_ascii_graphic()));
        // authpriv (10) * 8 + severity
        let sev = match d.msgid.as_str() {
            "login_succeeded" => 1,
            "login_refused" | "login_failed" => 5,
            _ => 6,
        };
        assert_eq!(d.pri, 80 + sev, "{}", d.msgid);
    }
    assert!(got
        .iter()
        .any(|d| d.msgid == "login_succeeded" && d.pri == 81));
    assert!(got
        .iter()
        .any(|d| d.msgid == "login_refused" && d.pri == 85));

    // A receiver that went away never blocks a login: the sends fail, counted.
    drop(receiver);
    let before = audit::stats().syslog_failures;
    breakglass::login::reset_all();
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    let code = dir.code();
    assert_eq!(complete(IP, &code).0, BG_OK);
    assert!(audit::stats().syslog_failures > before);
    teardown();
}

// ---- issue 19: a trail that outsiders cannot fill and no one can cut quietly ----

/// bcrypt, cost 4 (fast for a test), of "correct horse".
const FAST_HASH: &str = "$2b$04$yUBCyfGraBusVpGw0SNl7uamWW6f95K6JOgURFT3ZzI.xkfZpq2UC";
const FAST_PASSWORD: &str = "correct horse";

fn setup_fast(dir: &Dir, extra: &[(&str, String)]) {
    setup(dir, &[("password_hash", FAST_HASH.into())]);
    for (k, v) in extra {
        assert_eq!(configure(k, Some(v)), BG_OK, "{k}");
    }
}

fn teardown_more(keys: &[&str]) {
    for k in keys {
        assert_eq!(configure(k, None), BG_OK, "{k}");
    }
    teardown();
}

/// One whole login with the fast password; its status.
fn login(dir: &Dir) -> breakglass::ffi::bg_status {
    let st = begin(IP, FAST_PASSWORD);
    if st != BG_OK {
        return st;
    }
    let code = dir.code();
    complete(IP, &code).0
}

fn last_error() -> String {
    let mut buf = [0 as std::ffi::c_char; 1100];
    let st = unsafe { breakglass::ffi::last_error::bg_last_error(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(st, BG_OK);
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// The CLI, with `env` only (plus PATH).
fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_breakglass"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// The bytes of the trail at `p`, rotated files included.
fn trail_size(p: &Path) -> u64 {
    audit::chain_files(p).iter().map(|f| size(f)).sum()
}

#[test]
fn refusals_from_outside_are_folded_and_carry_no_caller_text() {
    let _g = serial();
    let dir = Dir::new("fold");
    let log = dir.path("audit.log");
    setup_fast(&dir, &[("audit_log", log.display().to_string())]);
    // Not allowed, from a canonical address spelled another way: recorded canonically.
    assert_eq!(begin("::ffff:198.51.100.1", "x"), BG_IP_NOT_ALLOWED);
    let before = trail_size(&log);
    let hostile = "\u{1}".repeat(256);
    for i in 0..100_000u32 {
        let ip = if i % 2 == 0 {
            hostile.clone()
        } else {
            format!("{}{i}", "\u{1}".repeat(250))
        };
        assert_eq!(begin(&ip, "x"), BG_IP_NOT_ALLOWED);
    }
    for _ in 0..1000 {
        assert_eq!(complete(&hostile, "123456").0, BG_IP_NOT_ALLOWED);
    }
    let grown = trail_size(&log) - before;
    assert!(grown < 64 * 1024, "the trail grew by {grown} bytes");
    let recs = records(&log);
    let refused: Vec<&Record> = recs.iter().filter(|r| r.event == "login_refused").collect();
    assert_eq!(refused[0].ip, "198.51.100.1");
    assert!(
        refused[0].detail.contains("allowed_ips"),
        "{:?}",
        refused[0]
    );
    for r in &recs {
        assert!(!r.ip.contains('\u{1}') && r.ip.len() < 64, "{r:?}");
    }
    assert!(recs
        .iter()
        .any(|r| r.event == "login_refused" && r.ip == "(not an address: 256 bytes)"));
    // The right password still logs in and is recorded in full.
    assert_eq!(login(&dir), BG_OK);
    assert!(records(&log).iter().any(|r| r.event == "login_succeeded"));
    teardown();
    assert!(audit::verify_file(&log, None).unwrap().is_clean());
}

/// A tmpfs of `size` mounted at `at`, unmounted on drop; `None` when mounting is impossible.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_filesystem_still_records_100_granted_logins() {
    let _g = serial();
    let dir = Dir::new("full");
    let Some(fs) = Tmpfs::mount(&dir.path("fs"), "4m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root, or no mount permission)");
        return;
    };
    let log = fs.0.join("audit.log");
    setup_fast(&dir, &[("audit_log", log.display().to_string())]);
    assert_eq!(login(&dir), BG_OK);
    // Fill the filesystem to the last byte.
    let mut filler = std::fs::File::create(fs.0.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    let mut small = false;
    loop {
        use std::io::Write;
        let chunk = if small { &block[..512] } else { &block[..] };
        match filler.write(chunk) {
            Ok(n) if n > 0 => {}
            _ if !small => small = true,
            _ => break,
        }
    }
    assert!(
        std::fs::write(fs.0.join("more"), vec![0u8; 4096]).is_err(),
        "the fs is full"
    );
    for i in 0..100 {
        assert_eq!(login(&dir), BG_OK, "login {i} on a full filesystem");
    }
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let recs = records(&log);
    assert_eq!(
        recs.iter().filter(|r| r.event == "login_succeeded").count(),
        101
    );
    teardown();
    assert!(audit::verify_file(&log, None).unwrap().is_clean());
    drop(filler);
    drop(fs);
}

#[test]
fn a_rotated_trail_is_one_chain_and_tail_follows_it() {
    let _g = serial();
    let dir = Dir::new("rotate");
    let log = dir.path("audit.log");
    // A follower started before the records, keeping only one event.
    std::fs::write(&log, b"").unwrap();
    let mut follower = Command::new(env!("CARGO_BIN_EXE_breakglass"))
        .args([
            "audit",
            "tail",
            "-f",
            "--event",
            "login_succeeded",
            "-n",
            "0",
        ])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let the follower open the file before anything is written.
    std::thread::sleep(std::time::Duration::from_millis(500));
    setup_fast(
        &dir,
        &[
            ("audit_key", "k".into()),
            ("audit_max_bytes", "4096".into()),
            ("audit_log", log.display().to_string()),
        ],
    );
    for _ in 0..12 {
        assert_eq!(login(&dir), BG_OK);
    }
    teardown_more(&["audit_max_bytes"]);
    let rotated = audit::rotated_files(&log);
    assert!(rotated.len() >= 3, "{rotated:?}");
    for f in rotated.iter().chain([&log]) {
        assert!(
            size(f) <= 4096 + 1024,
            "{} is {} bytes",
            f.display(),
            size(f)
        );
    }
    let r = audit::verify_chain(&audit::chain_files(&log), &[b"k"], None).unwrap();
    assert!(r.is_clean() && r.continues_after.is_none(), "{r:?}");
    // The new file's first record continues the old file's last.
    let prev_last = records(rotated.last().unwrap()).pop().unwrap();
    let first = records(&log).remove(0);
    assert_eq!(
        (first.event.as_str(), first.prev.as_str()),
        (audit::ROTATED, prev_last.mac.as_str())
    );
    assert_eq!(first.seq, prev_last.seq + 1);
    // Alone, the live file verifies from its rotation record.
    let alone = audit::verify_file(&log, Some(b"k")).unwrap();
    assert_eq!(alone.continues_after, Some(prev_last.seq));
    // The CLI checks the live file with its predecessors.
    let k = dir.path("k.key");
    std::fs::write(&k, "k\n").unwrap();
    let out = cli(
        &[
            "audit",
            "verify",
            log.to_str().unwrap(),
            "--key-file",
            k.to_str().unwrap(),
        ],
        &[],
    );
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("last seq {}", r.last_seq)),
        "{shown}"
    );
    // The follower printed the 12 logins, across every rotation, and nothing else.
    let stdout = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(12)
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = Command::new("kill").arg(follower.id().to_string()).status();
    let _ = follower.wait();
    let lines = reader.join().unwrap();
    assert_eq!(lines.len(), 12, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.contains(" login_succeeded ")),
        "{lines:?}"
    );
}

#[test]
fn the_anchor_catches_a_cut_tail_in_state_dir_and_in_the_alarm() {
    let _g = serial();
    let dir = Dir::new("anchor");
    let log = dir.path("audit.log");
    let state = dir.path("state");
    std::fs::create_dir(&state).unwrap();
    setup_fast(
        &dir,
        &[
            ("state_dir", state.display().to_string()),
            ("audit_log", log.display().to_string()),
        ],
    );
    assert_eq!(login(&dir), BG_OK);
    assert_eq!(begin(IP, "wrong"), BG_WRONG_PASSWORD);
    let alert = dir
        .mails()
        .into_iter()
        .find(|m| m.contains("X-Breakglass-Event-Id"))
        .expect("the alert email");
    let head_in_alarm = alert
        .lines()
        .find_map(|l| l.strip_prefix("X-Breakglass-Audit-Head: "))
        .expect("the alert carries the audit head")
        .trim()
        .to_owned();
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let recs = records(&log);
    // The anchor file holds the last synced record (the wrong password's).
    let anchor_text = std::fs::read_to_string(state.join(audit::ANCHOR_FILE)).unwrap();
    let wrong = recs
        .iter()
        .rev()
        .find(|r| r.detail.contains("wrong password"))
        .unwrap();
    assert!(
        anchor_text.contains(&format!("\"seq\":{}", wrong.seq)),
        "{anchor_text}"
    );
    assert!(anchor_text.contains(&wrong.mac));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join(audit::ANCHOR_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let env = [("BREAKGLASS_STATE_DIR", state.to_str().unwrap())];
    let f = log.to_str().unwrap();
    let out = cli(&["audit", "verify", f], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ANCHOR: seq"));
    let out = cli(&["audit", "verify", f, "--anchor", &head_in_alarm], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Cuts the chain alone cannot see: the last record, the last five, all from the login on,
    // the whole content.
    let data = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = data.split_inclusive('\n').collect();
    let from_login = recs
        .iter()
        .position(|r| r.event == "login_succeeded")
        .unwrap();
    for keep in [lines.len() - 1, lines.len() - 5, from_login, 0] {
        std::fs::write(&log, lines[..keep].concat()).unwrap();
        assert!(
            audit::verify_file(&log, None).is_ok(),
            "the chain alone sees nothing"
        );
        let out = cli(&["audit", "verify", f], &env);
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(4), "kept {keep}: {shown}");
        assert!(shown.contains("CUT:"), "{shown}");
    }
    // The alarm's copy catches a cut back to before its head too.
    let alarm_seq: usize = head_in_alarm.split(':').next().unwrap().parse().unwrap();
    std::fs::write(&log, lines[..alarm_seq - 1].concat()).unwrap();
    let out = cli(&["audit", "verify", f, "--anchor", &head_in_alarm], &[]);
    assert_eq!(out.status.code(), Some(4));
    // A rewritten chain (recomputed without a key) disagrees with the anchor.
    std::fs::write(&log, b"").unwrap();
    for r in &recs {
        let e = audit::Entry {
            time: r.time.clone(),
            event: "login_failed",
            id: None,
            ip: r.ip.clone(),
            host: r.host.clone(),
            pid: r.pid,
            detail: "nothing to see".into(),
        };
        audit::append(&log, None, &e, false).unwrap();
    }
    let out = cli(&["audit", "verify", f], &env);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("REWRITTEN"));
    teardown_more(&["state_dir"]);
}

#[test]
fn the_chain_does_not_depend_on_the_order_of_configure_calls_and_verifies_across_key_changes() {
    let _g = serial();
    let dir = Dir::new("keys");
    let log = dir.path("audit.log");
    let k1 = dir.path("k1.key");
    let k2 = dir.path("k2.key");
    std::fs::write(&k1, "first key\n").unwrap();
    std::fs::write(&k2, "second key\n").unwrap();
    // audit_log before audit_key, one call each, as C code that sets one key per line does.
    setup_fast(&dir, &[]);
    assert_eq!(configure("audit_log", Some(log.to_str().unwrap())), BG_OK);
    assert_eq!(configure("audit_key", Some("first key")), BG_OK);
    assert_eq!(login(&dir), BG_OK);
    let f = log.to_str().unwrap();
    let (k1s, k2s) = (k1.to_str().unwrap(), k2.to_str().unwrap());
    let out = cli(&["audit", "verify", f, "--key-file", k1s], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A new audit_key is bound to the old one in the chain.
    assert_eq!(configure("audit_key", Some("second key")), BG_OK);
    assert_eq!(login(&dir), BG_OK);
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let out = cli(
        &["audit", "verify", f, "--key-file", k2s, "--key-file", k1s],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Missing keys are "give --key-file" (2), never tampering (1).
    for args in [vec![], vec!["--key-file", k1s]] {
        let mut a = vec!["audit", "verify", f];
        a.extend(args);
        let out = cli(&a, &[]);
        assert_eq!(out.status.code(), Some(2), "{a:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("this file is keyed: give --key-file")
        );
    }
    // rotate-key from the operator's side: the chain continues under the new key file.
    let k3 = dir.path("k3.key");
    let env = [
        ("BREAKGLASS_AUDIT_LOG", f),
        ("BREAKGLASS_AUDIT_KEY", "second key"),
    ];
    let out = cli(
        &[
            "audit",
            "rotate-key",
            "--new-key-file",
            k3.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_key = std::fs::read_to_string(&k3).unwrap();
    assert_eq!(new_key.trim().len(), 64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&k3).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The service, still on the old key, goes on: an unbound change, accepted under a given key.
    assert_eq!(login(&dir), BG_OK);
    assert_eq!(configure("audit_key", Some(new_key.trim())), BG_OK);
    assert_eq!(login(&dir), BG_OK);
    teardown();
    let k3s = k3.to_str().unwrap();
    let out = cli(
        &[
            "audit",
            "verify",
            f,
            "--key-file",
            k1s,
            "--key-file",
            k2s,
            "--key-file",
            k3s,
        ],
        &[],
    );
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("KEY: from seq") && !shown.contains(new_key.trim()),
        "{shown}"
    );
    // A restart with the new key from the environment continues the chain under it.
    setup_fast(&dir, &[]);
    std::env::set_var("BREAKGLASS_AUDIT_LOG", f);
    std::env::set_var("BREAKGLASS_AUDIT_KEY", new_key.trim());
    let st = breakglass::ffi::settings::bg_configure_from_env();
    std::env::remove_var("BREAKGLASS_AUDIT_LOG");
    std::env::remove_var("BREAKGLASS_AUDIT_KEY");
    assert_eq!(st, BG_OK);
    assert_eq!(login(&dir), BG_OK);
    teardown();
    let out = cli(
        &[
            "audit",
            "verify",
            f,
            "--key-file",
            k3s,
            "--key-file",
            k1s,
            "--key-file",
            k2s,
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A record forged without the key is still tampering.
    let data = std::fs::read_to_string(&log).unwrap();
    let last = records(&log).pop().unwrap();
    let mut forged = last.clone();
    forged.detail = "forged".into();
    forged.mac = forged.compute_mac(None);
    std::fs::write(&log, data.replace(&last.line(), &forged.line())).unwrap();
    let out = cli(
        &[
            "audit",
            "verify",
            f,
            "--key-file",
            k1s,
            "--key-file",
            k2s,
            "--key-file",
            k3s,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_audit_file_is_never_reached_through_a_symlink_or_a_shared_directory() {
    let _g = serial();
    let dir = Dir::new("links");
    let log = dir.path("audit.log");
    let target = dir.path("sourced-by-root.sh");
    setup_fast(&dir, &[]);
    // A link at the path, dangling or not, is refused at configure, with the reason.
    std::os::unix::fs::symlink(&target, &log).unwrap();
    let ls = log.to_str().unwrap();
    assert_ne!(configure("audit_log", Some(ls)), BG_OK);
    assert!(last_error().contains("symlink"), "{}", last_error());
    assert!(!target.exists(), "a dangling link's target was created");
    std::fs::write(&target, b"# root's script\n").unwrap();
    assert_ne!(configure("audit_log", Some(ls)), BG_OK);
    // A link put there after configure is not followed: the record fails, the target stays.
    std::fs::remove_file(&log).unwrap();
    assert_eq!(configure("audit_log", Some(ls)), BG_OK);
    let _ = std::fs::remove_file(&log);
    std::os::unix::fs::symlink(&target, &log).unwrap();
    assert_eq!(begin("$(id > F)", "x"), BG_IP_NOT_ALLOWED);
    assert_eq!(begin(IP, "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(std::fs::read(&target).unwrap(), b"# root's script\n");
    std::fs::remove_file(&log).unwrap();
    assert_eq!(configure("audit_log", None), BG_OK);
    // A directory others can write to (or not this user's) is refused with the reason.
    use std::os::unix::fs::PermissionsExt;
    let shared = dir.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let p = shared.join("audit.log");
    assert_ne!(configure("audit_log", Some(p.to_str().unwrap())), BG_OK);
    assert!(
        last_error().contains("writable by group or others"),
        "{}",
        last_error()
    );
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&shared, Some(65534), None).unwrap();
    assert_ne!(configure("audit_log", Some(p.to_str().unwrap())), BG_OK);
    assert!(
        last_error().contains("owned by uid 65534"),
        "{}",
        last_error()
    );
    teardown();
}

#[test]
fn a_burst_of_settings_is_one_record() {
    let _g = serial();
    let dir = Dir::new("burst");
    let log = dir.path("audit.log");
    setup_fast(&dir, &[("audit_log", log.display().to_string())]);
    for (k, v) in [
        ("max_attempts", "6"),
        ("lockout_seconds", "600"),
        ("max_attempts", "5"),
    ] {
        assert_eq!(configure(k, Some(v)), BG_OK);
    }
    assert_eq!(begin(IP, "wrong"), BG_WRONG_PASSWORD);
    let recs = records(&log);
    let changes: Vec<&str> = recs
        .iter()
        .filter(|r| r.event == "config_changed")
        .map(|r| r.detail.as_str())
        .collect();
    assert_eq!(changes, ["audit_log, max_attempts, lockout_seconds"]);
    assert_eq!(events(&recs), ["config_changed", "login_refused"]);
    assert_eq!(configure("audit_log", None), BG_OK);
    // One bg_configure_from_env is one record listing its keys.
    let _ = std::fs::remove_file(&log);
    let vars = [
        ("BREAKGLASS_AUDIT_LOG", log.display().to_string()),
        ("BREAKGLASS_MAX_ATTEMPTS", "5".into()),
        ("BREAKGLASS_SESSION_TTL_SECONDS", "3600".into()),
    ];
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    let st = breakglass::ffi::settings::bg_configure_from_env();
    for (k, _) in &vars {
        std::env::remove_var(k);
    }
    assert_eq!(st, BG_OK);
    assert_eq!(begin(IP, "wrong"), BG_WRONG_PASSWORD);
    let recs = records(&log);
    assert_eq!(events(&recs), ["config_changed", "login_refused"]);
    assert_eq!(
        recs[0].detail,
        "max_attempts, session_ttl_seconds, audit_log"
    );
    // bg_flush (what a process calls before it exits) writes a burst still pending, and the
    // refusal counts not yet written.
    assert_eq!(configure("max_attempts", Some("7")), BG_OK);
    for ip in ["198.51.100.9", "198.51.100.8", "198.51.100.8"] {
        assert_eq!(begin(ip, "x"), BG_IP_NOT_ALLOWED);
    }
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let recs = records(&log);
    let tail: Vec<(&str, &str)> = recs[2..]
        .iter()
        .map(|r| (r.event.as_str(), r.detail.as_str()))
        .collect();
    assert_eq!(tail.len(), 3, "{tail:?}");
    assert_eq!(tail[0], ("config_changed", "max_attempts"));
    assert!(tail[1]
        .1
        .ends_with("[1 refused since the last such record, from 1 address(es)]"));
    assert!(tail[2]
        .1
        .ends_with("[2 refused since the last such record, from 1 address(es)]"));
    assert_eq!(configure("max_attempts", None), BG_OK);
    teardown();
}

/// The trail does the same work for a right and a wrong password: one synced append each
/// (`login_begun` is held and written with the record that ends the attempt), so it adds the
/// same time to both. With `login_begun` synced on its own, a right password paid a
/// second sync, which told the two apart by timing (the size of that gap is in `make bench`,
/// not here: a timed assertion fails on a busy machine).
#[test]
fn a_right_and_a_wrong_password_cost_the_trail_the_same_work() {
    let _g = serial();
    let dir = Dir::new("same-work");
    let log = dir.path("audit.log");
    let shm = PathBuf::from(format!("/dev/shm/bg-audit-work-{}", std::process::id()));
    std::fs::create_dir_all(&shm).unwrap();
    setup_fast(&dir, &[("mailer", format!("file://{}", shm.display()))]);
    assert_eq!(
        configure("audit_log", Some(&log.display().to_string())),
        BG_OK
    );
    // The configuration burst is written now, not by the first call below.
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let mut work = Vec::new();
    for ok in [true, false, true, false] {
        breakglass::login::reset_all();
        let before = audit::stats();
        let st = begin(IP, if ok { FAST_PASSWORD } else { "wrong horse" });
        let after = audit::stats();
        assert_eq!(st, if ok { BG_OK } else { BG_WRONG_PASSWORD });
        // Synced appends only: the delivery worker may append its unsynced `code_delivered`
        // while a right password's call is still returning.
        work.push(after.synced_appends - before.synced_appends);
        if ok {
            assert_eq!(delivery::bg_flush(10_000), BG_OK);
        }
    }
    teardown();
    let _ = std::fs::remove_dir_all(&shm);
    assert_eq!(
        work, [1; 4],
        "synced appends per call: right, wrong, right, wrong"
    );
}

#[test]
fn the_anchor_is_kept_in_redis_when_slot_url_is_set() {
    let _g = serial();
    let server = super::redis_server::Server::start()
        .expect("redis-server is required for these tests (.ci/deps.sh installs it)");
    let dir = Dir::new("anchor-redis");
    let log = dir.path("audit.log");
    let url = format!("redis://127.0.0.1:{}", server.port);
    setup_fast(
        &dir,
        &[
            ("slot_url", url.clone()),
            ("slot_key", "bgtest:otp".into()),
            ("audit_log", log.display().to_string()),
        ],
    );
    assert_eq!(login(&dir), BG_OK);
    let last_synced = records(&log)
        .into_iter()
        .rev()
        .find(|r| r.event == "login_succeeded")
        .unwrap();
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();
    let stored = server
        .command(&format!("GET bgtest:otp:audit-anchor:{}", host.trim()))
        .expect("the anchor in Redis");
    assert!(stored.contains(&last_synced.mac), "{stored}");
    let env = [
        ("BREAKGLASS_SLOT_URL", url.as_str()),
        ("BREAKGLASS_SLOT_KEY", "bgtest:otp"),
    ];
    let f = log.to_str().unwrap();
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let out = cli(&["audit", "verify", f], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from Redis key"));
    let data = std::fs::read_to_string(&log).unwrap();
    let cut: String = data
        .split_inclusive('\n')
        .take(last_synced.seq as usize - 1)
        .collect();
    std::fs::write(&log, cut).unwrap();
    let out = cli(&["audit", "verify", f], &env);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    teardown_more(&["slot_url", "slot_key"]);
}
