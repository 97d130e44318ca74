//! The event id of an alert: 128 random bits from the OS, as 32 lowercase hex digits.
//!
//! Owns how an id is drawn. One id is drawn per alert and carried unchanged by every retry and
//! every channel of that alert, so a receiver can tell a retry from a new login. It must never
//! derive an id from anything an attacker can choose or predict while the OS source works.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::SysRng;
use rand::TryRng;

/// Hex digits in an event id.
pub const EVENT_ID_LEN: usize = 32;

/// A fresh id from the OS random source.
pub fn new() -> String {
    let mut bits = [0u8; EVENT_ID_LEN / 2];
    if SysRng.try_fill_bytes(&mut bits).is_err() {
        // The alarm must go out even then: an id that is unique in this process (boot clock,
        // pid, a counter) still tells retries from new alerts, though it is not random.
        static FALLBACK: AtomicU64 = AtomicU64::new(0);
        log::error!("the OS random source failed: this alert's event id is not random");
        let nanos = crate::sys::boottime().as_nanos() as u64;
        let n = FALLBACK.fetch_add(1, Ordering::Relaxed);
        bits[..8].copy_from_slice(&nanos.to_be_bytes());
        bits[8..12].copy_from_slice(&crate::sys::pid().to_be_bytes());
        bits[12..].copy_from_slice(&(n as u32).to_be_bytes());
    }
    crate::text::hex(bits)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let (a, b) = (super::new(), super::new());
        for id in [&a, &b] {
            assert_eq!(id.len(), super::EVENT_ID_LEN);
            assert!(
                id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
        assert_ne!(a, b);
    }
}
