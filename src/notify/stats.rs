//! Delivery counters since the library was loaded.
//!
//! Owns the six counters and their meaning. Counters only grow; nothing here may block.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the delivery counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls accepted into the queue: one per `send_otp` or `alert` call of which at least one
    /// part (the code email; an alert's emails, its webhook) was queued.
    pub queued: u64,
    /// Email messages a server or outbox accepted (one per recipient).
    pub emails_sent: u64,
    /// Email messages that finally failed, after any retries.
    pub emails_failed: u64,
    /// Webhook POSTs answered with 2xx.
    pub webhooks_sent: u64,
    /// Webhook POSTs that finally failed, after any retries.
    pub webhooks_failed: u64,
    /// Parts dropped because their lane was full: a code email, an alert's emails (all
    /// recipients together) or an alert's webhook each count one.
    pub dropped: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub queued: AtomicU64,
    pub emails_sent: AtomicU64,
    pub emails_failed: AtomicU64,
    pub webhooks_sent: AtomicU64,
    pub webhooks_failed: AtomicU64,
    pub dropped: AtomicU64,
}

pub(crate) static COUNTERS: Counters = Counters {
    queued: AtomicU64::new(0),
    emails_sent: AtomicU64::new(0),
    emails_failed: AtomicU64::new(0),
    webhooks_sent: AtomicU64::new(0),
    webhooks_failed: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
};

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            queued: self.queued.load(Relaxed),
            emails_sent: self.emails_sent.load(Relaxed),
            emails_failed: self.emails_failed.load(Relaxed),
            webhooks_sent: self.webhooks_sent.load(Relaxed),
            webhooks_failed: self.webhooks_failed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
        }
    }
}
