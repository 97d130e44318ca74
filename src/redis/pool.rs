//! The per-process pool of idle connections to the shared slot's server.
//!
//! Owns reuse: a flood of verifies must not open one TCP connection per attempt (ephemeral
//! ports would run out). At most [`MAX_IDLE`] connections wait here, each for at most
//! [`MAX_IDLE_TIME`], tagged with the process that opened them (pid and fork count). It must
//! never hold its lock during network I/O or while taking another lock, never hand a
//! connection to a process other than its opener (after `fork()` the child leaves its
//! parent's connections alone), and never keep a connection that failed, timed out or is out
//! of step: only a caller that finished cleanly puts one back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::fork::ForkSafe;

use super::conn::{RedisConn, TargetId};

/// The most idle connections one process keeps (across every slot URL).
pub(crate) const MAX_IDLE: usize = 4;

/// How long a connection may wait unused; an older one may have been dropped silently by a
/// firewall or a proxy, and would cost a whole `slot_timeout_ms` to find out.
pub const MAX_IDLE_TIME: Duration = Duration::from_secs(30);

/// Pooled connections are the parent's: a child never uses them (the reset counts the fork).
pub(crate) static IDLE: ForkSafe<Vec<RedisConn>> =
    ForkSafe::with_child_reset(Vec::new(), Some(note_fork_in_child));

/// Forks this process's ancestry has gone through since the library was loaded: counted in the
/// child's fork handler, so that a descendant whose pid happens to be its long-gone
/// ancestor's still sees the ancestor's connections as foreign.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Which process a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pid: u32,
    forks: u64,
}

impl Owner {
    /// The calling process.
    pub fn this_process() -> Owner {
        Owner {
            pid: crate::sys::pid(),
            forks: FORKS.load(Ordering::Relaxed),
        }
    }
}

/// An idle connection of this process to `target`, checked to be still quiet, if any.
pub fn take(target: &TargetId) -> Option<RedisConn> {
    let me = Owner::this_process();
    loop {
        let mut leaving = Vec::new();
        let found = {
            let mut idle = IDLE.lock();
            let mut found = None;
            let mut i = 0;
            while i < idle.len() {
                let c = &idle[i];
                if c.owner != me || c.idle_since.elapsed() > MAX_IDLE_TIME {
                    leaving.push(idle.swap_remove(i));
                } else if found.is_none() && c.target == *target {
                    found = Some(idle.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            found
        };
        // Dropped outside the lock. Dropping closes this process's descriptor and nothing
        // else: no QUIT, no TLS close_notify, no shutdown(), so a parent's connection that a
        // child inherited stays whole for the parent.
        drop(leaving);
        match found {
            Some(conn) if conn.is_reusable() => return Some(conn),
            Some(stale) => drop(stale),
            None => return None,
        }
    }
}

/// Puts back a connection whose last exchange finished cleanly.
pub fn put(mut conn: RedisConn) {
    if conn.owner != Owner::this_process() || !conn.is_reusable() {
        return;
    }
    conn.idle_since = Instant::now();
    let evicted = {
        let mut idle = IDLE.lock();
        // Full: the connection idle longest makes room (it may be to a server no longer
        // configured), so that stale ones cannot keep the current server's out.
        let oldest = (idle.len() >= MAX_IDLE)
            .then(|| {
                (0..idle.len())
                    .min_by_key(|&i| idle[i].idle_since)
                    .map(|i| idle.swap_remove(i))
            })
            .flatten();
        idle.push(conn);
        oldest
    };
    drop(evicted);
}

/// The child's side of a fork: every connection in the pool now belongs to another process.
/// An atomic add: all a fork handler may do.
fn note_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{DeadlineStream, Stream};
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn only_this_process_gets_back_a_quiet_connection_to_the_same_target_and_few_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let open = |target: TargetId| {
            let tcp = DeadlineStream::connect(&[addr], deadline).unwrap();
            let (peer, _) = listener.accept().unwrap();
            (RedisConn::over(Stream::Plain(tcp), target), peer)
        };
        // Targets no other test uses: the pool is process-wide.
        let (a, b) = ([0xa1; 32], [0xb2; 32]);

        let (conn, _peer) = open(a);
        put(conn);
        assert!(take(&b).is_none(), "another target's connection");
        let conn = take(&a).expect("the idle connection comes back");
        assert!(take(&a).is_none(), "handed out once");

        // Opened by another process (what a forked child finds its parent's connections to
        // be): never handed out, and never put back.
        let mut foreign = conn;
        foreign.owner.pid = foreign.owner.pid.wrapping_add(1);
        IDLE.lock().push(foreign);
        assert!(take(&a).is_none());
        assert!(IDLE.lock().iter().all(|c| c.target != a), "left behind");
        let (mut foreign, _peer) = open(a);
        foreign.owner.pid = foreign.owner.pid.wrapping_add(1);
        put(foreign);
        assert!(take(&a).is_none());
        // Same pid, but from before a fork (a descendant that got its ancestor's pid back).
        let (mut foreign, _peer) = open(a);
        foreign.owner.forks = foreign.owner.forks.wrapping_sub(1);
        IDLE.lock().push(foreign);
        assert!(take(&a).is_none());

        // The server closed it, or sent something unasked, while it waited: dropped.
        let (conn, peer) = open(a);
        put(conn);
        drop(peer);
        std::thread::sleep(Duration::from_millis(50));
        assert!(take(&a).is_none(), "closed by the peer");
        let (conn, mut peer) = open(a);
        put(conn);
        peer.write_all(b"+OK\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(take(&a).is_none(), "out of step");

        // At most MAX_IDLE wait. (One test: the pool is process-wide, and a second test
        // filling it at the same time would crowd out the connections above.)
        let target = [0xc3; 32];
        let mut peers = Vec::new();
        for _ in 0..MAX_IDLE + 2 {
            let tcp = DeadlineStream::connect(&[addr], deadline).unwrap();
            peers.push(listener.accept().unwrap().0);
            put(RedisConn::over(Stream::Plain(tcp), target));
        }
        assert_eq!(IDLE.lock().len(), MAX_IDLE);
        // A full pool of another target's connections still takes this one, the oldest out.
        let (conn, _peer) = open(a);
        put(conn);
        assert_eq!(IDLE.lock().len(), MAX_IDLE);
        assert!(take(&a).is_some());
        let mut back = 0;
        while take(&target).is_some() {
            back += 1;
        }
        assert_eq!(back, MAX_IDLE - 1);
    }
}
