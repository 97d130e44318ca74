//! `password_hash`: the type of the break-glass password's stored hash and its parser.
//!
//! Owns which hashes are accepted and their bounds: argon2id PHC strings (`$argon2id$…`, with
//! bounded parameters) and bcrypt (`$2b$`/`$2y$`, with a bounded cost). Parsing checks the form
//! only and must never compute a hash: configuring a value is instant, whatever its cost, and
//! no reader of the settings ever waits for it. Checking a candidate is `login::password`'s.

use argon2::PasswordHash as Phc;

/// The largest argon2 memory cost accepted in a configured hash, in KiB (256 MiB).
pub(crate) const MAX_ARGON2_M_KIB: u32 = 256 * 1024;
/// The largest bcrypt cost accepted in a configured hash. Each step doubles the work: cost 14
/// took about 1 s per check on the machine issue 17 was measured on, and a check holds one of
/// the `login::password::MAX_CONCURRENT_CHECKS` places for that long, so a higher cost would let two wrong
/// passwords every few seconds keep the admin's right one out, and turn `bg_login_begin` into
/// a multi-second call. OWASP's minimum is 10; 12 to 14 is common practice.
pub(crate) const BCRYPT_MAX_COST: u32 = 14;
/// The largest argon2 time cost and parallelism accepted in a configured hash.
pub(crate) const MAX_ARGON2_T: u32 = 20;
pub(crate) const MAX_ARGON2_P: u32 = 8;

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
             of the two hash-check places for seconds)"
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
