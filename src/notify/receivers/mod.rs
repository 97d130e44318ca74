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
