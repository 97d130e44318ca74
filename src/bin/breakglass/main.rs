//! The `breakglass` command: the operator's side of the library.
//!
//! `hash-password` makes the value of `password_hash`; `check-config` says whether a
//! deployment's `BREAKGLASS_*` environment lets the login flow work; `audit verify` and
//! `audit tail` read an audit file; `drill` sends a marked test alert through every alert
//! channel and reports each outcome. This file owns only the
//! command line (parsed by hand: a handful of subcommands with few flags do not need a parser crate) and the exit
//! statuses: 0 success, 1 refused or incomplete, 2 usage or a refused value, 130 cancelled.
//! It uses the library's safe Rust API only, and never calls `process::exit`: every path
//! returns, so guards (the terminal's echo, wiped buffers) run their `Drop`.

use std::io::Write;
use std::process::ExitCode;

mod audit;
mod check_config;
mod drill;
mod hash_password;
mod tty;

const USAGE: &str = "\
usage: breakglass <command>

commands:
  hash-password   read the break-glass password (no echo on a terminal, asked twice; else one
                  line of stdin) and print its argon2id PHC string, the value of password_hash
  check-config    read BREAKGLASS_* as bg_configure_from_env does and say what the login flow
                  is missing (exit 0: it can work, 1: something is missing, 2: a value is refused)
  audit verify FILE [--key-file K]
                  check an audit file's whole chain (exit 0 intact, 1 broken, 3 a record torn
                  by a crash); the key is K's content, else $BREAKGLASS_AUDIT_KEY
  audit tail [FILE] [-n N]
                  print the last N (20) records of FILE (default $BREAKGLASS_AUDIT_LOG)
  drill           send a [DRILL] test alert through every alert channel configured in
                  BREAKGLASS_*, wait for each, print one line per channel (exit 0: all delivered)
  help            this text
  --version       the version
";

pub(crate) const HASH_USAGE: &str = "\
usage: breakglass hash-password

Reads the password from the terminal (twice, without echo) or, when stdin is not a terminal,
one line of stdin (only the trailing newline is removed), and prints its argon2id PHC string
(m=19456 t=2 p=1) on stdout. Put it in password_hash (BREAKGLASS_PASSWORD_HASH).
";

pub(crate) const CHECK_USAGE: &str = "\
usage: breakglass check-config

Applies BREAKGLASS_* from the environment, all or nothing, as bg_configure_from_env does, and
reports each item of the login flow as OK, MISSING, ERROR, WARNING or INFO. Secrets are never
shown. Exit status: 0 the login flow can work, 1 something is MISSING or ERROR, 2 a value is
refused (the reason is printed).
";

pub(crate) const DRILL_USAGE: &str = "\
usage: breakglass drill [--timeout-ms N]

Applies BREAKGLASS_* as bg_configure_from_env does, sends a clearly marked test alert (event
break_glass_drill, subject \"[DRILL] ...\") through every alert channel (each alert_emails
recipient, alert_webhook_url, each alert_webhooks receiver), waits for each outcome (at most N
ms; default 3 x delivery_timeout_ms plus the retry pauses) and prints one line per channel:
DELIVERED, REFUSED (with the peer's answer), TIMED-OUT or UNREACHABLE. Exit status: 0 every
channel delivered, 1 any did not or none is configured, 2 usage or a refused environment.
Run it from cron: 17 9 * * 1 breakglass drill || mail -s 'break-glass drill failed' oncall@...
";

/// Writes `text` to stdout and flushes it. Not `print!`: a Rust program ignores SIGPIPE, so
/// `print!` to a reader that went away (`| head`) panics; the callers decide what a failed
/// write means instead (for a hash, a failure: it did not arrive whole).
pub(crate) fn out(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(args) => args,
        Err(_) => {
            eprintln!("breakglass: arguments must be UTF-8");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    match command.as_str() {
        "hash-password" => hash_password::run(rest),
        "check-config" => check_config::run(rest),
        "audit" => audit::run(rest),
        "drill" => drill::run(rest),
        "help" | "-h" | "--help" => {
            let _ = out(USAGE);
            ExitCode::SUCCESS
        }
        "--version" | "-V" | "version" => {
            let _ = out(&format!("breakglass {}\n", breakglass::VERSION));
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("breakglass: unknown command {other:?}");
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
