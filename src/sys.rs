//! Operating-system glue: the boot-time clock, the pid, signal masks, the host name, `flock`.
//!
//! Plain OS calls only: this and `fork` are the modules outside `ffi` that may use `unsafe`,
//! and only for single libc calls whose contracts are spelled out beside them. It must never
//! hold a lock or call into the rest of the library.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Time since boot, suspend included, from `CLOCK_BOOTTIME`.
///
/// Monotonic, so wall-clock steps cannot stretch or shorten a code's life; unlike
/// `CLOCK_MONOTONIC` (what `Instant` reads) it keeps counting while the machine sleeps, so a
/// suspended host cannot keep a code alive past its TTL in real time.
///
/// Fails closed: should `CLOCK_BOOTTIME` ever fail, time goes on from its last reading by
/// `CLOCK_MONOTONIC`, and it never goes backwards, so a code always keeps ageing and expires.
/// With no clock at all it panics, which every export turns into `BG_ERR_INTERNAL` (a denial).
pub fn boottime() -> Duration {
    BOOT.now(read_clock(libc::CLOCK_BOOTTIME), || {
        read_clock(libc::CLOCK_MONOTONIC)
    })
}

fn read_clock(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, and clock_gettime writes nothing else.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// The boot clock's fallback state, in nanoseconds: a boot-clock reading with the monotonic
/// reading taken with it (renewed at most once per [`PAIR_RENEWAL_NS`]), and the last value
/// returned (never to go back).
struct BootClock {
    boot_ns: AtomicU64,
    mono_at_boot_ns: AtomicU64,
    returned_ns: AtomicU64,
}

/// How often the fallback's pair of readings is renewed. The monotonic reading was taken on
/// every call, and was a tenth of `bg_generate`'s whole cost; the fallback stays exact (the
/// monotonic clock counts from the pair to now however old the pair is), except for time the
/// host spent suspended in the last such interval before the boot clock failed, which the
/// monotonic clock cannot see in any case.
const PAIR_RENEWAL_NS: u64 = 1_000_000_000;

static BOOT: BootClock = BootClock {
    boot_ns: AtomicU64::new(0),
    mono_at_boot_ns: AtomicU64::new(0),
    returned_ns: AtomicU64::new(0),
};

impl BootClock {
    fn now(&self, boot: Option<Duration>, mono: impl FnOnce() -> Option<Duration>) -> Duration {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let t = match boot {
            Some(b) => {
                let b = nanos(b);
                let pair = self.boot_ns.load(Ordering::Relaxed);
                if pair == 0 || b.saturating_sub(pair) >= PAIR_RENEWAL_NS {
                    if let Some(m) = mono() {
                        self.mono_at_boot_ns.store(nanos(m), Ordering::Relaxed);
                        self.boot_ns.store(b, Ordering::Relaxed);
                    }
                }
                b
            }
            None => match mono() {
                Some(m) => {
                    let since =
                        nanos(m).saturating_sub(self.mono_at_boot_ns.load(Ordering::Relaxed));
                    self.boot_ns.load(Ordering::Relaxed).saturating_add(since)
                }
                None => panic!("no monotonic clock: refusing rather than freezing time"),
            },
        };
        let prev = self.returned_ns.fetch_max(t, Ordering::Relaxed);
        Duration::from_nanos(prev.max(t))
    }
}

/// Wall-clock time since the Unix epoch, in milliseconds (0 if the clock is before 1970).
///
/// Only for state shared by the processes of a host across restarts (`state_dir`): there a
/// boot clock would restart at zero after a reboot. The rules that read it fail closed on a
/// clock stepped back (see `login::state::expired`).
pub fn realtime_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether process `pid` runs (a process of another user counts; a zombie, which has exited
/// but was not reaped yet, does not).
pub fn process_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: getppid and kill with signal 0 only query; no signal is sent.
    let exists = unsafe {
        libc::getppid() == p
            || libc::kill(p, 0) == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    };
    exists && !is_zombie(pid)
}

/// Whether `/proc/<pid>/stat` says the process is a zombie (state `Z` after the name).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// This process's id; after a fork it differs from the parent's.
pub fn pid() -> u32 {
    std::process::id()
}

/// The machine's host name, for alert texts; "unknown-host" when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `len` bytes; gethostname NUL-terminates when it fits,
    // and we only read up to the first NUL or the buffer's end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "unknown-host".to_owned()
    } else {
        name
    }
}

/// Blocks SIGPIPE in the calling thread.
///
/// Called first thing in every worker the library starts: a write to a pipe whose reader
/// died (the sendmail transport) then fails with EPIPE instead of killing a host that never
/// ignored the signal. Other threads of the host are left alone.
pub fn block_sigpipe_in_this_thread() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Holds an exclusive `flock` on a file until dropped.
///
/// `flock` locks the open file description, so two opens of one file (in one process or in
/// several) exclude each other; the lock goes away with the descriptor if the process dies.
pub struct FileLock<'a>(&'a std::fs::File);

/// Takes an exclusive advisory lock on `file`, waiting for it (EINTR is retried).
pub fn flock_exclusive(file: &std::fs::File) -> std::io::Result<FileLock<'_>> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the descriptor is open for as long as `file` is borrowed; flock reads
        // nothing else.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(FileLock(file));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// [`flock_exclusive`], giving up at `deadline`: a holder that never lets go costs a bounded
/// wait (`ErrorKind::TimedOut`), never a hang.
pub fn flock_exclusive_until(
    file: &std::fs::File,
    deadline: std::time::Instant,
) -> std::io::Result<FileLock<'_>> {
    use std::os::fd::AsRawFd;
    let mut pause = Duration::from_micros(50);
    loop {
        // SAFETY: as in flock_exclusive; LOCK_NB makes it return at once.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(FileLock(file));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // Unlock explicitly rather than only closing: a child forked while we held the lock
        // shares this open file description (its copy of the descriptor stays open until it
        // execs or exits), and a close here alone would leave the lock held for as long.
        // SAFETY: as above; an unlock of a lock we hold has no failure we could act on.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Allocates `len` bytes of `file` from `offset` without changing its size
/// (`fallocate(FALLOC_FL_KEEP_SIZE)`): writes into that range later need no new space, so a
/// reserve made this way still takes records when the filesystem is otherwise full.
pub fn fallocate_keep_size(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; plain integers.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Gives back the space of `file` from `offset` for `len` bytes, keeping its size
/// (`FALLOC_FL_PUNCH_HOLE`): frees a reserve past the end of a file that is no longer written.
pub fn punch_hole(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: as above.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, off, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> BootClock {
        BootClock {
            boot_ns: AtomicU64::new(0),
            mono_at_boot_ns: AtomicU64::new(0),
            returned_ns: AtomicU64::new(0),
        }
    }

    /// Without the boot clock, time goes on from its last reading by the monotonic clock (it
    /// used to restart at about zero, so a pending code would never expire); it never goes
    /// backwards, and with no clock at all the call fails instead of freezing time.
    #[test]
    fn the_boot_clock_fails_closed() {
        let s = Duration::from_secs;
        let c = fresh();
        assert_eq!(c.now(Some(s(1000)), || Some(s(900))), s(1000));
        // Within a second of the pair, the monotonic clock is not read.
        let ms = Duration::from_millis;
        assert_eq!(c.now(Some(ms(1_000_500)), || panic!("read")), ms(1_000_500));
        assert_eq!(c.now(None, || Some(s(960))), s(1060));
        assert_eq!(c.now(None, || Some(s(1500))), s(1600));
        // Back on the boot clock, with a reading below what was already returned: held.
        assert_eq!(c.now(Some(s(1590)), || Some(s(1501))), s(1600));
        assert_eq!(c.now(Some(s(1700)), || Some(s(1600))), s(1700));
        // The pair was renewed at 1700 s (mono 1600 s): the fallback counts from there.
        assert_eq!(c.now(None, || Some(s(1701))), s(1801));
        let never = std::panic::catch_unwind(|| fresh().now(None, || None));
        assert!(never.is_err());
        assert!(boottime() > Duration::ZERO);
    }
}
