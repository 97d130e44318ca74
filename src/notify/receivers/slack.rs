//! Slack incoming webhook: `text` (the notification and fallback) plus `blocks`.
//!
//! Slack reads `&`, `<` and `>` in mrkdwn as markup (links, mentions such as `<!channel>`):
//! untrusted text is escaped as Slack documents, so an `ip` cannot ping a channel or plant a
//! link.

use serde_json::json;

use crate::notify::message::Alert;

/// Slack's escaping for text in mrkdwn and plain fields.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack message for `alert`.
pub fn body(alert: &Alert) -> String {
    let (title, _) = alert.kind.title();
    let summary = escape(&alert.summary(&alert.ip_escaped));
    json!({
        "text": format!("{title}: {summary}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*IP address*\n{}", escape(&alert.ip_escaped))},
                {"type": "mrkdwn", "text": format!("*Host*\n{}", escape(&alert.host))},
                {"type": "mrkdwn", "text": format!("*Time (UTC)*\n{}", alert.timestamp)},
                {"type": "mrkdwn", "text": format!("*Severity*\n{}", alert.kind.severity())},
            ]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!(
                    "event `{}` · id `{}` (the same id twice is a retry) · audit head `{}`",
                    alert.kind.event(), alert.id, alert.audit_head.as_deref().unwrap_or("none")
                )},
            ]},
        ],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_cannot_mention_or_link() {
        let alert = Alert::new(Some(b"<!channel> <http://evil|x> & co"), 0);
        let v: serde_json::Value = serde_json::from_str(&body(&alert)).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            !text.contains('<') && text.contains("&lt;!channel&gt;"),
            "{text}"
        );
        assert!(!v.to_string().contains("<!channel>"));
        assert_eq!(v["blocks"][0]["type"], "header");
        assert!(v["blocks"][3]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains(&alert.id));
    }
}
