//! The one break-glass session: a random token, its hash and its age.
//!
//! The token is 32 bytes from the OS CSPRNG, given to the caller as URL-safe base64 without
//! padding (43 characters); only its SHA-256 is kept, and a presented token is compared with
//! it in constant time. At most one session is active: a new login replaces it. Pure logic
//! apart from the random draw: the caller passes the time. It must never log a token.

use std::time::Duration;

use base64::Engine as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Characters of a token as text (URL-safe base64 without padding).
pub const TOKEN_CHARS: usize = 43;

/// A session's fingerprint: the SHA-256 of its token.
pub type TokenHash = [u8; 32];

/// The SHA-256 of a presented token.
pub fn hash(token: &[u8]) -> TokenHash {
    crate::digest::sha256(&[token])
}

/// A fresh token and its hash.
pub fn new_token() -> crate::Result<(Zeroizing<String>, TokenHash)> {
    let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom_fill(&mut bytes[..])?;
    let text = Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..]));
    let h = hash(text.as_bytes());
    Ok((text, h))
}

fn getrandom_fill(buf: &mut [u8]) -> crate::Result<()> {
    use rand::TryRng as _;
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(|_| crate::Error::Internal("the OS random source failed"))
}

/// The active session.
#[derive(Clone, Copy)]
pub struct Session {
    /// Its token's hash.
    pub token: TokenHash,
    /// When it began (boot clock).
    pub issued: Duration,
    /// Its lifetime, fixed when it began.
    pub ttl: Duration,
}

impl Session {
    /// Whether `presented` is this session's token and the session is younger than its TTL.
    pub fn admits(&self, presented: &TokenHash, now: Duration) -> bool {
        let same: bool = self.token.ct_eq(presented).into();
        same && now.saturating_sub(self.issued) < self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_text_and_sessions_expire() {
        let (a, ha) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), TOKEN_CHARS);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        let s = Session {
            token: ha,
            issued: Duration::from_secs(100),
            ttl: Duration::from_secs(3600),
        };
        assert!(s.admits(&hash(a.as_bytes()), Duration::from_secs(3699)));
        assert!(!s.admits(&hash(a.as_bytes()), Duration::from_secs(3700)));
        assert!(!s.admits(&hash(b.as_bytes()), Duration::from_secs(200)));
    }
}
