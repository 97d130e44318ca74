//! `breakglass audit verify` and `breakglass audit tail`: the operator's view of an audit file.
//!
//! All checking is the library's (`breakglass::audit::verify_file`); this file owns only the
//! arguments, where the key comes from (`--key-file`, else `BREAKGLASS_AUDIT_KEY`) and the exit
//! statuses: 0 intact, 1 the chain is broken (the first broken line is printed), 2 usage or
//! the file or key cannot be read, 3 no tampering found but a record was torn by a crash. It
//! must never print the key.

use std::path::Path;
use std::process::ExitCode;

use breakglass::audit::{self, VerifyError};
use zeroize::Zeroizing;

use crate::out;

pub(crate) const USAGE: &str = "\
usage: breakglass audit verify FILE [--key-file KEY_FILE]
       breakglass audit tail [FILE] [-n N]

verify  checks the whole chain of FILE. The key is KEY_FILE's content (one trailing newline
        removed), else $BREAKGLASS_AUDIT_KEY, else none (a file written without audit_key).
        Exit status: 0 intact; 1 broken (the first broken record is printed); 2 usage, or the
        file or key cannot be read; 3 no tampering, but a record was torn by a crash mid-write.
tail    prints the last N records (default 20) of FILE (default $BREAKGLASS_AUDIT_LOG), one a
        line, oldest first. It does not verify them.
";

fn usage(why: &str) -> ExitCode {
    eprintln!("breakglass audit: {why}");
    eprint!("{USAGE}");
    ExitCode::from(2)
}

pub(crate) fn run(args: &[String]) -> ExitCode {
    match args.split_first() {
        Some((cmd, rest)) if cmd == "verify" => verify(rest),
        Some((cmd, rest)) if cmd == "tail" => tail(rest),
        Some((cmd, _)) if cmd == "help" || cmd == "--help" || cmd == "-h" => {
            let _ = out(USAGE);
            ExitCode::SUCCESS
        }
        Some((cmd, _)) => usage(&format!("unknown command {cmd:?}")),
        None => usage("which command?"),
    }
}

fn verify(args: &[String]) -> ExitCode {
    let mut file = None;
    let mut key_file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--key-file" => match it.next() {
                Some(k) => key_file = Some(k),
                None => return usage("--key-file needs a file"),
            },
            s if s.starts_with('-') => return usage(&format!("unknown option {s:?}")),
            s if file.is_none() => file = Some(s),
            _ => return usage("one FILE only"),
        }
    }
    let Some(file) = file else {
        return usage("verify needs a FILE");
    };
    let key: Option<Zeroizing<Vec<u8>>> = match key_file {
        Some(k) => match std::fs::read(k) {
            Ok(mut bytes) => {
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                }
                Some(Zeroizing::new(bytes))
            }
            Err(e) => {
                eprintln!("breakglass audit verify: cannot read the key file {k}: {e}");
                return ExitCode::from(2);
            }
        },
        None => std::env::var_os("BREAKGLASS_AUDIT_KEY")
            .filter(|v| !v.is_empty())
            .map(|v| Zeroizing::new(v.into_encoded_bytes())),
    };
    match audit::verify_file(Path::new(file), key.as_deref().map(|k| k.as_slice())) {
        Ok(r) if r.is_clean() => {
            let _ = out(&format!(
                "OK: {} records, the chain is intact (last seq {})\n",
                r.records, r.last_seq
            ));
            ExitCode::SUCCESS
        }
        Ok(r) => {
            let mut text = String::new();
            for line in &r.torn {
                text.push_str(&format!(
                    "TORN: line {line} is a record cut short by a crash; the chain continues \
                     past it\n"
                ));
            }
            if let Some(line) = r.truncated_last {
                text.push_str(&format!(
                    "TRUNCATED: truncated last record at line {line} (a crash mid-write); the \
                     records before it verify\n"
                ));
            }
            text.push_str(&format!(
                "{} records verify, no tampering found (last seq {})\n",
                r.records, r.last_seq
            ));
            let _ = out(&text);
            ExitCode::from(3)
        }
        Err(VerifyError::Io(e)) => {
            eprintln!("breakglass audit verify: {file}: {e}");
            ExitCode::from(2)
        }
        Err(VerifyError::Broken { line, text, why }) => {
            let _ = out(&format!(
                "BROKEN: line {line}: {why}\n  {}\nEverything before line {line} verifies.\n",
                breakglass::text::escape_controls(&text)
            ));
            ExitCode::from(1)
        }
    }
}

fn tail(args: &[String]) -> ExitCode {
    let mut file: Option<String> = None;
    let mut n = 20usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-n" => match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => n = v,
                None => return usage("-n needs a number"),
            },
            s if s.starts_with('-') => return usage(&format!("unknown option {s:?}")),
            s if file.is_none() => file = Some(s.to_owned()),
            _ => return usage("one FILE only"),
        }
    }
    let Some(file) = file.or_else(|| std::env::var("BREAKGLASS_AUDIT_LOG").ok()) else {
        return usage("tail needs a FILE (or BREAKGLASS_AUDIT_LOG)");
    };
    match audit::tail(Path::new(&file), n) {
        Ok(records) => {
            let text: String = records.iter().map(|r| r.readable() + "\n").collect();
            if out(&text).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("breakglass audit tail: {file}: {e}");
            ExitCode::from(2)
        }
    }
}
