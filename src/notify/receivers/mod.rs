//! The bodies of the alert webhook in each receiver format, and where each is POSTed.
//!
//! Owns the translation of one [`Alert`] into what a receiver documents: the library's own
//! JSON, Slack, PagerDuty Events API v2, Alertmanager API v2. Every format carries the alert's
//! event id, says DRILL for a drill, and is signed like the JSON (the signature is added by the
//! sender). It must never put untrusted text anywhere but in JSON strings (serde_json escapes
//! them) and, for Slack's mrkdwn, escaped as Slack documents; and never log a routing key.

mod alertmanager;
mod pagerduty;
mod slack;

use super::message::Alert;
use crate::config::{Receiver, Settings, WebhookFormat};

/// How long an Alertmanager alert lasts (`endsAt` − `startsAt`): an hour, so it resolves by
/// itself rather than staying firing for ever (the library never sends a resolve).
pub const ALERTMANAGER_DURATION_SECS: u64 = 3600;

/// Why a receiver's body could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// A `pagerduty` receiver without `pagerduty_routing_key`.
    NoRoutingKey,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::NoRoutingKey => f.write_str("pagerduty_routing_key is not set"),
        }
    }
}

/// The body `receiver` gets for `alert`.
pub fn body(receiver: &Receiver, s: &Settings, alert: &Alert) -> Result<String, RenderError> {
    Ok(match receiver.format {
        WebhookFormat::Json => alert.json(),
        WebhookFormat::Slack => slack::body(alert),
        WebhookFormat::PagerDuty => {
            let key = s
                .pagerduty_routing_key
                .as_ref()
                .ok_or(RenderError::NoRoutingKey)?;
            pagerduty::body(alert, key.expose())
        }
        WebhookFormat::Alertmanager => alertmanager::body(alert),
    })
}

/// The URL the POST goes to: as configured, except that an Alertmanager URL without a path
/// gets Alertmanager's `/api/v2/alerts`.
pub fn target(receiver: &Receiver) -> String {
    let url = receiver.url.as_str();
    if receiver.format == WebhookFormat::Alertmanager {
        if let Ok(mut parsed) = url::Url::parse(url) {
            if parsed.path() == "/" || parsed.path().is_empty() {
                parsed.set_path("/api/v2/alerts");
                return parsed.to_string();
            }
        }
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_receivers;

    #[test]
    fn alertmanager_gets_its_api_path_only_when_none_is_given() {
        let list = parse_receivers(
            "alertmanager=http://am:9093,alertmanager=http://am:9093/custom/path,json=http://h",
        )
        .unwrap();
        let targets: Vec<String> = list.iter().map(target).collect();
        assert_eq!(
            targets,
            [
                "http://am:9093/api/v2/alerts",
                "http://am:9093/custom/path",
                "http://h/"
            ]
        );
    }

    /// Every format renders every kind of alert, names it, and carries its event id.
    #[test]
    fn login_lockout_and_drill_render_in_every_format() {
        let list = parse_receivers(
            "json=http://h/ slack=http://h/ pagerduty=http://h/ alertmanager=http://h/",
        )
        .unwrap();
        let s = Settings {
            pagerduty_routing_key: Some(crate::config::Secret::new("k".into())),
            ..Settings::default()
        };
        let cases = [
            (
                Alert::new(Some(b"192.0.2.1"), 0),
                "break_glass_login",
                "BreakGlassLogin",
                "critical",
            ),
            (
                Alert::lockout(20, 900, 0),
                "break_glass_lockout",
                "BreakGlassLockout",
                "critical",
            ),
            (
                Alert::drill(),
                "break_glass_drill",
                "BreakGlassDrill",
                "info",
            ),
        ];
        for (alert, event, alertname, severity) in cases {
            let bodies: Vec<serde_json::Value> = list
                .iter()
                .map(|r| serde_json::from_str(&body(r, &s, &alert).unwrap()).unwrap())
                .collect();
            for b in &bodies {
                assert!(b.to_string().contains(&alert.id), "{b}");
            }
            let [json, slack, pd, am] = &bodies[..] else {
                panic!()
            };
            assert_eq!(
                (&json["event"], &json["severity"]),
                (&event.into(), &severity.into())
            );
            assert!(slack["text"]
                .as_str()
                .unwrap()
                .contains(&alert.kind.title().0.replace('&', "&amp;")));
            assert_eq!(pd["payload"]["severity"], severity);
            assert_eq!(pd["payload"]["custom_details"]["event"], event);
            assert_eq!(am[0]["labels"]["alertname"], alertname);
            assert_eq!(am[0]["labels"]["severity"], severity);
            let drill = alert.kind == crate::notify::message::AlertKind::Drill;
            assert_eq!(
                pd["payload"]["summary"]
                    .as_str()
                    .unwrap()
                    .starts_with("[DRILL]"),
                drill
            );
            assert_eq!(
                slack["text"].as_str().unwrap().starts_with("[DRILL]"),
                drill
            );
        }
    }

    #[test]
    fn pagerduty_needs_its_routing_key() {
        let list = parse_receivers("pagerduty=https://events.pagerduty.com/v2/enqueue").unwrap();
        let s = Settings::default();
        assert_eq!(
            body(&list[0], &s, &Alert::new(Some(b"192.0.2.1"), 0)),
            Err(RenderError::NoRoutingKey)
        );
    }
}
