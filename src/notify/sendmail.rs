//! The sendmail transport: each message piped into a sendmail-compatible program (the host's
//! MTA: Postfix, exim, OpenSMTPD all ship one), within the delivery deadline.
//!
//! Owns the command line (`-i -f <from> -- <to>…`: no option can be smuggled in through an
//! address) and the child's lifetime: a program that hangs is killed at the deadline. It must
//! never let the child outlive the deadline, nor pass the message through a shell.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::message::Outgoing;
use super::retry::{Cause, Failure};
use crate::text::escape_controls;

/// sysexits.h EX_TEMPFAIL: "try again later".
const EX_TEMPFAIL: i32 = 75;

/// Pipes `mail` into `program` (`sendmail` on the PATH when `None`), by `deadline`.
pub fn deliver(program: Option<&Path>, mail: &Outgoing, deadline: Instant) -> Result<(), Failure> {
    let program = program.unwrap_or(Path::new("sendmail"));
    let mut cmd = Command::new(program);
    cmd.arg("-i");
    if let Some(from) = mail.envelope.from() {
        cmd.arg("-f").arg(AsRef::<str>::as_ref(from));
    }
    cmd.arg("--");
    for to in mail.envelope.to() {
        cmd.arg(AsRef::<str>::as_ref(to));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Failure::Transient(
                Cause::Unreachable,
                format!("cannot run {}: {e}", program.display()),
            )
        })?;

    // Local mail is LF-terminated; the program may not read all of it if it fails early, so
    // the writer runs beside the wait (SIGPIPE is blocked in delivery threads: a dead reader
    // is an EPIPE here, not a signal).
    let body = zeroize::Zeroizing::new(lf_endings(&mail.bytes));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Neither helper is joined: a program that hands the message to a background process may
    // leave the pipes open behind it, and the deadline must not wait for that.
    let _ = std::thread::Builder::new()
        .name("breakglass-sendmail".into())
        .spawn(move || {
            crate::sys::block_sigpipe_in_this_thread();
            let _ = stdin.write_all(&body);
        });
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (said_tx, said_rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("breakglass-sendmail".into())
        .spawn(move || {
            // Keep the first line for the log; drain the rest so the program never blocks on it.
            let mut first = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if first.len() < 512 {
                    first.extend_from_slice(&buf[..n.min(512 - first.len())]);
                }
            }
            let _ = said_tx.send(first);
        });

    // A short poll rather than the `wait-timeout` crate: that one installs a process-wide
    // SIGCHLD handler, which a library must never do inside its host (sshd, a PAM stack and
    // most daemons handle SIGCHLD themselves).
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Transient(
                    Cause::Unreachable,
                    format!("waiting for sendmail: {e}"),
                ));
            }
        }
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Failure::Transient(
            Cause::TimedOut,
            format!("{} did not finish in time; killed", program.display()),
        ));
    };
    if status.success() {
        return Ok(());
    }
    let said = crate::net::remaining(deadline)
        .and_then(|left| said_rx.recv_timeout(left).ok())
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&said);
    let said = escape_controls(said.lines().next().unwrap_or("").trim());
    let why = match status.code() {
        Some(code) => format!("{} exited with {code}: {said}", program.display()),
        None => format!("{} was killed by a signal", program.display()),
    };
    match status.code() {
        // The program ran and said no; the drill has always shown this as unreachable (it
        // never got to a peer that answered over the network).
        Some(EX_TEMPFAIL) | None => Err(Failure::Transient(Cause::Unreachable, why)),
        Some(_) => Err(Failure::Permanent(Cause::Unreachable, why)),
    }
}

/// The message with CRLF line ends turned into LF, the local convention sendmail reads.
fn lf_endings(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if !(b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crlf_becomes_lf_and_lone_cr_stays() {
        assert_eq!(super::lf_endings(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
    }
}
