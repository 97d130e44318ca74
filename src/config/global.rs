//! The process-global settings: one snapshot that readers load without a lock, and the one
//! writer that validates a change on a private copy and then publishes it.
//!
//! Owns the rule that a bad key or value changes nothing and that no reader ever waits for a
//! writer. It must never log under its lock, and never record anything itself: the entry
//! point that called `configure` records the change in the audit trail.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use zeroize::Zeroizing;

use super::keys::{self, KEYS};
use super::settings::{apply, Settings};
use crate::error::{Error, Result};
use crate::fork::ForkSafe;

/// The published snapshot. Readers only load it (a few atomic operations, never a lock), so no
/// reader ever waits for a writer: a new value is parsed and validated into a private copy
/// first, and published with one atomic swap. Empty until the first read fills in the defaults.
static SETTINGS: ArcSwapOption<Settings> = ArcSwapOption::const_empty();

/// One writer at a time, so that two `configure` calls cannot both start from the same
/// snapshot and lose one change. Readers never take it. A fork while another thread holds it
/// must not leave it held in the child: it is a [`ForkSafe`] lock.
static WRITER: ForkSafe<()> = ForkSafe::new(());

/// What the in-process slot's hot path (`bg_generate`, `bg_verify`) needs of the settings, in
/// one word so that one load reads a consistent pair: the code's life in milliseconds, shifted
/// left by one, and whether the slot is shared (`slot_url`, bit 0). Published after
/// [`SETTINGS`] under [`WRITER`], so a reader sees the pair of one version or of the next. A
/// full snapshot load (arc-swap's protocol) was 5% of a `bg_generate`.
static SLOT_FACTS: AtomicU64 = AtomicU64::new(pack_facts(DEFAULT_OTP_TTL, false));

/// `otp_ttl_seconds`'s default (the key table says "600"; a test checks the two agree).
const DEFAULT_OTP_TTL: Duration = Duration::from_secs(600);

const fn pack_facts(ttl: Duration, shared: bool) -> u64 {
    ((ttl.as_millis() as u64) << 1) | shared as u64
}

fn facts_of(s: &Settings) -> u64 {
    pack_facts(s.otp_ttl, cfg!(feature = "redis") && s.slot.url.is_some())
}

/// The slot's facts under the current settings (one read, as [`current`] is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotFacts {
    /// The life of a code issued now.
    pub otp_ttl: Duration,
    /// The slot is shared (Redis): the caller needs the full snapshot.
    pub shared: bool,
}

/// Reads [`SlotFacts`] with one atomic load.
pub fn slot_facts() -> SlotFacts {
    #[cfg(test)]
    tests::READS.with(|n| n.set(n.get() + 1));
    let w = SLOT_FACTS.load(Ordering::Acquire);
    SlotFacts {
        otp_ttl: Duration::from_millis(w >> 1),
        shared: w & 1 == 1,
    }
}

/// Publishes `next` (under [`WRITER`]): the snapshot, then the slot's facts.
fn store(next: Arc<Settings>) {
    let facts = facts_of(&next);
    SETTINGS.store(Some(next));
    SLOT_FACTS.store(facts, Ordering::Release);
}

/// A snapshot of the current settings. An operation reads it once, at its start, and passes it
/// down, so that it sees one consistent set even when another thread reconfigures.
pub fn current() -> Arc<Settings> {
    #[cfg(test)]
    tests::READS.with(|n| n.set(n.get() + 1));
    loop {
        if let Some(s) = SETTINGS.load_full() {
            return s;
        }
        // First use: publish the defaults, unless another thread just did.
        let none: Option<Arc<Settings>> = None;
        SETTINGS.compare_and_swap(&none, Some(Arc::new(Settings::default())));
    }
}

/// Runs `f` on the current settings without taking a reference of its own on them (what
/// [`current`]'s counted clone costs: two contended atomic operations): `bg_generate` and
/// `bg_verify` on a shared slot. Same snapshot rule: read once, at the start.
pub fn with_current<R>(f: impl FnOnce(&Settings) -> R) -> R {
    #[cfg(test)]
    tests::READS.with(|n| n.set(n.get() + 1));
    let loaded = SETTINGS.load();
    match loaded.as_deref() {
        Some(s) => f(s),
        None => {
            drop(loaded);
            f(&current())
        }
    }
}

/// A change that `configure` published: the snapshots before and after, and the keys set.
/// The entry point that called `configure` records it in the audit trail.
#[derive(Debug)]
pub struct Change {
    /// The settings before the change.
    pub prev: Arc<Settings>,
    /// The settings now published.
    pub next: Arc<Settings>,
    /// The keys that were set, in the order they were applied.
    pub keys: Vec<&'static str>,
}

/// Sets `key` to `value`; `None` restores the default. A bad key or value changes nothing.
/// Readers never wait for it: the value is validated on a private copy, then published.
pub fn configure(key: &str, value: Option<&str>) -> Result<Change> {
    let k =
        keys::find(key).ok_or_else(|| Error::Argument("unknown configuration key".to_owned()))?;
    publish(|next| apply(next, key, value), vec![k.name])
}

/// Applies `edit` to a copy of the current snapshot under the writer lock and publishes the
/// copy when `edit` succeeded.
fn publish(
    edit: impl FnOnce(&mut Settings) -> Result<()>,
    keys: Vec<&'static str>,
) -> Result<Change> {
    let _writer = WRITER.lock();
    let prev = current();
    let mut next = Settings::clone(&prev);
    edit(&mut next)?;
    next.configured_in = crate::sys::pid();
    let next = Arc::new(next);
    store(next.clone());
    Ok(Change { prev, next, keys })
}

/// Reads `BREAKGLASS_<KEY>` for every key and applies all of them, or none when any is bad.
pub fn configure_from_env() -> Result<Change> {
    let found = read_env()?;
    let keys = found.iter().map(|(k, _)| *k).collect();
    publish(
        |next| {
            for (key, value) in &found {
                apply(next, key, Some(value.as_str()))?;
            }
            Ok(())
        },
        keys,
    )
}

/// The settings `configure_from_env` would make from the defaults, without applying them: the
/// process's settings stay as they are and nothing reaches the audit trail (a check of a
/// deployment's environment, `breakglass check-config`, is not a change of it).
pub fn from_env() -> Result<Settings> {
    let mut s = Settings::default();
    for (key, value) in &read_env()? {
        apply(&mut s, key, Some(value.as_str()))?;
    }
    Ok(s)
}

/// Every `BREAKGLASS_<KEY>` that is set, in the key table's order.
fn read_env() -> Result<Vec<(&'static str, Zeroizing<String>)>> {
    KEYS.iter()
        .map(|k| k.name)
        .filter_map(|key| {
            let var = format!("BREAKGLASS_{}", key.to_ascii_uppercase());
            match std::env::var(&var) {
                Ok(v) => Some(Ok((key, Zeroizing::new(v)))),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    Some(Err(Error::Argument(format!("{var} is not UTF-8"))))
                }
            }
        })
        .collect()
}

/// Restores every default (the crate's own tests use it between cases).
pub fn reset() {
    let _writer = WRITER.lock();
    store(Arc::default());
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    thread_local! {
        /// Snapshots taken on this thread (counted by `current`).
        pub(super) static READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// The facts word starts as the defaults' (the first snapshot is the defaults, published
    /// without the writer) and packs a version's life and sharing without loss. (Not through
    /// `configure`: the unit tests share the process's settings and run at once.)
    #[test]
    fn the_slot_facts_are_the_settings_packed() {
        assert_eq!(
            SLOT_FACTS.load(Ordering::Relaxed),
            pack_facts(DEFAULT_OTP_TTL, false)
        );
        assert_eq!(
            facts_of(&Settings::default()),
            pack_facts(DEFAULT_OTP_TTL, false)
        );
        let mut s = Settings::default();
        apply(&mut s, "otp_ttl_seconds", Some("86400")).unwrap();
        let w = facts_of(&s);
        assert_eq!(
            (Duration::from_millis(w >> 1), w & 1),
            (Duration::from_secs(86400), 0)
        );
        #[cfg(feature = "redis")]
        {
            apply(&mut s, "slot_url", Some("redis://127.0.0.1:1")).unwrap();
            assert_eq!(facts_of(&s) & 1, 1);
        }
    }

    fn reads_during(f: impl FnOnce()) -> usize {
        let before = READS.get();
        f();
        READS.get() - before
    }

    /// One snapshot per call: a login step reads the settings once at its start and passes
    /// them to the slot, the store, the audit trail and the notifier (it used to read them
    /// again in the slot and in the notifier, so a concurrent configure could change the rules
    /// in the middle of a login).
    #[test]
    fn each_call_reads_the_settings_once() {
        // A code that is not six digits: refused by the slot, counted, audited.
        let n = reads_during(|| {
            let _ = crate::login::complete(Some(b"::1"), Some(b"not-a-code"));
        });
        assert_eq!(n, 1, "login::complete");
        let n = reads_during(|| crate::notify::alert(Some(b"192.0.2.1")));
        assert_eq!(n, 1, "alert");
        let n = reads_during(|| {
            let _ = crate::otp::generate();
        });
        assert_eq!(n, 1, "generate");
    }

    /// A configure in progress (holding the writer lock, where its validation runs) never
    /// makes a reader wait: while another thread holds that lock, this one completes N
    /// generates, each reading the snapshot, before the writer lets go. On the old `RwLock`
    /// the first read waited for the whole validation (a cost-14 bcrypt hash: about 1 s).
    #[test]
    fn readers_never_wait_for_a_configure_in_progress() {
        use std::sync::mpsc;
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            let _writer = WRITER.lock();
            held_tx.send(()).unwrap();
            // Bounded: a reader that waited on the writer would never let this test end.
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(30));
            std::time::Instant::now()
        });
        held_rx.recv().unwrap();
        const N: usize = 200;
        for _ in 0..N {
            assert!(current().otp_ttl > Duration::ZERO);
            crate::otp::generate().unwrap();
        }
        let readers_done = std::time::Instant::now();
        release_tx.send(()).unwrap();
        let writer_done = writer.join().unwrap();
        assert!(
            readers_done < writer_done,
            "the readers finished only after the writer"
        );
    }
}
