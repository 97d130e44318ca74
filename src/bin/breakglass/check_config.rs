//! `breakglass check-config`: applies `BREAKGLASS_*` as `bg_configure_from_env` does and says,
//! one line per item, whether the break-glass login flow can work with it.
//!
//! Owns the judgement of a whole configuration (what is required, what is only risky); the
//! validation of each value stays the library's. It must never print a secret: no password, no
//! hash, no webhook secret, and URLs only in the redacted forms the library gives.

use std::process::ExitCode;

use breakglass::config::{self, Mailer, Settings, SmtpTls, KEYS};
use breakglass::login::StoredHash;

/// How an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    /// Required and absent: the login flow cannot work.
    Missing,
    /// Present but unusable: the login flow cannot work.
    Error,
    /// Works, but probably not as meant.
    Warning,
    /// For the record.
    Info,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Missing => "MISSING",
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Info => "INFO",
        }
    }
}

/// Variables named `BREAKGLASS_*` that are not configuration keys but are read by the
/// project's own tools (the Python binding's library path): not reported as typos.
const NOT_KEYS: &[&str] = &["BREAKGLASS_LIBRARY"];

/// argon2id's memory × time below which a hash is weaker than OWASP's recommended minimum
/// (its lightest equivalent setting, m=7 MiB with t=5, in KiB × passes).
const ARGON2_MIN_WORK: u64 = 7 * 1024 * 5;

/// bcrypt's lowest cost OWASP recommends.
const BCRYPT_MIN_COST: u32 = 10;

pub fn run(args: &[String]) -> ExitCode {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            let _ = crate::out(crate::CHECK_USAGE);
            return ExitCode::SUCCESS;
        }
        eprintln!("breakglass check-config: unexpected argument {arg:?}");
        eprint!("{}", crate::CHECK_USAGE);
        return ExitCode::from(2);
    }
    // Read, not applied: checking an environment writes nothing to its audit trail.
    let settings = match config::from_env() {
        Ok(s) => s,
        Err(e) => {
            // The library's text names the key and the reason, never the value.
            eprintln!("breakglass check-config: the environment is refused, nothing applied: {e}");
            return ExitCode::from(2);
        }
    };
    let report = judge(&settings, &unknown_variables());
    let broken = report
        .iter()
        .filter(|(level, ..)| matches!(level, Level::Missing | Level::Error))
        .count();
    let mut text = String::new();
    for (level, item, detail) in &report {
        text += &format!("{:<8} {item}: {detail}\n", level.label());
    }
    text += &if broken == 0 {
        "the break-glass login flow can work with this configuration\n".to_owned()
    } else {
        format!("the break-glass login flow cannot work: {broken} item(s) MISSING or ERROR\n")
    };
    // The status is the verdict even when the report could not be written (`| head`): a
    // script may read only the status.
    if let Err(e) = crate::out(&text) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("breakglass check-config: cannot write the report: {e}");
        }
    }
    if broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

type Report = Vec<(Level, &'static str, String)>;

/// Every item, in the order an operator fixes them.
fn judge(s: &Settings, unknown: &[String]) -> Report {
    let mut r = Report::new();
    password(s, &mut r);
    code_email(s, &mut r);
    alerts(s, &mut r);
    allow_list(s, &mut r);
    match &s.slot.url {
        None => r.push((
            Level::Info,
            "slot_url",
            "unset: the in-process slot (a code verifies only in the process that issued it; \
             replicas need slot_url)"
                .into(),
        )),
        Some(url) => r.push((
            Level::Info,
            "slot_url",
            format!(
                "shared slot {}, key {} (not contacted here: every replica must use the same)",
                url.redacted(),
                s.slot.key
            ),
        )),
    }
    audit(s, &mut r);
    recovery_codes(s, &mut r);
    if s.dev_otp_log {
        r.push((
            Level::Warning,
            "dev_otp_log",
            "true: one-time codes are written to the log (development only)".into(),
        ));
    }
    for name in unknown {
        r.push((
            Level::Warning,
            "environment",
            format!("{name} is not a configuration key and is ignored (a typo?)"),
        ));
    }
    r
}

/// Whether this user can append to the audit file at `path` (opened as the library opens it,
/// without following a symlink), or, while it does not exist, create a file beside it and
/// append to that (a probe, removed at once: the trail itself is not touched).
fn can_create_and_append(path: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => return Err("is not a regular file".into()),
        Ok(_) => {
            return std::fs::OpenOptions::new()
                .append(true)
                .custom_flags(flags)
                .open(path)
                .map(drop)
                .map_err(|e| format!("cannot be opened for appending: {e}"))
        }
        Err(_) => {}
    }
    let dir = path.parent().ok_or("has no directory")?;
    let probe = dir.join(format!(".breakglass-check-{}", std::process::id()));
    let _ = std::fs::remove_file(&probe);
    let r = std::fs::OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(flags)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"\n"));
    let _ = std::fs::remove_file(&probe);
    r.map_err(|e| format!("cannot be created and appended to: {e}"))
}

/// The audit trail: where it goes, whether a login could be refused for it, its key, syslog.
/// Nothing is written or sent here.
fn audit(s: &Settings, r: &mut Report) {
    let a = &s.audit;
    match &a.log {
        None => r.push((
            Level::Info,
            "audit_log",
            "unset: no audit trail is kept".into(),
        )),
        Some(path) => {
            if let Err(what) = can_create_and_append(path) {
                r.push(if a.required {
                    (
                        Level::Error,
                        "audit_log",
                        format!(
                            "{}: {what}: with audit_required every login would be refused \
                             (BG_ERR_AUDIT)",
                            path.display()
                        ),
                    )
                } else {
                    (
                        Level::Warning,
                        "audit_log",
                        format!("{}: {what}: no login would be recorded", path.display()),
                    )
                });
            } else {
                r.push((
                    Level::Ok,
                    "audit_log",
                    format!(
                        "{} (audit_required {})",
                        path.display(),
                        if a.required { "on" } else { "off" }
                    ),
                ));
            }
            if a.key.is_none() {
                r.push((
                    Level::Warning,
                    "audit_key",
                    "unset: the chain is plain SHA-256, which anyone who can write the file can \
                     recompute"
                        .into(),
                ));
            }
        }
    }
    if a.syslog {
        let (level, detail) = if a.syslog_socket.exists() {
            (
                Level::Ok,
                format!("{} (authpriv)", a.syslog_socket.display()),
            )
        } else {
            (
                Level::Warning,
                format!(
                    "{} does not exist: no event reaches syslog",
                    a.syslog_socket.display()
                ),
            )
        };
        r.push((level, "syslog", detail));
    }
}

fn password(s: &Settings, r: &mut Report) {
    let (level, detail) = match &s.login.password_hash {
        None => (
            Level::Missing,
            "unset: no one can log in (make one with `breakglass hash-password`)".to_owned(),
        ),
        Some(StoredHash::Argon2id(phc)) => match argon2_params(phc) {
            Some((m, t, p)) if m * t < ARGON2_MIN_WORK => (
                Level::Warning,
                format!(
                    "argon2id with m={m} t={t} p={p}: weaker than OWASP's minimum (m=19456 t=2); \
                     make a new one with `breakglass hash-password`"
                ),
            ),
            Some((m, t, p)) => (Level::Ok, format!("argon2id (m={m} t={t} p={p})")),
            None => (Level::Ok, "argon2id".to_owned()),
        },
        Some(StoredHash::Bcrypt(h)) => {
            let cost = h.split('$').nth(2).and_then(|c| c.parse::<u32>().ok());
            match cost {
                Some(c) if c < BCRYPT_MIN_COST => (
                    Level::Warning,
                    format!(
                        "bcrypt with cost {c}: below OWASP's minimum of {BCRYPT_MIN_COST}; \
                         prefer argon2id (`breakglass hash-password`)"
                    ),
                ),
                _ => (
                    Level::Ok,
                    format!(
                        "bcrypt{} (passwords longer than {} bytes are refused)",
                        cost.map(|c| format!(" cost {c}")).unwrap_or_default(),
                        breakglass::login::password::BCRYPT_MAX_PASSWORD
                    ),
                ),
            }
        }
    };
    r.push((level, "password_hash", detail));
}

/// `m`, `t` and `p` from a PHC string's parameter field; never anything else of it.
fn argon2_params(phc: &str) -> Option<(u64, u64, u64)> {
    let field = phc.split('$').find(|f| f.starts_with("m="))?;
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for pair in field.split(',') {
        let (k, v) = pair.split_once('=')?;
        let v = v.parse::<u64>().ok()?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => {}
        }
    }
    Some((m?, t?, p?))
}

/// The code email needs mailer, from_email and otp_email.
fn code_email(s: &Settings, r: &mut Report) {
    const NEEDED: &str = "the one-time code email needs it";
    match &s.mailer {
        None => r.push((Level::Missing, "mailer", format!("unset: {NEEDED}"))),
        Some(m) => {
            r.push((Level::Ok, "mailer", m.redacted()));
            match m {
                Mailer::Smtp {
                    tls: SmtpTls::Opportunistic,
                    ..
                } => r.push((
                    Level::Warning,
                    "mailer",
                    "tls=opportunistic: codes and alerts may cross the network in plain text"
                        .into(),
                )),
                Mailer::File(dir) => {
                    if let Err(why) = outbox_writable(dir) {
                        r.push((
                            Level::Error,
                            "mailer",
                            format!(
                                "the outbox {} {why}: no code email could be written (the \
                                 library does not create it)",
                                dir.display()
                            ),
                        ))
                    }
                }
                _ => {}
            }
        }
    }
    for (name, value) in [("from_email", &s.from_email), ("otp_email", &s.otp_email)] {
        r.push(match value {
            Some(mbox) => (Level::Ok, name, mbox.to_string()),
            None => (Level::Missing, name, format!("unset: {NEEDED}")),
        });
    }
}

/// Whether this user can create a file in the outbox `dir`: tried for real (a probe file,
/// created 0600 and removed), since permission bits do not tell the whole truth (ACLs, a
/// read-only mount, root).
fn outbox_writable(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if !dir.is_dir() {
        return Err("does not exist or is not a directory".into());
    }
    let probe = dir.join(format!(".breakglass-check-config-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("is not writable by this user ({e})")),
    }
}

/// `recovery_codes_file`: readable, of a safe mode, with enough codes left.
fn recovery_codes(s: &Settings, r: &mut Report) {
    use breakglass::recovery;
    const KEY: &str = "recovery_codes_file";
    let Some(path) = &s.recovery_codes_file else {
        r.push((
            Level::Info,
            KEY,
            "unset: no recovery codes (when mail is down there is no other way in; see \
             breakglass recovery-codes new)"
                .into(),
        ));
        return;
    };
    let set = match recovery::CodesFile::load(path) {
        Ok(set) => set,
        Err(why) => {
            r.push((
                Level::Error,
                KEY,
                format!("{why}: no recovery code would work"),
            ));
            return;
        }
    };
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        if meta.mode() & 0o044 != 0 {
            r.push((
                Level::Warning,
                KEY,
                format!(
                    "{} is readable by group or others (mode {:04o}); chmod 600",
                    path.display(),
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    // With slot_url the used codes are counted on the server; in-process they live inside the
    // service, so only the set's size is known here.
    let (left, how) = match &s.slot.url {
        Some(_) => match recovery::left(s, path) {
            Ok((left, _)) => (left, "unused (counted on the shared slot)"),
            Err(e) => {
                r.push((
                    Level::Warning,
                    KEY,
                    format!("cannot count the used codes: {e}"),
                ));
                (set.len(), "in the set (used ones not counted)")
            }
        },
        None => (
            set.len(),
            "in the set (used ones are counted inside the service)",
        ),
    };
    let level = if left < recovery::LOW_WATER {
        Level::Warning
    } else {
        Level::Ok
    };
    let advice = if left < recovery::LOW_WATER {
        ": fewer than 3, make a new set (breakglass recovery-codes new)"
    } else {
        ""
    };
    r.push((
        level,
        KEY,
        format!("{}: {left} code(s) {how}{advice}", path.display()),
    ));
}

/// At least one alert channel: alert email (recipients, a mailer and a sender) or the webhook.
fn alerts(s: &Settings, r: &mut Report) {
    let can_mail = s.mailer.is_some() && s.from_email.is_some();
    let mut channels = Vec::new();
    match &s.alert_emails {
        None => {}
        Some(list) if list.is_empty() => r.push((
            Level::Warning,
            "alert_emails",
            "set but empty: no alert email is sent".into(),
        )),
        Some(list) if !can_mail => r.push((
            Level::Warning,
            "alert_emails",
            format!(
                "{} recipient(s), but alert email needs mailer and from_email",
                list.len()
            ),
        )),
        Some(list) => channels.push(format!("alert email to {} recipient(s)", list.len())),
    }
    let receivers = s.receivers();
    for r in &receivers {
        channels.push(r.name());
    }
    if !receivers.is_empty() && s.alert_webhook_secret.is_none() {
        r.push((
            Level::Warning,
            "alert_webhook_secret",
            "unset: the webhook POST is not signed, so its receiver cannot tell it from a \
             forgery"
                .into(),
        ));
    }
    if receivers
        .iter()
        .any(|r| r.format == config::WebhookFormat::PagerDuty)
        && s.pagerduty_routing_key.is_none()
    {
        r.push((
            Level::Error,
            "pagerduty_routing_key",
            "unset: every pagerduty receiver fails without it".into(),
        ));
    }
    r.push(if channels.is_empty() {
        (
            Level::Missing,
            "alert channel",
            "none: a break-glass login would raise no alarm (set alert_emails with a mailer, or \
             alert_webhook_url, or alert_webhooks)"
                .into(),
        )
    } else {
        (Level::Ok, "alert channel", channels.join(", "))
    });
}

fn allow_list(s: &Settings, r: &mut Report) {
    r.push(match &s.login.allowed_ips {
        None => (
            Level::Warning,
            "allowed_ips",
            "unset: only 127.0.0.1 and ::1 can log in".into(),
        ),
        Some(list) if list.is_empty() => (
            Level::Error,
            "allowed_ips",
            "set but empty: no one can log in".into(),
        ),
        Some(list) => {
            let shown = list.to_string();
            // A /0 entry admits every address of its family: the allow-list stops no one.
            if shown.split(", ").any(|net| net.ends_with("/0")) {
                (
                    Level::Warning,
                    "allowed_ips",
                    format!("{shown}: admits every address of a whole family"),
                )
            } else {
                (Level::Ok, "allowed_ips", shown)
            }
        }
    });
}

/// `BREAKGLASS_*` variables that name no key (only their names: a value may be a secret).
fn unknown_variables() -> Vec<String> {
    let known: Vec<String> = KEYS
        .iter()
        .map(|k| format!("BREAKGLASS_{}", k.name.to_ascii_uppercase()))
        .collect();
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("BREAKGLASS_"))
        .filter(|name| !known.contains(name) && !NOT_KEYS.contains(&name.as_str()))
        .collect();
    unknown.sort();
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_parameters_only() {
        assert_eq!(
            argon2_params("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            Some((19456, 2, 1))
        );
        assert_eq!(argon2_params("$argon2id$v=19$garbage"), None);
    }
}
