//! Delivery counters since the library was loaded.
//!
//! Owns the six counters and their meaning, listed once in [`counters!`]: the snapshot type,
//! the atomic counters and the field list are all made from that one list. Counters only grow;
//! nothing here may block.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A snapshot of the delivery counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Stats {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Stats {
            /// The field names, in order (the C struct `bg_stats` has the same).
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($name)),*];
        }

        pub(crate) struct Counters {
            $(pub $name: AtomicU64,)*
        }

        pub(crate) static COUNTERS: Counters = Counters {
            $($name: AtomicU64::new(0),)*
        };

        impl Counters {
            pub(crate) fn snapshot(&self) -> Stats {
                Stats {
                    $($name: self.$name.load(Relaxed),)*
                }
            }
        }
    };
}

counters! {
    /// Calls accepted into the queue: one per `send_otp` or `alert` call of which at least one
    /// part (the code email; an alert's emails, its webhook) was queued.
    queued,
    /// Email messages a server or outbox accepted (one per recipient).
    emails_sent,
    /// Email messages that finally failed, after any retries.
    emails_failed,
    /// Webhook POSTs answered with 2xx.
    webhooks_sent,
    /// Webhook POSTs that finally failed, after any retries.
    webhooks_failed,
    /// Parts dropped because their lane was full: a code email, an alert's emails (all
    /// recipients together) or an alert's webhook each count one.
    dropped,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
