//! Recovery codes and mail health through the C ABI: a login with a recovery code while the
//! mailer is down (a port with nothing listening), no second use, a wrong recovery code as a
//! failure, the health call naming the failing mailer, and the file outbox's mode and headers.

use std::ffi::c_char;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use breakglass::ffi::bg_status::*;
use breakglass::ffi::health::{bg_delivery_health, bg_delivery_path};

use super::hookserver::{Answer, HookServer};
use super::{begin, complete, configure, left, serial};

const PASSWORD: &str = "correct horse battery staple";
const IP: &str = "192.0.2.20";

pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("bg-recovery-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port with nothing listening.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The rows `bg_delivery_health` reports: (path, failing, reason).
pub fn health() -> Vec<(String, bool, String)> {
    let mut n = 0usize;
    assert_eq!(
        unsafe { bg_delivery_health(std::ptr::null_mut(), 0, &mut n) },
        BG_OK
    );
    let blank = bg_delivery_path {
        path: [0; 128],
        last_success_ms: 0,
        last_failure_ms: 0,
        last_failure_reason: [0; 256],
        failing: 0,
    };
    let mut rows = vec![blank; n];
    let mut m = 0usize;
    assert_eq!(
        unsafe { bg_delivery_health(rows.as_mut_ptr(), rows.len(), &mut m) },
        BG_OK
    );
    assert_eq!(m, n);
    let text = |b: &[c_char]| {
        let bytes: Vec<u8> = b
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8(bytes).unwrap()
    };
    rows.iter()
        .map(|r| (text(&r.path), r.failing == 1, text(&r.last_failure_reason)))
        .collect()
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 1100];
    let st = unsafe { breakglass::ffi::last_error::bg_last_error(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(st, BG_OK);
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn setup(mailer: &str, codes_file: &std::path::Path, hook: &str) {
    breakglass::login::reset_all();
    assert_eq!(breakglass::ffi::slot::bg_clear(), BG_OK);
    let hash = breakglass::login::hash_password(PASSWORD.as_bytes()).unwrap();
    for (k, v) in [
        ("mailer", mailer.to_owned()),
        ("from_email", "bg@example.com".into()),
        ("otp_email", "oncall@example.com".into()),
        ("password_hash", hash),
        ("allowed_ips", "192.0.2.0/24".into()),
        ("delivery_timeout_ms", "1000".into()),
        ("recovery_codes_file", codes_file.display().to_string()),
        ("alert_webhook_url", hook.to_owned()),
    ] {
        assert_eq!(configure(k, Some(&v)), BG_OK, "{k}");
    }
}

fn teardown() {
    for k in [
        "mailer",
        "from_email",
        "otp_email",
        "password_hash",
        "allowed_ips",
        "delivery_timeout_ms",
        "recovery_codes_file",
        "alert_webhook_url",
    ] {
        assert_eq!(configure(k, None), BG_OK);
    }
    breakglass::login::reset_all();
}

#[test]
fn a_recovery_code_logs_in_while_the_mailer_is_down_and_only_once() {
    let _g = serial();
    let dir = Dir::new("maildown");
    let file = dir.0.join("codes");
    let codes = breakglass::recovery::write_new(&file, 3).unwrap();
    let hook = HookServer::always(Answer::Status(200, "{}"));
    let mailer = format!("smtp://127.0.0.1:{}?tls=opportunistic", dead_port());
    setup(&mailer, &file, &hook.url("/hook"));

    // The code email is only queued: BG_OK, and then the health call tells the truth.
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(breakglass::ffi::delivery::bg_flush(30_000), BG_OK);
    let rows = health();
    let code_row = rows.iter().find(|r| r.0 == "code email").unwrap();
    assert!(code_row.1, "the code email is failing: {rows:?}");
    assert!(!code_row.2.is_empty(), "with a reason: {rows:?}");

    // Typed as a person would: lower case, spaces instead of dashes.
    let typed = codes[1].to_lowercase().replace('-', " ");
    let (st, token) = complete(IP, &typed);
    assert_eq!(st, BG_OK, "{}", last_error());
    assert_eq!(token.len(), 43);
    assert_eq!(left(IP), 5);

    // The alarm has its own event, critical, with the codes left (2 of 3: below 3, a warning).
    assert!(hook.wait_for(1, std::time::Duration::from_secs(20)));
    let body: serde_json::Value = serde_json::from_str(&hook.requests()[0].body).unwrap();
    assert_eq!(body["event"], "break_glass_recovery_code_used");
    assert_eq!(body["severity"], "critical");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("2 of 3 recovery codes left") && msg.contains("fewer than 3"),
        "{msg}"
    );
    let raw = &hook.requests()[0].body;
    assert!(!raw.contains(codes[1].as_str()) && !raw.contains(&codes[1].replace('-', "")));

    // The same code again, after the right password: refused and counted.
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    let (st, _) = complete(IP, &codes[1]);
    assert_eq!(st, BG_INVALID);
    assert_eq!(left(IP), 4);
    // Another code of the set still works.
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, &codes[0]).0, BG_OK);
    teardown();
}

#[test]
fn recovery_codes_need_the_password_and_wrong_ones_count_as_failures() {
    let _g = serial();
    let dir = Dir::new("wrong");
    let file = dir.0.join("codes");
    let codes = breakglass::recovery::write_new(&file, 2).unwrap();
    let hook = HookServer::always(Answer::Status(200, "{}"));
    setup(
        &format!("file://{}", dir.0.display()),
        &file,
        &hook.url("/hook"),
    );
    // Without the password first, a right recovery code does not log in, and counts.
    assert_eq!(complete(IP, &codes[0]).0, BG_NO_PENDING_OTP);
    assert_eq!(left(IP), 4);
    // A wrong recovery code after the right password: one failure, like a wrong emailed code.
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, "AAAA-BBBB-CCCC-DDDD").0, BG_INVALID);
    assert_eq!(left(IP), 3);
    // Not even a possible code (too short, a letter outside the alphabet): the same.
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, "not-a-code").0, BG_INVALID);
    assert_eq!(left(IP), 2);
    // The right one still works, once; it was not consumed by the failures.
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, &codes[0]).0, BG_OK);
    // An unreadable file is a denial, never a grant.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_ne!(complete(IP, &codes[1]).0, BG_OK);
    teardown();
}

#[test]
fn the_outbox_writes_0600_files_with_message_id_and_date() {
    let _g = serial();
    let dir = Dir::new("outbox");
    let outbox = dir.0.join("out");
    std::fs::create_dir(&outbox).unwrap();
    let file = dir.0.join("codes");
    breakglass::recovery::write_new(&file, 1).unwrap();
    let hook = HookServer::always(Answer::Status(200, "{}"));
    setup(
        &format!("file://{}", outbox.display()),
        &file,
        &hook.url("/hook"),
    );
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(breakglass::ffi::delivery::bg_flush(10_000), BG_OK);
    let files: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "an outbox file holds a live code");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let headers = text.split("\r\n\r\n").next().unwrap();
    let mid = headers
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap_or_else(|| panic!("no Message-ID in {headers}"));
    assert!(
        mid.starts_with('<') && mid.ends_with("@example.com>"),
        "{mid}"
    );
    assert!(
        headers.lines().any(|l| l.starts_with("Date: ")),
        "{headers}"
    );
    let row = health().into_iter().find(|r| r.0 == "code email").unwrap();
    assert!(!row.1, "delivered: {row:?}");
    teardown();
}

/// The environment variable that makes [`redis_child_process`] act (it is a no-op otherwise).
const CHILD_ENV: &str = "BG_RECOVERY_CHILD";

/// The shared state on Redis, with the mailer down (`mailer` names a dead port).
fn setup_redis(port: u16, mailer: &str, file: &std::path::Path) {
    setup_store(&format!("redis:{port}"), mailer, file);
}

/// The shared state in `store` (`redis:PORT` or `dir:/path`), with the mailer down.
fn setup_store(store: &str, mailer: &str, file: &std::path::Path) {
    setup(mailer, file, "http://127.0.0.1:9/unused");
    let shared = match store.split_once(':') {
        Some(("redis", port)) => vec![
            ("slot_url", format!("redis://127.0.0.1:{port}")),
            ("slot_key", "bgtest:recovery".to_string()),
        ],
        Some(("dir", path)) => vec![("state_dir", path.to_string())],
        _ => panic!("{store}"),
    };
    for (k, v) in shared
        .into_iter()
        .chain([("alert_webhook_url", String::new())])
    {
        assert_eq!(configure(k, Some(&v)), BG_OK, "{k}");
    }
}

/// Run by [`a_recovery_code_used_in_one_process_is_refused_in_another_on_redis`] as a separate
/// process: logs in with the code it is given and prints the status.
#[test]
fn redis_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _g = serial();
    let parts: Vec<&str> = spec.split('|').collect();
    let (store, mailer, file, code) = (parts[0], parts[1], parts[2], parts[3]);
    setup_store(store, mailer, file.as_ref());
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    let (st, _) = complete(IP, code);
    println!("CHILD_STATUS {}", st as i32);
    teardown();
    assert_eq!(configure("slot_url", None), BG_OK);
    assert_eq!(configure("state_dir", None), BG_OK);
}

fn in_child(port: u16, mailer: &str, file: &std::path::Path, code: &str) -> i32 {
    in_child_on(&format!("redis:{port}"), mailer, file, code)
}

fn in_child_on(store: &str, mailer: &str, file: &std::path::Path, code: &str) -> i32 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["recovery::redis_child_process", "--exact", "--nocapture"])
        .env(
            CHILD_ENV,
            format!("{store}|{mailer}|{}|{code}", file.display()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("CHILD_STATUS "))
        .unwrap_or_else(|| {
            panic!(
                "the child did not report:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .parse()
        .unwrap()
}

#[test]
fn a_recovery_code_used_in_one_process_is_refused_in_another_on_redis() {
    let _g = serial();
    let server = super::redis_server::redis();
    let dir = Dir::new("redis");
    let file = dir.0.join("codes");
    let codes = breakglass::recovery::write_new(&file, 4).unwrap();
    let mailer = format!("smtp://127.0.0.1:{}?tls=opportunistic", dead_port());
    setup_redis(server.port, &mailer, &file);
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, &codes[0]).0, BG_OK);
    // Another process, sharing the state through the same Redis: the used code is refused,
    // an unused one works (so the refusal is not the child failing for another reason).
    assert_eq!(
        in_child(server.port, &mailer, &file, &codes[0]),
        BG_INVALID as i32
    );
    assert_eq!(
        in_child(server.port, &mailer, &file, &codes[2]),
        BG_OK as i32
    );
    // And back here, the child's code is used too.
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, &codes[2]).0, BG_INVALID);

    // check-config counts the used codes on the shared slot: 4 - 2 = 2 left, a warning.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_breakglass"))
        .arg("check-config")
        .env_clear()
        .env(
            "BREAKGLASS_SLOT_URL",
            format!("redis://127.0.0.1:{}", server.port),
        )
        .env("BREAKGLASS_SLOT_KEY", "bgtest:recovery")
        .env("BREAKGLASS_RECOVERY_CODES_FILE", &file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let l = stdout
        .lines()
        .find(|l| l.contains("recovery_codes_file:"))
        .unwrap();
    assert!(
        l.starts_with("WARNING") && l.contains("2 code(s) unused"),
        "{stdout}"
    );

    // Racing consumes of one code on the server: exactly one wins.
    let wins: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let settings = breakglass::config::current();
                    breakglass::recovery::consume(&settings, &[9u8; 32], 1).unwrap() as usize
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
    teardown();
    assert_eq!(configure("slot_url", None), BG_OK);
    assert_eq!(configure("slot_key", None), BG_OK);
}

/// The same on `state_dir`: the processes of one host share the used codes.
#[test]
fn a_recovery_code_used_in_one_process_is_refused_in_another_on_state_dir() {
    let _g = serial();
    let dir = Dir::new("state-dir");
    let file = dir.0.join("codes");
    let state = dir.0.join("state");
    let store = format!("dir:{}", state.display());
    let codes = breakglass::recovery::write_new(&file, 4).unwrap();
    let mailer = format!("smtp://127.0.0.1:{}?tls=opportunistic", dead_port());
    setup_store(&store, &mailer, &file);
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, &codes[1]).0, BG_OK);
    assert_eq!(
        in_child_on(&store, &mailer, &file, &codes[1]),
        BG_INVALID as i32
    );
    assert_eq!(in_child_on(&store, &mailer, &file, &codes[3]), BG_OK as i32);
    assert_eq!(begin(IP, PASSWORD), BG_OK);
    assert_eq!(complete(IP, &codes[3]).0, BG_INVALID);
    teardown();
    assert_eq!(configure("state_dir", None), BG_OK);
}
