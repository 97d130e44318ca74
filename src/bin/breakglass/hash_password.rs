//! `breakglass hash-password`: reads the break-glass password and prints its argon2id PHC
//! string, the value of `password_hash`.
//!
//! From a terminal it prompts twice with echo off (see `tty`) and refuses a mismatch; from a
//! pipe or file it reads one line and strips only the trailing newline. It must never print,
//! log or keep the password: every buffer that holds it is wiped on drop, it is read one byte
//! at a time (so no library buffer holds a copy, and nothing past the line is consumed), and
//! only the PHC string goes to stdout.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use zeroize::Zeroizing;

use crate::tty::EchoOff;

/// Longer input is refused rather than hashed: a password this long is almost certainly the
/// wrong file piped in, and a bound keeps the buffer from growing (growth would leave unwiped
/// copies behind).
pub const MAX_PASSWORD: usize = 4096;

/// Exit status after Ctrl-C, as a shell reports a process ended by SIGINT.
const CANCELLED: u8 = 130;

/// Why no password was read.
enum ReadError {
    /// Ctrl-C (or another signal key) on the terminal.
    Cancelled,
    /// Something the user should be told, and the status to exit with.
    Refused(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Refused(format!("cannot read the password: {e}"))
    }
}

pub fn run(args: &[String]) -> ExitCode {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            let _ = crate::out(crate::HASH_USAGE);
            return ExitCode::SUCCESS;
        }
        eprintln!("breakglass hash-password: unexpected argument {arg:?}");
        eprint!("{}", crate::HASH_USAGE);
        return ExitCode::from(2);
    }
    let password = match read_password() {
        Ok(p) => p,
        Err(ReadError::Cancelled) => {
            eprintln!("breakglass hash-password: cancelled");
            return ExitCode::from(CANCELLED);
        }
        Err(ReadError::Refused(why)) => {
            eprintln!("breakglass hash-password: {why}");
            return ExitCode::FAILURE;
        }
    };
    match breakglass::login::hash_password(&password) {
        Ok(phc) => match crate::out(&format!("{phc}\n")) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // A full disk under `> hash.txt` must not look like a hash was saved.
                eprintln!("breakglass hash-password: cannot write the hash: {e}");
                ExitCode::FAILURE
            }
        },
        Err(why) => {
            eprintln!("breakglass hash-password: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The password, from the terminal when stdin is one, else one line of stdin.
fn read_password() -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let password = if io::stdin().is_terminal() {
        from_terminal()?
    } else {
        let stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
        let line = read_line(&stdin, |_| false)?;
        if line.ends_with(b"\r") {
            eprintln!(
                "breakglass hash-password: warning: the password ends with a carriage return \
                 (a file with CRLF line ends?); it is kept as part of the password"
            );
        }
        line
    };
    if password.is_empty() {
        return Err(ReadError::Refused("an empty password is refused".into()));
    }
    if password.contains(&0) {
        // bg_login_begin takes a C string: a password with a NUL byte could never be typed in.
        return Err(ReadError::Refused(
            "the password contains a NUL byte, which a login can never send".into(),
        ));
    }
    Ok(password)
}

/// Prompts twice on the controlling terminal (stdin itself when /dev/tty cannot be opened).
fn from_terminal() -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let tty = match OpenOptions::new().read(true).write(true).open("/dev/tty") {
        Ok(f) => f,
        Err(_) => File::from(io::stdin().as_fd().try_clone_to_owned()?),
    };
    let first = prompt(&tty, "Break-glass password: ")?;
    if first.is_empty() {
        return Err(ReadError::Refused("an empty password is refused".into()));
    }
    let again = prompt(&tty, "Again: ")?;
    if first != again {
        return Err(ReadError::Refused("the two passwords differ".into()));
    }
    Ok(first)
}

/// Shows `text` and reads one line with echo off; the terminal is restored before returning.
fn prompt(tty: &File, text: &str) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    // Echo goes off before the prompt shows: turning it off discards pending input (see
    // `tty`), so nothing typed once the prompt is visible can be lost, or echoed.
    let guard = EchoOff::new(tty)?;
    // The prompt goes to the terminal, not stdout (which is for the PHC string only) and not
    // stderr (which may be redirected to a log).
    let _ = (&*tty)
        .write_all(text.as_bytes())
        .and_then(|_| (&*tty).flush());
    let line = read_line(tty, |b| guard.is_cancel(b));
    drop(guard);
    if matches!(line, Err(ReadError::Cancelled)) {
        // The interrupt key ended the line without a newline (ECHONL echoes only Enter).
        let _ = (&*tty).write_all(b"\n");
    }
    line
}

/// Reads up to and without the first `\n`. `cancel` tells which bytes mean Ctrl-C.
fn read_line(
    mut from: &File,
    cancel: impl Fn(u8) -> bool,
) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    // Allocated once at its full size and never grown: a reallocation would leave a copy of
    // the password behind that nothing wipes.
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_PASSWORD + 1));
    let mut byte = Zeroizing::new([0u8; 1]);
    loop {
        match from.read(&mut byte[..]) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if cancel(byte[0]) => return Err(ReadError::Cancelled),
            Ok(_) if line.len() == MAX_PASSWORD => {
                return Err(ReadError::Refused(format!(
                    "the password is longer than {MAX_PASSWORD} bytes"
                )))
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(line)
}
