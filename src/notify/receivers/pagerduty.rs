//! PagerDuty Events API v2: one `trigger` event per alert.
//!
//! `dedup_key` is the alert's event id, so PagerDuty folds retries of one alert into one
//! incident. A drill says DRILL in its summary and has severity `info`. The routing key is a
//! credential: it is only ever in the body.

use serde_json::json;

use crate::notify::message::{Alert, AlertKind};

/// PagerDuty's limit on `payload.summary`, in characters.
const MAX_SUMMARY: usize = 1024;

/// The Events API v2 body for `alert`.
pub fn body(alert: &Alert, routing_key: &str) -> String {
    let mut summary = alert.summary(&alert.ip_escaped);
    if alert.kind == AlertKind::Drill {
        summary.insert_str(0, "[DRILL] ");
    }
    let summary: String = summary.chars().take(MAX_SUMMARY).collect();
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.id,
        "payload": {
            "summary": summary,
            "source": alert.host,
            "severity": alert.kind.severity(),
            "timestamp": alert.timestamp,
            "component": "breakglass",
            "class": alert.kind.event(),
            "custom_details": {
                "event": alert.kind.event(),
                "event_id": alert.id,
                "ip": alert.ip,
                "dropped_before": alert.dropped_before,
                "audit_head": alert.audit_head,
            },
        },
    })
    .to_string()
}
