//! `breakglass drill`: the fire drill of the alarm from the command line (for cron).
//!
//! Applies `BREAKGLASS_*` as `bg_configure_from_env` does, runs the library's drill and prints
//! one line per channel. Owns only the printing and the exit status: 0 every channel
//! delivered, 1 any did not (or none is configured), 2 usage or a refused environment. It must
//! never print a secret: channel names and details are the library's, which show URLs
//! redacted and never a key.

use std::process::ExitCode;
use std::time::Duration;

use breakglass::notify::{self, DrillOutcome};

pub fn run(args: &[String]) -> ExitCode {
    let mut wait = None;
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
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    if let Err(e) = breakglass::configure_from_env() {
        eprintln!("breakglass drill: the environment is refused, nothing applied: {e}");
        return ExitCode::from(2);
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

fn usage(why: &str) -> ExitCode {
    eprintln!("breakglass drill: {why}");
    eprint!("{}", crate::DRILL_USAGE);
    ExitCode::from(2)
}
