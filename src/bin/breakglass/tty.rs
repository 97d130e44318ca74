//! The terminal while a password is typed: echo off, Ctrl-C as an ordinary key, and the old
//! settings back on every way out.
//!
//! Owns the tool's only `unsafe` (`tcgetattr`/`tcsetattr` through `libc`). It must never leave
//! a terminal without echo: the settings are restored by a guard's `Drop`, so a read error, a
//! refusal or a panic all restore them. Ctrl-C cannot kill the process behind the guard's back
//! either, without any signal handler: while the guard lives, `ISIG` is off, so the interrupt
//! key arrives as a byte (and ends the line at once, as the `VEOL` character), and the reader
//! treats it as "cancelled". The same goes for Ctrl-\ and Ctrl-Z, which would otherwise kill or
//! stop the process with echo still off. It never installs anything process-wide.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};

/// A terminal whose echo is off until this is dropped.
pub struct EchoOff<'a> {
    file: &'a File,
    saved: libc::termios,
    /// The bytes that mean "cancel" while the guard lives (the interrupt and quit keys).
    cancel: Vec<u8>,
}

impl<'a> EchoOff<'a> {
    /// Turns echo and signal keys off on `file`, which must be a terminal.
    pub fn new(file: &'a File) -> io::Result<EchoOff<'a>> {
        let fd = file.as_raw_fd();
        let saved = get(fd)?;
        let mut quiet = saved;
        // ECHONL: the Enter key still moves to the next line, so the second prompt and any
        // message start on a line of their own.
        quiet.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ISIG);
        quiet.c_lflag |= libc::ECHONL | libc::ICANON;
        let disabled = libc::_POSIX_VDISABLE as libc::cc_t;
        let cancel: Vec<u8> = [libc::VINTR, libc::VQUIT, libc::VSUSP]
            .iter()
            .map(|&i| saved.c_cc[i])
            .filter(|&c| c != disabled)
            .collect();
        let intr = saved.c_cc[libc::VINTR];
        if intr != disabled {
            // In canonical mode a read returns only at the end of a line: making the interrupt
            // key an end-of-line character lets Ctrl-C cancel at once rather than at Enter.
            quiet.c_cc[libc::VEOL] = intr;
        }
        // TCSAFLUSH: anything typed before the prompt (and echoed) is discarded, as getpass
        // does, rather than silently becoming the start of the password.
        set(fd, libc::TCSAFLUSH, &quiet)?;
        Ok(EchoOff {
            file,
            saved,
            cancel,
        })
    }

    /// Whether `byte` is one of the keys that cancel (Ctrl-C, Ctrl-\, Ctrl-Z as configured).
    pub fn is_cancel(&self, byte: u8) -> bool {
        self.cancel.contains(&byte)
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // TCSAFLUSH, as getpass does: input not yet read is discarded. After a cancel key in
        // the middle of a line, the rest of the line (the rest of the password) would otherwise
        // be read by the shell, echoed and perhaps kept in its history. Nothing can be done
        // about a failure here.
        let _ = set(self.file.as_raw_fd(), libc::TCSAFLUSH, &self.saved);
    }
}

fn get(fd: RawFd) -> io::Result<libc::termios> {
    let mut t = MaybeUninit::<libc::termios>::uninit();
    // SAFETY: `t` is a valid place for one termios, which tcgetattr fills on success.
    if unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: tcgetattr returned 0, so it initialised `t`.
    Ok(unsafe { t.assume_init() })
}

fn set(fd: RawFd, when: libc::c_int, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` points to a valid termios for the duration of the call.
    if unsafe { libc::tcsetattr(fd, when, t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
