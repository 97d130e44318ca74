//! What is particular to the Redis store, on a real redis-server that the test starts on a
//! loopback port (the login suite itself runs on every store, see `login.rs`): what is kept in
//! Redis, one connection reused across attempts, a held lease, a damaged state and an outage
//! are denials within the bound.

use std::ffi::CString;

use breakglass::ffi::bg_status::{self, *};
use breakglass::ffi::login::*;

use super::redis_server::{redis, Server};
use super::{begin, complete, configure, serial};

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
fn the_state_lives_in_redis_without_tokens_or_passwords() {
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
    let code = newest_code(&out);
    let (st, token) = complete("192.0.2.1", &code);
    assert_eq!(st, BG_OK);
    assert_eq!(left("192.0.2.1"), (BG_OK, 5));
    breakglass::login::reset_all();
    assert_eq!(session(&token), BG_OK, "the session lives in Redis");
    // No lease is left behind, and the state holds no token, no used code, no password.
    assert_eq!(
        server.command("EXISTS bgtest:otp:login:lock").unwrap(),
        ":0"
    );
    let stored = server.command("GET bgtest:otp:login:state").unwrap();
    assert!(stored.starts_with("breakglass-login-state"), "{stored}");
    assert!(!stored.contains(&token) && !stored.contains(&code) && !stored.contains("pw"));
    teardown();
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn attempts_reuse_pooled_connections() {
    let _g = serial();
    let server = redis();
    let out = outbox("pool");
    setup(&server, &out);
    let before = server.connections_received();
    for i in 0..100 {
        let _ = complete(&format!("203.0.113.{}", i % 200), "000000");
    }
    // Each probe of the test's own opens one connection too (two, this one included).
    let after = server.connections_received() - 2;
    assert!(
        after - before <= 2,
        "{} connections for 100 attempts",
        after - before
    );
    teardown();
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_held_lease_or_a_damaged_state_is_a_bounded_denial() {
    let _g = serial();
    let server = redis();
    let out = outbox("lease");
    setup(&server, &out);
    assert_eq!(configure("slot_timeout_ms", Some("300")), BG_OK);
    // Someone holds the lease and never lets go: a bounded wait, then a denial.
    assert_eq!(
        server
            .command("SET bgtest:otp:login:lock stuck PX 60000")
            .unwrap(),
        "+OK"
    );
    let t = std::time::Instant::now();
    assert_eq!(begin("192.0.2.1", "pw"), BG_ERR_BACKEND);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(server.command("DEL bgtest:otp:login:lock").unwrap(), ":1");
    // A damaged state: a denial, never an empty (reset) state.
    assert_eq!(
        server
            .command("SET bgtest:otp:login:state garbage")
            .unwrap(),
        "+OK"
    );
    assert_eq!(begin("192.0.2.1", "pw"), BG_ERR_BACKEND);
    assert_eq!(left("192.0.2.1").0, BG_ERR_BACKEND);
    assert_eq!(
        server.command("GET bgtest:otp:login:state").unwrap(),
        "garbage"
    );
    assert_eq!(configure("slot_timeout_ms", None), BG_OK);
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
