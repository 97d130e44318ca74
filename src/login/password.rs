//! Checking a candidate password against the configured hash (whose type and parser are
//! settings: `config::password_hash`).
//!
//! Accepts PHC strings for argon2id (`$argon2id$…`, checked with the parameters it carries) and
//! bcrypt (`$2b$`/`$2y$`). A check is deliberately slow (tens of ms and, for argon2id, tens of
//! MiB): callers admit it through `login::admission` first, so a flood of attempts cannot
//! turn into a CPU or memory exhaustion, nor starve the admin. It must never log or keep a
//! candidate password, and never accept a bcrypt candidate longer
//! than 72 bytes (bcrypt would silently ignore the rest).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub use crate::config::password_hash::StoredHash;
use crate::config::password_hash::{MAX_ARGON2_M_KIB, MAX_ARGON2_P, MAX_ARGON2_T};

/// bcrypt compares only this many bytes of a password.
pub const BCRYPT_MAX_PASSWORD: usize = 72;

/// Why a check did not say "match".
#[derive(Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The candidate does not match (or is too long for bcrypt).
    Mismatch,
}

/// The check lives here, with the admission that bounds it; the type and its parser are
/// settings (`config::password_hash`).
impl StoredHash {
    /// Checks `candidate` (slow: admit it through `login::admission` first).
    pub fn check(&self, candidate: &[u8]) -> Result<(), CheckError> {
        let ok = match self {
            StoredHash::Argon2id(phc) => Argon2::default()
                .verify_password(candidate, phc.as_str())
                .is_ok(),
            StoredHash::Bcrypt(h) => {
                // The hash is still computed for an over-long candidate, so that its length
                // does not show in the time a refusal takes.
                let matched =
                    bcrypt::verify(&candidate[..candidate.len().min(BCRYPT_MAX_PASSWORD)], h)
                        .unwrap_or(false);
                matched && candidate.len() <= BCRYPT_MAX_PASSWORD
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CheckError::Mismatch)
        }
    }
}

/// Whether argon2 costs are within the bounds accepted for a configured hash.
pub(crate) fn argon2_within_bounds(m_kib: u32, t: u32, p: u32) -> bool {
    m_kib <= MAX_ARGON2_M_KIB && t <= MAX_ARGON2_T && p <= MAX_ARGON2_P
}

/// A new argon2id PHC string for `password`, with the crate's recommended parameters (OWASP's
/// minimum: m=19 MiB, t=2, p=1) and a random salt from the OS.
pub fn hash_new(password: &[u8]) -> Result<String, String> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip_and_bounds() {
        let phc = hash_new(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let h = StoredHash::parse(&phc).unwrap();
        assert_eq!(h.check(b"correct horse"), Ok(()));
        assert_eq!(h.check(b"correct horsE"), Err(CheckError::Mismatch));
        assert!(!format!("{h:?}").contains("argon2id$"));
        for bad in [
            "$argon2id$v=19$m=999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$garbage",
            "plaintext-password",
            "",
        ] {
            assert!(StoredHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bcrypt_refuses_over_long_candidates() {
        let long = vec![b'a'; 100];
        let h = bcrypt::hash(&long[..72], 4).unwrap();
        let stored = StoredHash::parse(&h).unwrap();
        assert_eq!(stored.check(&long[..72]), Ok(()));
        // bcrypt would accept this (it ignores byte 73 on); the library does not.
        assert_eq!(stored.check(&long), Err(CheckError::Mismatch));
        assert!(StoredHash::parse("$2b$04$short").is_err());
    }
}
