//! `breakglass recovery-codes new [-n N] [--file PATH]`: makes a new set of recovery codes.
//!
//! Writes the hashes to `recovery_codes_file` (from `BREAKGLASS_*`, or `--file`), replacing
//! the old set entirely, and prints the codes once on stdout for the admin to store offline.
//! It must never log, store or show a code anywhere but that one stdout write.

use std::path::PathBuf;
use std::process::ExitCode;

use breakglass::recovery;

pub fn run(args: &[String]) -> ExitCode {
    let mut rest = args.iter();
    match rest.next().map(String::as_str) {
        Some("new") => {}
        Some("-h" | "--help") => {
            let _ = crate::out(crate::RECOVERY_USAGE);
            return ExitCode::SUCCESS;
        }
        _ => return usage("expected `new`"),
    }
    let mut count = recovery::DEFAULT_COUNT;
    let mut file: Option<PathBuf> = None;
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                let _ = crate::out(crate::RECOVERY_USAGE);
                return ExitCode::SUCCESS;
            }
            "-n" => match rest.next().and_then(|v| v.parse::<u32>().ok()) {
                Some(n) if (1..=recovery::MAX_COUNT).contains(&n) => count = n,
                _ => {
                    return usage(&format!(
                        "-n needs a number from 1 to {}",
                        recovery::MAX_COUNT
                    ))
                }
            },
            "--file" => match rest.next() {
                Some(p) => file = Some(PathBuf::from(p)),
                None => return usage("--file needs a path"),
            },
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    let path =
        match file {
            Some(p) => p,
            None => {
                if let Err(e) = breakglass::configure_from_env() {
                    eprintln!("breakglass recovery-codes: the environment is refused: {e}");
                    return ExitCode::from(2);
                }
                match breakglass::config::current().recovery_codes_file.clone() {
                    Some(p) => p,
                    None => return usage(
                        "set BREAKGLASS_RECOVERY_CODES_FILE (the service's recovery_codes_file) \
                         or pass --file",
                    ),
                }
            }
        };
    let codes = match recovery::write_new(&path, count) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("breakglass recovery-codes: {why}");
            return ExitCode::FAILURE;
        }
    };
    let mut text = zeroize::Zeroizing::new(format!(
        "{count} new break-glass recovery codes (the old set, if any, no longer works).\n\
         Each works once, in place of the emailed code, after the right password.\n\
         Store them offline now: they are shown only this once and kept nowhere.\n\n"
    ));
    for c in &codes {
        text.push_str(c);
        text.push('\n');
    }
    eprintln!(
        "breakglass recovery-codes: {count} hashes written to {} (0600)",
        path.display()
    );
    match crate::out(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "breakglass recovery-codes: the codes could not be printed ({e}); the new set \
                 is in place but unknown to you: run the command again"
            );
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("breakglass recovery-codes: {why}");
    eprint!("{}", crate::RECOVERY_USAGE);
    ExitCode::from(2)
}
