//! The session token: random, shown once, kept only as its SHA-256 (the login state keeps the
//! session itself, see `state.rs`).
//!
//! The token is 32 bytes from the OS CSPRNG, given to the caller as URL-safe base64 without
//! padding (43 characters); only its SHA-256 is kept, and a presented token is compared with
//! it in constant time. It must never log a token.

use base64::Engine as _;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_text() {
        let (a, ha) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), TOKEN_CHARS);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(ha, hash(b.as_bytes()));
    }
}
