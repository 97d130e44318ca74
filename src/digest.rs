//! The library's one SHA-256/HMAC stack (ring's, which rustls already builds): hashes of
//! several parts, HMAC-SHA256, and SHA-1 where a protocol names it (Redis `EVALSHA`).
//!
//! A leaf: it imports nothing from the crate. It must never log or keep what it hashes.

use ring::{digest, hmac};

/// SHA-256 over `parts`, in order, as if concatenated.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// HMAC-SHA256 with `key` over `parts`, in order, as if concatenated.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
        .as_ref()
        .try_into()
        .expect("HMAC-SHA256 is 32 bytes")
}

/// SHA-1 of `text`: only for names a protocol defines with it (Redis script ids), never for
/// security.
pub fn sha1_for_names(text: &[u8]) -> [u8; 20] {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, text)
        .as_ref()
        .try_into()
        .expect("SHA-1 is 20 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            hex::encode(sha256(&[b"ab", b"c"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(sha1_for_names(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
