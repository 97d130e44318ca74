//! Alert receivers against real local HTTP servers that check each body as its service
//! documents it: the library's JSON, Slack (text + blocks), PagerDuty Events API v2,
//! Alertmanager API v2; the signature on every format; PagerDuty's retry rules; several
//! receivers with one hung.

use std::time::{Duration, SystemTime};

use breakglass::ffi::bg_status::*;
use breakglass::ffi::delivery;
use serde_json::Value;

use super::hookserver::{Answer, HookServer, Request};
use super::{configure, serial};

const SECRET: &str = "receiver-secret";
const WAIT: Duration = Duration::from_secs(30);

/// Checks `X-Breakglass-Signature` with an HMAC computed here, not by the library.
fn assert_signed(req: &Request) {
    let got = req
        .headers
        .get("x-breakglass-signature")
        .unwrap_or_else(|| panic!("unsigned request to {}", req.path));
    let hex = got.strip_prefix("sha256=").expect("sha256= prefix");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    ring::hmac::verify(&key, req.body.as_bytes(), &bytes).expect("the signature matches the body");
    assert!(req.headers["content-type"].starts_with("application/json"));
    assert_eq!(req.method, "POST");
}

fn rfc3339(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().expect("a string time")).expect("RFC 3339 UTC")
}

fn alert(ip: &str) {
    let ip = std::ffi::CString::new(ip).unwrap();
    assert_eq!(unsafe { delivery::bg_alert(ip.as_ptr()) }, BG_OK);
}

fn is_event_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn every_format_reaches_its_receiver_as_the_service_documents_it() {
    let _g = serial();
    breakglass::config::reset();
    let json = HookServer::always(Answer::Status(200, "{}"));
    let slack = HookServer::always(Answer::Status(200, "ok"));
    let pagerduty = HookServer::always(Answer::Status(
        202,
        r#"{"status":"success","message":"Event processed"}"#,
    ));
    let alertmanager = HookServer::always(Answer::Status(200, ""));
    assert_eq!(
        configure("alert_webhook_url", Some(&json.url("/hook"))),
        BG_OK
    );
    let list = format!(
        "slack={}, pagerduty={} alertmanager={}",
        slack.url("/services/T0/B0/x"),
        pagerduty.url("/v2/enqueue"),
        alertmanager.url("")
    );
    assert_eq!(configure("alert_webhooks", Some(&list)), BG_OK);
    assert_eq!(configure("pagerduty_routing_key", Some("R0UTING")), BG_OK);
    assert_eq!(configure("alert_webhook_secret", Some(SECRET)), BG_OK);
    let before = breakglass::stats();

    alert("203.0.113.5");
    assert_eq!(delivery::bg_flush(30_000), BG_OK);
    for s in [&json, &slack, &pagerduty, &alertmanager] {
        assert!(s.wait_for(1, WAIT));
        assert_eq!(s.requests().len(), 1);
        assert_signed(&s.requests()[0]);
    }
    let after = breakglass::stats();
    assert_eq!(after.webhooks_sent - before.webhooks_sent, 4);
    assert_eq!(after.webhooks_failed, before.webhooks_failed);
    assert_eq!(after.queued - before.queued, 1);

    // The library's own JSON: exactly its seven keys, unchanged.
    let j: Value = serde_json::from_str(&json.requests()[0].body).unwrap();
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "audit_head",
            "event",
            "id",
            "ip",
            "message",
            "severity",
            "timestamp"
        ]
    );
    assert_eq!(j["event"], "break_glass_login");
    assert_eq!(j["severity"], "critical");
    assert!(is_event_id(&j["id"]));
    let id = j["id"].as_str().unwrap();

    // Slack: a `text` (notification fallback) and `blocks`, each block typed; text objects
    // are plain_text or mrkdwn.
    let sl: Value = serde_json::from_str(&slack.requests()[0].body).unwrap();
    assert!(sl["text"].as_str().unwrap().contains("203.0.113.5"));
    let blocks = sl["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    for b in blocks {
        let kind = b["type"].as_str().unwrap();
        assert!(["header", "section", "context"].contains(&kind), "{kind}");
        for t in [&b["text"]]
            .into_iter()
            .chain(b["fields"].as_array().into_iter().flatten())
            .chain(b["elements"].as_array().into_iter().flatten())
            .filter(|t| !t.is_null())
        {
            assert!(["plain_text", "mrkdwn"].contains(&t["type"].as_str().unwrap()));
            assert!(t["text"].as_str().unwrap().chars().count() <= 3000);
        }
    }
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(
        sl.to_string().contains(id),
        "the event id is in the message"
    );

    // PagerDuty Events API v2.
    let pd: Value = serde_json::from_str(&pagerduty.requests()[0].body).unwrap();
    assert_eq!(pagerduty.requests()[0].path, "/v2/enqueue");
    assert_eq!(pd["routing_key"], "R0UTING");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["dedup_key"], id);
    let p = &pd["payload"];
    assert!(p["summary"].as_str().unwrap().contains("203.0.113.5"));
    assert!(p["summary"].as_str().unwrap().chars().count() <= 1024);
    assert!(!p["source"].as_str().unwrap().is_empty());
    assert_eq!(p["severity"], "critical");
    rfc3339(&p["timestamp"]);
    assert!(p["custom_details"].is_object());
    assert_eq!(p["custom_details"]["event"], "break_glass_login");

    // Alertmanager API v2: POST /api/v2/alerts, an array of alerts.
    let am_req = &alertmanager.requests()[0];
    assert_eq!(am_req.path, "/api/v2/alerts");
    let am: Value = serde_json::from_str(&am_req.body).unwrap();
    let alerts = am.as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "BreakGlassLogin");
    assert!(!a["labels"]["instance"].as_str().unwrap().is_empty());
    assert!(a["labels"]
        .as_object()
        .unwrap()
        .values()
        .all(Value::is_string));
    assert!(a["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains("203.0.113.5"));
    let (starts, ends) = (rfc3339(&a["startsAt"]), rfc3339(&a["endsAt"]));
    assert!(ends > starts, "endsAt is later than startsAt");
    assert_eq!(a["labels"]["event_id"], id);
    breakglass::config::reset();
}

#[test]
fn pagerduty_retries_429_and_5xx_with_one_dedup_key_and_takes_400_as_final() {
    let _g = serial();
    breakglass::config::reset();
    let flaky = HookServer::scripted(|n| match n {
        0 => Answer::Status(429, r#"{"status":"throttle"}"#),
        1 => Answer::Status(503, ""),
        _ => Answer::Status(202, r#"{"status":"success"}"#),
    });
    assert_eq!(
        configure("alert_webhook_url", Some(&flaky.url("/v2/enqueue"))),
        BG_OK
    );
    assert_eq!(configure("alert_webhook_format", Some("pagerduty")), BG_OK);
    assert_eq!(configure("pagerduty_routing_key", Some("R0UTING")), BG_OK);
    assert_eq!(configure("alert_webhook_secret", Some(SECRET)), BG_OK);
    let before = breakglass::stats();
    alert("198.51.100.2");
    assert_eq!(delivery::bg_flush(30_000), BG_OK);
    let reqs = flaky.requests();
    assert_eq!(reqs.len(), 3, "429 and 503 are retried, 202 ends it");
    let keys: Vec<Value> = reqs
        .iter()
        .map(|r| {
            assert_signed(r);
            serde_json::from_str::<Value>(&r.body).unwrap()["dedup_key"].clone()
        })
        .collect();
    assert!(is_event_id(&keys[0]));
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "one dedup_key: {keys:?}"
    );
    let after = breakglass::stats();
    assert_eq!(after.webhooks_sent - before.webhooks_sent, 1);
    assert_eq!(after.webhooks_failed, before.webhooks_failed);

    let refusing = HookServer::always(Answer::Status(
        400,
        r#"{"status":"invalid event","errors":["x"]}"#,
    ));
    assert_eq!(
        configure("alert_webhook_url", Some(&refusing.url("/v2/enqueue"))),
        BG_OK
    );
    alert("198.51.100.3");
    assert_eq!(delivery::bg_flush(30_000), BG_OK);
    assert_eq!(refusing.requests().len(), 1, "400 is final: no retry");
    let last = breakglass::stats();
    assert_eq!(last.webhooks_failed - after.webhooks_failed, 1);
    assert_eq!(last.webhooks_sent, after.webhooks_sent);

    // Without a routing key there is nothing to send: a failure, counted, no request.
    assert_eq!(configure("pagerduty_routing_key", None), BG_OK);
    alert("198.51.100.4");
    assert_eq!(delivery::bg_flush(30_000), BG_OK);
    assert_eq!(refusing.requests().len(), 1);
    assert_eq!(
        breakglass::stats().webhooks_failed - last.webhooks_failed,
        1
    );
    breakglass::config::reset();
}

#[test]
fn a_hung_receiver_does_not_stop_the_others() {
    let _g = serial();
    breakglass::config::reset();
    let hung = HookServer::always(Answer::Hang);
    let slack = HookServer::always(Answer::Status(200, "ok"));
    let am = HookServer::always(Answer::Status(200, ""));
    // A minute per attempt: were the hung receiver served before the others on one worker,
    // they would wait minutes, far beyond WAIT.
    assert_eq!(configure("delivery_timeout_ms", Some("60000")), BG_OK);
    assert_eq!(
        configure("alert_webhook_url", Some(&hung.url("/hook"))),
        BG_OK
    );
    let list = format!("slack={} alertmanager={}", slack.url("/s"), am.url("/"));
    assert_eq!(configure("alert_webhooks", Some(&list)), BG_OK);
    for _ in 0..3 {
        alert("192.0.2.77");
    }
    assert!(slack.wait_for(3, WAIT), "slack got every alert");
    assert!(am.wait_for(3, WAIT), "alertmanager got every alert");
    assert_eq!(
        hung.requests().len(),
        1,
        "one request at a time to the hung one"
    );
    // Stopping the hung server ends its requests; the rest of its parts fail fast.
    drop(hung);
    assert_eq!(delivery::bg_flush(60_000), BG_OK);
    breakglass::config::reset();
}
