//! `password_hash`: the break-glass password's stored hash, and checking a candidate against it.
//!
//! Accepts PHC strings for argon2id (`$argon2id$…`, checked with the parameters it carries) and
//! bcrypt (`$2b$`/`$2y$`). A check is deliberately slow (tens of ms and, for argon2id, tens of
//! MiB), so at most [`MAX_CONCURRENT_CHECKS`] run at once and the rest are refused at once
//! rather than queued: a flood of login attempts cannot turn into a CPU or memory exhaustion.
//! It must never log or keep a candidate password, and never accept a bcrypt candidate longer
//! than 72 bytes (bcrypt would silently ignore the rest).

use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::{Argon2, PasswordHash as Phc, PasswordHasher, PasswordVerifier};

/// Hash checks allowed to run at the same time.
pub const MAX_CONCURRENT_CHECKS: usize = 2;
/// bcrypt compares only this many bytes of a password.
pub const BCRYPT_MAX_PASSWORD: usize = 72;
/// The largest argon2 memory cost accepted in a configured hash, in KiB (256 MiB).
const MAX_ARGON2_M_KIB: u32 = 256 * 1024;
/// The largest bcrypt cost accepted in a configured hash. Each step doubles the work: cost 14
/// took about 1 s per check on the machine issue 17 was measured on, and a check holds one of
/// the [`MAX_CONCURRENT_CHECKS`] places for that long, so a higher cost would let two wrong
/// passwords every few seconds keep the admin's right one out, and turn `bg_login_begin` into
/// a multi-second call. OWASP's minimum is 10; 12 to 14 is common practice.
pub(crate) const BCRYPT_MAX_COST: u32 = 14;
/// The largest argon2 time cost and parallelism accepted in a configured hash.
const MAX_ARGON2_T: u32 = 20;
const MAX_ARGON2_P: u32 = 8;

/// Counts the checks running; one per process.
struct Gate(AtomicUsize);

static GATE: Gate = Gate(AtomicUsize::new(0));

/// A configured password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredHash {
    /// An argon2id PHC string.
    Argon2id(String),
    /// A bcrypt hash (`$2b$` or `$2y$`).
    Bcrypt(String),
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoredHash::Argon2id(_) => "StoredHash::Argon2id(***)",
            StoredHash::Bcrypt(_) => "StoredHash::Bcrypt(***)",
        })
    }
}

/// Why a check did not say "match".
#[derive(Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The candidate does not match (or is too long for bcrypt).
    Mismatch,
    /// Too many checks are running; nothing was checked.
    Busy,
}

impl StoredHash {
    /// Parses and bounds a configured hash.
    pub fn parse(text: &str) -> Result<StoredHash, String> {
        let text = text.trim();
        if text.starts_with("$argon2id$") {
            let phc =
                Phc::new(text).map_err(|e| format!("not a valid argon2id PHC string: {e}"))?;
            let params =
                argon2::Params::try_from(&phc).map_err(|e| format!("argon2id parameters: {e}"))?;
            if params.m_cost() > MAX_ARGON2_M_KIB
                || params.t_cost() > MAX_ARGON2_T
                || params.p_cost() > MAX_ARGON2_P
            {
                return Err(format!(
                    "argon2id parameters above the bounds m<={MAX_ARGON2_M_KIB} t<={MAX_ARGON2_T} \
                     p<={MAX_ARGON2_P}"
                ));
            }
            if phc.hash.is_none() || phc.salt.is_none() {
                return Err("the argon2id PHC string has no salt or hash".into());
            }
            Ok(StoredHash::Argon2id(text.to_owned()))
        } else if text.starts_with("$2b$") || text.starts_with("$2y$") {
            parse_bcrypt(text)?;
            Ok(StoredHash::Bcrypt(text.to_owned()))
        } else if text.starts_with("$argon2i$") || text.starts_with("$argon2d$") {
            Err("only argon2id is accepted among the argon2 variants".into())
        } else {
            Err(
                "must be an argon2id PHC string ($argon2id$...) or a bcrypt hash ($2b$/$2y$)"
                    .into(),
            )
        }
    }

    /// Checks `candidate`; at most [`MAX_CONCURRENT_CHECKS`] run at once.
    pub fn check(&self, candidate: &[u8]) -> Result<(), CheckError> {
        self.check_through(&GATE, candidate)
    }

    fn check_through(&self, gate: &Gate, candidate: &[u8]) -> Result<(), CheckError> {
        let _place = gate.enter().ok_or(CheckError::Busy)?;
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

/// bcrypt's base64 alphabet.
const BCRYPT_ALPHABET: &[u8; 64] =
    b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Checks a `$2b$`/`$2y$` hash's form and bounds its cost, without computing anything: `$2b$`,
/// a two-digit cost from 4 to [`BCRYPT_MAX_COST`], `$`, 22 characters of salt and 31 of digest
/// in bcrypt's base64, with the unused low bits of each part's last character zero (as the
/// `bcrypt` crate requires when it later decodes them).
fn parse_bcrypt(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let bad = || "not a valid bcrypt hash: expected $2b$NN$ and 53 characters".to_owned();
    if b.len() != 60 || b[6] != b'$' || !b[4..6].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let cost = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    if cost < 4 {
        return Err(bad());
    }
    if cost > BCRYPT_MAX_COST {
        return Err(format!(
            "bcrypt cost {cost} is too high: at most {BCRYPT_MAX_COST} (each check would hold one \
             of the {MAX_CONCURRENT_CHECKS} hash-check places for seconds)"
        ));
    }
    let index = |c: u8| BCRYPT_ALPHABET.iter().position(|&a| a == c);
    let (salt, digest) = (&b[7..29], &b[29..]);
    let ok = salt.iter().chain(digest).all(|&c| index(c).is_some())
        && index(salt[21]).is_some_and(|i| i % 16 == 0)
        && index(digest[30]).is_some_and(|i| i % 4 == 0);
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// One of the [`MAX_CONCURRENT_CHECKS`] places, given back on drop (also on a panic).
struct Place<'a>(&'a Gate);

impl Gate {
    fn enter(&self) -> Option<Place<'_>> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_CONCURRENT_CHECKS).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(self))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
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

    /// A well-formed bcrypt hash at `cost` (a fixed salt and digest: parsing never checks
    /// them against a password).
    fn bcrypt_at(cost: u32) -> String {
        format!("$2b${cost:02}$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123e")
    }

    #[test]
    fn bcrypt_cost_is_capped_and_parsed_without_hashing() {
        // At the cap: accepted (parsing computes nothing, so this is immediate even though a
        // check at this cost takes about a second).
        let at_cap = StoredHash::parse(&bcrypt_at(BCRYPT_MAX_COST)).unwrap();
        assert!(matches!(at_cap, StoredHash::Bcrypt(_)));
        // Above it: refused with the reason (hashing a cost-31 value would take days).
        for cost in [BCRYPT_MAX_COST + 1, 31] {
            let why = StoredHash::parse(&bcrypt_at(cost)).unwrap_err();
            assert!(why.contains("cost") && why.contains("at most"), "{why}");
        }
        for bad in [
            "$2b$03$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123e",
            "$2b$10$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
            "$2b$4$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
            "$2b$+4$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
            "$2b$10$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
            "$2b$10$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123!",
            "$2a$10$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123e",
        ] {
            assert!(StoredHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_beyond_the_bound_are_refused_at_once() {
        let gate = Gate(AtomicUsize::new(0));
        let held: Vec<Place<'_>> = (0..MAX_CONCURRENT_CHECKS)
            .map(|_| gate.enter().unwrap())
            .collect();
        let h = StoredHash::parse(&bcrypt::hash(b"pw", 4).unwrap()).unwrap();
        assert_eq!(h.check_through(&gate, b"pw"), Err(CheckError::Busy));
        drop(held);
        assert_eq!(h.check_through(&gate, b"pw"), Ok(()));
    }
}
