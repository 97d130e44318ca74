//! The fire drill: a marked test alert through every configured alert channel, waited for.
//!
//! Owns the drill's channels, its wait and its report. It goes through the same renderers and
//! senders as a real alert (the email builder and transport, each receiver's body, signature
//! and POST with their retries), so a delivered drill proves that path end to end; but it runs
//! on threads of its own rather than the delivery queue, so it never waits behind real alerts
//! and never holds a worker they need. It must never look like a real alarm: the event is
//! `break_glass_drill`, every subject and summary says DRILL, and it is not counted in the
//! delivery counters (which report real alerts).

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::email;
use super::health;
use super::message::{self, Alert};
use super::retry::{self, Cause, Failure};
use crate::config::{self, Settings};
use crate::error::{Error, Result};

/// How one channel's drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillOutcome {
    /// The peer took it (HTTP 2xx, SMTP 250, written to the outbox).
    Delivered,
    /// The peer answered and said no (HTTP 4xx/5xx, SMTP 5xx or a 4xx to the last attempt);
    /// the detail holds its answer.
    Refused,
    /// No answer in time: every attempt timed out, or no outcome came before the drill's
    /// own deadline.
    TimedOut,
    /// It never reached a peer that answered (connection refused, name not found, TLS, a
    /// missing setting).
    Unreachable,
}

impl DrillOutcome {
    /// A fixed name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            DrillOutcome::Delivered => "delivered",
            DrillOutcome::Refused => "refused",
            DrillOutcome::TimedOut => "timed out",
            DrillOutcome::Unreachable => "unreachable",
        }
    }
}

/// One channel's line of the drill report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReport {
    /// `email <address>` or `webhook <format> <scheme://host:port>` (never a path or a key).
    pub channel: String,
    /// How it ended.
    pub outcome: DrillOutcome,
    /// The peer's answer or the reason; "" when delivered.
    pub detail: String,
}

/// The longest a drill waits by default: every attempt of a delivery at its timeout, the
/// pauses between them, and a second of slack for the threads.
pub fn default_wait(s: &Settings) -> Duration {
    let pauses: Duration = (1..retry::ATTEMPTS).map(retry::backoff).sum();
    s.delivery_timeout * retry::ATTEMPTS + pauses + Duration::from_secs(1)
}

fn judge(failure: &Failure) -> DrillOutcome {
    match failure.cause() {
        Cause::Refused => DrillOutcome::Refused,
        Cause::TimedOut => DrillOutcome::TimedOut,
        Cause::Unreachable => DrillOutcome::Unreachable,
    }
}

fn report(channel: String, result: std::result::Result<(), Failure>) -> ChannelReport {
    match result {
        Ok(()) => ChannelReport {
            channel,
            outcome: DrillOutcome::Delivered,
            detail: String::new(),
        },
        Err(f) => ChannelReport {
            channel,
            outcome: judge(&f),
            detail: f.reason().to_owned(),
        },
    }
}

/// Sends a drill alert through every configured alert channel (one per `alert_emails`
/// recipient, one per webhook receiver), waits up to `wait` (`None`: `default_wait`) for
/// every outcome, and reports them in that order. `Err(NotConfigured)` when no channel is
/// configured. Blocks the calling thread; logs each outcome.
pub fn drill(wait: Option<Duration>) -> Result<Vec<ChannelReport>> {
    let s = config::current();
    let deadline = Instant::now() + wait.unwrap_or_else(|| default_wait(&s));
    let alert = Arc::new(Alert::drill());
    let mut channels: Vec<String> = Vec::new();
    let (tx, rx) = mpsc::channel::<(usize, ChannelReport)>();

    if let Some(list) = s.alert_emails.as_ref().filter(|l| !l.is_empty()) {
        let first = channels.len();
        channels.extend(list.iter().map(|to| format!("email {}", to.email)));
        let (s, alert, tx) = (s.clone(), alert.clone(), tx.clone());
        spawn(move || {
            for (i, r) in drill_mail(&s, &alert).into_iter().enumerate() {
                let _ = tx.send((first + i, r));
            }
        });
    }
    if let Some(to) = &s.otp_email {
        // The path an emergency needs first: the code email, to otp_email.
        let n = channels.len();
        channels.push(format!("code email {}", to.email));
        let (s, alert, tx) = (s.clone(), alert.clone(), tx.clone());
        spawn(move || {
            let _ = tx.send((n, drill_code_mail(&s, &alert)));
        });
    }
    for r in s.receivers() {
        let n = channels.len();
        channels.push(r.name());
        let (s, alert, tx) = (s.clone(), alert.clone(), tx.clone());
        spawn(move || {
            let result = super::post_to_receiver(&s, &r, &alert);
            health::note(&r.name(), result.as_ref().err().map(|f| f.reason()));
            let _ = tx.send((n, report(r.name(), result)));
        });
    }
    drop(tx);
    if channels.is_empty() {
        return Err(Error::NotConfigured(
            "a drill needs a channel (an alert channel or otp_email): otp_email, alert_emails, \
             alert_webhook_url or alert_webhooks",
        ));
    }
    log::warn!(
        "break-glass alarm drill (event {}) through {} channel(s)",
        alert.id,
        channels.len()
    );

    let mut got: Vec<Option<ChannelReport>> = channels.iter().map(|_| None).collect();
    while got.iter().any(Option::is_none) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(left) {
            Ok((i, r)) => got[i] = Some(r),
            Err(_) => break,
        }
    }
    let reports: Vec<ChannelReport> = got
        .into_iter()
        .zip(channels)
        .map(|(r, channel)| {
            r.unwrap_or(ChannelReport {
                channel,
                outcome: DrillOutcome::TimedOut,
                detail: "no outcome before the drill's deadline".into(),
            })
        })
        .collect();
    for r in &reports {
        if r.outcome == DrillOutcome::Delivered {
            log::info!("drill (event {}): {} delivered", alert.id, r.channel);
        } else {
            log::error!(
                "drill (event {}): {} {}: {}",
                alert.id,
                r.channel,
                r.outcome.name(),
                r.detail
            );
        }
    }
    Ok(reports)
}

/// The drill email to every recipient, over the mailer's one session, one report each.
fn drill_mail(s: &Settings, alert: &Alert) -> Vec<ChannelReport> {
    let Some(list) = &s.alert_emails else {
        return Vec::new();
    };
    let (Some(mailer), Some(from)) = (&s.mailer, &s.from_email) else {
        return list
            .iter()
            .map(|to| ChannelReport {
                channel: format!("email {}", to.email),
                outcome: DrillOutcome::Unreachable,
                detail: "alert email needs mailer and from_email".into(),
            })
            .collect();
    };
    let mut reports: Vec<Option<ChannelReport>> = list.iter().map(|_| None).collect();
    let mut mails = Vec::new();
    let mut index = Vec::new();
    for (i, to) in list.iter().enumerate() {
        match message::alert_email(from, to, alert) {
            Ok(m) => {
                mails.push(m);
                index.push(i);
            }
            Err(why) => {
                reports[i] = Some(report(
                    format!("email {}", to.email),
                    Err(Failure::Permanent(Cause::Unreachable, why)),
                ))
            }
        }
    }
    let results = email::deliver(mailer, s.delivery_timeout, &mails);
    for ((i, mail), result) in index.into_iter().zip(&mails).zip(results) {
        health::note(
            health::ALERT_EMAIL,
            result.as_ref().err().map(|f| f.reason()),
        );
        reports[i] = Some(report(format!("email {}", mail.to.email), result));
    }
    reports.into_iter().flatten().collect()
}

/// The `[DRILL]` code email to `otp_email` (no code in it), through the code email's path.
fn drill_code_mail(s: &Settings, alert: &Alert) -> ChannelReport {
    let Some(to) = &s.otp_email else {
        unreachable!("called only with otp_email set")
    };
    let channel = format!("code email {}", to.email);
    let (Some(mailer), Some(from)) = (&s.mailer, &s.from_email) else {
        return ChannelReport {
            channel,
            outcome: DrillOutcome::Unreachable,
            detail: "the code email needs mailer and from_email".into(),
        };
    };
    let result = message::drill_code_email(from, to, alert)
        .map_err(|why| Failure::Permanent(Cause::Unreachable, why))
        .and_then(|m| {
            email::deliver(mailer, s.delivery_timeout, std::slice::from_ref(&m))
                .pop()
                .unwrap_or_else(|| {
                    Err(Failure::Transient(
                        Cause::Unreachable,
                        "not attempted".into(),
                    ))
                })
        });
    health::note(
        health::CODE_EMAIL,
        result.as_ref().err().map(|f| f.reason()),
    );
    report(channel, result)
}

/// A drill thread: SIGPIPE blocked like the delivery workers (a dead sendmail pipe must not
/// kill the host). It ends by itself: every delivery is bounded by its timeout and retries.
fn spawn(f: impl FnOnce() + Send + 'static) {
    let started = std::thread::Builder::new()
        .name("breakglass-drill".into())
        .spawn(move || {
            crate::sys::block_sigpipe_in_this_thread();
            f();
        });
    if let Err(e) = started {
        log::error!("cannot start a drill thread ({e}); its channel reports a time-out");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By the cause the sender recorded, never by the text: a reason that reads like another
    /// cause does not change the outcome.
    #[test]
    fn failures_are_judged_by_who_answered() {
        let t = |c: Cause, r: &str| judge(&Failure::Transient(c, r.into()));
        assert_eq!(t(Cause::Refused, "HTTP 503"), DrillOutcome::Refused);
        assert_eq!(
            t(Cause::Refused, "connection failed"),
            DrillOutcome::Refused
        );
        assert_eq!(t(Cause::TimedOut, "HTTP 400"), DrillOutcome::TimedOut);
        assert_eq!(
            t(Cause::Unreachable, "timed out"),
            DrillOutcome::Unreachable
        );
    }
}
