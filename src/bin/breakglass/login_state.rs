//! `breakglass status`, `breakglass unlock ADDRESS|--all` and `breakglass session end`: the
//! operator's view of, and hand on, the login state the service keeps in `state_dir` or at
//! `slot_url`.
//!
//! Each applies `BREAKGLASS_*` as `bg_configure_from_env` does, so it opens the very store the
//! service uses. Owns only the command line, the printing and the exit statuses: 0 done, 1 the
//! state cannot be reached (in-process state, a store that does not answer), 2 usage or a
//! refused environment. The rules, the locking and the audit records are the library's. It must
//! never print the pending code or a session token (the library never hands them out), and
//! never fall back to a state of its own: with in-process state it says so and fails.

use std::process::ExitCode;

use breakglass::config;
use breakglass::login::{self, address::ClientAddr, StatusView};

pub(crate) const STATUS_USAGE: &str = "\
usage: breakglass status

Applies BREAKGLASS_* as bg_configure_from_env does and prints the login state the service keeps
in state_dir or at slot_url: the store, whether a code is pending and its age (never the code),
locked addresses with the time left, addresses with failures in the window, the wrong codes
counted overall and the overall lockout, and whether a session is active and its age.
Exit status: 0 shown, 1 the state cannot be read (in-process state lives inside the service;
a store that does not answer), 2 usage or a refused environment.
";

pub(crate) const UNLOCK_USAGE: &str = "\
usage: breakglass unlock ADDRESS
       breakglass unlock --all

Forgets the failures of ADDRESS (its IPv6 /64) and lifts its lockout; --all does so for every
address and also lifts the overall lockout and forgets the wrong codes counted overall. The
library records it in the audit trail. Exit status: 0 done, 1 the state cannot be changed
(in-process state, a store that does not answer), 2 usage or a refused environment.
";

pub(crate) const SESSION_USAGE: &str = "\
usage: breakglass session end

Ends the active break-glass session, whoever holds it (the library records it in the audit
trail). Exit status: 0 ended, or none was active (it says which), 1 the state cannot be
changed (in-process state, a store that does not answer), 2 usage or a refused environment.
";

/// Applies the environment; `Err` is the exit status when the state cannot be reached from
/// here.
fn open(command: &str) -> Result<(), ExitCode> {
    if let Err(e) = breakglass::configure_from_env() {
        eprintln!("breakglass {command}: the environment is refused, nothing applied: {e}");
        return Err(ExitCode::from(2));
    }
    if login::state_is_in_process(&config::current()) {
        eprintln!(
            "breakglass {command}: the login state lives inside the service (neither \
             BREAKGLASS_STATE_DIR nor BREAKGLASS_SLOT_URL is set), so this command cannot see \
             or change it. Give the service state_dir (its processes on one host) or slot_url \
             (several hosts), and this command the same environment."
        );
        return Err(ExitCode::from(1));
    }
    Ok(())
}

fn failed(command: &str, e: breakglass::Error) -> ExitCode {
    eprintln!("breakglass {command}: {e}");
    ExitCode::from(1)
}

fn secs(ms: u64) -> String {
    format!("{} s", ms.div_ceil(1000))
}

pub fn status(args: &[String]) -> ExitCode {
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            let _ = crate::out(STATUS_USAGE);
            return ExitCode::SUCCESS;
        }
        Some(other) => return usage("status", STATUS_USAGE, &format!("unexpected {other:?}")),
    }
    if let Err(code) = open("status") {
        return code;
    }
    let limits = config::current().login.limits();
    match login::status() {
        Ok((store, view)) => {
            // The status is the verdict even when stdout went away.
            let _ = crate::out(&render(&store, &view, &limits));
            ExitCode::SUCCESS
        }
        Err(e) => failed("status", e),
    }
}

/// The status as text: one fact per line, `name: value`, so a script can grep it.
fn render(store: &str, v: &StatusView, l: &login::Limits) -> String {
    let window = secs(l.lockout_ms);
    let mut t = format!("store: {store}\n");
    t += &match v.pending_age_ms {
        None => "code: none pending\n".into(),
        Some((age, false)) => format!("code: pending, issued {} ago\n", secs(age)),
        Some((age, true)) => format!("code: expired, issued {} ago\n", secs(age)),
    };
    t += &match v.session_age_ms {
        None => "session: none active\n".into(),
        Some(age) => format!("session: active, started {} ago\n", secs(age)),
    };
    t += &format!(
        "overall: {} wrong code(s) in the last {window} (limit {})\n",
        v.code_failures, l.max_global
    );
    t += &match v.global_locked_ms {
        None => "overall lockout: none\n".into(),
        Some(left) => format!("overall lockout: EVERY LOGIN LOCKED, {} left\n", secs(left)),
    };
    if v.locked.is_empty() {
        t += "locked: none\n";
    }
    for (key, left) in &v.locked {
        t += &format!("locked: {} ({} left)\n", key.as_text(), secs(*left));
    }
    if v.failing.is_empty() {
        t += "failures: none\n";
    }
    for (key, n) in &v.failing {
        t += &format!(
            "failures: {} {n} of {} in the last {window}\n",
            key.as_text(),
            l.max_attempts
        );
    }
    t
}

pub fn unlock(args: &[String]) -> ExitCode {
    let target = match args {
        [one] if one == "-h" || one == "--help" => {
            let _ = crate::out(UNLOCK_USAGE);
            return ExitCode::SUCCESS;
        }
        [one] if one == "--all" => None,
        [one] if !one.starts_with('-') => match ClientAddr::parse(one) {
            Some(a) => Some((one.as_str(), a.limit_key().as_text())),
            None => {
                return usage(
                    "unlock",
                    UNLOCK_USAGE,
                    &format!("{one:?} is not an IP address"),
                )
            }
        },
        _ => return usage("unlock", UNLOCK_USAGE, "give one ADDRESS or --all"),
    };
    if let Err(code) = open("unlock") {
        return code;
    }
    let done = match target {
        Some((raw, key)) => {
            login::reset_attempts(raw.as_bytes()).map(|()| format!("unlocked {key}\n"))
        }
        None => login::unlock_all()
            .map(|()| "unlocked every address and the overall limit\n".to_string()),
    };
    match done {
        Ok(text) => {
            let _ = crate::out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => failed("unlock", e),
    }
}

pub fn session(args: &[String]) -> ExitCode {
    match args {
        [one] if one == "-h" || one == "--help" => {
            let _ = crate::out(SESSION_USAGE);
            return ExitCode::SUCCESS;
        }
        [one] if one == "end" => {}
        _ => return usage("session", SESSION_USAGE, "the only subcommand is \"end\""),
    }
    if let Err(code) = open("session end") {
        return code;
    }
    match login::end_any_session() {
        Ok(true) => {
            let _ = crate::out("ended the active session\n");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            let _ = crate::out("no session was active\n");
            ExitCode::SUCCESS
        }
        Err(e) => failed("session end", e),
    }
}

fn usage(command: &str, text: &str, why: &str) -> ExitCode {
    eprintln!("breakglass {command}: {why}");
    eprint!("{text}");
    ExitCode::from(2)
}
