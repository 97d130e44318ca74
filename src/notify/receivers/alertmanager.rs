//! Prometheus Alertmanager API v2 (`POST /api/v2/alerts`): an array of one alert.
//!
//! `endsAt` is a fixed [`ALERTMANAGER_DURATION_SECS`](super::ALERTMANAGER_DURATION_SECS) after
//! `startsAt`, so the alert resolves by itself. Retries of one alert carry the same labels
//! (the event id is one), which Alertmanager merges into one alert.

use std::time::Duration;

use serde_json::json;

use crate::notify::message::Alert;

/// The Alertmanager body for `alert`.
pub fn body(alert: &Alert) -> String {
    let (_, alertname) = alert.kind.title();
    let ends = alert.raised + Duration::from_secs(super::ALERTMANAGER_DURATION_SECS);
    json!([{
        "labels": {
            "alertname": alertname,
            "instance": alert.host,
            "severity": alert.kind.severity(),
            "event": alert.kind.event(),
            "event_id": alert.id,
            "job": "breakglass",
        },
        "annotations": {
            "summary": alert.summary(&alert.ip_escaped),
            "ip": alert.ip,
            "audit_head": alert.audit_head,
        },
        "startsAt": alert.timestamp,
        "endsAt": humantime::format_rfc3339_seconds(ends).to_string(),
    }])
    .to_string()
}
