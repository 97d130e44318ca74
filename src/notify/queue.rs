//! The bounded delivery queue: three lanes and a fixed set of worker threads.
//!
//! Owns admission, the lanes, the workers and `flush`. Each part of a job (an alert's mail, an
//! alert's webhook, a code email) is admitted to its own lane on its own: a full lane drops that
//! part only, never blocks the caller and never costs another lane its part. Alert mail and code
//! mail have separate lanes, so a flood of code emails can never push out an alarm, and alert
//! mail has a worker of its own, so it never waits behind code emails to a stalled server.
//! Webhook parts carry their receiver as a key: [`WEBHOOK_WORKERS`] threads serve the webhook
//! lane, and no two of them ever serve one receiver at once, so a receiver that hangs holds at
//! most one worker and the others keep delivering to every other receiver.
//! A queue belongs to one process: after `fork()` the child builds its own on first use and
//! never delivers its parent's jobs. It uses std's futex-based Mutex and Condvar, which keep no
//! waiter lists in user space that a fork could leave stale. It must never run a delivery or
//! log while holding the state lock, and a worker must survive any delivery that panics.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::stats::{Counters, COUNTERS};

/// Parts waiting in one lane (alert mail, code mail or webhook) before new ones are dropped.
pub const LANE_CAPACITY: usize = 256;
/// Parts of one receiver (one key) waiting in a lane: a hung receiver's backlog can fill at
/// most a quarter of the webhook lane, so up to three hung receivers still leave room for the
/// others' alerts.
pub const KEY_CAPACITY: usize = LANE_CAPACITY / 4;
/// Threads serving mail: one for alert mail only, and one that takes alert mail first and
/// code mail when no alert mail waits.
pub const MAIL_WORKERS: usize = 2;
/// Threads draining the webhook lane. Each serves any receiver not already being served by
/// another, so a hung receiver holds one of them (for at most its retries' time, see
/// `README.md`, Delivery) and the other receivers still have three.
pub const WEBHOOK_WORKERS: usize = 4;

/// A unit of work for one lane.
pub type Work = Box<dyn FnOnce() + Send + 'static>;

/// Where a part of a job waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// An alert's emails (one part per alert, for all its recipients).
    AlertMail,
    /// A one-time code email.
    CodeMail,
    /// An alert's webhook POST.
    Webhook,
}

impl Lane {
    fn index(self) -> usize {
        match self {
            Lane::AlertMail => 0,
            Lane::CodeMail => 1,
            Lane::Webhook => 2,
        }
    }
}

/// Which lanes a worker serves, in order of preference.
#[derive(Clone, Copy)]
enum Role {
    AlertMail,
    AnyMail,
    Webhook,
}

impl Role {
    fn lanes(self) -> &'static [Lane] {
        match self {
            Role::AlertMail => &[Lane::AlertMail],
            Role::AnyMail => &[Lane::AlertMail, Lane::CodeMail],
            Role::Webhook => &[Lane::Webhook],
        }
    }
}

const ROLES: [Role; MAIL_WORKERS + WEBHOOK_WORKERS] = [
    Role::AlertMail,
    Role::AnyMail,
    Role::Webhook,
    Role::Webhook,
    Role::Webhook,
    Role::Webhook,
];

/// One part waiting in a lane: its job's sequence number, the peer it goes to (parts with the
/// same key are never run at once), and the work.
type Waiting = (u64, Option<u64>, Work);

#[derive(Default)]
struct State {
    lanes: [VecDeque<Waiting>; 3],
    /// Keys of the parts running now.
    busy: Vec<u64>,
    next_seq: u64,
    /// Job sequence number to the count of its admitted parts not yet finished.
    unfinished: BTreeMap<u64, u8>,
    started: bool,
    dropped_since_alert: u64,
}

pub struct Queue {
    pid: u32,
    state: Mutex<State>,
    mail_ready: Condvar,
    webhook_ready: Condvar,
    finished: Condvar,
}

pub(crate) static CURRENT: crate::fork::ForkSafe<Option<Arc<Queue>>> =
    crate::fork::ForkSafe::new(None);

/// This process's queue, made on first use (and again in a forked child).
pub fn current() -> Arc<Queue> {
    let pid = crate::sys::pid();
    let mut cur = CURRENT.lock();
    match &*cur {
        Some(q) if q.pid == pid => q.clone(),
        _ => {
            let q = Arc::new(Queue::new(pid));
            *cur = Some(q.clone());
            q
        }
    }
}

/// What [`Queue::push`] did with the parts of a job.
pub struct Admission {
    /// Parts queued.
    pub queued: usize,
    /// The lanes whose part was dropped because the lane was full.
    pub dropped: Vec<Lane>,
    /// Parts dropped since the library was loaded, these included.
    pub dropped_total: u64,
}

impl Queue {
    fn new(pid: u32) -> Queue {
        Queue {
            pid,
            state: Mutex::default(),
            mail_ready: Condvar::new(),
            webhook_ready: Condvar::new(),
            finished: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the count of parts dropped since the previous alert, for the next alert's text.
    pub fn take_dropped_since_alert(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped_since_alert)
    }

    /// Returns a count taken by [`Queue::take_dropped_since_alert`] for an alert that had
    /// nothing to queue, so the next alert still reports it.
    pub fn give_back_dropped(&self, count: u64) {
        self.lock().dropped_since_alert += count;
    }

    /// Queues each part in its lane, or drops it when that lane is full; never blocks on
    /// delivery. `carried` is the dropped count the job reports: when no part of it is queued,
    /// that count goes back to the pool for the next alert.
    pub fn push(self: &Arc<Self>, parts: Vec<(Lane, Work)>, carried: u64) -> Admission {
        let parts = parts.into_iter().map(|(l, w)| (l, None, w)).collect();
        self.push_keyed(parts, carried)
    }

    /// As [`Queue::push`], with a key per part: two parts with the same key (the same webhook
    /// receiver) never run at the same time, so one peer can hold at most one worker.
    pub fn push_keyed(
        self: &Arc<Self>,
        parts: Vec<(Lane, Option<u64>, Work)>,
        carried: u64,
    ) -> Admission {
        let mut st = self.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let mut queued = 0u8;
        let (mut mail_parts, mut webhook_parts) = (0usize, 0usize);
        let mut dropped = Vec::new();
        for (lane, key, work) in parts {
            let waiting = &mut st.lanes[lane.index()];
            let room_for_key = key.is_none_or(|k| {
                waiting
                    .iter()
                    .filter(|(_, other, _)| *other == Some(k))
                    .count()
                    < KEY_CAPACITY
            });
            if waiting.len() < LANE_CAPACITY && room_for_key {
                waiting.push_back((seq, key, work));
                queued += 1;
                match lane {
                    Lane::Webhook => webhook_parts += 1,
                    Lane::AlertMail | Lane::CodeMail => mail_parts += 1,
                }
            } else {
                dropped.push(lane);
            }
        }
        st.dropped_since_alert += dropped.len() as u64;
        if queued == 0 {
            st.dropped_since_alert += carried;
        } else {
            st.unfinished.insert(seq, queued);
        }
        let start = queued > 0 && !std::mem::replace(&mut st.started, true);
        drop(st);

        for _ in &dropped {
            Counters::bump(&COUNTERS.dropped);
        }
        if queued > 0 {
            Counters::bump(&COUNTERS.queued);
            if start {
                self.start_workers();
            }
            // Only the lanes that got a part, so an alert without mail wakes no mail worker
            // (every thread woken for nothing competes with the one that delivers, on a small
            // machine for the same CPU). Both mail workers may be the one to take a mail part
            // (the alert-mail one only for alert mail); a worker that finds nothing for itself
            // goes back to sleep.
            if mail_parts > 0 {
                self.mail_ready.notify_all();
            }
            // Any idle webhook worker can take a part; one whose key is busy is taken when
            // that key's worker finishes (it wakes every webhook worker then).
            match webhook_parts {
                0 => {}
                1 => self.webhook_ready.notify_one(),
                _ => self.webhook_ready.notify_all(),
            }
        }
        Admission {
            queued: usize::from(queued),
            dropped,
            dropped_total: COUNTERS.dropped.load(Relaxed),
        }
    }

    fn start_workers(self: &Arc<Self>) {
        for (n, role) in ROLES.into_iter().enumerate() {
            let q = self.clone();
            let name = match role {
                Role::AlertMail => "breakglass-alert-mail".to_owned(),
                Role::AnyMail => format!("breakglass-mail-{n}"),
                Role::Webhook => format!("breakglass-webhook-{n}"),
            };
            if let Err(e) = std::thread::Builder::new()
                .name(name)
                .spawn(move || q.work(role))
            {
                log::error!("cannot start a delivery thread ({e}); queued alerts may not be sent");
            }
        }
    }

    fn work(&self, role: Role) {
        crate::sys::block_sigpipe_in_this_thread();
        let ready = match role {
            Role::Webhook => &self.webhook_ready,
            Role::AlertMail | Role::AnyMail => &self.mail_ready,
        };
        loop {
            let (lane, seq, key, task) = {
                let mut st = self.lock();
                loop {
                    let State { lanes, busy, .. } = &mut *st;
                    let next = role.lanes().iter().find_map(|&lane| {
                        let waiting = &mut lanes[lane.index()];
                        // The first part whose peer no other worker is serving.
                        let at = waiting
                            .iter()
                            .position(|(_, key, _)| key.is_none_or(|k| !busy.contains(&k)))?;
                        let (seq, key, task) = waiting.remove(at)?;
                        Some((lane, seq, key, task))
                    });
                    if let Some(next) = next {
                        if let Some(k) = next.2 {
                            st.busy.push(k);
                        }
                        break next;
                    }
                    st = ready.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
            };
            // A task counts and logs its own failures; a panic is one more failure, and the
            // worker goes on with the next task.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                log::error!("a delivery task panicked; its messages are counted as failed");
                match lane {
                    Lane::AlertMail | Lane::CodeMail => Counters::bump(&COUNTERS.emails_failed),
                    Lane::Webhook => Counters::bump(&COUNTERS.webhooks_failed),
                }
            }
            let mut st = self.lock();
            if let Some(k) = key {
                if let Some(at) = st.busy.iter().position(|&b| b == k) {
                    st.busy.swap_remove(at);
                }
            }
            if let Some(left) = st.unfinished.get_mut(&seq) {
                *left -= 1;
                if *left == 0 {
                    st.unfinished.remove(&seq);
                }
            }
            drop(st);
            self.finished.notify_all();
            if key.is_some() {
                // Parts for that peer may be waiting for a worker while others sleep.
                ready.notify_all();
            }
        }
    }

    /// Waits until every part queued before the call has finished, or `timeout` has passed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        let target = st.next_seq;
        loop {
            let pending = st
                .unfinished
                .keys()
                .next()
                .is_some_and(|&first| first < target);
            if !pending {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            st = self
                .finished
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Mutex;

    const WAIT: Duration = Duration::from_secs(20);

    /// A part that stands for a stalled peer: it tells `started` it runs, then holds its
    /// worker until `release` is sent to or dropped.
    fn stalled(started: mpsc::Sender<()>, release: mpsc::Receiver<()>) -> Work {
        Box::new(move || {
            let _ = started.send(());
            let _ = release.recv();
        })
    }

    fn noop() -> Work {
        Box::new(|| {})
    }

    fn report(done: &mpsc::Sender<&'static str>, what: &'static str) -> Work {
        let done = done.clone();
        Box::new(move || {
            let _ = done.send(what);
        })
    }

    #[test]
    fn a_flood_of_code_mail_to_a_stalled_server_never_costs_an_alert_anything() {
        let q = Arc::new(Queue::new(0));
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        q.push(vec![(Lane::CodeMail, stalled(started_tx, release_rx))], 0);
        started.recv_timeout(WAIT).unwrap();
        for _ in 0..LANE_CAPACITY {
            assert_eq!(q.push(vec![(Lane::CodeMail, noop())], 0).queued, 1);
        }
        let full = q.push(vec![(Lane::CodeMail, noop())], 0);
        assert_eq!((full.queued, full.dropped), (0, vec![Lane::CodeMail]));

        // The code-mail worker is stuck and its lane full: the alert's mail and webhook are
        // both queued, and both run.
        let (done_tx, done) = mpsc::channel();
        let alert = q.push(
            vec![
                (Lane::AlertMail, report(&done_tx, "mail")),
                (Lane::Webhook, report(&done_tx, "webhook")),
            ],
            0,
        );
        assert_eq!((alert.queued, alert.dropped.len()), (2, 0));
        let mut got = [
            done.recv_timeout(WAIT).unwrap(),
            done.recv_timeout(WAIT).unwrap(),
        ];
        got.sort_unstable();
        assert_eq!(got, ["mail", "webhook"]);
        assert_eq!(
            q.take_dropped_since_alert(),
            1,
            "the dropped code email is reported"
        );

        drop(release);
        assert!(
            q.flush(WAIT),
            "flush waits for every queued part, then returns"
        );
    }

    /// A webhook part for the receiver with key `key`.
    fn hook(key: u64, work: Work) -> Vec<(Lane, Option<u64>, Work)> {
        vec![(Lane::Webhook, Some(key), work)]
    }

    #[test]
    fn a_full_lane_drops_only_its_own_part_and_flush_waits_for_the_rest() {
        let q = Arc::new(Queue::new(0));
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        // Every webhook worker held by a hung receiver of its own; their later parts wait
        // (never two at once for one receiver), a quarter of the lane each, filling it.
        for key in 0..WEBHOOK_WORKERS as u64 {
            let (started_tx, release_rx) = (started_tx.clone(), release_rx.clone());
            let part: Work = Box::new(move || {
                let _ = started_tx.send(());
                let _ = release_rx.lock().unwrap().recv();
            });
            q.push_keyed(hook(key, part), 0);
        }
        for _ in 0..WEBHOOK_WORKERS {
            started.recv_timeout(WAIT).unwrap();
        }
        for key in 0..WEBHOOK_WORKERS as u64 {
            for _ in 0..KEY_CAPACITY {
                assert_eq!(q.push_keyed(hook(key, noop()), 0).queued, 1);
            }
        }

        // Mail goes through; only the webhook is dropped, and the count this alert carried
        // stays with it (its mail reports it).
        let (done_tx, done) = mpsc::channel();
        let alert = q.push_keyed(
            vec![
                (Lane::AlertMail, None, report(&done_tx, "mail")),
                (Lane::Webhook, Some(99), noop()),
            ],
            5,
        );
        assert_eq!((alert.queued, alert.dropped), (1, vec![Lane::Webhook]));
        assert_eq!(done.recv_timeout(WAIT).unwrap(), "mail");
        assert_eq!(q.take_dropped_since_alert(), 1);

        // An alert none of whose parts fit gives its carried count back, plus its own drop.
        let lost = q.push_keyed(hook(99, noop()), 7);
        assert_eq!(lost.queued, 0);
        assert_eq!(q.take_dropped_since_alert(), 8);

        assert!(
            !q.flush(Duration::from_millis(50)),
            "the stalled webhooks are still queued"
        );
        drop(release);
        assert!(q.flush(WAIT));
    }

    #[test]
    fn a_hung_receiver_s_backlog_is_bounded_and_leaves_room_for_the_others() {
        let q = Arc::new(Queue::new(0));
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        q.push_keyed(hook(1, stalled(started_tx, release_rx)), 0);
        started.recv_timeout(WAIT).unwrap();
        for _ in 0..KEY_CAPACITY {
            assert_eq!(q.push_keyed(hook(1, noop()), 0).queued, 1);
        }
        let over = q.push_keyed(hook(1, noop()), 0);
        assert_eq!((over.queued, over.dropped), (0, vec![Lane::Webhook]));
        let (done_tx, done) = mpsc::channel();
        assert_eq!(
            q.push_keyed(hook(2, report(&done_tx, "other")), 0).queued,
            1
        );
        assert_eq!(done.recv_timeout(WAIT).unwrap(), "other");
        drop(release);
        assert!(q.flush(WAIT));
    }

    #[test]
    fn a_hung_receiver_holds_one_worker_and_the_others_still_deliver() {
        let q = Arc::new(Queue::new(0));
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        q.push_keyed(hook(1, stalled(started_tx, release_rx)), 0);
        started.recv_timeout(WAIT).unwrap();
        // More parts for the hung receiver than there are workers, queued first: none may
        // start while its first is hung, so they cannot take the other workers.
        let (ran_tx, ran) = mpsc::channel();
        for _ in 0..WEBHOOK_WORKERS * 2 {
            q.push_keyed(hook(1, report(&ran_tx, "hung receiver")), 0);
        }
        let (done_tx, done) = mpsc::channel();
        for key in 2..12 {
            q.push_keyed(hook(key, report(&done_tx, "other receiver")), 0);
        }
        for _ in 2..12 {
            assert_eq!(done.recv_timeout(WAIT).unwrap(), "other receiver");
        }
        assert!(
            ran.try_recv().is_err(),
            "no second part of the hung receiver ran while its first was hung"
        );
        drop(release);
        assert!(q.flush(WAIT));
        assert_eq!(ran.try_iter().count(), WEBHOOK_WORKERS * 2);
    }

    #[test]
    fn the_shared_mail_worker_takes_alert_mail_before_code_mail() {
        let q = Arc::new(Queue::new(0));
        // Hold both mail workers with alert mail, learning which worker holds which part.
        let (started_tx, started) = mpsc::channel();
        let mut releases = Vec::new();
        for n in 0..2 {
            let (release, release_rx) = mpsc::channel::<()>();
            let started_tx = started_tx.clone();
            let part: Work = Box::new(move || {
                let me = std::thread::current().name().unwrap_or("").to_owned();
                let _ = started_tx.send((n, me));
                let _ = release_rx.recv();
            });
            q.push(vec![(Lane::AlertMail, part)], 0);
            releases.push(Some(release));
        }
        let held = [
            started.recv_timeout(WAIT).unwrap(),
            started.recv_timeout(WAIT).unwrap(),
        ];
        let (shared, _) = held
            .iter()
            .find(|(_, name)| name.starts_with("breakglass-mail-"))
            .expect("one of them is the shared worker");

        // Code mail queued first, alert mail second; free the shared worker only.
        let (done_tx, done) = mpsc::channel();
        q.push(vec![(Lane::CodeMail, report(&done_tx, "code"))], 0);
        q.push(vec![(Lane::AlertMail, report(&done_tx, "alert"))], 0);
        releases[*shared] = None;
        assert_eq!(done.recv_timeout(WAIT).unwrap(), "alert");
        assert_eq!(done.recv_timeout(WAIT).unwrap(), "code");
        releases.clear();
        assert!(q.flush(WAIT));
    }
}
