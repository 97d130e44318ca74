//! Alert receivers: which webhook formats exist and the `alert_webhooks` list of `format=url`.
//!
//! Owns the parsing of `alert_webhook_format` and `alert_webhooks`, and the one list of
//! receivers the notifier walks ([`Settings::receivers`](super::Settings::receivers)). It must
//! never show a receiver's URL except redacted (Slack and PagerDuty URLs are credentials).

use super::urls::{parse_webhook_url, SecretUrl};

/// The most receivers `alert_webhooks` may name.
pub const MAX_RECEIVERS: usize = 16;

/// The body a receiver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The library's own six-key JSON (the default).
    Json,
    /// A Slack incoming webhook: `text` plus `blocks`.
    Slack,
    /// PagerDuty Events API v2 (`event_action: trigger`); needs `pagerduty_routing_key`.
    PagerDuty,
    /// Prometheus Alertmanager's `POST /api/v2/alerts`: an array of one alert.
    Alertmanager,
}

impl WebhookFormat {
    /// Every format, by the name `alert_webhook_format` takes.
    pub const ALL: [WebhookFormat; 4] = [
        WebhookFormat::Json,
        WebhookFormat::Slack,
        WebhookFormat::PagerDuty,
        WebhookFormat::Alertmanager,
    ];

    /// The name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::PagerDuty => "pagerduty",
            WebhookFormat::Alertmanager => "alertmanager",
        }
    }

    /// The format called `name`.
    pub fn parse(name: &str) -> Result<WebhookFormat, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == name.trim())
            .ok_or_else(|| "must be json, slack, pagerduty or alertmanager".to_owned())
    }
}

/// One place an alert is POSTed to, in one format.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// The body's format.
    pub format: WebhookFormat,
    /// Where it goes (for `alertmanager`, a URL without a path gets `/api/v2/alerts`).
    pub url: SecretUrl,
}

impl Receiver {
    /// `<format> <scheme://host:port>`: how the receiver is named in logs and drill reports.
    pub fn name(&self) -> String {
        format!("webhook {} {}", self.format.name(), self.url.redacted())
    }
}

/// Parses `format=url` entries separated by commas or white space (a URL that holds either
/// must percent-encode it). Empty text is an empty list.
pub fn parse_receivers(text: &str) -> Result<Vec<Receiver>, String> {
    let mut list = Vec::new();
    for entry in text.split(|c: char| c == ',' || c.is_whitespace()) {
        if entry.is_empty() {
            continue;
        }
        let (format, url) = entry
            .split_once('=')
            .ok_or("each entry is format=url (json, slack, pagerduty or alertmanager)")?;
        let format = WebhookFormat::parse(format)?;
        // The URL parser's own message names alert_webhook_url; say which entry instead,
        // without the URL (it may be a credential).
        let url = parse_webhook_url(url)
            .map_err(|_| format!("the {} entry's URL is not an http(s) URL", format.name()))?;
        list.push(Receiver { format, url });
        if list.len() > MAX_RECEIVERS {
            return Err(format!("at most {MAX_RECEIVERS} receivers"));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_lists() {
        let list = parse_receivers(
            "slack=https://hooks.slack.com/services/T/B/SECRET, \
             pagerduty=https://events.pagerduty.com/v2/enqueue\nalertmanager=http://am:9093",
        )
        .unwrap();
        let names: Vec<String> = list.iter().map(Receiver::name).collect();
        assert_eq!(
            names,
            [
                "webhook slack https://hooks.slack.com:443",
                "webhook pagerduty https://events.pagerduty.com:443",
                "webhook alertmanager http://am:9093",
            ]
        );
        assert!(parse_receivers("").unwrap().is_empty());
        for bad in ["teams=https://x", "https://x", "slack=ftp://x", "slack="] {
            let why = parse_receivers(bad).unwrap_err();
            assert!(!why.contains("://x"), "{why}");
        }
        let many = vec!["json=http://h/"; MAX_RECEIVERS + 1].join(",");
        assert!(parse_receivers(&many).is_err());
    }
}
