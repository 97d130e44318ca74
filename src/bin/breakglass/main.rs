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
mod login_state;
mod recovery_codes;
mod tty;

const USAGE: &str = "\
usage: breakglass <command>

commands:
  hash-password   read the break-glass password (no echo on a terminal, asked twice; else one
                  line of stdin) and print its argon2id PHC string, the value of password_hash
  check-config    read BREAKGLASS_* as bg_configure_from_env does and say what the login flow
                  is missing (exit 0: it can work, 1: something is missing, 2: a value is refused)
  audit verify FILE [--key-file K]... [--anchor SEQ:MAC]
                  check an audit file's whole chain, rotated files included, and its end
                  against the anchors (exit 0 intact, 1 broken, 2 keyed and no key given, 3 a
                  record torn by a crash, 4 cut or rewritten after an anchor)
  audit tail [FILE] [-n N] [-f] [--event NAME]
                  print the last N (20) records of FILE (default $BREAKGLASS_AUDIT_LOG); -f
                  follows it across rotations, --event keeps one event
  audit rotate-key --new-key-file F [--key-file K]
                  bind a new audit key (F's content, or a new random key written to F) in the
                  chain
  drill [--env-file FILE]
                  send a [DRILL] test alert through every alert channel configured in
                  BREAKGLASS_* (or FILE, read without a shell), wait for each, print one line
                  per channel (exit 0: all delivered)
  status          read BREAKGLASS_* and show the login state the service keeps in state_dir
                  or at slot_url: pending code's age (never the code), locked addresses and
                  time left, failures, the overall window and lockout, the session's age
  unlock ADDRESS | unlock --all
                  forget ADDRESS's failures and lift its lockout; --all: every address and
                  the overall lockout (recorded in the audit trail)
  session end     end the active break-glass session (recorded in the audit trail)
                  (these three need state_dir or slot_url: in-process state lives inside the
                  service, and they exit 1 saying so)
  recovery-codes new [-n N] [--file PATH]
                  make N (10) single-use recovery codes, write their hashes to
                  recovery_codes_file (replacing the old set) and print the codes once
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

pub(crate) const RECOVERY_USAGE: &str = "\
usage: breakglass recovery-codes new [-n N] [--file PATH]

Makes N (default 10, at most 100) single-use recovery codes (80 bits each, like
7KQ2-M9XD-4TFA-PW3H), writes their argon2id hashes to PATH (default: recovery_codes_file from
BREAKGLASS_*), created 0600 and replacing the old set entirely, and prints the codes once on
stdout. Store them offline (paper, a safe): they are never stored or logged. After the right
password, one of them works once in place of the emailed code. Run it as the user the service
runs as (the file must be readable by the service and writable by no one else).
";

pub(crate) const DRILL_USAGE: &str = "\
usage: breakglass drill [--timeout-ms N] [--env-file FILE]

Applies the BREAKGLASS_* keys a drill uses (its channels and delivery_timeout_ms; other keys
are not read, so a refused unrelated one cannot stop it), from the environment and from FILE:
KEY=VALUE lines read without a shell ($ is literal, so a password hash needs no quoting;
comments, blank lines, `export ` and one pair of enclosing quotes are allowed). Sends a clearly marked test alert (event
break_glass_drill, subject \"[DRILL] ...\") through every alert channel (each alert_emails
recipient, alert_webhook_url, each alert_webhooks receiver), waits for each outcome (at most N
ms; default 3 x delivery_timeout_ms plus the retry pauses) and prints one line per channel:
DELIVERED, REFUSED (with the peer's answer), TIMED-OUT or UNREACHABLE. Exit status: 0 every
channel delivered, 1 any did not or none is configured, 2 usage or a refused environment.
Run it from cron with the service's own env file:
  17 9 * * 1 breakglass drill --env-file /etc/breakglass.env || mail -s 'break-glass drill failed' oncall@...
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
        "status" => login_state::status(rest),
        "unlock" => login_state::unlock(rest),
        "session" => login_state::session(rest),
        "recovery-codes" => recovery_codes::run(rest),
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
