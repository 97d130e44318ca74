//! `bg_drill` end to end: a marked test alert through every channel (an SMTP server, a JSON
//! receiver that takes it, a PagerDuty receiver that refuses it with a body, an Alertmanager
//! receiver that hangs), the per-channel report through the callback, and the status.

use std::ffi::{c_char, c_void, CStr};
use std::sync::Mutex;
use std::time::Duration;

use breakglass::ffi::bg_status::*;
use breakglass::ffi::drill::{
    bg_drill, BG_DRILL_DELIVERED, BG_DRILL_REFUSED, BG_DRILL_TIMED_OUT, BG_DRILL_UNREACHABLE,
};
use serde_json::Value;

use super::hookserver::{Answer, HookServer};
use super::smtpserver::SmtpServer;
use super::{configure, serial};

type Lines = Mutex<Vec<(String, i32, String)>>;

unsafe extern "C" fn collect(
    channel: *const c_char,
    outcome: i32,
    detail: *const c_char,
    user: *mut c_void,
) {
    let lines = unsafe { &*(user as *const Lines) };
    let text = |p| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
    lines
        .lock()
        .unwrap()
        .push((text(channel), outcome, text(detail)));
}

fn drill(timeout_ms: u32) -> (i32, Vec<(String, i32, String)>) {
    let lines: Lines = Mutex::default();
    let st = unsafe {
        bg_drill(
            timeout_ms,
            Some(collect),
            &lines as *const Lines as *mut c_void,
        )
    };
    (st as i32, lines.into_inner().unwrap())
}

#[test]
fn the_drill_reports_each_channel_and_fails_when_one_does() {
    let _g = serial();
    breakglass::config::reset();
    assert_eq!(
        unsafe { bg_drill(0, None, std::ptr::null_mut()) },
        BG_ERR_NOT_CONFIGURED
    );
    let Some(smtp) = SmtpServer::start("ok") else {
        eprintln!("SKIPPED: no Python with aiosmtpd (run make deps, or set BG_TEST_PYTHON)");
        return;
    };
    let json = HookServer::always(Answer::Status(200, "{}"));
    let pd = HookServer::always(Answer::Status(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#,
    ));
    let am = HookServer::always(Answer::Hang);
    for (k, v) in [
        ("mailer", smtp.url()),
        ("from_email", "bg@example.com".into()),
        ("alert_emails", "ops@example.com".into()),
        ("alert_webhook_url", json.url("/hook")),
        (
            "alert_webhooks",
            format!(
                "pagerduty={} alertmanager={}",
                pd.url("/v2/enqueue"),
                am.url("/")
            ),
        ),
        ("pagerduty_routing_key", "short".into()),
        ("alert_webhook_secret", "drill-secret".into()),
        ("delivery_timeout_ms", "400".into()),
    ] {
        assert_eq!(configure(k, Some(&v)), BG_OK, "{k}");
    }
    let before = breakglass::stats();

    let (st, lines) = drill(0);
    assert_eq!(st, BG_DRILL_FAILED as i32);
    let channels: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        channels,
        [
            "email ops@example.com",
            &format!("webhook json http://127.0.0.1:{}", json.port),
            &format!("webhook pagerduty http://127.0.0.1:{}", pd.port),
            &format!("webhook alertmanager http://127.0.0.1:{}", am.port),
        ]
    );
    let outcomes: Vec<i32> = lines.iter().map(|l| l.1).collect();
    assert_eq!(
        outcomes,
        [
            BG_DRILL_DELIVERED,
            BG_DRILL_DELIVERED,
            BG_DRILL_REFUSED,
            BG_DRILL_TIMED_OUT
        ]
    );
    assert_eq!((lines[0].2.as_str(), lines[1].2.as_str()), ("", ""));
    assert!(
        lines[2].2.starts_with("HTTP 400") && lines[2].2.contains("routing_key"),
        "the peer's answer: {}",
        lines[2].2
    );
    assert!(!lines.iter().any(|l| l.2.contains("short")), "no key shown");

    // What arrived is marked as a drill, never as a login.
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    let data = mails[0]["data"].as_str().unwrap();
    let subject = data
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap();
    assert!(subject.starts_with("[DRILL]"), "{subject}");
    let j: Value = serde_json::from_str(&json.requests()[0].body).unwrap();
    assert_eq!(j["event"], "break_glass_drill");
    assert_eq!(j["severity"], "info");
    assert!(data.contains(j["id"].as_str().unwrap()), "one event id");
    let p: Value = serde_json::from_str(&pd.requests()[0].body).unwrap();
    assert!(p["payload"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("[DRILL]"));
    assert_eq!(p["payload"]["severity"], "info");
    assert_eq!(pd.requests().len(), 1, "400 is final");
    let a: Value = serde_json::from_str(&am.requests()[0].body).unwrap();
    assert_eq!(a[0]["labels"]["alertname"], "BreakGlassDrill");
    // The drill is not a real alert: the counters do not move.
    assert_eq!(breakglass::stats(), before);

    // All channels healthy: BG_OK.
    drop(am);
    assert_eq!(configure("alert_webhooks", None), BG_OK);
    let (st, lines) = drill(20_000);
    assert_eq!(st, BG_OK as i32, "{lines:?}");
    assert_eq!(lines.len(), 2);

    // A receiver nothing listens on is unreachable.
    let gone = HookServer::always(Answer::Status(200, ""));
    let url = gone.url("/");
    drop(gone);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(configure("alert_webhook_url", Some(&url)), BG_OK);
    assert_eq!(configure("alert_emails", None), BG_OK);
    let (st, lines) = drill(20_000);
    assert_eq!(st, BG_DRILL_FAILED as i32);
    assert_eq!(lines[0].1, BG_DRILL_UNREACHABLE, "{lines:?}");
    breakglass::config::reset();
}
