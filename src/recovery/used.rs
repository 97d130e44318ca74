//! Which recovery codes are used: the interface every store keeps, and the in-process store.
//!
//! The in-process store serves one process (like the rest of the in-process login state, it is
//! not shared with other processes: a pre-fork server needs `state_dir` or `slot_url`). Its
//! lock is held only for one set update. It must never report a code unused once a consume of
//! it has returned.

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::Mutex;

use super::FileId;
use crate::error::Result;

/// The record of used codes, per set of codes.
///
/// Every implementation makes [`consume`](Self::consume) atomic across everyone sharing it
/// (threads, processes, hosts): of any number of racing consumes of one code, exactly one
/// returns `true`. Any failure to answer is an error (a denial), never `true`.
pub trait UsedCodes {
    /// Marks code `index` of the set `file` used: `true` when it was unused and is now used,
    /// `false` when it was already used.
    fn consume(&self, file: &FileId, index: u32) -> Result<bool>;

    /// How many codes of the set `file` are used.
    fn used(&self, file: &FileId) -> Result<u32>;
}

pub(crate) static USED: Mutex<BTreeMap<FileId, BTreeSet<u32>>> = Mutex::new(BTreeMap::new());

/// The used codes of this process.
pub struct MemoryUsed;

impl UsedCodes for MemoryUsed {
    fn consume(&self, file: &FileId, index: u32) -> Result<bool> {
        Ok(USED.lock().entry(*file).or_default().insert(index))
    }

    fn used(&self, file: &FileId) -> Result<u32> {
        Ok(USED.lock().get(file).map_or(0, |s| s.len() as u32))
    }
}

/// Forgets every used code of this process (tests and `bg_reset` style helpers).
pub(crate) fn clear_all() {
    USED.lock().clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_consumed_once_even_by_racing_threads() {
        let file = [7u8; 32];
        let wins: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| MemoryUsed.consume(&file, 3).unwrap() as usize))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
        assert_eq!(MemoryUsed.used(&file).unwrap(), 1);
        assert!(MemoryUsed.consume(&file, 4).unwrap());
        assert_eq!(MemoryUsed.used(&file).unwrap(), 2);
        assert_eq!(MemoryUsed.used(&[8u8; 32]).unwrap(), 0);
    }
}
