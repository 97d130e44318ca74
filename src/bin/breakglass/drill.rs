//! `breakglass drill`: the fire drill of the alarm from the command line (for cron).
//!
//! Applies the `BREAKGLASS_*` keys the drill uses (from the environment and, with
//! `--env-file`, from a service's env file read without a shell), runs the library's drill and
//! prints one line per channel. Owns only the choice of keys, the env file's reading, the
//! printing and the exit status: 0 every channel delivered, 1 any did not (or none is
//! configured), 2 usage or a refused value. It must never print a secret: channel names and
//! details are the library's, which show URLs redacted and never a key, and a refused value is
//! named by its key only.

use std::process::ExitCode;
use std::time::Duration;

use zeroize::Zeroizing;

use breakglass::notify::{self, DrillOutcome};

/// The keys the drill reads: its channels and their bound. Only these are applied, so that a
/// key the drill does not use (a password hash a shell mangled, an allow-list entry) cannot
/// stop the test of the alarm.
const DRILL_KEYS: &[&str] = &[
    "mailer",
    "from_email",
    "otp_email",
    "alert_emails",
    "alert_webhook_url",
    "alert_webhook_secret",
    "alert_webhook_format",
    "alert_webhooks",
    "pagerduty_routing_key",
    "delivery_timeout_ms",
];

pub fn run(args: &[String]) -> ExitCode {
    let mut wait = None;
    let mut env_file = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                let _ = crate::out(crate::DRILL_USAGE);
                return ExitCode::SUCCESS;
            }
            "--timeout-ms" => match rest.next().and_then(|v| v.parse::<u32>().ok()) {
                Some(ms) if ms > 0 => wait = Some(Duration::from_millis(ms.into())),
                _ => return usage("--timeout-ms needs a whole number of milliseconds above 0"),
            },
            "--env-file" => match rest.next() {
                Some(path) => env_file = Some(path.clone()),
                None => return usage("--env-file needs a file name"),
            },
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    let from_file = match env_file.as_deref().map(read_env_file).transpose() {
        Ok(lines) => lines.unwrap_or_default(),
        Err(why) => {
            eprintln!("breakglass drill: {why}");
            return ExitCode::from(2);
        }
    };
    for key in DRILL_KEYS {
        let var = format!("BREAKGLASS_{}", key.to_ascii_uppercase());
        // The file's value wins over the environment's: it is what the service runs with.
        let value = match from_file.iter().rev().find(|(name, _)| *name == var) {
            Some((_, v)) => Zeroizing::new(v.to_string()),
            None => match std::env::var(&var) {
                Ok(v) => Zeroizing::new(v),
                Err(std::env::VarError::NotPresent) => continue,
                Err(std::env::VarError::NotUnicode(_)) => {
                    eprintln!("breakglass drill: {var} is not UTF-8");
                    return ExitCode::from(2);
                }
            },
        };
        if let Err(e) = breakglass::configure(key, Some(&value)) {
            eprintln!("breakglass drill: {var} is refused: {e}");
            return ExitCode::from(2);
        }
    }
    let reports = match notify::drill(wait) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("breakglass drill: {e}");
            return ExitCode::from(1);
        }
    };
    let mut text = String::new();
    for r in &reports {
        let label = match r.outcome {
            DrillOutcome::Delivered => "DELIVERED",
            DrillOutcome::Refused => "REFUSED",
            DrillOutcome::TimedOut => "TIMED-OUT",
            DrillOutcome::Unreachable => "UNREACHABLE",
        };
        text += &format!("{label:<11} {}", r.channel);
        if !r.detail.is_empty() {
            text += &format!(": {}", r.detail);
        }
        text.push('\n');
    }
    let failed = reports
        .iter()
        .filter(|r| r.outcome != DrillOutcome::Delivered)
        .count();
    text += &if failed == 0 {
        format!("drill: all {} channel(s) delivered\n", reports.len())
    } else {
        format!(
            "drill FAILED: {failed} of {} channel(s) did not deliver\n",
            reports.len()
        )
    };
    // The status is the verdict even when the report cannot be written.
    let _ = crate::out(&text);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The `KEY=VALUE` lines of an env file as systemd's `EnvironmentFile=` and docker's
/// `--env-file` write them, read without a shell: `$` is an ordinary character (an argon2 hash
/// needs no quoting), blank lines and `#` comments are skipped, an `export ` prefix is allowed,
/// and a value wholly inside one pair of single or double quotes loses them. Only
/// `BREAKGLASS_*` names are kept. A line that is none of these is refused with its number.
fn read_env_file(path: &str) -> Result<Vec<(String, Zeroizing<String>)>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("cannot read --env-file {path}: {e}"))?,
    );
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("{path}:{}: not a NAME=VALUE line", n + 1));
        };
        let name = name.trim();
        if !name.starts_with("BREAKGLASS_") {
            continue;
        }
        let value = value.trim_end_matches('\r');
        let unquoted = ['\'', '"'].iter().find_map(|q| {
            value
                .strip_prefix(*q)
                .and_then(|v| v.strip_suffix(*q))
                .filter(|v| !v.contains(*q))
        });
        out.push((
            name.to_owned(),
            Zeroizing::new(unquoted.unwrap_or(value).to_owned()),
        ));
    }
    Ok(out)
}

fn usage(why: &str) -> ExitCode {
    eprintln!("breakglass drill: {why}");
    eprint!("{}", crate::DRILL_USAGE);
    ExitCode::from(2)
}
