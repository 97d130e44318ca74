//! The bounded delivery queue and its fixed set of worker threads.
//!
//! Owns admission (a full queue drops the job, never blocks the caller), the two lanes (mail
//! and webhook, so neither waits behind a stalled peer of the other), the workers and `flush`.
//! A queue belongs to one process: after `fork()` the child builds its own on first use and
//! never delivers its parent's jobs. It uses std's futex-based Mutex and Condvar, which keep no
//! waiter lists in user space that a fork could leave stale. It must never run a delivery or
//! log while holding the state lock, and a worker must survive any delivery that panics.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::stats::{Counters, COUNTERS};

/// Jobs waiting in one lane before new ones are dropped.
pub const LANE_CAPACITY: usize = 256;
/// Threads draining the mail lane.
pub const MAIL_WORKERS: usize = 2;
/// Threads draining the webhook lane.
pub const WEBHOOK_WORKERS: usize = 1;

/// A unit of work for one lane.
pub type Work = Box<dyn FnOnce() + Send + 'static>;

/// What one job puts on each lane.
pub struct Job {
    /// Work for the mail lane.
    pub mail: Option<Work>,
    /// Work for the webhook lane.
    pub webhook: Option<Work>,
}

#[derive(Clone, Copy)]
enum Lane {
    Mail,
    Webhook,
}

#[derive(Default)]
struct State {
    mail: VecDeque<(u64, Work)>,
    webhook: VecDeque<(u64, Work)>,
    next_seq: u64,
    /// Job sequence number to the count of its parts not yet finished.
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

static CURRENT: parking_lot::Mutex<Option<Arc<Queue>>> = parking_lot::Mutex::new(None);

/// This process's queue, made on first use (and again in a forked child).
pub fn current() -> Arc<Queue> {
    crate::sys::ensure_fork_handlers();
    let pid = crate::sys::pid();
    let mut cur = CURRENT.lock();
    match &*cur {
        Some(q) if q.pid == pid => q.clone(),
        _ => {
            let q = Arc::new(Queue {
                pid,
                state: Mutex::default(),
                mail_ready: Condvar::new(),
                webhook_ready: Condvar::new(),
                finished: Condvar::new(),
            });
            *cur = Some(q.clone());
            q
        }
    }
}

pub(crate) fn fork_hold() {
    crate::sys::fork_lock(&CURRENT);
}

pub(crate) fn fork_release() {
    crate::sys::fork_unlock(&CURRENT);
}

/// What [`Queue::push`] did with a job.
pub enum Admission {
    /// Queued.
    Queued,
    /// The queue was full; the job was dropped.
    Dropped { total: u64 },
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the count of jobs dropped since the previous alert, for the next alert's text.
    pub fn take_dropped_since_alert(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped_since_alert)
    }

    /// Queues `job` or drops it when a lane it needs is full; never blocks on delivery.
    /// `carried` is the dropped count the job reports, returned to the pool if it is dropped.
    pub fn push(self: &Arc<Self>, job: Job, carried: u64) -> Admission {
        let mut st = self.lock();
        let fits =
            |lane: &VecDeque<(u64, Work)>, needed: bool| !needed || lane.len() < LANE_CAPACITY;
        if !fits(&st.mail, job.mail.is_some()) || !fits(&st.webhook, job.webhook.is_some()) {
            // The dropped job's own count, plus any it was to report, waits for the next alert.
            st.dropped_since_alert += carried + 1;
            drop(st);
            Counters::bump(&COUNTERS.dropped);
            return Admission::Dropped {
                total: COUNTERS.dropped.load(std::sync::atomic::Ordering::Relaxed),
            };
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let parts = u8::from(job.mail.is_some()) + u8::from(job.webhook.is_some());
        st.unfinished.insert(seq, parts);
        if let Some(w) = job.mail {
            st.mail.push_back((seq, w));
        }
        if let Some(w) = job.webhook {
            st.webhook.push_back((seq, w));
        }
        let start = !std::mem::replace(&mut st.started, true);
        drop(st);
        Counters::bump(&COUNTERS.queued);
        if start {
            self.start_workers();
        }
        self.mail_ready.notify_one();
        self.webhook_ready.notify_one();
        Admission::Queued
    }

    fn start_workers(self: &Arc<Self>) {
        let lanes = std::iter::repeat_n(Lane::Mail, MAIL_WORKERS)
            .chain(std::iter::repeat_n(Lane::Webhook, WEBHOOK_WORKERS));
        for (n, lane) in lanes.enumerate() {
            let q = self.clone();
            let name = match lane {
                Lane::Mail => format!("breakglass-mail-{n}"),
                Lane::Webhook => "breakglass-webhook".to_owned(),
            };
            if let Err(e) = std::thread::Builder::new()
                .name(name)
                .spawn(move || q.work(lane))
            {
                log::error!("cannot start a delivery thread ({e}); queued alerts may not be sent");
            }
        }
    }

    fn work(&self, lane: Lane) {
        crate::sys::block_sigpipe_in_this_thread();
        loop {
            let (seq, task) = {
                let mut st = self.lock();
                loop {
                    let next = match lane {
                        Lane::Mail => st.mail.pop_front(),
                        Lane::Webhook => st.webhook.pop_front(),
                    };
                    if let Some(next) = next {
                        break next;
                    }
                    let ready = match lane {
                        Lane::Mail => &self.mail_ready,
                        Lane::Webhook => &self.webhook_ready,
                    };
                    st = ready.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
            };
            // A task counts and logs its own failures; a panic is one more failure, and the
            // worker goes on with the next task.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                log::error!("a delivery task panicked; its messages are counted as failed");
                match lane {
                    Lane::Mail => Counters::bump(&COUNTERS.emails_failed),
                    Lane::Webhook => Counters::bump(&COUNTERS.webhooks_failed),
                }
            }
            let mut st = self.lock();
            if let Some(left) = st.unfinished.get_mut(&seq) {
                *left -= 1;
                if *left == 0 {
                    st.unfinished.remove(&seq);
                }
            }
            drop(st);
            self.finished.notify_all();
        }
    }

    /// Waits until every job queued before the call has finished, or `timeout` has passed.
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
