//! `breakglass hash-password` on a terminal: a pseudo-terminal made here becomes the child's
//! controlling terminal (so its `/dev/tty` path is the one exercised), and the test types as a
//! user would, after each prompt appears.
//!
//! Proves: nothing typed is echoed; the two entries must match; Ctrl-C cancels at once with
//! status 130, and what was typed after a cancel key is not left for the shell; and the
//! terminal's settings (echo, signal keys, end-of-line character) are restored afterwards on
//! every one of those paths. `unsafe` is confined to the few libc calls
//! that make and inspect the pseudo-terminal.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breakglass::login::StoredHash;

const BIN: &str = env!("CARGO_BIN_EXE_breakglass");
const PATIENCE: Duration = Duration::from_secs(30);

struct Pty {
    master: File,
    slave: File,
    /// Everything the terminal showed (the master's output).
    seen: Arc<Mutex<Vec<u8>>>,
}

fn termios(f: &File) -> libc::termios {
    let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
    assert_eq!(unsafe { libc::tcgetattr(f.as_raw_fd(), t.as_mut_ptr()) }, 0);
    unsafe { t.assume_init() }
}

impl Pty {
    fn new() -> Pty {
        let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = unsafe { File::from_raw_fd(fd) };
        assert_eq!(unsafe { libc::grantpt(fd) }, 0);
        assert_eq!(unsafe { libc::unlockpt(fd) }, 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) },
            0
        );
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned();
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), seen.clone());
        // Ends with EIO once every slave descriptor is closed.
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            slave,
            seen,
        }
    }

    /// `hash-password` with this terminal as stdin and controlling terminal; stdout and stderr
    /// are pipes, so the PHC string and the messages can be told from what the terminal shows.
    fn spawn(&self) -> Child {
        let mut cmd = Command::new(BIN);
        cmd.arg("hash-password")
            .stdin(Stdio::from(self.slave.try_clone().unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A new session whose controlling terminal is the pty: /dev/tty is the pty, never the
        // terminal the tests were started from.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn wait_for(&self, text: &str, times: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned();
            if seen.matches(text).count() >= times {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} after {PATIENCE:?}: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_in(&self, bytes: &[u8]) {
        (&self.master).write_all(bytes).unwrap();
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }
}

fn finish(child: Child) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + PATIENCE;
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hash-password did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The settings the program changes are back as they were.
fn assert_restored(pty: &Pty, before: &libc::termios) {
    let after = termios(&pty.slave);
    let flags = libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL | libc::ISIG | libc::ICANON;
    assert_eq!(after.c_lflag & flags, before.c_lflag & flags, "c_lflag");
    assert_ne!(after.c_lflag & libc::ECHO, 0, "echo is off");
    assert_eq!(after.c_cc[libc::VEOL], before.c_cc[libc::VEOL], "VEOL");
}

#[test]
fn asks_twice_without_echo_and_restores_the_terminal() {
    let pty = Pty::new();
    let before = termios(&pty.slave);
    let child = pty.spawn();
    pty.wait_for("password: ", 1);
    pty.type_in(b"Pty-S3cret\n");
    pty.wait_for("Again: ", 1);
    pty.type_in(b"Pty-S3cret\n");
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !pty.shown().contains("Pty-S3cret"),
        "echoed: {:?}",
        pty.shown()
    );
    let stored = StoredHash::parse(stdout.trim_end_matches('\n')).unwrap();
    assert!(stored.check(b"Pty-S3cret").is_ok());
    assert_restored(&pty, &before);
}

#[test]
fn a_mismatch_is_refused() {
    let pty = Pty::new();
    let before = termios(&pty.slave);
    let child = pty.spawn();
    pty.wait_for("password: ", 1);
    pty.type_in(b"first\n");
    pty.wait_for("Again: ", 1);
    pty.type_in(b"second\n");
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("differ"), "{stderr}");
    assert_restored(&pty, &before);
}

#[test]
fn ctrl_c_cancels_at_once_and_restores_echo() {
    let pty = Pty::new();
    let before = termios(&pty.slave);
    let intr = before.c_cc[libc::VINTR];
    for after_text in [&b""[..], b"half-typed"] {
        let child = pty.spawn();
        pty.wait_for("password: ", if after_text.is_empty() { 1 } else { 2 });
        pty.type_in(after_text);
        // No Enter: the interrupt key alone must end the read.
        pty.type_in(&[intr]);
        let (code, stdout, stderr) = finish(child);
        assert_eq!(code, Some(130), "{stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains("cancelled"), "{stderr}");
        assert_restored(&pty, &before);
    }
    assert!(!pty.shown().contains("half-typed"));
}

#[test]
fn the_rest_of_a_cancelled_line_never_reaches_the_shell() {
    let pty = Pty::new();
    let before = termios(&pty.slave);
    let child = pty.spawn();
    pty.wait_for("password: ", 1);
    // Ctrl-\ cancels too, but only ends the line at Enter: the rest must not stay queued.
    let mut line = b"secret-start".to_vec();
    line.push(before.c_cc[libc::VQUIT]);
    line.extend_from_slice(b"secret-end\n");
    pty.type_in(&line);
    let (code, _, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    let mut queued: libc::c_int = -1;
    assert_eq!(
        unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::FIONREAD, &mut queued) },
        0
    );
    assert_eq!(queued, 0, "input left for the next reader of the terminal");
    assert_restored(&pty, &before);
    assert!(!pty.shown().contains("secret"));
}
