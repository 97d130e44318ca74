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
    // A path under a regular file: no one, not even root, can create it.
    std::fs::write(dir.path("file"), b"").unwrap();
    let log = dir.path("file").join("audit.log");
    setup(&dir, &[("audit_log", log.display().to_string())]);
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
    assert_eq!(configure("audit_key", Some("k")), BG_OK);
    assert_eq!(configure("audit_log", Some(&log)), BG_OK);
    for _ in 0..n {
        assert_eq!(configure("max_attempts", Some("5")), BG_OK);
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
    // audit_key is set before audit_log: each child writes audit_log's change and 300 more.
    assert_eq!((report.records, report.last_seq), (602, 602));
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
    // syslog went on before audit_log was set: its config_changed has no file record.
    while got.len() < file.len() + 1 {
        let n = receiver.recv(&mut buf).expect("a datagram per event");
        got.push(parse_datagram(std::str::from_utf8(&buf[..n]).unwrap()));
    }
    assert_eq!(got[0].msgid, "config_changed");
    assert!(!got[0].msg.contains("\"mac\""));
    for (d, r) in got[1..].iter().zip(&file) {
        assert_eq!(d.msgid, r.event);
        assert_eq!(d.msg, r.line().trim_end(), "MSG is the record's line");
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
